"""Gradient descent on the MSE: full batch, mini-batch and stochastic, with divergence detection."""
import numpy as np

from .model import gradient_step, gradients_from_residuals, mse_of_residuals, residuals_into
from .result import DescentResult

# A run has diverged when its loss is not finite or has grown past this factor times its start.
DIVERGENCE_FACTOR = 1e6


def divergence_point(losses, factor=DIVERGENCE_FACTOR):
    """Index of the first loss that is non-finite or above factor * losses[0], or None."""
    losses = np.asarray(losses, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        bad = ~np.isfinite(losses) | (losses > factor * losses[0])
    hits = np.flatnonzero(bad)
    return int(hits[0]) if hits.size else None


def _is_divergent(loss, first_loss):
    return not np.isfinite(loss) or loss > DIVERGENCE_FACTOR * first_loss


def descend(X, y, W0, b0, lr, iterations, batches=None, keep_trajectory=False):
    """Run `iterations` updates of gradient descent from (W0, b0) and return a DescentResult.

    batches=None is full-batch descent. Otherwise `batches` is a list of at least `iterations`
    index arrays (see batches.batch_indices) and update i uses rows batches[i]; the loss
    recorded before that update is the loss on that batch, as Keras logs it.
    Point `iterations` of the loss curve is always the full-data loss of the final parameters.
    A non-finite loss, or one past DIVERGENCE_FACTOR times the first, stops the run there.

    A full-batch step reads X twice (X @ W, then X^T R) and writes its residuals into one buffer
    made once per run; the loss is R^T R / n, the mean of the squares without an array of them.
    Both products read X along its contiguous axis when X is stored column by column
    (np.asfortranarray(X), once, before training): with row-major X, X^T R is a matrix-vector
    product over m-long columns that BLAS runs well below memory speed.
    """
    dtype = X.dtype
    W = np.array(W0, dtype=dtype).reshape(-1, 1)  # (m, 1), a copy: the caller's array is untouched
    b = dtype.type(b0)
    losses = np.empty(iterations + 1, dtype=dtype)
    trajectory = np.empty((iterations + 1, W.shape[0] + 1), dtype=dtype) if keep_trajectory else None
    residuals = np.empty(y.shape, dtype)  # (n, 1): every full-batch step's residuals
    diverged_at = None
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is detected below, not raised
        for i in range(iterations):
            if batches is None:  # all the data, into the run's buffer
                X_i, y_i, R = X, y, residuals
            else:  # a batch: a copy of its rows, and a new vector of its length
                X_i, y_i = X[batches[i]], y[batches[i]]
                R = np.empty(y_i.shape, dtype)
            residuals_into(X_i, y_i, W, b, out=R)  # (batch, 1): y - y_hat, reused by loss and gradients
            losses[i] = mse_of_residuals(R)  # the MSE before update i, as the lesson logs it
            if trajectory is not None:
                trajectory[i] = np.append(W[:, 0], b)
            if _is_divergent(losses[i], losses[0]):
                diverged_at = i
                break
            grad_W, grad_b = gradients_from_residuals(X_i, R)
            W, b = gradient_step(W, b, grad_W, grad_b, lr)
        else:
            i = iterations
            losses[i] = mse_of_residuals(residuals_into(X, y, W, b, out=residuals))  # the final parameters, all data
            if trajectory is not None:
                trajectory[i] = np.append(W[:, 0], b)
            if _is_divergent(losses[i], losses[0]):
                diverged_at = i
    end = i + 1
    return DescentResult(
        weights=W,
        bias=b,
        loss_curve=losses[:end],
        diverged_at=diverged_at,
        trajectory=None if trajectory is None else trajectory[:end],
    )
