"""The closed-form least-squares reference (`ols`), always in float64."""
import numpy as np


def ols(X, y):
    """Least-squares (W, b) of y ~ X @ W + b by numpy.linalg.lstsq on [X, 1]; W is (m, 1)."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1, 1)
    design = np.hstack([X, np.ones((X.shape[0], 1))])  # (n, m + 1): the bias is the last column
    theta, *_ = np.linalg.lstsq(design, y, rcond=None)
    return theta[:-1], float(theta[-1, 0])
