"""One worker of a MultiWorkerMirroredStrategy cluster: `python -m tf_models.multi_worker --job JOB.json`.

Runs unchanged on real hosts: each host sets TF_CONFIG (the cluster's addresses and its own
index) and runs this module with the same job description; comparisons/processes/cluster.py does exactly
that on loopback. Only this module's standard library, numpy and TensorFlow are needed.

TF_CONFIG (one per worker; only "task.index" differs):
    {"cluster": {"worker": ["hostA:12345", "hostB:12345"]}, "task": {"type": "worker", "index": 0}}

The job (JSON from a file, or stdin with `--job -`), the same for every worker:
    {"task": "train",                 # what to do: a name in TASKS (see below)
     "data": {"X": "X.npy", "y": "y.npy"}   # arrays of all rows (n, m) and (n, 1), the run's dtype; each
                                       # worker reads only its own rows (memory-mapped), so the files
                                       # may be copies on every host
           | {"random": {"n": 1000000, "m": 32, "seed": 0}},  # or: each worker draws its own rows
                                       # (rng seeded by [seed, shard]): for timing, not for equivalence
     "dtype": "float64",
     "shard": "contiguous",           # the row rule: worker k holds rows shards(n, W)[k] (np.array_split)
     "lr": 0.05, "iterations": 1000, "W0": [[...]], "b0": 0.0,  # W0 (m, 1) as nested lists
     "repeats": 5,                    # exactly this many timed calls after one warm-up (the launcher plans
                                       # the count: comparisons.running.timing.planned_repeats; every worker makes them)
     "divergence_factor": 1e6,
     "collective_timeout_s": 60,      # a peer that does not join a set-up collective fails it after this
                                       # long; the descent's collectives carry no timeout (see below)
     "result": "result.json"}         # where the chief (worker 0) writes its result ("-": stdout)

Tasks: TASKS maps a name to fn(WorkerContext) -> dict (JSON-serialisable), which the chief writes.
"train" is the study's gradient_tape:multi_worker; the distributed experiments' tasks come from
tf_models/distributed_bench.py (STUDY_TASKS). Add a task with the @task("name")
decorator; every worker runs the same function (collectives must match across workers).
MULTI_WORKER_DEBUG=1 in the environment prints a failing worker's whole traceback.

Errors: any failure prints one line `error: worker K: <Type>: <message>` on stderr and exits 1;
a launcher shows that line. A broken peer makes the others fail within collective_timeout_s: a
dead or stopped one through TensorFlow's own heartbeats (its coordination service) or the gRPC
error, one that never joins the job through the set-up collectives' timeout, and a cluster that
stalls in any other way through the launcher's watchdog (comparisons/processes/cluster.py), which ends
workers that use no CPU for that long while a job is pending.

Why the loops' collectives have no timeout: TensorFlow starts one watchdog thread per collective
that has a timeout, which sleeps for the whole timeout even after the collective is done
(tensorflow/tensorflow#62466; base_collective_executor.cc: "Share the timeout watchdog thread
among collectives"). One all-reduce per step then means about steps-per-second x timeout
sleeping threads, and a long run dies when the process can start no more
("Resource temporarily unavailable"). The few set-up collectives of a job keep theirs.
"""
import argparse
import itertools
import json
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .distributed_bench import STUDY_TASKS, call_seconds, repeat_seconds
from .quiet_import import import_tensorflow_for_worker
from .shards import load_shard

TASKS = {}


def task(name):
    """Register fn(WorkerContext) -> dict as the job task `name`."""
    def register(fn):
        TASKS[name] = fn
        return fn
    return register


@dataclass(frozen=True)
class WorkerContext:
    """What a task gets: the strategy, this worker's place in the cluster and the job."""

    strategy: object  # tf.distribute.MultiWorkerMirroredStrategy
    index: int  # this worker's task index (0 is the chief)
    workers: int  # W, the number of workers in TF_CONFIG
    job: dict
    communication: object  # tf.distribute.experimental.CommunicationOptions of the loops' collectives (no timeout)
    setup_communication: object = None  # those of the job's few set-up collectives: with its timeout

    @property
    def is_chief(self):
        return self.index == 0


def cluster_from_environment():
    """(this worker's index, worker count) from TF_CONFIG; ValueError when it is missing or not a worker."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise ValueError("TF_CONFIG is not set; it names the cluster's workers and this worker's index")
    config = json.loads(text)
    if config.get("task", {}).get("type") != "worker":
        raise ValueError("TF_CONFIG task.type must be 'worker' (no chief/ps roles: worker 0 is the chief)")
    return int(config["task"]["index"]), len(config["cluster"]["worker"])


def timed_job_calls(ctx, call, warm_up=True):
    """(warm-up result, {"first_call_s", "repeat_s"}): a warm-up call, then exactly job["repeats"] timed calls.

    warm_up=False (the call is warm already): the timed calls only, the result the last one's, first_call_s None.
    Every worker makes the same calls (each runs collectives); the launcher chose the count, so the
    workers need not agree on one here.
    """
    repeats = int(ctx.job.get("repeats", 0))
    if not warm_up:
        result, times = repeat_seconds(call, repeats)
        return result, {"first_call_s": None, "repeat_s": times}
    result, first, times = call_seconds(call, repeats)
    return result, {"first_call_s": first, "repeat_s": times}


def communication_options(tf, job):
    """The CommunicationOptions of a loop's collectives (one per step): no timeout, so no watchdog thread per step."""
    return tf.distribute.experimental.CommunicationOptions()


