"""Timing the distributed GradientTape loop and the all-reduce under it, for the distributed experiment.

- time_mirrored_steps: the loop of tf_models/distributed.py under MirroredStrategy over the first R
  logical CPUs of a process split once into the largest R, so replicas 1, 2 and 4 share one
  TensorFlow start-up. Logical CPUs share the same cores: this measures the mechanics and the
  synchronisation cost, not a speed-up.
- time_allreduce: seconds per SUM all-reduce of a vector, chained so each waits for the one
  before (a latency with few numbers, a bandwidth with many).
- STUDY_TASKS: the same under MultiWorkerMirroredStrategy, as tasks of the worker protocol of
  tf_models/multi_worker.py (which imports them; nothing here imports it) ("time_steps", "allreduce_benchmark", "benchmark" = both in one
  cluster start, "support_probe" = tf_models/distribution_probe.py's configurations).

Everything returns plain dicts; the entry point (`python -m tf_models.distributed_bench JOB.json`)
prints one JSON line per measurement for comparisons/processes/isolated.py.
"""
import json
import os
import sys
import threading
import time

import numpy as np

TIMING_LR = 1e-3  # stable for every size timed here (standard normal X, m = 32): runs never stop early


def steps_per_call(n, m, target_s, low=3, high=300):
    """Iterations one timed call gets so it lasts about target_s (a rough estimate of a step's cost)."""
    estimate = 4e-4 + n * m * 3e-9  # fixed dispatch and all-reduce cost, plus streaming X a few times
    return int(min(high, max(low, round(target_s / estimate))))


def call_seconds(fn, calls):
    """(result of a first call, its seconds, seconds of each of `calls` more calls): raw wall-clock times, no statistics.

    The statistics and the planning of `calls` are comparisons.running.timing's, in the launching process;
    the multi-worker chief (tf_models/multi_worker.py) and the benchmarks here time with this loop.
    """
    start = time.perf_counter()
    result = fn()
    first = time.perf_counter() - start
    _, times = repeat_seconds(fn, calls)
    return result, first, times


def repeat_seconds(fn, calls):
    """(result of the last call, or None with no call; seconds of each of `calls` calls): call_seconds without its
    first call, for a callable that is warm already."""
    result, times = None, []
    for _ in range(calls):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, times


def _time(fn, repeats):
    """(first call s, best of `repeats` later calls s), from the raw timing loop."""
    _, first, times = call_seconds(fn, repeats)
    return first, min(times, default=first)


def _random_rows(n, m, dtype, seed, index=0, parts=1):
    """Shard `index` of `parts` of a random regression problem, as the worker protocol draws it: (X_k, y_k)."""
    from .shards import load_shard

    X_k, y_k, _ = load_shard({"random": {"n": n, "m": m, "seed": seed}}, index, parts, np.dtype(dtype))
    return X_k, y_k


def time_loop(strategy, X_dist, y_dist, n, m, dtype, iterations, repeats, communication=None):
    """{"first_call_s", "seconds_per_step", "iterations"} of the distributed tape loop over given per-replica rows."""
    import tensorflow as tf

    from .distributed import build_distributed_loop

    tf_dtype = tf.as_dtype(dtype)
    loop, _, _ = build_distributed_loop(strategy, X_dist, y_dist, n, m, tf_dtype, iterations, 1.0,
                                        communication=communication)
    W0, b0, lr = tf.zeros((m, 1), tf_dtype), tf.zeros((), tf_dtype), tf.constant(TIMING_LR, tf_dtype)
    first, best = _time(lambda: [t.numpy() for t in loop(W0, b0, lr)], repeats)
    # the loop evaluates N + 1 times (the last for the final loss), each with its all-reduce
    return {"first_call_s": first, "seconds_per_step": best / (iterations + 1), "iterations": iterations}


def time_mirrored_steps(replicas, n, m, dtype, target_s, repeats, seed=0):
    """Time the loop under MirroredStrategy over logical CPUs 0..replicas-1 (the CPU already split)."""
    import tensorflow as tf

    from .distributed import distribute_rows, mirrored_strategy

    strategy = mirrored_strategy([f"cpu:{k}" for k in range(replicas)])
    X, y = _random_rows(n, m, dtype, seed)
    X_dist, y_dist = distribute_rows(strategy, X, y, tf.as_dtype(dtype))
    return time_loop(strategy, X_dist, y_dist, n, m, dtype, steps_per_call(n, m, target_s), repeats)


