"""Builders for the TensorFlow rows (tf_models/): Keras fit, the GradientTape loops, the Gram tape, tf.distribute."""
import dataclasses
import functools
import math

import numpy as np

import handrolled
from loop_result import LoopResult

from comparisons.core.results import GradientMismatchError, from_run
from comparisons.running.adapters import Trainer
from comparisons.running.adapters.numpy_trainers import gram_loss_bound
from comparisons.processes import cluster
from comparisons.processes.scratch import owned_dir
from comparisons.running.timing import Timing, calls_owed

MULTI_WORKER_TIMEOUT_S = float("inf")  # no limit on a run's length: the launcher's watchdog ends a stalled one (cluster.StallWatch)
COLLECTIVE_TIMEOUT_S = 60.0  # a peer that does not join a job, or a cluster that stalls, fails the run after this long


def _autodiff_gradient(spec):
    """TensorFlow's autodiff gradient of the MSE at (W, b) in float64, for the finite-difference check."""
    from tf_models.gradient_tape import autodiff_gradient64

    return lambda W, b: autodiff_gradient64(spec.X, spec.y, W, b)


def _keras(spec, make):
    """A Keras trainer from make() -> keras_train(W0, b0, lr) -> LoopResult: all N updates each call."""
    keras_train = make()

    def train(W0, b0, rate=spec.lr):
        r = keras_train(W0, b0, lr=float(rate))
        return from_run(spec.name, spec.dtype, r, updates_per_call=spec.iterations)
    return Trainer(spec, train)


def _keras_feed(feed, spec):
    from tf_models.keras_model import make_keras_trainer

    return _keras(spec, lambda: make_keras_trainer(spec.X, spec.y, float(spec.lr), spec.iterations, feed=feed,
                                                   device=spec.device, batches=spec.batches))


keras_dataset = functools.partial(_keras_feed, "dataset")
keras_dataset.__doc__ = "Keras fit on a repeated tf.data batch, all N steps in one steps_per_execution call."
keras_numpy_input = functools.partial(_keras_feed, "numpy_input")
keras_numpy_input.__doc__ = "The idiomatic Keras fit(X, y, batch_size=n, epochs=N, shuffle=False)."


def mirrored_keras(spec):
    """Keras fit under MirroredStrategy over spec.replicas devices."""
    from tf_models.distributed import make_mirrored_keras_trainer

    return _keras(spec, lambda: make_mirrored_keras_trainer(spec.X, spec.y, float(spec.lr), spec.iterations,
                                                            replicas=spec.replicas, device_spec=spec.device))


def _tape(spec, tape_train, **extra):
    """A trainer from a tape-style one: lr is an input of the traced loop, so a new rate does not retrace."""
    def train(W0, b0, rate=spec.lr):
        r = tape_train(W0, b0, lr=float(rate))
        return from_run(spec.name, spec.dtype, r, **{k: f(r) for k, f in extra.items()})
    return Trainer(spec, train, autodiff_gradient=_autodiff_gradient(spec))


def _tape_mode(mode, spec):
    from tf_models.gradient_tape import make_tape_trainer

    return _tape(spec, make_tape_trainer(spec.X, spec.y, float(spec.lr), spec.iterations, mode=mode, device=spec.device,
                                         divergence_factor=handrolled.DIVERGENCE_FACTOR))


tape_auto = functools.partial(_tape_mode, "auto")
tape_auto.__doc__ = "The GradientTape loop, XLA while X is small, else blocked (tf_models.gradient_tape)."
tape_xla = functools.partial(_tape_mode, "xla")
tape_xla.__doc__ = "The GradientTape loop, always compiled by XLA."
tape_graph = functools.partial(_tape_mode, "graph")
tape_graph.__doc__ = "The GradientTape loop as one tf.function without XLA."
tape_eager = functools.partial(_tape_mode, "eager")
tape_eager.__doc__ = "The GradientTape step in a Python loop, eager."


