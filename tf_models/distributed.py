"""Linear regression over several replicas with tf.distribute, equal to the single-device run.

Full-batch gradient descent splits exactly over rows: with the loss written as
sum_i (y_i - y_hat_i)^2 / n, each replica's share over its own rows, divided by the GLOBAL n, and
its gradients add up over the replicas to the full loss and the full gradient. So every replica
holds one shard of rows (np.array_split: the first n % R shards get one row more), computes its
share of the loss, of the autodiff gradient and of the analytic-vs-autodiff difference, and ONE
packed all-reduce (SUM) per step adds them up. Rows need not divide evenly by the replicas.

The same per-replica step and loop serve MirroredStrategy (one process, R devices: here) and
MultiWorkerMirroredStrategy (W processes: tf_models/multi_worker.py), through
`build_distributed_loop`.

Devices: with at least two GPUs seen (and a device spec that allows them) the replicas are the
GPUs; otherwise the CPU is split into R logical devices with `split_cpu`, which must run before
TensorFlow initialises its runtime (before any op or device listing of logical devices). Logical
CPUs share the same cores: they prove the mechanics and measure the synchronisation cost, not a
speed-up.
"""
import numpy as np
import tensorflow as tf

from loop_result import LoopResult  # the one type every TensorFlow and JAX loop returns (numpy only)

from .devices import detected_gpus, replicas_label, tf_device_name
from .shards import shards
from .gradient_tape import descent_loop, loop_result_fields

PACK_HEADER = 2  # packed vector: [loss, scale, autodiff dW (m), autodiff db, diff dW (m), diff db]


class DistributionError(RuntimeError):
    """The devices cannot be arranged as asked (e.g. the CPU was already split another way)."""


# ----------------------------------------------------------------------------------------- devices

