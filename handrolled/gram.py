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

from .descent import _is_divergent
from .result import DescentResult

ACCUMULATE = np.float64  # the dtype G, c and s are summed in, whatever the run's dtype (see below)
# Rows per block of the pass: about this many bytes of float64 X, small enough for a block to stay in
# one core's cache between its products, so that X need come from memory once.
BLOCK_BYTES = 2**20
# At most this many rows per block: numpy's BLAS runs a larger product of one block on both cores, whose
# hand-over costs more than the product when the other core is busy (and the Gram pass is not alone).
MAX_BLOCK_ROWS = 65536


@dataclass(frozen=True)
class GramStatistics:
    """What one pass over the data keeps, in the run's dtype."""

    G: np.ndarray  # (m + 1, m + 1): [X, 1]^T [X, 1] / n
    c: np.ndarray  # (m + 1, 1): [X, 1]^T y / n
    s: np.generic  # y^T y / n
    n: int  # rows summarised


def block_rows_for(m, block_bytes=BLOCK_BYTES):
    """Rows per block of the pass for m features: block_bytes of float64 X, at least one row, at most MAX_BLOCK_ROWS."""
    return max(1, min(MAX_BLOCK_ROWS, block_bytes // (m * np.dtype(ACCUMULATE).itemsize)))


def row_ranges(n, rows, parts):
    """[(start, stop), ...]: n rows split into `parts` ranges of nearly equal length, at most one per `rows` rows."""
    parts = max(1, min(parts, n // rows))
    cuts = [n * k // parts for k in range(parts + 1)]
    return list(zip(cuts[:-1], cuts[1:]))


def sufficient_statistics(X, y, block_rows=None, parts=1, map_ranges=map):
    """G, c and s of [X, 1] and y in one pass over the rows, summed in float64, rounded to X's dtype once.

    Why float64: each entry of G and c is a sum of n products. Summed in float32, its rounding
    error grows with n; summed in float64 and rounded once, every entry is the float32 closest to
    the mean (float64's own rounding lies far below float32's), so a float32 run loses digits only
    where its own arithmetic loses them. The price: the pass does float64 arithmetic.
    A float64 run has no wider type at BLAS speed, so it sums in its own dtype.

    Per block of rows, X_b (rows, m) and Z_b = [1, y_b] (rows, 2): X_b^T X_b (a symmetric rank-k
    update: numpy calls BLAS syrk for a product with its own transpose) and X_b^T Z_b. A float64 X_b
    is a view of X, never copied; a float32 one is cast into one reused float64 buffer. (Appending 1
    and y to X_b would give G and c from one product, but every block would then be copied, and the
    one product is no faster than the two.) With one feature the block is kept feature by feature
    instead, Q_b = [x_b; y_b; 1] (3, rows), and one product [x_b; y_b] Q_b^T gives every sum at once
    (numpy's matmul would send the products of a single column to BLAS dot and matrix-vector calls,
    one per sum).

    The rows can be split into `parts` ranges (row_ranges), each summed block by block by one call of
    work(start, stop) through `map_ranges` (Python's map by default: one after the other). The study passes a
    map that runs the ranges in threads, one per core, with BLAS held to one thread each
    (comparisons/running/cores.py): every core then sums blocks in its own cache, where BLAS would split
    each small block over the cores. The ranges' float64 sums are added in range order, so the result
    does not depend on which range finishes first.
    """
    n, m = X.shape
    rows = min(n, block_rows or block_rows_for(m))
    starts, stops = zip(*row_ranges(n, rows, parts))
    if m == 1:
        P = sum(map_ranges(lambda a, b: _one_feature_sums(X[a:b], y[a:b], rows), starts, stops))
        return _statistics(P[:1, :1], P[:1, 2], P[:1, 1], P[1, 2], P[1, 1], n, X.dtype)
    sums = list(map_ranges(lambda a, b: _block_sums(X[a:b], y[a:b], rows), starts, stops))
    XX, XZ = sum(s[0] for s in sums), sum(s[1] for s in sums)
    # y alone: numpy casts it to float64 in small buffers, never as a whole copy
    y_sum, yy = y.sum(dtype=ACCUMULATE), np.einsum("ij,ij->", y, y, dtype=ACCUMULATE)
    return _statistics(XX, XZ[:, 0], XZ[:, 1], y_sum, yy, n, X.dtype)


def _block_sums(X, y, rows):
    """(X^T X (m, m), X^T [1, y] (m, 2)) of one range of rows, block by block, summed in float64."""
    n, m = X.shape
    XX = np.zeros((m, m), ACCUMULATE)  # sum of x x^T
    XZ = np.zeros((m, 2), ACCUMULATE)  # [sum of x, sum of x y]
    Z = np.ones((rows, 2), ACCUMULATE)  # (rows, 2): [1, y_block], column 1 refilled per block
    cast = None if X.dtype == ACCUMULATE else np.empty((rows, m), ACCUMULATE)  # the float64 copy of a block
    for start in range(0, n, rows):
        k = min(rows, n - start)
        X_b = X[start:start + k]  # (k, m)
        if cast is not None:
            X_b = cast[:k]
            X_b[...] = X[start:start + k]
        Z_b = Z[:k]
        Z_b[:, 1:] = y[start:start + k]
        XX += X_b.T @ X_b
        XZ += X_b.T @ Z_b
    return XX, XZ


def _one_feature_sums(X, y, rows):
    """P = [[x.x, x.y, x.1], [y.x, y.y, y.1]] (2, 3) of one range of rows: per block, Q_b = [x_b; y_b; 1] (3, k) in
    float64 and P += [x_b; y_b] Q_b^T."""
    n = X.shape[0]
    Q = np.ones((3, rows), ACCUMULATE)  # rows 0 and 1 refilled per block, row 2 stays ones
    P = np.zeros((2, 3), ACCUMULATE)
    for start in range(0, n, rows):
        k = min(rows, n - start)
        Q_b = Q[:, :k]
        Q_b[0] = X[start:start + k, 0]
        Q_b[1] = y[start:start + k, 0]
        P += Q_b[:2] @ Q_b.T
    return P


def _statistics(XX, x_sum, xy, y_sum, yy, n, dtype):
    """GramStatistics from the float64 sums, divided by n and rounded to the run's dtype once."""
    m = XX.shape[0]
    G = np.empty((m + 1, m + 1), ACCUMULATE)  # [[X^T X, X^T 1], [1^T X, n]]
    G[:m, :m], G[:m, m], G[m, :m], G[m, m] = XX, x_sum, x_sum, n
    c = np.append(xy, y_sum).reshape(-1, 1)  # (m + 1, 1): [X^T y; 1^T y]
    return GramStatistics((G / n).astype(dtype), (c / n).astype(dtype), dtype.type(yy / n), n)


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
