"""Linear regression trained with tf.GradientTape, checking autodiff against the analytic gradients.

Each step computes the loss under a GradientTape, takes the autodiff gradients, computes the
lesson's analytic gradients -2/n X^T R and -2/n sum(R) from the same residuals, records how far
apart they are, and applies the autodiff update. Modes: "xla" (the whole loop in one
tf.function compiled by XLA), "graph" (one tf.function, no XLA), "blocked" (the graph, one
cache-sized block of rows at a time), "eager" (a Python loop), and "auto", the study's default:
XLA while X is small, blocked once X is large.

Why "auto": while a step is mostly overhead (X of a few MB or less), XLA fuses the small ops of a
step (matrix products, subtractions, reductions, the check) into a few kernels, which the plain
graph dispatches one by one. Once X must stream from memory, XLA's code for the skinny products
X @ W and X^T R can spend more CPU time than the Eigen kernels the plain graph calls, so the
graph takes over above XLA_MAX_BYTES (a measured crossover: the scaling experiment's `mode`
column says which ran at each size). A plain step reads X three times (X W, autodiff's X^T, the
check's X^T R). "blocked" takes each step block by block, each block's share of the loss under
its own tape (the gradient of a sum is the sum of the gradients), so that a block's second and
third reads may come from cache. That it pays is not assumed: the scaling experiment times the
blocked default beside the plain graph and the one-pass floor, in the same rounds, and its report
gives the ratios. XLA_MAX_BYTES and BLOCK_BYTES are measured choices for one machine, not laws.
"""
import numpy as np
import tensorflow as tf

from loop_result import LoopResult  # the one type every TensorFlow and JAX loop returns (numpy only)

from .devices import label_of, tf_device_name

MODES = ("auto", "xla", "graph", "blocked", "eager")
XLA_MAX_BYTES = 8 * 2**20  # "auto" compiles with XLA up to this size of X, in bytes (see above)
BLOCK_BYTES = 4 * 2**20  # "blocked" takes rows in blocks of about this many bytes of X (see above)


def _share_of_step(X, y, W, b, n):
    """For rows X (k, m), y (k, 1) of n: their share of the loss, its autodiff and analytic gradients, max |r|.

    The shares of all rows add up to the loss mean((y - y_hat)^2) and to its gradients.
    """
    with tf.GradientTape() as tape:
        residuals = y - (tf.matmul(X, W) + b)  # (k, 1)
        loss = tf.reduce_sum(tf.square(residuals)) / n
    auto_W, auto_b = tape.gradient(loss, [W, b])
    analytic_W = -2.0 / n * tf.matmul(X, residuals, transpose_a=True)  # (m, 1): -2/n X^T R
    analytic_b = -2.0 / n * tf.reduce_sum(residuals)
    return loss, auto_W, auto_b, analytic_W, analytic_b, tf.reduce_max(tf.abs(residuals))


def _compared(loss, auto_W, auto_b, analytic_W, analytic_b, max_abs_residual, n, column_abs_sums):
    """(loss, autodiff gradients, largest |autodiff - analytic|, the same relative to the summed terms).

    column_abs_sums (m, 1) holds sum_i |x_ij|, computed once: with it the size of the terms each
    gradient sums is bounded by 2/n max|r| max(sum_i |x_ij|, n) without another pass over X.
    """
    abs_diff = tf.maximum(tf.reduce_max(tf.abs(auto_W - analytic_W)), tf.abs(auto_b - analytic_b))
    scale = 2.0 / n * max_abs_residual * tf.maximum(tf.reduce_max(column_abs_sums), n)
    rel_diff = abs_diff / tf.maximum(scale, tf.constant(np.finfo(abs_diff.dtype.as_numpy_dtype).tiny, abs_diff.dtype))
    return loss, auto_W, auto_b, abs_diff, rel_diff


def _loss_and_gradients(X, y, W, b, column_abs_sums):
    """Loss, autodiff gradients and their difference to the analytic ones at (W, b), all rows at once."""
    n = tf.cast(tf.shape(X)[0], X.dtype)
    return _compared(*_share_of_step(X, y, W, b, n), n, column_abs_sums)


def _blocked_loss_and_gradients(X_blocks, y_blocks, X_rest, y_rest, W, b, column_abs_sums):
    """The same, block by block: X_blocks (blocks, rows, m) in order, then the rows left over, X_rest."""
    n = tf.cast(tf.shape(X_blocks)[0] * tf.shape(X_blocks)[1] + tf.shape(X_rest)[0], X_rest.dtype)
    total = _share_of_step(X_rest, y_rest, W, b, n)
    for k in tf.range(tf.shape(X_blocks)[0]):  # a while loop: one block at a time, its three reads together
        share = _share_of_step(X_blocks[k], y_blocks[k], W, b, n)
        total = tuple(t + s for t, s in zip(total[:5], share[:5])) + (tf.maximum(total[5], share[5]),)
    return _compared(*total, n, column_abs_sums)


