"""The study's Keras model and fit on the JAX backend, in this process (imported by the keras:jax child).

Keras fixes its backend at its first import, so this module is imported only where
KERAS_BACKEND=jax was set before (comparisons/running/keras_jax_child.py's child does that, and JAX's x64 before it).
Same model and configuration as tf_models/keras_model.py: Dense(1) in the run's dtype, SGD(lr),
loss "mse", initial weights loaded (backends draw differently), no shuffling, all N updates in
one fit (steps_per_execution=N), the loss of every step kept by a metric the caller hands in (the study
hands the TensorFlow fit's own StepLossRecorder, which imports Keras alone). Differences forced by
the backend:
- the feed is a keras.utils.PyDataset of device arrays, not tf.data (which would import TensorFlow);
- jit_compile=True: on JAX, False would mean op-by-op execution; XLA is its only compiled path;
- float64: Keras 3's type promotion (`keras.backend.result_type`) turns every float64 result into
  float32 on every backend but TensorFlow, to mimic JAX without x64. The JAX backend's `ops.mean`
  computes in that promoted type, so the "mse" loss (a mean over the last axis) rounds every
  squared residual, and its gradient, to float32, although layers, optimizer and learning rate
  are float64. keep_float64=True switches that one demotion off (a module-level table in
  keras.src.backend.common.dtypes, no public switch exists); False keeps Keras as shipped.
"""
from dataclasses import dataclass

import keras
import numpy as np

from loop_result import LoopResult  # the one type every TensorFlow and JAX loop returns (numpy only)

from .runtime import device_of, import_jax, placed_label

if keras.backend.backend() != "jax":
    raise ImportError(f"jax_models.keras_fit needs Keras on the JAX backend, not {keras.backend.backend()!r}: "
                      "set KERAS_BACKEND=jax before Keras is first imported (python -m comparisons.running.keras_jax_child does)")

jax = import_jax()
import jax.numpy as jnp  # noqa: E402 (after import_jax)
JIT_COMPILE = True  # passed explicitly; on the JAX backend the alternative is op-by-op execution


def keep_float64(enabled=True):
    """Whether Keras' result_type may return float64 (True) or demotes it to float32 as shipped (False).

    Returns the previous setting. Process-wide: it changes Keras' promotion table itself.
    """
    from keras.src.backend.common import dtypes

    previous = dtypes.BIT64_TO_BIT32_DTYPE.get("float64", "float64") == "float64"
    dtypes.BIT64_TO_BIT32_DTYPE["float64"] = "float64" if enabled else "float32"
    return previous


class _Updates(keras.utils.PyDataset):
    """Item i: the rows of update i, as arrays already on the device (no tf.data, no copy per step).

    Built under jax.default_device: the index arrays, like X_d and y_d, live there uncommitted.
    """

    def __init__(self, X_d, y_d, steps, batches=None):
        super().__init__()
        self.X_d, self.y_d, self.steps = X_d, y_d, steps
        self.index = None if batches is None else [jnp.asarray(i, np.int32) for i in batches[:steps]]

    def __len__(self):
        return self.steps

    def __getitem__(self, i):
        if self.index is None:
            return self.X_d, self.y_d
        return self.X_d[self.index[i]], self.y_d[self.index[i]]


def build_model(features, dtype):
    """The study's model: Sequential([Input(shape=(m,), dtype), Dense(1)]) in `dtype`."""
    # keras.Input defaults to float32 whatever floatx says, so the dtype is passed explicitly
    return keras.Sequential([keras.Input(shape=(features,), dtype=dtype), keras.layers.Dense(1, dtype=dtype)])


@dataclass(frozen=True)
class KerasFit:
    """A compiled Keras model and its fit: called (W0, b0, lr=...) -> LoopResult; `model` to inspect (its optimizer)."""

    fit: object  # (W0, b0, lr) -> LoopResult
    model: object  # the keras.Model the fit trains

    def __call__(self, W0, b0, *args, **kwargs):
        """One fit from (W0, b0): its LoopResult."""
        return self.fit(W0, b0, *args, **kwargs)


def make_keras_fit_trainer(X, y, lr, iterations, recorder, batches=None, device="cpu"):
    """Build a trainer: a KerasFit, called (W0, b0, lr=lr) -> LoopResult (no gradient check). Its first call compiles.

    `recorder(steps)` makes the Keras metric that keeps the loss of every step (a keras.metrics.Metric
    with a `losses` variable of at least `steps` entries, entry i the loss before update i): the
    caller's, so that this fit and the TensorFlow one record with the same metric. batches=None
    trains full batch; otherwise a list of `iterations` index arrays gives the rows of each update,
    so Keras follows the same sample order as the hand-rolled run.
    """
    if batches is not None and len(batches) < iterations:
        raise ValueError(f"{len(batches)} batches for {iterations} updates")
    dtype = str(X.dtype)
    n, m = X.shape
    target = device_of(device)
    previous = keras.config.floatx()
    keras.config.set_floatx(dtype)  # layers, optimizer variables, metric and loss follow it
    try:
        with jax.default_device(target):
            model = build_model(m, dtype)
            recorder = recorder(iterations)
            model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr), loss="mse", metrics=[recorder],
                          jit_compile=JIT_COMPILE, steps_per_execution=max(iterations, 1))
            # uncommitted arrays on the default device, like Keras' own variables: were the data committed,
            # each step's outputs would be, and fit would compile its step again for each mix of the two
            X_d, y_d = jnp.asarray(X), jnp.asarray(y)
            updates = _Updates(X_d, y_d, iterations, batches)
            final_loss_fn = keras.losses.MeanSquaredError()
    finally:
        keras.config.set_floatx(previous)
    dense = model.layers[-1]

    def train(W0, b0, lr=lr):
        """One fit from (W0, b0); another lr is assigned to the optimizer's variable, no recompilation."""
        keras.config.set_floatx(dtype)
        try:
            with jax.default_device(target):
                dense.set_weights([np.asarray(W0, dtype).reshape(m, 1), np.asarray([b0], dtype)])
                model.optimizer.learning_rate = float(lr)
                if iterations:
                    model.fit(updates, epochs=1, steps_per_epoch=iterations, verbose=0, shuffle=False)
                    losses = keras.ops.convert_to_numpy(recorder.losses)[:iterations]
                else:
                    losses = np.empty(0, dtype)
                final_loss = keras.ops.convert_to_numpy(final_loss_fn(y_d, model(X_d, training=False)))
        finally:
            keras.config.set_floatx(previous)
        kernel, bias = dense.get_weights()  # numpy: the result is on the host
        return LoopResult(weights=np.asarray(kernel, dtype), bias=np.dtype(dtype).type(bias[0]),
                          loss_curve=np.append(np.asarray(losses, dtype), np.asarray(final_loss, dtype)),
                          device=placed_label(dense.kernel.value), jit_compile=JIT_COMPILE, mode="keras")

    return KerasFit(train, model)

