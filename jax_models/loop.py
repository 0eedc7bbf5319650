"""Linear regression by gradient descent in JAX, checking autodiff against the analytic gradients.

Each step takes the loss and its autodiff gradients from `jax.value_and_grad`, computes the
lesson's analytic gradients -2/n X^T R and -2/n sum(R) from the same residuals, records their
largest difference (absolute, and relative to a bound on the summed terms, as tf_models'
GradientTape loop does) and applies the autodiff update. Modes:
- "jit" (the study's `jax`): the whole loop, a `lax.while_loop` that stops at divergence, in one
  `jax.jit` call; the learning rate is an input, so another rate reuses the compiled loop;
- "python_loop" (`jax:eager`): the same step, compiled once by `jax.jit`, called from a Python loop
  once per update, the loss brought to the host every step for the divergence test. That is how
  JAX training loops are written, and beside "jit" it isolates exactly the cost of dispatching
  each update from Python (the step's arithmetic is the same compiled code);
- "op_by_op": the same Python loop with no `jax.jit` at all, every jax.numpy operation
  dispatched on its own (the nearest JAX has to TensorFlow's eager execution).
The sharded loop (sharded.py) is the "jit" loop with its rows spread over several devices.
"""
import numpy as np

from loop_result import LoopResult  # the one type every TensorFlow and JAX loop returns (numpy only)

from .runtime import device_of, import_jax, placed_label

jax = import_jax()
import jax.numpy as jnp  # noqa: E402 (after import_jax: x64 and matmul precision are set first)

MODES = ("jit", "python_loop", "op_by_op")


def _residuals(X, y, W, b, row_weights):
    """R = y - (X W + b), (n, 1); rows of weight 0 (padding) give 0."""
    residuals = y - (X @ W + b)
    return residuals if row_weights is None else residuals * row_weights


def step_values(X, y, W, b, n, col_abs_max, row_weights=None):
    """(loss, autodiff grad_W (m, 1), grad_b, max |autodiff - analytic|, the same relative) at (W, b).

    n is the number of real rows (padding rows have row_weights 0); col_abs_max is max_j sum_i |x_ij|.
    """
    def loss_fn(W, b):
        residuals = _residuals(X, y, W, b, row_weights)
        return jnp.sum(jnp.square(residuals)) / n, residuals

    (loss, residuals), (grad_W, grad_b) = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)(W, b)
    analytic_W = -2.0 / n * (X.T @ residuals)  # (m, 1): -2/n X^T R, from the same residuals
    analytic_b = -2.0 / n * jnp.sum(residuals)
    abs_diff = jnp.maximum(jnp.max(jnp.abs(grad_W - analytic_W)), jnp.abs(grad_b - analytic_b))
    scale = 2.0 / n * jnp.max(jnp.abs(residuals)) * jnp.maximum(col_abs_max, n)
    rel_diff = abs_diff / jnp.maximum(scale, jnp.finfo(X.dtype).tiny)
    return loss, grad_W, grad_b, abs_diff, rel_diff


def loss_value(X, y, W, b, n, row_weights=None):
    """The MSE mean((y - X W - b)^2) over the n real rows."""
    return jnp.sum(jnp.square(_residuals(X, y, W, b, row_weights))) / n


def _is_divergent(loss, first_loss, factor):
    return ~jnp.isfinite(loss) | (loss > factor * first_loss)


def descent_loop(X, y, row_weights, n, col_abs_max, W0, b0, lr, iterations, factor):
    """The whole descent as traced JAX: (W, b, losses (N + 1,), abs_diffs, rel_diffs (max(N, 1),), steps, diverged).

    Point i of losses is the loss before update i; a non-finite loss, or one above factor times
    the first, stops the loop at that step without its update (slots after it stay 0).
    """
    dtype = X.dtype
    first_loss = loss_value(X, y, W0, b0, n, row_weights)
    slots = max(iterations, 1)

    def not_done(carry):
        i, *_, diverged = carry
        return (i < iterations) & ~diverged

    def update(carry):
        i, W, b, losses, abs_diffs, rel_diffs, _ = carry
        loss, grad_W, grad_b, abs_diff, rel_diff = step_values(X, y, W, b, n, col_abs_max, row_weights)
        diverged = _is_divergent(loss, first_loss, factor)
        W = jnp.where(diverged, W, W - lr * grad_W)
        b = jnp.where(diverged, b, b - lr * grad_b)
        return (jnp.where(diverged, i, i + 1), W, b, losses.at[i].set(loss), abs_diffs.at[i].set(abs_diff),
                rel_diffs.at[i].set(rel_diff), diverged)

    start = (jnp.asarray(0), W0, b0, jnp.zeros(iterations + 1, dtype), jnp.zeros(slots, dtype),
             jnp.zeros(slots, dtype), jnp.asarray(False))
    steps, W, b, losses, abs_diffs, rel_diffs, diverged = jax.lax.while_loop(not_done, update, start)
    final_loss = loss_value(X, y, W, b, n, row_weights)
    losses = jnp.where(diverged, losses, losses.at[iterations].set(final_loss))
    diverged = diverged | _is_divergent(final_loss, first_loss, factor)
    return W, b, losses, abs_diffs, rel_diffs, steps, diverged


