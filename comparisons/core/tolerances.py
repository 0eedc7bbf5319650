"""The study's agreement tolerances defined once: trainers, tests, tables and the report read them here (the divergence rule is handrolled.divergence_point)."""

# Relative agreement of every loss-curve point (and the weights) with numpy of the same dtype.
# float64 rounding is ~1.1e-16 per operation, so 1e-10 leaves room for 1000 steps of accumulated
# rounding and still catches any algorithmic difference; float32 carries ~6e-8 per operation.
EQUIVALENCE = {"float64": 1e-10, "float32": 1e-4}

# Largest allowed per-step difference between autodiff and the analytic gradients, relative to the size of
# the terms the gradient sums (2/n max|r| max(sum_i |x_ij|, n)): the same allowance as the loss curves.
GRADIENT = dict(EQUIVALENCE)

# Largest gap of a finished run to the least-squares parameters (relative to each parameter's size) at
# which the report calls descent converged: float32 cannot get much closer than ~1e-4 of a parameter.
CONVERGED = {"float64": 1e-5, "float32": 1e-4}

# Largest |C - reference| / max|reference| of a matrix product against a float64 product of the same
# (rounded) inputs that counts as agreement: a length-n dot product rounds to ~n eps at worst.
MATMUL = {"float64": 1e-12, "float32": 1e-5}
