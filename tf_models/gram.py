"""gradient_tape:gram: one pass over the data for G, c and s, then the lesson's loop on them under tf.GradientTape.

With theta = [W; b] and A = [X, 1]: G = A^T A / n, c = A^T y / n, s = y^T y / n (see handrolled/gram.py).
Each step takes the loss in Gram form, s - 2 theta^T c + theta^T G theta, under a tape, compares
the autodiff gradient with the analytic 2 (G theta - c), and applies the autodiff update. No step
reads X, so a step costs O(m^2) whatever n is.

The pass runs as a plain graph, block by block (blocks of BLOCK_BYTES of X, as gradient_tape's
blocked mode), summing in float64 whatever the run's dtype, for the reason given in
handrolled/gram.py: each entry of G is then the run's dtype's closest value to the exact mean.
The iterations run in one XLA-compiled loop: they are a few tiny ops each, where XLA's fusion wins.
"""
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from loop_result import LoopResult  # the one type every TensorFlow and JAX loop returns (numpy only)

from .devices import label_of, tf_device_name
from .gradient_tape import descent_loop, loop_result_fields, place_on_device


def _block_sums(X, y):
    """float64 sums over the rows of one block: X^T X (m, m), X^T 1 (m, 1), X^T y (m, 1), 1^T y, y^T y."""
    X, y = tf.cast(X, tf.float64), tf.cast(y, tf.float64)
    return (tf.matmul(X, X, transpose_a=True), tf.reduce_sum(X, axis=0)[:, None], tf.matmul(X, y, transpose_a=True),
            tf.reduce_sum(y), tf.reduce_sum(tf.square(y)))


def _gram_loss_and_gradients(G, c, s, W, b):
    """Gram-form loss at (W, b), its autodiff gradients, and their largest absolute and relative gap to 2 (G theta - c)."""
    with tf.GradientTape() as tape:
        theta = tf.concat([W, tf.reshape(b, (1, 1))], axis=0)  # (m + 1, 1)
        G_theta = tf.matmul(G, theta)  # (m + 1, 1)
        loss = s - 2 * tf.matmul(theta, c, transpose_a=True)[0, 0] + tf.matmul(theta, G_theta, transpose_a=True)[0, 0]
    auto_W, auto_b = tape.gradient(loss, [W, b])
    analytic = 2 * (G_theta - c)  # (m + 1, 1)
    abs_diff = tf.maximum(tf.reduce_max(tf.abs(auto_W - analytic[:-1])), tf.abs(auto_b - analytic[-1, 0]))
    # the size of the terms the gradient sums, as gradient_tape's check divides by its own
    scale = 2 * tf.reduce_max(tf.matmul(tf.abs(G), tf.abs(theta)) + tf.abs(c))
    tiny = tf.constant(np.finfo(G.dtype.as_numpy_dtype).tiny, G.dtype)
    return loss, auto_W, auto_b, abs_diff, abs_diff / tf.maximum(scale, tiny)


@dataclass(frozen=True)
class GramTapeTrainer:
    """The two stages of gradient_tape:gram, callable together as trainer(W0, b0[, lr]) -> LoopResult (with its statistics)."""

    one_pass: object  # () -> (G, c, s) as tensors on the device: the pass over X
    iterate: object  # (G, c, s, W0, b0[, lr]) -> LoopResult: the iterations, X untouched

    def __call__(self, W0, b0, lr=None):
        """One run from (W0, b0): the pass over X, then the iterations."""
        return self.iterate(*self.one_pass(), W0, b0, lr)


def make_gram_tape_trainer(X, y, lr, iterations, device="cpu", divergence_factor=1e6, block_rows=None):
    """Build a GramTapeTrainer; each call makes the pass over X again. The first call traces and compiles."""
    dtype = tf.as_dtype(X.dtype)
    n = X.shape[0]
    _, _, (X_blocks, y_blocks, X_rest, y_rest), W, b = place_on_device(X, y, device, block_rows)
    factor = tf.constant(divergence_factor, dtype)

    @tf.function(jit_compile=False)
    def statistics():
        sums = _block_sums(X_rest, y_rest)
        for k in tf.range(tf.shape(X_blocks)[0]):  # one block at a time: its float64 copy stays in cache
            sums = tuple(total + part for total, part in zip(sums, _block_sums(X_blocks[k], y_blocks[k])))
        XtX, x_sums, Xty, y_sum, yty = sums
        count = tf.constant(float(n), tf.float64)
        G = tf.concat([tf.concat([XtX, x_sums], axis=1),
                       tf.concat([tf.transpose(x_sums), tf.reshape(count, (1, 1))], axis=1)], axis=0) / count
        c = tf.concat([Xty, tf.reshape(y_sum, (1, 1))], axis=0) / count
        return tf.cast(G, dtype), tf.cast(c, dtype), tf.cast(yty / count, dtype)

    @tf.function(jit_compile=True)
    def descend(G, c, s, W0, b0, lr_t):
        step = lambda: _gram_loss_and_gradients(G, c, s, W, b)
        return descent_loop(W, b, W0, b0, lr_t, iterations, factor, step, lambda: step()[0])

    def one_pass():
        with tf.device(tf_device_name(device)):
            return statistics()

    def iterate(G, c, s, W0, b0, rate=None):
        """The iterations from (W0, b0) on G, c, s; the rate is an input, so another one needs no new trace."""
        with tf.device(tf_device_name(device)):
            outputs = descend(
                tf.convert_to_tensor(G, dtype), tf.convert_to_tensor(c, dtype), tf.convert_to_tensor(s, dtype),
                tf.constant(np.asarray(W0, X.dtype).reshape(-1, 1)), tf.constant(X.dtype.type(b0)),
                tf.constant(lr if rate is None else rate, dtype))
        return LoopResult(
            **loop_result_fields(outputs, iterations, X.dtype), device=label_of(W.device), jit_compile=True,
            mode="gram", statistics=(np.asarray(G), np.asarray(c), X.dtype.type(np.asarray(s)), n))

    return GramTapeTrainer(one_pass, iterate)