def _python_loop(step, X, y, W, b, lr, iterations, factor):
    """The descent as a Python loop over step(X, y, W, b, lr) -> ([loss, abs, rel], W', b'); host arrays out."""
    rows = []  # (loss, abs_diff, rel_diff) per step, on the host
    first_loss, diverged, i = None, False, 0
    for i in range(iterations + 1):
        values, W_next, b_next = step(X, y, W, b, lr)
        loss, abs_diff, rel_diff = np.asarray(values)  # one host transfer per update: the divergence test needs it
        first_loss = loss if first_loss is None else first_loss
        rows.append((loss, abs_diff, rel_diff))
        with np.errstate(over="ignore", invalid="ignore"):
            diverged = bool(not np.isfinite(loss) or loss > factor * first_loss)
        if i == iterations or diverged:  # the final parameters' loss, or the divergent step: no update
            break
        W, b = W_next, b_next
    dtype = X.dtype
    rows = np.asarray(rows, dtype).reshape(-1, 3)
    checked = rows[:iterations]  # the final point's loss carries no update, so no check
    pad = lambda values, size: np.concatenate([values, np.zeros(size - len(values), dtype)])
    return (jax.device_get(W), jax.device_get(b), pad(rows[:, 0], iterations + 1),
            pad(checked[:, 1], max(iterations, 1)), pad(checked[:, 2], max(iterations, 1)), min(i, iterations), diverged)


def _place(X, y, device):
    """X (n, m), y (n, 1), max_j sum_i |x_ij| on `device` (a label), and the device itself."""
    target = device_of(device)
    col_abs_max = X.dtype.type(np.abs(X).sum(axis=0, dtype=X.dtype).max()) if X.size else X.dtype.type(0)
    return jax.device_put(X, target), jax.device_put(y, target), jax.device_put(col_abs_max, target), target


def truncated_fields(W, b, losses, abs_diffs, rel_diffs, steps, diverged, iterations, dtype):
    """LoopResult's fields weights .. grad_rel_diff from a loop's host arrays, cut at the point it stopped.

    losses has iterations + 1 slots, the diffs `iterations` (at least 1); `steps` is the number of
    updates made. A run that diverged at update k keeps k + 1 losses and k + 1 diffs (the
    divergent step was checked too); a finished run N + 1 losses and N diffs.
    """
    np_dtype = np.dtype(dtype)
    steps, diverged = int(steps), bool(diverged)
    end = steps + 1
    cut = min(end, iterations)
    return dict(weights=np.asarray(W, np_dtype).reshape(-1, 1), bias=np_dtype.type(np.asarray(b).reshape(())),
                loss_curve=np.asarray(losses, np_dtype)[:end], diverged_at=steps if diverged else None,
                grad_abs_diff=np.asarray(abs_diffs, np_dtype)[:cut], grad_rel_diff=np.asarray(rel_diffs, np_dtype)[:cut])


def make_jax_trainer(X, y, lr, iterations, mode="jit", device="cpu", divergence_factor=1e6):
    """Build a trainer: a callable (W0, b0, lr=lr) -> LoopResult. Its first call traces and compiles.

    X (n, m) and y (n, 1), in the run's dtype, are copied to `device` ('cpu', 'gpu:0', ...) once;
    every call restarts from (W0, b0). lr is an input of the compiled code: a new rate does not retrace.
    """
    if mode not in MODES:
        raise ValueError(f"unknown JAX mode {mode!r}; use one of {MODES}")
    n = X.shape[0]
    dtype = X.dtype
    factor = float(divergence_factor)
    X_d, y_d, col_abs_max, target = _place(X, y, device)

    if mode == "jit":
        loop = jax.jit(lambda X, y, c, W0, b0, lr: descent_loop(X, y, None, n, c, W0, b0, lr, iterations, factor))

        def run(W0, b0, lr_d):
            return jax.device_get(loop(X_d, y_d, col_abs_max, W0, b0, lr_d))  # on the host before return
    else:
        def step(X, y, W, b, lr):
            loss, grad_W, grad_b, abs_diff, rel_diff = step_values(X, y, W, b, n, col_abs_max)
            return jnp.stack([loss, abs_diff, rel_diff]), W - lr * grad_W, b - lr * grad_b

        compiled = jax.jit(step) if mode == "python_loop" else step

        def run(W0, b0, lr_d):
            return _python_loop(compiled, X_d, y_d, W0, b0, lr_d, iterations, dtype.type(factor))

    def train(W0, b0, lr=lr):
        """One run from (W0, b0); another lr reuses the compiled code, as lr is an input."""
        W0_d = jax.device_put(np.asarray(W0, dtype).reshape(-1, 1), target)
        b0_d = jax.device_put(dtype.type(b0), target)
        outputs = run(W0_d, b0_d, jax.device_put(dtype.type(lr), target))
        return LoopResult(**truncated_fields(*outputs, iterations, dtype), device=placed_label(W0_d),
                          jit_compile=(mode != "op_by_op"), mode=mode)

    return train
