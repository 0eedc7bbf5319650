"""The launcher: W worker processes of tf_models.multi_worker on loopback, their chief's result, and nothing left behind.

run_cluster(job, workers) picks free 127.0.0.1 ports, gives each worker its TF_CONFIG, starts
them (each in its own session, so a Ctrl-C at the terminal reaches only the driver), waits for
the chief's result file and returns it as a dict. Whatever happens — success, a worker that
fails or hangs, the hard timeout, Ctrl-C or SIGTERM in the driver (run_all.py turns SIGTERM into
KeyboardInterrupt) — every worker is ended before run_cluster returns or raises: SIGTERM to its
process group, SIGKILL after a grace period. Each worker also watches the launching process
(MULTI_WORKER_PARENT_PID: PR_SET_PDEATHSIG on Linux, and a check of its parent), so even a driver
killed with SIGKILL takes its workers with it.

A worker that fails makes the run raise ClusterError with one line naming it and its last
stderr message; one that hangs is named when the others' collectives time out
(job["collective_timeout_s"]) or at the hard timeout. A worker that cannot bind its port
(another process took it between the pick and the bind) makes the launcher retry with new ports.

Timing: the workers time themselves (a warm-up call, then the repeats, each around the whole
descent until its result is on the chief's host), so the start-up of processes and of the
strategy is outside the measurement, as imports and data generation are for every other
implementation: timings.csv means the same thing for multi-worker rows.
"""
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WORKER_MODULE = "tf_models.multi_worker"
REPO_ROOT = Path(__file__).resolve().parent.parent
GRACE_S = 5.0  # SIGTERM, then this long before SIGKILL (well inside the 20 s promise)
BLAME_WAIT_S = 3.0  # after a first failure, how long to wait for the real culprit's own exit
PORT_IN_USE = ("address already in use", "could not start grpc server", "failed to add port", "bind")


class ClusterError(RuntimeError):
    """A multi-worker run failed; str() is one line naming the worker and its last message."""


def free_ports(count):
    """`count` distinct loopback ports that were free a moment ago (the OS picks them)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(ports, index, host="127.0.0.1"):
    """The TF_CONFIG JSON text of worker `index` in a cluster on `host`:`ports`."""
    return json.dumps({"cluster": {"worker": [f"{host}:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def _last_message(path):
    """The last `error:` line of a worker's stderr, else its last non-empty line, else ''."""
    try:
        lines = [line.strip() for line in Path(path).read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or [""])[-1]


def end_workers(processes, grace_s=GRACE_S):
    """End every worker still running: SIGTERM to its process group, SIGKILL after grace_s; waits for each."""
    for proc in processes:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in processes:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class _PortTaken(Exception):
    pass