def _is_divergent(loss, first_loss, factor):
    """Whether `loss` is not finite or exceeds factor times the first loss."""
    return tf.logical_or(tf.logical_not(tf.math.is_finite(loss)), loss > factor * first_loss)


def descent_loop(W, b, W0, b0, lr, iterations, factor, loss_and_gradients, loss):
    """The descent on variables W (m, 1), b from (W0, b0), traced inside the caller's tf.function.

    loss_and_gradients() -> (loss, grad_W, grad_b, abs_diff, rel_diff) at the current W, b;
    loss() -> the loss alone, for the first loss (the divergence reference) and the final one.
    Returns (W, b, losses (N + 1,), abs_diffs (N,), rel_diffs (N,), steps_done, diverged) as
    tensors; slots past a divergence stack as zeros, `steps_done` tells where the run ended.
    """
    W.assign(W0)
    b.assign(b0)
    dtype = W.dtype
    losses = tf.TensorArray(dtype, size=iterations + 1, element_shape=())
    abs_diffs = tf.TensorArray(dtype, size=max(iterations, 1), element_shape=())  # >= 1 slot, as the distributed loop had
    rel_diffs = tf.TensorArray(dtype, size=max(iterations, 1), element_shape=())
    first_loss = loss()
    steps_done = tf.constant(0)
    diverged = tf.constant(False)
    for i in tf.range(iterations):
        step_loss, grad_W, grad_b, abs_diff, rel_diff = loss_and_gradients()
        losses = losses.write(i, step_loss)
        abs_diffs = abs_diffs.write(i, abs_diff)
        rel_diffs = rel_diffs.write(i, rel_diff)
        if _is_divergent(step_loss, first_loss, factor):
            diverged = tf.constant(True)
            break
        W.assign_sub(lr * grad_W)  # under a strategy: cross-replica context, every copy gets the same update
        b.assign_sub(lr * grad_b)
        steps_done = i + 1
    if not diverged:
        final_loss = loss()
        losses = losses.write(iterations, final_loss)
        diverged = _is_divergent(final_loss, first_loss, factor)
    return W.read_value(), b.read_value(), losses.stack(), abs_diffs.stack(), rel_diffs.stack(), steps_done, diverged


def resolve_mode(mode, X):
    """The mode a trainer really uses: "auto" becomes "xla" for X up to XLA_MAX_BYTES, else "blocked"."""
    if mode not in MODES:
        raise ValueError(f"unknown GradientTape mode {mode!r}; use one of {MODES}")
    if mode == "auto":
        return "xla" if X.nbytes <= XLA_MAX_BYTES else "blocked"
    return mode


