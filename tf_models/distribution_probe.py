"""The ways a TensorFlow user would run this regression under tf.distribute, each tried and its result kept.

One configuration is (API, feed, steps per execution, rows, dtype) under a strategy the caller
built (MirroredStrategy over logical devices, or MultiWorkerMirroredStrategy in a worker):

- API "tape": variables made in the strategy's scope, each replica takes its loss divided by the
  *global* n under a GradientTape, the loss and the gradients are packed into one vector and
  all-reduced with SUM, every replica applies the same update. `steps_per_execution` steps run in
  one tf.function call; the Python loop calls it until N steps are done.
- API "keras": the study's Dense(1) model compiled with SGD and "mse" in the strategy's scope,
  trained by fit with `steps_per_execution`.
- feed "numpy": the arrays handed over whole (tape: the same X to every replica; Keras:
  fit(X, y, batch_size=n, epochs=N)); "dataset": a repeated tf.data batch of all n rows (tape:
  through experimental_distribute_dataset; Keras: fit(dataset, steps_per_epoch=N)); "distributed":
  each replica's own shard of rows (tape: experimental_distribute_values_from_function; Keras: fit on
  distribute_datasets_from_function, each input pipeline holding its shard).

Results are plain: the final parameters, the loss curve where one point per update exists, the
time per step of a second (warm) run, or the exception's class and first line. Nothing here
judges them; comparisons/ compares with numpy. Running this module as a script is the thin
subprocess entry point: it reads a JSON job and writes one JSON line per configuration.
"""
import json
import re
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

from .quiet_import import import_tensorflow_for_worker

APIS = ("tape", "keras")
FEEDS = ("numpy", "dataset", "distributed")


@dataclass(frozen=True)
class ProbeConfig:
    """One way of running the model distributed (the strategy is the caller's)."""

    api: str  # "tape" or "keras"
    feed: str  # "numpy", "dataset" or "distributed"
    steps_per_execution: int  # steps per compiled call
    n: int  # rows of the data used (the first n of the job's arrays)
    dtype: str  # "float32" or "float64"
    iterations: int  # N updates

    @property
    def key(self):
        """A short stable name of the configuration."""
        return f"{self.api}/{self.feed}/spe{self.steps_per_execution}/n{self.n}/{self.dtype}"


@dataclass(frozen=True)
class ProbeOutcome:
    """What one configuration produced: parameters and curve, or the error."""

    config: ProbeConfig
    weights: tuple | None  # (m + 1,): W then b, float; None when it failed
    loss_curve: tuple | None  # loss before each update (N points) where the API gives one per update
    first_run_s: float | None  # the first run, tracing included
    seconds_per_step: float | None  # a second, warm run divided by N
    error_class: str | None = None
    error_line: str | None = None


# Lines of a TensorFlow error message that say where, not what: skipped when looking for the cause.
_WHERE_LINES = re.compile(r"^\s*($|Graph execution error|Detected at node|File \"|\d+ root error|\[\[|\d+ successful op"
                          r"|\d+ derived error)")


def _first_line(exc):
    """The statement of an exception's error as one line (TensorFlow puts node locations first and values inside)."""
    lines = str(exc).splitlines()
    start = next((k for k, line in enumerate(lines) if not _WHERE_LINES.match(line)), 0)
    text = " ".join(line.strip() for line in lines[start:] if not _WHERE_LINES.match(line))
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)  # the graph function's internal name
    text = re.sub(r"\{[^{}]*\}", "{...}", text)  # the values a PerReplica or a node list holds
    text = re.sub(r"^\(\d+\)\s*", "", text)  # "(0) INVALID_ARGUMENT: ..." -> "INVALID_ARGUMENT: ..."
    text = re.sub(r"\s+\(\d+\) \w+:.*$", "", text)  # a second root error repeats the first
    return re.sub(r"\s+", " ", text).strip()[:240]


def _tape_trainer(strategy, config, X, y, lr):
    """(train(W0, b0) -> (theta, losses)) for the tape API under `strategy`."""
    import tensorflow as tf

    n, m = X.shape
    dtype = tf.as_dtype(config.dtype)
    with strategy.scope():
        W = tf.Variable(tf.zeros((m, 1), dtype))
        b = tf.Variable(tf.zeros((), dtype))
    n_global = tf.constant(n, dtype)
    lr_t = tf.constant(lr, dtype)

    def replica_step(X_r, y_r):
        with tf.GradientTape() as tape:
            residuals = y_r - (tf.matmul(X_r, W) + b)  # (rows of this replica, 1)
            loss = tf.reduce_sum(tf.square(residuals)) / n_global  # this replica's share of the global mean
        grad_W, grad_b = tape.gradient(loss, [W, b])
        packed = tf.concat([tf.reshape(loss, (1,)), tf.reshape(grad_W, (-1,)), tf.reshape(grad_b, (1,))], 0)
        total = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, packed)  # (m + 2,)
        W.assign_sub(lr_t * tf.reshape(total[1:m + 1], (m, 1)))
        b.assign_sub(lr_t * total[m + 1])
        return total[0]

    if config.feed == "numpy":  # every replica receives the whole arrays
        X_t, y_t = tf.constant(X), tf.constant(y)
        next_inputs = lambda: (X_t, y_t)  # noqa: E731
    elif config.feed == "dataset":
        dataset = tf.data.Dataset.from_tensors((X, y)).repeat()
        iterator = iter(strategy.experimental_distribute_dataset(dataset))
        next_inputs = lambda: next(iterator)  # noqa: E731
    else:  # replica k gets rows shards(n, R)[k], as in the study's mirrored and multi-worker loops
        from .distributed import distribute_rows

        X_d, y_d = distribute_rows(strategy, X, y, dtype)
        next_inputs = lambda: (X_d, y_d)  # noqa: E731

    @tf.function
    def steps(count):
        losses = tf.TensorArray(dtype, size=count)
        for i in tf.range(count):
            loss = strategy.run(replica_step, args=next_inputs())
            losses = losses.write(i, strategy.experimental_local_results(loss)[0])
        return losses.stack()

    def train(W0, b0):
        W.assign(np.asarray(W0, config.dtype).reshape(m, 1))
        b.assign(np.asarray(b0, config.dtype))
        done, curve = 0, []
        while done < config.iterations:
            count = min(config.steps_per_execution, config.iterations - done)
            curve.append(steps(tf.constant(count)).numpy())
            done += count
        theta = np.append(W.numpy().ravel(), b.numpy())
        return theta, np.concatenate(curve)

    return train