def gram_tape(spec):
    """One pass for G, c, s as a graph, then the Gram-form loss under tf.GradientTape in an XLA loop."""
    from tf_models.gram import make_gram_tape_trainer

    tape_train = make_gram_tape_trainer(spec.X, spec.y, float(spec.lr), spec.iterations, device=spec.device,
                                        divergence_factor=handrolled.DIVERGENCE_FACTOR)
    bound = lambda r: gram_loss_bound(handrolled.GramStatistics(*r.statistics), r.weights, r.bias, r.loss_curve)
    # the same traced functions, timed apart (no second trace or compilation)
    stages = (lambda: tuple(t.numpy() for t in tape_train.one_pass()),
              lambda stats, W0, b0: tape_train.iterate(*stats, W0, b0).loss_curve)
    return dataclasses.replace(_tape(spec, tape_train, loss_bound=bound), stages=stages)


def mirrored_tape(spec):
    """The tape loop under MirroredStrategy, each replica holding its shard of rows."""
    from tf_models.distributed import make_mirrored_tape_trainer

    return _tape(spec, make_mirrored_tape_trainer(spec.X, spec.y, float(spec.lr), spec.iterations,
                                                  replicas=spec.replicas, device_spec=spec.device,
                                                  divergence_factor=handrolled.DIVERGENCE_FACTOR))


def _chief_result(out, dtype):
    """The loop result from the chief's JSON (tf_models.multi_worker writes its arrays as lists)."""
    as_array = lambda key: np.asarray(out[key], dtype)
    return LoopResult(
        weights=as_array("weights").reshape(-1, 1), bias=np.dtype(dtype).type(out["bias"]),
        loss_curve=as_array("loss_curve"), diverged_at=out["diverged_at"], device=out["device"], jit_compile=False,
        grad_abs_diff=as_array("grad_abs_diff"), grad_rel_diff=as_array("grad_rel_diff"), mode="multi_worker")


def multi_worker_tape(spec, timeout_s=MULTI_WORKER_TIMEOUT_S):
    """The tape loop on spec.workers loopback processes: (W0, b0, rate, repeats=0, budget_s=inf) -> RunResult with .timing.

    Each call runs on the workers (comparisons.processes.cluster: the study's shared session, or one opened
    for the call), whose chief times its calls itself and returns raw seconds. A first job makes
    the warm-up call (its result is the run's); then, while the study's one rule (timing.calls_owed:
    the budget at the warm-up's pace, then at the slowest timed call's) owes calls, a warm job makes
    exactly that many timed calls on the loop the workers traced and warmed up in the first job (were
    they restarted in between, such a job makes its own warm-up first). So
    RunResult.timing means what every other timing row means, though its calls are not interleaved
    with the driver's rounds (they run in other processes, a job at a time).
    """
    X, y, dtype = spec.X, spec.y, spec.dtype

    def job_result(W0, b0, rate, calls, tmp, warm=False):
        job = cluster.train_job(X, y, W0, b0, float(rate), spec.iterations, tmp, repeats=calls,
                                collective_timeout_s=COLLECTIVE_TIMEOUT_S, divergence_factor=handrolled.DIVERGENCE_FACTOR,
                                warm=warm)
        return cluster.run_job(job, spec.workers, timeout_s=timeout_s)

    def train(W0, b0, rate=spec.lr, repeats=0, budget_s=math.inf):
        # owner-tagged: a later run removes it if this one is killed
        with owned_dir("multi-worker-data-") as tmp, cluster.shared_sessions():
            out = job_result(W0, b0, rate, 0, tmp)  # the warm-up
            repeat_s = []
            while owed := calls_owed(repeats, budget_s, out["first_call_s"], repeat_s):
                made = job_result(W0, b0, rate, owed, tmp, warm=True)["repeat_s"]  # exactly `owed` calls
                if not made:
                    break
                repeat_s += made
        return from_run(spec.name, dtype, _chief_result(out, dtype),
                        timing=Timing(first_call_s=out["first_call_s"], repeat_s=tuple(repeat_s)))

    return Trainer(spec, train, autodiff_gradient=_autodiff_gradient(spec))


def start_workers(workers=2, **_):
    """multi_worker_tape's starter: the shared session of `workers` workers started now (inside the driver's
    cluster.shared_sessions() block); returns its wait() for their start-up (comparisons.processes.cluster.start_shared)."""
    return cluster.start_shared(workers)


__all__ = ["GradientMismatchError", "gram_tape", "keras_dataset", "keras_numpy_input", "mirrored_keras",
           "mirrored_tape", "multi_worker_tape", "start_workers", "tape_auto", "tape_eager", "tape_graph", "tape_xla"]