def setup_communication_options(tf, job):
    """The options of a job's few set-up collectives: they fail after job["collective_timeout_s"] (default 60) s."""
    return tf.distribute.experimental.CommunicationOptions(timeout_seconds=float(job.get("collective_timeout_s", 60)))


def job_context(ctx, tf, job):
    """`ctx` for another job: its own job dict and its own set-up timeout."""
    return replace(ctx, job=job, communication=communication_options(tf, job),
                   setup_communication=setup_communication_options(tf, job))


_LAST_LOOP = {}  # the last train job's loop ("key": what it was built from, "built": (loop, W, n, m)), for a warm job


@task("train")
def train_task(ctx):
    """The study's GradientTape descent over the workers: result of the warm-up call and the timings.

    A job with "warm": true whose data, dtype, updates and divergence rule are those of the previous train
    job reuses that job's loop, traced and run (warmed up) there, and makes only its timed calls: its
    "first_call_s" is None, its result that of its last timed call. Otherwise (also when the workers
    were restarted in between) it builds the loop and makes its own warm-up call first.
    """
    import tensorflow as tf

    from .distributed import build_distributed_loop, distribute_shards, result_from_loop

    job, strategy = ctx.job, ctx.strategy
    dtype = np.dtype(job.get("dtype", "float64"))
    iterations = int(job["iterations"])
    key = json.dumps([job["data"], str(dtype), iterations, float(job.get("divergence_factor", 1e6))], sort_keys=True)
    # every worker ran the same jobs, so all agree; a warm job with no timed call would have no result: built anew
    warm = bool(job.get("warm")) and int(job.get("repeats", 0)) > 0 and _LAST_LOOP.get("key") == key
    if warm:  # the loop the previous train job traced and ran on these data: its warm-up is done
        loop, W, n, m = _LAST_LOOP["built"]
    else:
        _LAST_LOOP.clear()
        X_k, y_k, n = load_shard(job["data"], ctx.index, ctx.workers, dtype)
        m = X_k.shape[1]
        col_max = global_column_abs_max(ctx, X_k)
        X_dist, y_dist = distribute_shards(strategy, lambda _: (X_k, y_k), tf.as_dtype(dtype))
        loop, W, _ = build_distributed_loop(strategy, X_dist, y_dist, n, m, tf.as_dtype(dtype), iterations, col_max,
                                            divergence_factor=float(job.get("divergence_factor", 1e6)),
                                            communication=ctx.communication)
        _LAST_LOOP.update(key=key, built=(loop, W, n, m))
    W0 = tf.constant(np.asarray(job["W0"], dtype).reshape(m, 1))
    b0 = tf.constant(dtype.type(job["b0"]))
    lr = tf.constant(dtype.type(job["lr"]))
    label = "+".join(f"worker{k}/cpu:0" for k in range(ctx.workers))  # one CPU replica per worker process

    def call():
        return result_from_loop(loop(W0, b0, lr), iterations, dtype, label, "multi_worker")

    result, times = timed_job_calls(ctx, call, warm_up=not warm)
    local = strategy.experimental_local_results(W)[0].device
    return {
        "weights": result.weights.tolist(), "bias": float(result.bias), "loss_curve": result.loss_curve.tolist(),
        "diverged_at": result.diverged_at, "grad_abs_diff": result.grad_abs_diff.tolist(),
        "grad_rel_diff": result.grad_rel_diff.tolist(), "device": label, "chief_device": local,
        "dtype": str(dtype), "n": n, "workers": ctx.workers, "warm": warm, **times,
    }


@task("serve")
def serve_task(ctx):
    """Run the jobs a launcher writes into job["inbox"] (0000.json, 0001.json, ...) one after another, until ended.

    One strategy and one TensorFlow start-up serve many jobs; the chief writes NNNN.result.json
    beside each job. A job's own collective_timeout_s applies to its set-up collectives. The launcher
    ends the workers with SIGTERM when it is done (comparisons.processes.cluster.ClusterSession); a job that
    fails ends them here, with the usual one-line error.
    """
    import tensorflow as tf

    inbox = Path(ctx.job["inbox"])
    (inbox / f"ready-{ctx.index}").write_text("")  # started: TensorFlow, the strategy and its cluster are up
    for number in itertools.count():
        path = inbox / f"{number:04d}.json"
        while not path.exists():
            time.sleep(0.02)
        job = json.loads(path.read_text())
        _inject_fault(job, ctx.index)
        result = TASKS[job.get("task", "train")](job_context(ctx, tf, job))
        if ctx.is_chief:
            write_result(result, str(inbox / f"{number:04d}.result.json"))


