"""The study's agreement tolerances defined once: trainers, tests, tables and the report read them here (the divergence rule is handrolled.divergence_point)."""
import numpy as np

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


def judged(equivalence):
    """equivalence.csv (a DataFrame) with each row's allowance and verdict: columns tolerance, allowed, within, gram.

    A streaming run is allowed the dtype's tolerance. A Gram route computes its loss as
    s - 2 theta^T c + theta^T G theta, which cancels; it is allowed the tolerance plus the rounding
    bound derived for that run (`loss_bound`). A NaN gap (a diverged run) is never within.
    """
    eq = equivalence.assign(tolerance=equivalence.dtype.map(EQUIVALENCE))
    bound = eq.loss_bound.fillna(0.0) if "loss_bound" in eq else 0.0
    eq["allowed"] = eq.tolerance + bound
    eq["within"] = np.where(eq.max_rel_loss_diff <= eq.allowed, "yes", "NO")
    eq["gram"] = eq.loss_bound.notna() if "loss_bound" in eq else False
    return eq