def place_on_device(X, y, device, block_rows=None, blocked=True):
    """(X_t, y_t, blocks, W, b) on `device`: X (n, m), y (n, 1) as constants, zero variables W (m, 1) and b.

    blocks is None unless `blocked`; then (X_blocks (blocks, rows, m), y_blocks (blocks, rows, 1),
    X_rest, y_rest): views of X_t in blocks of block_rows rows (default: BLOCK_BYTES of X), then
    the rows left over as one smaller block.
    """
    n, m = X.shape
    rows = block_rows or max(1, BLOCK_BYTES // (m * X.itemsize))
    whole = n // rows * rows  # rows that fill whole blocks
    dtype = tf.as_dtype(X.dtype)
    with tf.device(tf_device_name(device)):
        X_t, y_t = tf.constant(X), tf.constant(y)
        blocks = None
        if blocked:
            blocks = (tf.reshape(X_t[:whole], (-1, rows, m)), tf.reshape(y_t[:whole], (-1, rows, 1)),
                      X_t[whole:], y_t[whole:])
        W = tf.Variable(tf.zeros((m, 1), dtype), name="W")
        b = tf.Variable(tf.zeros((), dtype), name="b")
    return X_t, y_t, blocks, W, b


def loop_result_fields(outputs, iterations, dtype):
    """LoopResult's fields weights .. grad_rel_diff, as numpy in `dtype`, from descent_loop's tensors."""
    W_out, b_out, losses, abs_d, rel_d, steps, diverged = outputs
    steps, diverged = int(steps.numpy()), bool(diverged.numpy())  # .numpy(): the result is on the host
    end = steps + 1  # a run that diverged at update k has k + 1 losses; a finished run has N + 1
    np_dtype = np.dtype(dtype)
    return dict(weights=np.asarray(W_out.numpy(), np_dtype), bias=np_dtype.type(b_out.numpy()),
                loss_curve=losses.numpy()[:end], diverged_at=steps if diverged else None,
                grad_abs_diff=abs_d.numpy()[:min(end, iterations)], grad_rel_diff=rel_d.numpy()[:min(end, iterations)])


def make_tape_trainer(X, y, lr, iterations, mode="auto", device="cpu", divergence_factor=1e6, block_rows=None):
    """Build a trainer: a callable (W0, b0) -> LoopResult. Its first call traces and compiles.

    X (n, m) and y (n, 1) are copied to `device` once; every call restarts from (W0, b0).
    block_rows sets the rows per block of the "blocked" mode (default: BLOCK_BYTES of X).
    """
    mode = resolve_mode(mode, X)
    dtype = tf.as_dtype(X.dtype)
    X_t, y_t, blocks, W, b = place_on_device(X, y, device, block_rows, blocked=(mode == "blocked"))
    with tf.device(tf_device_name(device)):
        col_abs = tf.constant(np.abs(X).sum(axis=0, dtype=X.dtype).reshape(-1, 1))  # (m, 1), once per trainer
    factor = tf.constant(divergence_factor, dtype)

    def loss():
        return tf.reduce_mean(tf.square(y_t - (tf.matmul(X_t, W) + b)))

    if mode == "blocked":
        loss_and_gradients = lambda: _blocked_loss_and_gradients(*blocks, W, b, col_abs)
    else:
        loss_and_gradients = lambda: _loss_and_gradients(X_t, y_t, W, b, col_abs)

    def loop(W0, b0, lr_t):
        return descent_loop(W, b, W0, b0, lr_t, iterations, factor, loss_and_gradients, loss)

    if mode == "eager":
        def loop_eager(W0, b0, lr_t):
            W.assign(W0)
            b.assign(b0)
            losses, abs_diffs, rel_diffs = [], [], []
            first_loss = None
            diverged = False
            for i in range(iterations + 1):
                loss, grad_W, grad_b, abs_diff, rel_diff = _loss_and_gradients(X_t, y_t, W, b, col_abs)
                first_loss = loss if first_loss is None else first_loss
                losses.append(loss)
                if bool(_is_divergent(loss, first_loss, factor)):
                    diverged = True
                if i == iterations or diverged:
                    break
                abs_diffs.append(abs_diff)
                rel_diffs.append(rel_diff)
                W.assign_sub(lr_t * grad_W)
                b.assign_sub(lr_t * grad_b)
            if diverged and i < iterations:
                abs_diffs.append(abs_diff)
                rel_diffs.append(rel_diff)
            pad = lambda values, size: tf.stack(values + [tf.zeros((), dtype)] * (size - len(values)))
            return (W.read_value(), b.read_value(), pad(losses, iterations + 1), pad(abs_diffs, iterations),
                    pad(rel_diffs, iterations), tf.constant(min(i, iterations)), tf.constant(diverged))
        run = loop_eager
    else:
        run = tf.function(loop, jit_compile=(mode == "xla"))

    def train(W0, b0, lr=lr):
        """One run from (W0, b0); another lr reuses the traced (and compiled) loop, as lr is an input."""
        with tf.device(tf_device_name(device)):
            outputs = run(
                tf.constant(np.asarray(W0, X.dtype).reshape(-1, 1)), tf.constant(X.dtype.type(b0)),
                tf.constant(lr, dtype))
        return LoopResult(**loop_result_fields(outputs, iterations, X.dtype),
                          device=label_of(W.device), jit_compile=(mode == "xla"), mode=mode)

    return train


def autodiff_gradient64(X, y, W, b):
    """tf.GradientTape's gradient of the MSE at (W, b), in float64, as [dL/dW; dL/db] (m + 1,).

    The study checks it against central differences of the loss (comparisons/running/finite_difference.py).
    """
    X64, y64 = tf.constant(np.asarray(X, np.float64)), tf.constant(np.asarray(y, np.float64))
    params = tf.Variable(np.append(np.asarray(W, np.float64).ravel(), np.float64(b)))  # (m + 1,): [W, b]
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(y64 - (tf.matmul(X64, tf.reshape(params[:-1], (-1, 1))) + params[-1])))
    return tape.gradient(loss, params).numpy()
