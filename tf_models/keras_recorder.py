"""StepLossRecorder: a Keras metric that keeps Keras' own loss of every training step.

It imports Keras alone (no TensorFlow), so Keras on any backend can use it: the fits of this package run on
TensorFlow, and the study hands the same class to its Keras-on-JAX fit (jax_models/keras_fit.py, in the
keras:jax child), so both Keras rows record their losses with one recorder.
"""
import keras


class StepLossRecorder(keras.metrics.Metric):
    """Keeps Keras' own loss of every training step, so steps_per_execution loses none of them.

    Metrics see y_pred from the forward pass before the update, so entry i is the loss before
    update i. The loss function is the one compile(loss="mse") resolves to; step_loss is the hook
    a subclass changes (the mirrored fit's per-replica share).
    """

    def __init__(self, steps, name="step_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.loss_fn = keras.losses.MeanSquaredError()
        # (max(steps, 1),): a run of 0 updates still builds the metric; read losses[:steps]
        self.losses = self.add_variable(shape=(max(steps, 1),), initializer="zeros", name="losses")
        self.step = self.add_variable(shape=(), initializer="zeros", dtype="int32", name="step")

    def step_loss(self, y_true, y_pred, sample_weight):
        """The number kept for this step: Keras' own mse of the batch."""
        return keras.ops.cast(self.loss_fn(y_true, y_pred), self.dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        loss = self.step_loss(y_true, y_pred, sample_weight)
        step = self.step.value  # .value: the JAX backend's stateless scope hands arrays, not variables, to ops
        self.losses.assign(keras.ops.slice_update(
            self.losses.value, keras.ops.reshape(step, (1,)), keras.ops.reshape(loss, (1,))))
        self.step.assign(step + 1)

    def result(self):
        return self.losses.value[keras.ops.maximum(self.step.value - 1, 0)]
