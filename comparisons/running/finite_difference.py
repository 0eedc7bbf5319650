"""The study's one finite-difference check: a framework's autodiff gradient against central differences, in float64.

The loss is quadratic, so central differences carry no truncation error, only rounding; that
rounding is estimated term by term, and autodiff passes when it is within SAFETY times it (plus
a few eps of the summed terms for autodiff's own rounding). The differences are taken of the loss
evaluated here in numpy, independently of the framework whose gradient is judged.
"""
import numpy as np

SAFETY = 100  # how far past its estimated rounding error a difference may go


def _float64_point(X, y, W, b):
    """X (n, m), y (n, 1), theta = [W; b] (m + 1,) and |r| (n,), all float64."""
    X64, y64 = np.asarray(X, np.float64), np.asarray(y, np.float64)
    theta = np.append(np.asarray(W, np.float64).ravel(), np.float64(b))
    return X64, y64, theta, np.abs(y64[:, 0] - X64 @ theta[:-1] - theta[-1])


def _loss64(X64, y64, theta):
    """The MSE at theta = [W; b], float64."""
    return float(np.mean(np.square(y64[:, 0] - (X64 @ theta[:-1] + theta[-1]))))


def central_differences(X, y, W, b, step=1e-6):
    """(numeric gradient (m + 1,), its rounding error (m + 1,)) of the MSE at (W, b), in float64.

    Each residual r_i = y_i - x_i W - b is off by about eps (m + 2) (|y_i| + |x_i| |W| + |b|), which
    moves r_i^2 by twice |r_i| that much; r_i at the nudged points is up to h |x_ij| larger than here.
    """
    X64, y64, theta, residuals = _float64_point(X, y, W, b)
    n, m = X64.shape
    steps = step * np.maximum(1.0, np.abs(theta))  # (m + 1,)
    numeric, losses = np.empty_like(theta), np.empty_like(theta)
    for j in range(theta.size):
        up, down = theta.copy(), theta.copy()
        up[j] += steps[j]
        down[j] -= steps[j]
        loss_up, loss_down = _loss64(X64, y64, up), _loss64(X64, y64, down)
        numeric[j] = (loss_up - loss_down) / (2 * steps[j])
        losses[j] = max(abs(loss_up), abs(loss_down))
    eps = np.finfo(np.float64).eps
    abs_X1 = np.hstack([np.abs(X64), np.ones((n, 1))])  # (n, m + 1): |[X, 1]|
    residual_error = eps * (m + 2) * (np.abs(y64[:, 0]) + abs_X1 @ np.abs(theta))  # (n,)
    # per loss: sum over i of 2 |r_i| dr_i / n, plus the rounding of the mean itself
    per_loss = (2 * np.mean(residuals * residual_error) + 2 * steps * (abs_X1.T @ residual_error) / n
                + eps * (np.sqrt(n) + 2) * losses)  # (m + 1,)
    return numeric, per_loss / steps  # two losses, each off by per_loss, divided by 2h


def check(autodiff, X, y, W, b, step=1e-6):
    """(max_abs_diff, max_rel_diff, within) of an autodiff gradient [dL/dW; dL/db] (m + 1,) at (W, b).

    The relative difference is over the per-step check's bound on the summed terms,
    2/n max|r| max(sum_i |x_ij|, n), so that a gradient near zero at convergence does not turn
    rounding noise into a large relative error.
    """
    X64, _, _, residuals = _float64_point(X, y, W, b)
    numeric, rounding = central_differences(X, y, W, b, step)
    abs_diffs = np.abs(np.asarray(autodiff, np.float64) - numeric)  # (m + 1,)
    n, m = X64.shape
    scale = 2.0 / n * residuals.max() * max(np.abs(X64).sum(axis=0).max(), n)
    autodiff_rounding = np.finfo(np.float64).eps * (np.sqrt(n) + m + 2) * scale
    within = bool(np.all(abs_diffs <= SAFETY * (rounding + autodiff_rounding)))
    return float(abs_diffs.max()), float(abs_diffs.max() / max(scale, np.finfo(np.float64).tiny)), within