def split_cpu(replicas):
    """Split the CPU into `replicas` logical devices; must run before TensorFlow initialises its runtime.

    Idempotent when the CPU is already split into at least that many (replica_devices then uses
    the first `replicas`); DistributionError otherwise, as TensorFlow cannot re-split once it
    has initialised (the caller then needs a fresh process).
    """
    if replicas < 1:
        raise DistributionError(f"replicas must be at least 1, got {replicas}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    have = len(current) if current else 1
    if have >= replicas:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
    except RuntimeError as exc:  # "Virtual devices cannot be modified after being initialized"
        raise DistributionError(
            f"cannot split the CPU into {replicas} logical devices: TensorFlow already initialised its runtime "
            f"with {have} ({exc}); split before any TensorFlow op runs, or run in a fresh process") from None


def replica_devices(replicas, device_spec="auto"):
    """Device labels of the replicas: GPUs when >= max(2, replicas) are seen and the spec allows, else logical CPUs.

    device_spec is --device: "cpu" always splits the CPU; "auto" takes the GPUs when there are
    enough, else the CPU; "gpu" or "gpu:K" need enough GPUs (DistributionError otherwise). Returns
    e.g. ['gpu:0', 'gpu:1'] or ['cpu:0', 'cpu:1']. For CPUs the CPU is split first (split_cpu):
    call this before TensorFlow initialises its runtime, or after splitting it the same way.
    """
    gpus = detected_gpus()
    enough = len(gpus) >= max(2, replicas)
    if device_spec != "cpu" and enough:
        return gpus[:replicas]
    if device_spec.startswith("gpu"):
        raise DistributionError(f"--device {device_spec}: {replicas} GPU replicas need at least {max(2, replicas)} GPUs, "
                                f"TensorFlow sees {len(gpus)}; use --device auto or cpu (logical CPU replicas)")
    split_cpu(replicas)
    return [f"cpu:{i}" for i in range(replicas)]


_STRATEGIES = {}  # device labels -> the one MirroredStrategy over them in this process
COLLECTIVE_KEY_STRIDE = 100000  # collective group/instance keys reserved for each strategy of the process


def mirrored_strategy(devices):
    """The MirroredStrategy over `devices` (labels): one per device set and process, with its own collective keys.

    On CPUs MirroredStrategy all-reduces with RING collectives whose group and instance keys
    every new strategy numbers from the same start, so two strategies in one process collide:
    "Collective instance 100 expected ... data_type 1 but got ... data_type 2" (a float32 and a
    float64 trainer, each with its own strategy), "joining a group with size3, but that group has
    size 2" (2 and 3 replicas). Trainers over the same devices therefore share one strategy, and
    each new device set starts its keys COLLECTIVE_KEY_STRIDE further on, through the class
    attribute `_collective_key_base` that TensorFlow's own tests move the same way
    (tensorflow/python/distribute/strategy_combinations.py).
    """
    key = tuple(devices)
    if key not in _STRATEGIES:
        tf.distribute.MirroredStrategy._collective_key_base = COLLECTIVE_KEY_STRIDE * len(_STRATEGIES)
        _STRATEGIES[key] = tf.distribute.MirroredStrategy([tf_device_name(d) for d in devices])
    return _STRATEGIES[key]


# ------------------------------------------------------------------------------------- the loop

def replica_packed_step(X, y, W, b, n, column_abs_max):
    """One replica's share of a step, packed into one vector (2m + 4,) for a single SUM all-reduce.

    X (k, m), y (k, 1) are this replica's rows; n is the GLOBAL row count. The shares of all
    replicas add up to: the loss, a bound on the size of the summed terms (see loop_result.LoopResult),
    the autodiff gradient and the autodiff-minus-analytic difference (each (m + 1,)).
    """
    with tf.GradientTape() as tape:
        residuals = y - (tf.matmul(X, W) + b)  # (k, 1)
        loss = tf.reduce_sum(tf.square(residuals)) / n
    auto_W, auto_b = tape.gradient(loss, [W, b])
    analytic_W = -2.0 / n * tf.matmul(X, residuals, transpose_a=True)  # (m, 1): this shard's -2/n X^T R
    analytic_b = -2.0 / n * tf.reduce_sum(residuals)
    scale = 2.0 / n * tf.reduce_max(tf.abs(residuals)) * tf.maximum(column_abs_max, n)  # shards are never empty
    return tf.concat([tf.reshape(loss, (1,)), tf.reshape(scale, (1,)),
                      tf.reshape(auto_W, (-1,)), tf.reshape(auto_b, (1,)),
                      tf.reshape(auto_W - analytic_W, (-1,)), tf.reshape(auto_b - analytic_b, (1,))], axis=0)


def unpack(packed, m):
    """(loss, grad_W (m, 1), grad_b, abs_diff, rel_diff) from the all-reduced packed vector."""
    loss, scale = packed[0], packed[1]
    grad_W = tf.reshape(packed[PACK_HEADER:PACK_HEADER + m], (m, 1))
    grad_b = packed[PACK_HEADER + m]
    abs_diff = tf.reduce_max(tf.abs(packed[PACK_HEADER + m + 1:]))
    tiny = tf.constant(np.finfo(packed.dtype.as_numpy_dtype).tiny, packed.dtype)
    return loss, grad_W, grad_b, abs_diff, abs_diff / tf.maximum(scale, tiny)


def build_distributed_loop(strategy, X_dist, y_dist, n, m, dtype, iterations, column_abs_max,
                           divergence_factor=1e6, communication=None):
    """The whole descent in one tf.function under `strategy`; returns (loop, W, b).

    X_dist, y_dist are per-replica values (each replica's shard). loop(W0 (m, 1), b0, lr) returns
    (W, b, losses (N + 1,), abs_diffs (N,), rel_diffs (N,), steps_done, diverged) as tensors; slots
    past a divergence are zeros (gradient_tape.descent_loop; its first loss, the divergence reference,
    is one more reduced step before the loop). Each step is one `all_reduce(SUM)` of the packed vector (a
    MultiWorkerMirroredStrategy aborted its workers with three separate all-reduces per step);
    `communication` (tf.distribute.experimental.CommunicationOptions) sets its timeout.
    """
    with strategy.scope():
        W = tf.Variable(tf.zeros((m, 1), dtype), name="W")
        b = tf.Variable(tf.zeros((), dtype), name="b")
    n_t = tf.constant(float(n), dtype)
    col_max = tf.constant(column_abs_max, dtype)
    factor = tf.constant(divergence_factor, dtype)
    sum_ = tf.distribute.ReduceOp.SUM

    def replica_fn(X_shard, y_shard):
        packed = replica_packed_step(X_shard, y_shard, W, b, n_t, col_max)
        context = tf.distribute.get_replica_context()
        return context.all_reduce(sum_, packed, options=communication)

    def step():  # (loss, grad_W, grad_b, abs_diff, rel_diff) of all replicas: one all-reduce
        reduced = strategy.run(replica_fn, args=(X_dist, y_dist))
        return unpack(strategy.experimental_local_results(reduced)[0], m)  # every replica holds the same sum

    @tf.function
    def loop(W0, b0, lr):
        return descent_loop(W, b, W0, b0, lr, iterations, factor, step, lambda: step()[0])

    return loop, W, b


def distribute_rows(strategy, X, y, dtype):
    """Per-replica values: replica k gets rows shards(n, replicas)[k] of X and y, on its own device."""
    replicas = strategy.num_replicas_in_sync
    if X.shape[0] < replicas:
        raise DistributionError(f"{X.shape[0]} rows cannot be shared by {replicas} replicas")
    parts = shards(X.shape[0], replicas)
    return distribute_shards(strategy, lambda k: (X[slice(*parts[k])], y[slice(*parts[k])]), dtype)


def distribute_shards(strategy, rows_of, dtype):
    """Per-replica (X, y) from rows_of(global replica id) -> (X_k (k, m), y_k (k, 1)) numpy arrays.

    The function is called only for this process's local replicas (a worker of a
    MultiWorkerMirroredStrategy loads only its own shard), each under its replica's device.
    """
    cache = {}

    def part(ctx, which):
        k = ctx.replica_id_in_sync_group
        if k not in cache:
            cache[k] = rows_of(k)
        return tf.constant(cache[k][which], dtype)

    return (strategy.experimental_distribute_values_from_function(lambda ctx: part(ctx, 0)),
            strategy.experimental_distribute_values_from_function(lambda ctx: part(ctx, 1)))


def result_from_loop(outputs, iterations, dtype, device, mode):
    """A LoopResult from the loop's tensors (.numpy(): the result is on the host)."""
    return LoopResult(**loop_result_fields(outputs, iterations, dtype), device=device, jit_compile=False, mode=mode)


def make_mirrored_tape_trainer(X, y, lr, iterations, replicas=2, device_spec="auto", divergence_factor=1e6):
    """A callable (W0, b0, lr=None) -> LoopResult: the GradientTape loop under MirroredStrategy.

    X (n, m), y (n, 1) in the run's dtype; each of the `replicas` devices (replica_devices) holds
    its shard of rows once; every call restarts from (W0, b0). The first call traces.
    """
    devices = replica_devices(replicas, device_spec)
    strategy = mirrored_strategy(devices)
    dtype = tf.as_dtype(X.dtype)
    n, m = X.shape
    X_dist, y_dist = distribute_rows(strategy, X, y, dtype)
    col_max = float(np.abs(X).sum(axis=0, dtype=np.float64).max())
    loop, W, b = build_distributed_loop(strategy, X_dist, y_dist, n, m, dtype, iterations, col_max,
                                        divergence_factor=divergence_factor)
    label = replicas_label(v.device for v in strategy.experimental_local_results(W))
    default_lr = lr

    def train(W0, b0, lr=None):
        """One run from (W0, b0); another lr reuses the traced loop (lr is an input)."""
        outputs = loop(tf.constant(np.asarray(W0, X.dtype).reshape(-1, 1)), tf.constant(X.dtype.type(b0)),
                       tf.constant(default_lr if lr is None else lr, dtype))
        return result_from_loop(outputs, iterations, X.dtype, label, "mirrored")

    return train


# ---------------------------------------------------------------------------------------- Keras

def _replica_loss_recorder(steps, denominator):
    """A Keras metric keeping each step's loss under a strategy: each replica adds sum(w r^2) / denominator.

    Metric variables are synchronised on read with SUM, so reading `losses` adds the replicas'
    shares into the full-batch loss of every step. With the weights of `balanced_rows`
    (w = R c / n on real rows, 0 on padding) and denominator R c, the sum is sum(r^2) / n.
    """
    import keras

    from .keras_recorder import StepLossRecorder

    class ReplicaLossRecorder(StepLossRecorder):
        def step_loss(self, y_true, y_pred, sample_weight):
            squares = keras.ops.square(keras.ops.cast(y_true, self.dtype) - y_pred)  # (k, 1)
            if sample_weight is not None:
                squares = squares * keras.ops.reshape(keras.ops.cast(sample_weight, self.dtype), (-1, 1))
            return keras.ops.sum(squares) / denominator  # this replica's share; its step counter is its own

        def result(self):
            return keras.ops.sum(self.losses)  # only for Keras' logs; the trainer reads `losses`

    return ReplicaLossRecorder(steps, name="step_loss_share")


def balanced_rows(X, y, replicas):
    """(X, y, sample weights, rows) padded so every replica's share of the batch has the same rows c = ceil(n / R).

    Keras under a strategy averages each replica's mse over its own rows and divides by R, and its
    first-batch build reduces the replicas' batches elementwise (so unequal shards crash with
    AddN [51,1] != [50,1]). Padding the batch with R c - n zero rows of weight 0, and weighting
    the real rows by R c / n, gives every replica c rows and makes the summed gradient that of
    sum(r^2) / n exactly. When R divides n nothing is padded and every weight is 1.
    """
    n = X.shape[0]
    rows = replicas * -(-n // replicas)  # R c
    return (*padded_rows(X, y, rows, rows / n), rows)


def padded_rows(X, y, rows, weight):
    """(X, y, sample weights) grown to `rows` rows with zero rows of weight 0; the real rows weigh `weight`."""
    pad = rows - X.shape[0]
    return (np.concatenate([X, np.zeros((pad, X.shape[1]), X.dtype)]),
            np.concatenate([y, np.zeros((pad, 1), y.dtype)]),
            np.concatenate([np.full(X.shape[0], weight, X.dtype), np.zeros(pad, X.dtype)]))


def keras_replica_scale_correction(replicas):
    """The factor that undoes Keras' float32 rounding of 1/R in its per-replica loss scaling.

    Keras 3.15 scales each replica's loss by ops.cast(1.0 / R, dtype), and that cast goes through
    float32: in a float64 run with R = 3 the loss is scaled by 0.3333333432674408, not 1/3, and
    every gradient is 3e-8 (relative) too large, far outside the float64 tolerance. The
    factor (1/R) / float32(1/R), folded into the sample weights, makes the product 1/R again to
    float64 rounding; it is exactly 1 for powers of two.
    """
    return (1.0 / replicas) / float(np.float32(1.0 / replicas))


def make_mirrored_keras_trainer(X, y, lr, iterations, replicas=2, device_spec="auto", feed="dataset",
                                steps_per_execution=1, balance=True):
    """A callable (W0, b0, lr=None) -> LoopResult: Keras Dense(1) + SGD + "mse" fit under MirroredStrategy.

    The study's `keras:mirrored` is the defaults: feed="dataset" (fit(epochs=1, steps_per_epoch=N)
    over tf.data's batch of all rows, repeated; the strategy splits each batch across the
    replicas) with steps_per_execution=1 (larger values fail inside Keras' multi-step loop under
    MirroredStrategy in Keras 3.15) and balance=True (see balanced_rows: needed when R does not
    divide n; with it the weights also carry keras_replica_scale_correction, needed in float64
    when R is not a power of two). feed="numpy_input" is fit(X, y, batch_size=rows, epochs=N); balance=False feeds the
    rows as they are (Keras then crashes or weights unequal shards unequally). These options exist
    for the support matrix; the loss curve is recorded per step only with the dataset feed
    (numpy_input reads Keras' History, the loss as Keras averages it).
    """
    import keras

    from .keras_model import FEEDS, build_model, floatx

    if feed not in FEEDS:
        raise ValueError(f"unknown Keras feed {feed!r}; use one of {FEEDS}")
    devices = replica_devices(replicas, device_spec)
    strategy = mirrored_strategy(devices)
    dtype = str(X.dtype)
    n, m = X.shape
    if n < replicas:
        raise DistributionError(f"{n} rows cannot be shared by {replicas} replicas")
    if balance:
        X_fit, y_fit, w_fit, rows = balanced_rows(X, y, replicas)
        correction = keras_replica_scale_correction(replicas)
        w_fit = (w_fit * correction).astype(X.dtype)
    else:
        X_fit, y_fit, w_fit, rows, correction = X, y, None, n, 1.0
    with floatx(dtype), strategy.scope():
        model = build_model(m, dtype)
        recorder = _replica_loss_recorder(iterations, rows * correction) if feed == "dataset" else None
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr), loss="mse",
                      weighted_metrics=[recorder] if recorder else None, jit_compile=False,  # weighted: gets sample_weight
                      steps_per_execution=steps_per_execution if feed == "dataset" else 1)
    if feed == "dataset":
        tensors = (X_fit, y_fit) if w_fit is None else (X_fit, y_fit, w_fit)
        data = tf.data.Dataset.from_tensor_slices(tensors).batch(rows).repeat()
    dense = model.layers[-1]
    label = replicas_label(v.device for v in strategy.experimental_local_results(dense.kernel.value))
    default_lr = lr

    def train(W0, b0, lr=None):
        """One fit from (W0, b0); another lr is assigned to the optimizer's variable."""
        dense.set_weights([np.asarray(W0, dtype).reshape(m, 1), np.asarray([b0], dtype)])
        model.optimizer.learning_rate = float(default_lr if lr is None else lr)
        with floatx(dtype):
            if feed == "dataset":
                for variable in recorder.variables:
                    variable.assign(tf.zeros(variable.shape, variable.dtype))
                model.fit(data, epochs=1, steps_per_epoch=iterations, verbose=0, shuffle=False)
                losses = np.asarray(recorder.losses.numpy()[:iterations], dtype)
            else:
                history = model.fit(X_fit, y_fit, sample_weight=w_fit, batch_size=rows, epochs=iterations,
                                    shuffle=False, verbose=0)
                losses = np.asarray(history.history["loss"], dtype)
        kernel, bias = dense.get_weights()
        residuals = y - (X @ kernel + bias[0])  # (n, 1) in the run's dtype, on the host like numpy's last point
        final_loss = np.mean(np.square(residuals), dtype=X.dtype)
        return LoopResult(weights=kernel, bias=kernel.dtype.type(bias[0]),
                          loss_curve=np.append(losses, final_loss).astype(dtype), device=label, jit_compile=False,
                          mode=feed)

    return train
