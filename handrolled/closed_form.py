"""The closed-form least-squares reference (`ols`), always in float64."""
import numpy as np


def column_norms(A):
    """The 2-norm of each column of A (n, k) without overflow: computed on A over a power of two, scaled back exactly."""
    largest = np.max(np.abs(A), axis=0)  # (k,)
    _, exponents = np.frexp(np.where(largest > 0, largest, 1.0))
    scale = np.ldexp(1.0, exponents)  # powers of two: dividing by them is exact
    return np.sqrt(np.sum((A / scale) ** 2, axis=0)) * scale


def ols(X, y):
    """Least-squares (W, b) of y ~ X @ W + b by numpy.linalg.lstsq on [X, 1]; W is (m, 1)."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1, 1)
    design = np.hstack([X, np.ones((X.shape[0], 1))])  # (n, m + 1): the bias is the last column
    # scale each column to unit norm first: columns of very different sizes (prices next to a
    # volume of 1e7) would otherwise cost lstsq digits; the solution is scaled back after
    norms = column_norms(design)
    norms[norms == 0] = 1.0
    theta, *_ = np.linalg.lstsq(design / norms, y, rcond=None)
    theta = theta / norms[:, None]
    return theta[:-1], float(theta[-1, 0])
