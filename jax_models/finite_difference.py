"""JAX's autodiff gradient of the MSE against central finite differences, both in float64.

The same check as tf_models.gradient_tape.finite_difference_check, with jax.grad as the autodiff:
the loss is quadratic, so central differences carry no truncation error, only rounding, and
their rounding is estimated term by term; autodiff passes when it is within a safety factor of it.
"""
import numpy as np

from .runtime import import_jax

jax = import_jax()
import jax.numpy as jnp  # noqa: E402 (after import_jax: x64 is on, so float64 is float64)

FINITE_DIFFERENCE_SAFETY = 100  # how far past its estimated rounding error a difference may go


@jax.jit
def _loss64(X64, y64, theta):
    """The MSE at theta = [W; b] (m + 1,), float64."""
    return jnp.mean(jnp.square(y64 - (X64 @ theta[:-1].reshape(-1, 1) + theta[-1])))


_grad64 = jax.jit(jax.grad(_loss64, argnums=2))


def _float64_point(X, y, W, b):
    """X (n, m), y (n, 1), theta = [W; b] (m + 1,) and |r| (n,), all float64 numpy."""
    X_np, y_np = np.asarray(X, np.float64), np.asarray(y, np.float64)
    theta = np.append(np.asarray(W, np.float64).ravel(), np.float64(b))
    abs_residuals = np.abs(y_np[:, 0] - X_np @ theta[:-1] - theta[-1])
    return X_np, y_np, theta, abs_residuals


def central_differences(X, y, W, b, step=1e-6):
    """(numeric gradient (m + 1,), its rounding error (m + 1,)) of the MSE at (W, b), in float64.

    Each residual r_i = y_i - x_i W - b is off by about eps (m + 2) (|y_i| + |x_i| |W| + |b|), which
    moves r_i^2 by twice |r_i| that much; r_i at the nudged points is up to h |x_ij| larger than here.
    """
    return _central_differences(*_float64_point(X, y, W, b), step)


def _central_differences(X_np, y_np, theta, residuals, step):
    n, m = X_np.shape
    X64, y64 = jnp.asarray(X_np), jnp.asarray(y_np)
    steps = step * np.maximum(1.0, np.abs(theta))  # (m + 1,)
    numeric, losses = np.empty_like(theta), np.empty_like(theta)
    for j in range(theta.size):
        up, down = theta.copy(), theta.copy()
        up[j] += steps[j]
        down[j] -= steps[j]
        loss_up, loss_down = float(_loss64(X64, y64, up)), float(_loss64(X64, y64, down))
        numeric[j] = (loss_up - loss_down) / (2 * steps[j])
        losses[j] = max(abs(loss_up), abs(loss_down))
    eps = np.finfo(np.float64).eps
    abs_X1 = np.hstack([np.abs(X_np), np.ones((n, 1))])  # (n, m + 1): |[X, 1]|
    residual_error = eps * (m + 2) * (np.abs(y_np[:, 0]) + abs_X1 @ np.abs(theta))  # (n,)
    # per loss: sum over i of 2 |r_i| dr_i / n, plus the rounding of the mean itself
    per_loss = (2 * np.mean(residuals * residual_error) + 2 * steps * (abs_X1.T @ residual_error) / n
                + eps * (np.sqrt(n) + 2) * losses)  # (m + 1,)
    return numeric, per_loss / steps  # two losses, each off by per_loss, divided by 2h


def finite_difference_check(X, y, W, b, step=1e-6):
    """jax.grad of the MSE at (W, b) against central differences, both in float64.

    Returns (max_abs_diff, max_rel_diff, within): the relative one over 2/n max|r| max(sum_i |x_ij|, n),
    and whether every component agrees within FINITE_DIFFERENCE_SAFETY times the rounding error
    of the differences (plus a few eps of the summed terms for autodiff's own rounding).
    """
    X_np, y_np, theta, residuals = _float64_point(X, y, W, b)
    autodiff = np.asarray(_grad64(jnp.asarray(X_np), jnp.asarray(y_np), theta))
    numeric, rounding = _central_differences(X_np, y_np, theta, residuals, step)
    abs_diffs = np.abs(autodiff - numeric)  # (m + 1,)
    # relative to the same bound on the summed terms as the per-step check, so that a gradient
    # near zero at convergence does not turn rounding noise into a large relative error
    n, m = X_np.shape
    scale = 2.0 / n * residuals.max() * max(np.abs(X_np).sum(axis=0).max(), n)
    autodiff_rounding = np.finfo(np.float64).eps * (np.sqrt(n) + m + 2) * scale
    within = bool(np.all(abs_diffs <= FINITE_DIFFERENCE_SAFETY * (rounding + autodiff_rounding)))
    return float(abs_diffs.max()), float(abs_diffs.max() / max(scale, np.finfo(np.float64).tiny)), within
