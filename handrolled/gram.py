"""Gradient descent on sufficient statistics: one pass over the data, then iterations that never read it.

With theta = [W; b] (m + 1, 1) and A = [X, 1] (n, m + 1), the loss and its gradient are

    loss(theta) = mean((y - A theta)^2) = s - 2 theta^T c + theta^T G theta
    gradient    = -2/n A^T (y - A theta) = 2 (G theta - c)

with G = A^T A / n (m + 1, m + 1), c = A^T y / n (m + 1, 1) and s = y^T y / n. So one pass over
the rows gives G, c and s, and each later iteration costs O(m^2) whatever n is. In exact
arithmetic the iterates are those of `descend`; in floating point the Gram-form loss subtracts
numbers of size s to leave the (much smaller) loss, see `loss_rounding_bound`.
"""
from dataclasses import dataclass

import numpy as np

from .descent import DescentResult, _is_divergent

ACCUMULATE = np.float64  # the dtype G, c and s are summed in, whatever the run's dtype (see below)
BLOCK_ROWS = 8192  # rows per block of the pass: at m = 32 a float64 block of [X, 1] is ~2 MB, read twice from cache


@dataclass(frozen=True)
class GramStatistics:
    """What one pass over the data keeps, in the run's dtype."""

    G: np.ndarray  # (m + 1, m + 1): [X, 1]^T [X, 1] / n
    c: np.ndarray  # (m + 1, 1): [X, 1]^T y / n
    s: np.generic  # y^T y / n
    n: int  # rows summarised


def sufficient_statistics(X, y, block_rows=BLOCK_ROWS):
    """G, c and s of [X, 1] and y in one pass over the rows, summed in float64, rounded to X's dtype once.

    Why float64: each entry of G and c is a sum of n products. Summed in float32, its rounding
    error grows with n; summed in float64 and rounded once, every entry is the float32 closest to
    the mean (float64's own rounding lies far below float32's), so a float32 run loses digits only
    where its own arithmetic loses them. The price: the pass does float64 arithmetic.
    A float64 run has no wider type at BLAS speed, so it sums in its own dtype.
    """
    n, m = X.shape
    G = np.zeros((m + 1, m + 1), ACCUMULATE)
    c = np.zeros((m + 1, 1), ACCUMULATE)
    s = ACCUMULATE(0.0)
    for start in range(0, n, block_rows):
        A = np.ones((min(block_rows, n - start), m + 1), ACCUMULATE)  # (rows, m + 1): [X_block, 1]
        A[:, :m] = X[start:start + block_rows]
        y_block = y[start:start + block_rows].astype(ACCUMULATE)  # (rows, 1)
        G += A.T @ A
        c += A.T @ y_block
        s += (y_block.T @ y_block)[0, 0]
    dtype = X.dtype
    return GramStatistics((G / n).astype(dtype), (c / n).astype(dtype), dtype.type(s / n), n)


def gram_loss(stats, theta):
    """The MSE at theta = [W; b] (m + 1, 1) from the statistics alone: s - 2 theta^T c + theta^T G theta."""
    return stats.s - 2 * (theta.T @ stats.c)[0, 0] + (theta.T @ (stats.G @ theta))[0, 0]


def gram_gradient(stats, theta):
    """The gradient of the MSE at theta from the statistics alone: 2 (G theta - c), shape (m + 1, 1)."""
    return 2 * (stats.G @ theta - stats.c)


def descend_gram(stats, W0, b0, lr, iterations, keep_trajectory=False):
    """Full-batch gradient descent from (W0, b0) on the statistics; returns a DescentResult like `descend`."""
    dtype = stats.G.dtype
    theta = np.append(np.ravel(W0), b0).astype(dtype).reshape(-1, 1)  # (m + 1, 1): [W; b]
    lr = dtype.type(lr)
    losses = np.empty(iterations + 1, dtype=dtype)
    trajectory = np.empty((iterations + 1, theta.shape[0]), dtype=dtype) if keep_trajectory else None
    diverged_at = None
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is detected, not raised
        for i in range(iterations + 1):
            losses[i] = gram_loss(stats, theta)  # point i: the loss before update i (point N: the final one)
            if trajectory is not None:
                trajectory[i] = theta[:, 0]
            if _is_divergent(losses[i], losses[0]):
                diverged_at = i
                break
            if i < iterations:
                theta = theta - lr * gram_gradient(stats, theta)
    return DescentResult(weights=theta[:-1], bias=theta[-1, 0], loss_curve=losses[:i + 1], diverged_at=diverged_at,
                         trajectory=None if trajectory is None else trajectory[:i + 1])


def loss_magnitude(stats, theta):
    """s + 2 |theta|^T |c| + |theta|^T |G| |theta| in float64: the size of the terms the Gram-form loss sums."""
    t = np.abs(np.asarray(theta, np.float64).reshape(-1, 1))
    G, c = np.abs(stats.G.astype(np.float64)), np.abs(stats.c.astype(np.float64))
    return float(stats.s) + 2 * (t.T @ c)[0, 0] + (t.T @ G @ t)[0, 0]


def loss_rounding_bound(stats, theta, loss):
    """Relative error bound of `gram_loss(stats, theta)` against the exact loss of the data as stored: k u M / loss.

    M is `loss_magnitude` (about 4 s near the fit, where theta^T c and theta^T G theta are both close
    to s) and u half the dtype's machine epsilon. k = 2 (m + 1) + 4 counts the roundings, to first
    order: storing s, c and G in the dtype (1), the dot products theta^T c and theta^T (G theta)
    with m + 1 terms each, the latter after G theta (2 (m + 1)), and the two additions (2, and 1
    to spare). A float64 run also sums its statistics in float64, which adds up to n more
    (a float32 run's float64 sums are exact to far below its own u for n < 2^29). The loss is
    small against M, so the relative error is about (4m + 12) eps s / loss: cancellation.
    """
    dtype = np.dtype(stats.G.dtype)
    k = 2 * stats.G.shape[0] + 4 + (stats.n if dtype == ACCUMULATE else 0)
    u = np.finfo(dtype).eps / 2
    return k * u * loss_magnitude(stats, theta) / abs(float(loss))