def time_allreduce(strategy, numbers, dtype, rounds, repeats, communication=None):
    """Seconds per SUM all-reduce of `numbers` values per replica: `rounds` chained in one tf.function call."""
    import tensorflow as tf

    replicas = strategy.num_replicas_in_sync
    tf_dtype = tf.as_dtype(dtype)
    base = strategy.experimental_distribute_values_from_function(lambda ctx: tf.ones((numbers,), tf_dtype))

    def reduce_once(ones, scale):
        total = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, ones * scale,
                                                              options=communication)
        return total / replicas  # stays ones

    @tf.function
    def chain(scale):
        for _ in tf.range(rounds):  # each all-reduce waits for the one before: its input scales by the last result
            scale = strategy.experimental_local_results(strategy.run(reduce_once, args=(base, scale)))[0][0]
        return scale

    first, best = _time(lambda: chain(tf.constant(1, tf_dtype)).numpy(), repeats)
    return {"numbers": numbers, "bytes": numbers * np.dtype(dtype).itemsize, "rounds": rounds,
            "first_call_s": first, "seconds": best / rounds, "replicas": replicas}


# ------------------------------------------------------------------ tasks of the worker protocol

def time_steps_task(ctx):
    """Worker task: the loop's time per step at each job["sizes"] n, each worker holding n / W random rows."""
    import tensorflow as tf

    from .distributed import distribute_shards

    job = ctx.job
    m, dtype = int(job.get("m", 32)), np.dtype(job.get("dtype", "float32"))
    rows = []
    for n in job["sizes"]:
        X_k, y_k = _random_rows(int(n), m, dtype, int(job.get("seed", 0)), ctx.index, ctx.workers)
        X_dist, y_dist = distribute_shards(ctx.strategy, lambda _: (X_k, y_k), tf.as_dtype(dtype))
        timing = time_loop(ctx.strategy, X_dist, y_dist, int(n), m, dtype,
                           steps_per_call(int(n) // ctx.workers, m, float(job.get("target_s", 0.1))),
                           int(job.get("repeats", 2)), communication=ctx.communication)
        rows.append({"workers": ctx.workers, "n": int(n), "m": m, "dtype": str(dtype), **timing})
    return {"steps": rows}


def allreduce_task(ctx):
    """Worker task: seconds per all-reduce for each job["allreduce"] entry {"numbers", "rounds"}."""
    dtype = np.dtype(ctx.job.get("dtype", "float32"))
    return {"allreduce": [
        {"workers": ctx.workers, **time_allreduce(ctx.strategy, int(spec["numbers"]), dtype, int(spec["rounds"]),
                                                  int(ctx.job.get("repeats", 2)), ctx.communication)}
        for spec in ctx.job["allreduce"]]}


def benchmark_task(ctx):
    """Worker task: all-reduce timings then step timings, in one cluster start."""
    return {**allreduce_task(ctx), **time_steps_task(ctx)}


def support_probe_task(ctx):
    """Worker task: distribution_probe's configurations; the chief appends each event to job["progress"]."""
    from .distribution_probe import run_job

    progress = ctx.job.get("progress")
    outcomes = []

    def emit(record):
        if "outcome" in record:
            outcomes.append(record["outcome"])
        if ctx.is_chief and progress:
            with open(progress, "a") as handle:
                handle.write(json.dumps(record) + "\n")
    run_job(ctx.strategy, ctx.job, emit)
    _exit_after(EXIT_GRACE_S)
    return {"outcomes": outcomes}


EXIT_GRACE_S = 15.0  # time for the worker to write its result and exit on its own


def _exit_after(seconds):
    """End this process `seconds` from now unless it has ended (a daemon thread, so it outlives the wait at exit).

    Measured here: after the whole matrix (Keras fit calls under MultiWorkerMirroredStrategy
    among them), both workers wrote their result and then hung at interpreter exit, hundreds of
    threads parked, deaf to SIGTERM. The result is on disk by then, so ending the process is safe.
    """
    def end():
        time.sleep(seconds)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    threading.Thread(target=end, daemon=True).start()


STUDY_TASKS = {"time_steps": time_steps_task, "allreduce_benchmark": allreduce_task, "benchmark": benchmark_task,
               "support_probe": support_probe_task}


def mirrored_key(replicas, n):
    """The key of one MirroredStrategy measurement in a job's "configs"."""
    return f"R{replicas}/n{n}"


def main(argv):
    """Entry point for the MirroredStrategy measurements: `python -m tf_models.distributed_bench JOB.json`.

    The job: {"split": 4, "configs": ["R1/n100", "R2/n100", ...], "m": 32, "dtype": "float32",
    "target_s": 0.1, "repeats": 2}; the CPU is split once into "split" logical devices.
    """
    job = json.loads(open(argv[0]).read())
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from .distributed import split_cpu

    tf.get_logger().setLevel("ERROR")
    split_cpu(int(job["split"]))
    m, dtype = int(job.get("m", 32)), job.get("dtype", "float32")
    for key in job["configs"]:
        replicas, n = (int(part[1:]) for part in key.split("/"))
        print(json.dumps({"start": key}), flush=True)
        timing = time_mirrored_steps(replicas, n, m, dtype, float(job.get("target_s", 0.1)), int(job.get("repeats", 2)))
        print(json.dumps({"outcome": {"replicas": replicas, "n": n, "m": m, "dtype": dtype, **timing}}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