def _keras_trainer(strategy, config, X, y, lr):
    """(train(W0, b0) -> (theta, losses or None)) for Keras fit under `strategy`."""
    import keras
    import tensorflow as tf

    from .distributed import shards
    from .keras_model import build_model, floatx

    n, m = X.shape
    with floatx(config.dtype), strategy.scope():
        model = build_model(m, config.dtype)
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr), loss="mse", jit_compile=False,
                      steps_per_execution=config.steps_per_execution)
    dense = model.layers[-1]

    def data():
        if config.feed == "dataset":
            return tf.data.Dataset.from_tensors((X, y)).repeat()

        def pipeline(ctx):  # one input pipeline per worker; each yields its shard of rows, repeated
            start, stop = shards(n, ctx.num_input_pipelines)[ctx.input_pipeline_id]
            return tf.data.Dataset.from_tensors((X[start:stop], y[start:stop])).repeat()
        return strategy.distribute_datasets_from_function(pipeline)

    def train(W0, b0):
        dense.set_weights([np.asarray(W0, config.dtype).reshape(m, 1), np.asarray([b0], config.dtype)])
        with floatx(config.dtype):
            if config.feed == "numpy":
                history = model.fit(X, y, batch_size=n, epochs=config.iterations, shuffle=False, verbose=0)
                losses = np.asarray(history.history["loss"], np.float64)  # one point per update: full batch
            else:
                model.fit(data(), epochs=1, steps_per_epoch=config.iterations, verbose=0)
                losses = None  # one epoch: Keras logs only the mean of its steps
        kernel, bias = dense.get_weights()
        return np.append(kernel.ravel(), bias), losses

    return train


def probe(strategy, config, X, y, W0, b0, lr):
    """Run one configuration twice (first, then warm) under `strategy`; a ProbeOutcome, never an exception."""
    X, y = np.asarray(X[:config.n], config.dtype), np.asarray(y[:config.n], config.dtype)
    began = time.perf_counter()
    try:
        make = _tape_trainer if config.api == "tape" else _keras_trainer
        train = make(strategy, config, X, y, lr)
        theta, losses = train(W0, b0)
        first = time.perf_counter() - began
        began = time.perf_counter()
        train(W0, b0)
        warm = time.perf_counter() - began
    except Exception as exc:  # the finding is the failure: its class and first line
        return ProbeOutcome(config, None, None, time.perf_counter() - began, None,
                            type(exc).__name__, _first_line(exc))
    return ProbeOutcome(config, tuple(float(v) for v in theta),
                        None if losses is None else tuple(float(v) for v in losses),
                        first, warm / config.iterations)


def outcome_to_json(outcome):
    """The outcome as a JSON-ready dict."""
    return asdict(outcome)


def run_job(strategy, job, emit):
    """Probe every configuration of a job dict under `strategy`, handing each outcome to emit(dict) when done.

    emit({"start": key}) precedes each configuration, so a caller watching from outside knows
    which one was running if the process dies or hangs.
    """
    X, y = np.asarray(job["X"], np.float64), np.asarray(job["y"], np.float64).reshape(-1, 1)
    W0, b0 = np.asarray(job["W0"], np.float64).reshape(-1, 1), float(job["b0"])
    for fields in job["configs"]:
        config = ProbeConfig(**fields)
        emit({"start": config.key})
        emit({"outcome": outcome_to_json(probe(strategy, config, X, y, W0, b0, job["lr"]))})


def main(argv):
    """Entry point for a MirroredStrategy group: `python -m tf_models.distribution_probe JOB.json`."""
    job = json.loads(open(argv[0]).read())
    tf = import_tensorflow_for_worker()

    from .distributed import mirrored_strategy, replica_devices

    devices = replica_devices(int(job["replicas"]), "cpu")  # splits the CPU: before anything initialises TensorFlow
    tf.config.experimental.enable_tensor_float_32_execution(False)
    strategy = mirrored_strategy(devices)

    def emit(record):
        print(json.dumps(record), flush=True)
    run_job(strategy, job, emit)


if __name__ == "__main__":
    main(sys.argv[1:])
