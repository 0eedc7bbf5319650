"""The same full-batch descent with its products as broadcasts and reductions, for few features (m = 1: the lesson).

`descend` writes the lesson's matrix products, X @ W and X.T @ R. With one feature, X @ W is a
matrix-vector product whose rows are dot products of length one, and numpy hands it to its BLAS
all the same; here X W is built column by column with elementwise multiplies (one for m = 1), and
X^T R, R^T R as einsum reductions (numpy's own loops, no BLAS call). The n-long buffers are made
once per run and reused. Same iterates as `descend` to float64 rounding; the cost of a step grows
with m (a column of a row-major X is a strided read), so this form is meant for m = 1.
"""
import numpy as np

from .descent import _is_divergent
from .result import DescentResult


def _residuals_into(X, y, W, b, out):
    """out = y - (X W + b), shape (n, 1), with broadcasts only: out's buffer is reused."""
    np.multiply(X[:, :1], W[0, 0], out=out)  # (n, 1): the first column times its weight
    for j in range(1, X.shape[1]):
        out += X[:, j:j + 1] * W[j, 0]
    out += b
    np.subtract(y, out, out=out)
    return out


def descend_broadcast(X, y, W0, b0, lr, iterations):
    """Full-batch gradient descent from (W0, b0) as `descend` runs it (no mini-batches); returns a DescentResult."""
    n = X.shape[0]
    dtype = X.dtype
    W = np.array(W0, dtype=dtype).reshape(-1, 1)  # (m, 1), a copy
    b = dtype.type(b0)
    lr, scale = dtype.type(lr), dtype.type(-2.0 / n)
    residuals = np.empty((n, 1), dtype)  # (n, 1), reused by every step
    losses = np.empty(iterations + 1, dtype=dtype)
    diverged_at = None
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is detected below, not raised
        for i in range(iterations + 1):
            _residuals_into(X, y, W, b, residuals)
            losses[i] = np.einsum("ij,ij->", residuals, residuals) / dtype.type(n)  # the MSE before update i
            if _is_divergent(losses[i], losses[0]):
                diverged_at = i
                break
            if i < iterations:
                grad_W = scale * np.einsum("ij,ik->jk", X, residuals)  # (m, 1): -2/n X^T R
                grad_b = scale * residuals.sum()
                W, b = W - lr * grad_W, b - lr * grad_b
    return DescentResult(weights=W, bias=b, loss_curve=losses[:i + 1], diverged_at=diverged_at, trajectory=None)