def sum_over_workers(ctx, values):
    """The elementwise sum of every worker's float64 `values` (m,), the same on each worker: one all-reduce.

    It takes the job's set-up CommunicationOptions (strategy.reduce would take the strategy's, which
    have no timeout): a peer that never joins the job fails it within the job's timeout.
    """
    import tensorflow as tf

    local = tf.constant(np.asarray(values, np.float64))

    def add_up():
        return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, local,
                                                              options=ctx.setup_communication)

    total = tf.function(lambda: ctx.strategy.run(add_up))()
    return ctx.strategy.experimental_local_results(total)[0].numpy()


def global_column_abs_max(ctx, X_k):
    """max_j sum_i |x_ij| over all workers' rows: one SUM all-reduce at set-up, outside the timed loop."""
    return float(np.max(sum_over_workers(ctx, np.abs(X_k).sum(axis=0, dtype=np.float64))))


def die_with_launcher():
    """When a launcher set MULTI_WORKER_PARENT_PID: exit as soon as that process is gone.

    PR_SET_PDEATHSIG (Linux) sends SIGKILL when the parent dies; the check right after it
    catches a parent that died before the call. Workers started by hand on real hosts have no
    such variable and are not affected.
    """
    parent = os.environ.get("MULTI_WORKER_PARENT_PID")
    if not parent:
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the launcher's own clean-up still ends the workers
    if os.getppid() != int(parent):
        os._exit(1)


TASKS.update(STUDY_TASKS)  # time_steps, allreduce_benchmark, benchmark, support_probe: the distributed experiments


def check_port_free(index):
    """OSError ("... Address already in use") when this worker's port in TF_CONFIG cannot be bound now.

    The gRPC server would fail on it too, but only after TensorFlow's import (seconds); the launcher
    retries on other ports either way. Bound as gRPC binds: every interface, SO_REUSEADDR set (a
    port in TIME_WAIT is no obstacle, one with a listener is).
    """
    address = json.loads(os.environ["TF_CONFIG"])["cluster"]["worker"][index]
    port = int(address.rsplit(":", 1)[1])
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
        except OSError as exc:
            raise OSError(f"cannot bind port {port} of {address}: {exc.strerror}") from None


def run(job):
    """Join the cluster of TF_CONFIG, run job["task"] and return its dict (every worker; the chief writes it)."""
    index, workers = cluster_from_environment()
    name = job.get("task", "train")
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    check_port_free(index)  # before TensorFlow's import: a taken port costs the launcher's retry no start-up
    tf = import_tensorflow_for_worker()
    # must be created before any other TensorFlow op: it starts this worker's gRPC server. No timeout in the
    # strategy's own options: a collective given none inherits them (one sleeping thread per step again)
    strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=communication_options(tf, job))
    # TensorFlow's runtime installs a C-level SIGTERM handler here (Python still reports the default) that
    # keeps the process alive: give SIGTERM its default meaning back, so a launcher or an admin can end it
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if job.get("deterministic", True):
        tf.config.experimental.enable_op_determinism()
    _inject_fault(job, index)
    return TASKS[name](job_context(WorkerContext(strategy, index, workers, job, None), tf, job)), index


def _inject_fault(job, index):
    """For the reliability tests only: job["fault"] = {"worker": k, "kind": "hang"} makes worker k hang.

    (A worker that dies needs no help: the tests kill one.)
    """
    fault = job.get("fault")
    if not fault or int(fault["worker"]) != index:
        return
    if fault["kind"] != "hang":
        raise ValueError(f"unknown fault kind {fault['kind']!r}; known: hang")
    print(f"worker {index}: injected fault: hanging", file=sys.stderr, flush=True)
    while True:
        time.sleep(3600)


def write_result(result, where):
    """Write the chief's result JSON atomically (a reader never sees half a file); '-' prints it."""
    text = json.dumps(result)
    if where in (None, "-"):
        print(text, flush=True)
        return
    tmp = f"{where}.tmp-{os.getpid()}"
    with open(tmp, "w") as handle:
        handle.write(text)
    os.replace(tmp, where)


def main(argv=None):
    """Entry point: read the job, run it, the chief writes the result; exit 1 with one error line on failure."""
    parser = argparse.ArgumentParser(prog="python -m tf_models.multi_worker", description=__doc__.split("\n")[0])
    parser.add_argument("--job", required=True, help="job JSON file, or - for stdin")
    args = parser.parse_args(argv)
    die_with_launcher()
    index = "?"  # until TF_CONFIG is read
    try:
        job = json.load(sys.stdin if args.job == "-" else open(args.job))
        index = cluster_from_environment()[0]
        result, index = run(job)
        if index == 0:  # (`serve` never returns: it writes each job's result as it goes)
            write_result(result, job.get("result", "-"))
        return 0
    except KeyboardInterrupt:
        print(f"error: worker {index}: interrupted", file=sys.stderr, flush=True)
        return 130
    except Exception as exc:  # one line for the launcher; the cause is in the message
        if os.environ.get("MULTI_WORKER_DEBUG"):  # the whole traceback before the line, for debugging
            import traceback

            traceback.print_exc()
        first = (str(exc).strip().splitlines() or [""])[0]
        print(f"error: worker {index}: {type(exc).__name__}: {first}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
