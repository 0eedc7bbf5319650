"""Linear regression as a Keras Dense(1) layer trained by model.fit with SGD and "mse".

Two ways to feed fit, both on the same model:
- "dataset" (the study's `keras`): one epoch of N steps over a repeated tf.data batch, all N
  steps in one compiled call (steps_per_execution), the loss of every step kept by a metric;
- "numpy_input" (`keras:numpy_input`): the idiomatic fit(X, y, batch_size=n, epochs=N,
  shuffle=False), the loss of each epoch read from Keras' History.
"""
import contextlib

import keras
import numpy as np
import tensorflow as tf

from loop_result import LoopResult  # the one type every TensorFlow and JAX loop returns (numpy only)

from .devices import label_of, tf_device_name
from .keras_recorder import StepLossRecorder

FEEDS = ("dataset", "numpy_input")
JIT_COMPILE = False  # passed explicitly: Keras' "auto" would switch XLA on only when a GPU is visible


@contextlib.contextmanager
def floatx(dtype):
    """Keras' default float type for the duration of a block (layers and metrics follow it)."""
    previous = keras.config.floatx()
    keras.config.set_floatx(dtype)
    try:
        yield
    finally:
        keras.config.set_floatx(previous)


def build_model(features, dtype):
    """The study's model: Sequential([Input(shape=(m,), dtype), Dense(1)]) in `dtype`."""
    # keras.Input defaults to float32 whatever floatx says, so the dtype is passed explicitly
    return keras.Sequential([keras.Input(shape=(features,), dtype=dtype), keras.layers.Dense(1, dtype=dtype)])


def _batched_dataset(X, y, batches):
    """A tf.data pipeline yielding (X[idx], y[idx]) for each index array of `batches`, in order."""
    flat = np.concatenate(batches).astype(np.int64)
    ends = np.cumsum([len(idx) for idx in batches]).astype(np.int64)
    starts = ends - np.array([len(idx) for idx in batches])
    X_t, y_t, flat_t = tf.constant(X), tf.constant(y), tf.constant(flat)
    bounds = tf.data.Dataset.from_tensor_slices((starts, ends))
    return bounds.map(lambda s, e: (tf.gather(X_t, flat_t[s:e]), tf.gather(y_t, flat_t[s:e])))


def make_keras_trainer(X, y, lr, iterations, feed="dataset", device="cpu", batches=None):
    """Build a trainer: a callable (W0, b0) -> LoopResult (Keras' loss before each update, then the final parameters'). Its first call traces and compiles.

    batches=None trains full batch; otherwise a list of `iterations` index arrays gives the
    rows of each update, so Keras follows the same sample order as the hand-rolled run.
    """
    if feed not in FEEDS:
        raise ValueError(f"unknown Keras feed {feed!r}; use one of {FEEDS}")
    if feed == "numpy_input" and batches is not None:
        raise ValueError("numpy_input trains full batch; use feed='dataset' for a given sample order")
    dtype = str(X.dtype)
    n, m = X.shape
    with floatx(dtype), tf.device(tf_device_name(device)):
        model = build_model(m, dtype)
        recorder = StepLossRecorder(iterations) if feed == "dataset" else None
        model.compile(
            optimizer=keras.optimizers.SGD(learning_rate=lr),
            loss="mse",
            metrics=[recorder] if recorder else None,
            jit_compile=JIT_COMPILE,
            steps_per_execution=iterations if feed == "dataset" else 1,
        )
        if feed == "dataset":
            data = (_batched_dataset(X, y, batches) if batches is not None
                    else tf.data.Dataset.from_tensors((tf.constant(X), tf.constant(y))).repeat())
        final_loss_fn = keras.losses.MeanSquaredError()
    dense = model.layers[-1]

    def train(W0, b0, lr=lr):
        """One fit from (W0, b0); another lr is assigned to the optimizer's variable, no recompilation."""
        dense.set_weights([np.asarray(W0, dtype).reshape(m, 1), np.asarray([b0], dtype)])
        model.optimizer.learning_rate = float(lr)
        with floatx(dtype), tf.device(tf_device_name(device)):
            if feed == "dataset":
                model.fit(data, epochs=1, steps_per_epoch=iterations, verbose=0, shuffle=False)
                losses = recorder.losses.numpy()[:iterations]
            else:
                history = model.fit(X, y, batch_size=n, epochs=iterations, shuffle=False, verbose=0)
                losses = np.asarray(history.history["loss"], dtype)
            final_loss = final_loss_fn(y, model(X, training=False))
        kernel, bias = dense.get_weights()
        return LoopResult(
            weights=kernel, bias=kernel.dtype.type(bias[0]),
            loss_curve=np.append(losses, np.asarray(final_loss, dtype)),  # .numpy() happened: on the host
            device=label_of(dense.kernel.value.device), jit_compile=JIT_COMPILE,
        )

    return train