def run_cluster(job, workers=2, timeout_s=300.0, ports=None, attempts=3, on_start=None):
    """Run `job` (a dict, see tf_models.multi_worker) on `workers` loopback processes; the chief's result dict.

    ports: a list of ports to try first, or a callable count -> ports (default free_ports);
    later attempts after a taken port always pick fresh free ones. on_start(pids) is called once
    the workers run (tests use it). Raises ClusterError (one line) on failure or timeout.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    pick = ports if callable(ports) else (lambda count: list(ports)) if ports else free_ports
    for attempt in range(attempts):
        try:
            return _run_once(job, workers, timeout_s, pick(workers), on_start)
        except _PortTaken as taken:
            pick = free_ports
            if attempt == attempts - 1:
                raise ClusterError(f"no free ports after {attempts} attempts: {taken}") from None


def _run_once(job, workers, timeout_s, ports, on_start):
    with tempfile.TemporaryDirectory(prefix="multi-worker-") as tmp:
        tmp = Path(tmp)
        result_path = tmp / "result.json"
        job_path = tmp / "job.json"
        job_path.write_text(json.dumps({**job, "result": str(result_path)}))
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",  # loopback workers: one CPU each
                   MULTI_WORKER_PARENT_PID=str(os.getpid()),  # the worker dies with this process (see the worker)
                   PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
        processes, logs = [], []
        try:
            for index in range(workers):
                log_path = tmp / f"worker{index}.stderr"
                logs.append(log_path)
                with open(log_path, "wb") as log:
                    processes.append(subprocess.Popen(
                        [sys.executable, "-m", WORKER_MODULE, "--job", str(job_path)],
                        env={**env, "TF_CONFIG": tf_config(ports, index)}, cwd=REPO_ROOT,
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                        start_new_session=True))
            if on_start:
                on_start([p.pid for p in processes])
            _wait(processes, logs, timeout_s, ports)
            if not result_path.exists():
                raise ClusterError("worker 0 (the chief) exited without writing its result; "
                                   f"last message: {_last_message(logs[0]) or '(none)'}")
            return json.loads(result_path.read_text())
        finally:
            end_workers(processes)


def _wait(processes, logs, timeout_s, ports):
    """Return when every worker exited 0; raise ClusterError / _PortTaken naming the culprit otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        codes = [p.poll() for p in processes]
        if all(code == 0 for code in codes):
            return
        failed = [k for k, code in enumerate(codes) if code not in (None, 0)]
        if failed:
            _blame(processes, logs, ports)
        if time.monotonic() > deadline:
            hung = [k for k, code in enumerate(codes) if code is None]
            k = hung[0]
            raise ClusterError(f"worker {k} did not finish within the {timeout_s:g} s timeout (hung?); "
                               f"last message: {_last_message(logs[k]) or '(none)'}")
        time.sleep(0.05)


def _blame(processes, logs, ports):
    """A worker failed: wait briefly for the others, then raise naming the one that caused it."""
    end = time.monotonic() + BLAME_WAIT_S
    while time.monotonic() < end and any(p.poll() is None for p in processes):
        time.sleep(0.05)
    messages = {k: _last_message(logs[k]) for k in range(len(processes))}
    for k, message in messages.items():
        if processes[k].poll() not in (None, 0) and any(s in message.lower() for s in PORT_IN_USE):
            raise _PortTaken(f"worker {k} could not bind 127.0.0.1:{ports[k]}: {message}")
    # the culprit: a worker killed by a signal or failing with its own error, before those whose
    # collectives merely timed out or were aborted because of it, and before one still running (hung)
    def rank(k):
        code = processes[k].poll()
        victim = any(s in messages[k].lower() for s in ("collective", "aborted", "deadline", "unavailable",
                                                         "timed out", "timeout"))
        if code is not None and code < 0:
            return 0
        if code not in (None, 0) and not victim:
            return 1
        if code is None:
            return 2
        return 3
    culprit = min(range(len(processes)), key=lambda k: (rank(k), k))
    code = processes[culprit].poll()
    how = ("still running (hung?)" if code is None else
           f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}")
    raise ClusterError(f"worker {culprit} failed ({how}); last message: {messages[culprit] or '(none)'}")


def train_job(X, y, W0, b0, lr, iterations, data_dir, repeats=0, budget_s=None, collective_timeout_s=60.0,
              divergence_factor=1e6):
    """The job dict of the study's gradient_tape:multi_worker; X and y are saved as .npy files in data_dir."""
    data_dir = Path(data_dir)
    np.save(data_dir / "X.npy", X)
    np.save(data_dir / "y.npy", y)
    return {"task": "train", "data": {"X": str(data_dir / "X.npy"), "y": str(data_dir / "y.npy")},
            "dtype": str(X.dtype), "shard": "contiguous", "lr": float(lr), "iterations": int(iterations),
            "W0": np.asarray(W0, np.float64).reshape(-1, 1).tolist(), "b0": float(b0),
            "repeats": int(repeats), "budget_s": budget_s, "divergence_factor": float(divergence_factor),
            "collective_timeout_s": float(collective_timeout_s)}
