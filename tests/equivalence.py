"""The tests' one equivalence check: a run against handrolled's numpy descent from the same data, start and settings.

Tolerances (comparisons.core.tolerances.EQUIVALENCE): float64 rounding differs only by summation order (~1e-15),
so 1e-10 relative is generous yet catches any real difference; float32 carries ~1e-7 per op, so 1e-4.
"""
import numpy as np
import pytest

import handrolled
from comparisons.core.tolerances import EQUIVALENCE


def assert_matches_numpy(result, X, y, W0, b0, lr, iterations, batches=None):
    """Every loss point, the divergence point, the weights and the bias within the dtype's tolerance of numpy's run.

    `result` is a loop result (DescentResult, LoopResult), a RunResult, or a mapping of the same fields
    (a child process's JSON); X (n, m) and y (n, 1) are in the run's dtype. Returns numpy's DescentResult.
    """
    dtype = str(X.dtype)
    field = (lambda key: result[key]) if isinstance(result, dict) else (lambda key: getattr(result, key))
    reference = handrolled.descend(X, y, W0, b0, lr, iterations, batches=batches)
    tol = EQUIVALENCE[dtype]
    curve, weights = np.asarray(field("loss_curve")), np.asarray(field("weights"))
    assert field("diverged_at") == reference.diverged_at
    assert len(curve) == len(reference.loss_curve)
    np.testing.assert_allclose(curve, reference.loss_curve, rtol=tol, atol=0)
    # the final parameters, also of a diverged run: those after as many updates as numpy made; a weight near 0
    # is judged against the size of the largest (its relative error alone would be unbounded)
    scale = max(1.0, float(np.abs(reference.weights).max()))
    np.testing.assert_allclose(weights.reshape(-1, 1), reference.weights, rtol=tol, atol=tol * scale)
    assert float(field("bias")) == pytest.approx(float(reference.bias), rel=tol)
    if not isinstance(result, dict):  # arrays (not JSON lists) keep the run's dtype
        assert weights.shape == reference.weights.shape
        assert weights.dtype == np.dtype(dtype) and curve.dtype == np.dtype(dtype)
    return reference
