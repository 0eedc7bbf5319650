"""The launcher: W worker processes of tf_models.multi_worker on loopback, their chief's results, and nothing left behind.

A ClusterSession picks free 127.0.0.1 ports, gives each worker its TF_CONFIG, starts them (each
in its own session, so a Ctrl-C at the terminal reaches only the driver) and hands them jobs one
after another, each answered by the chief's result file: the workers' TensorFlow start-up is paid
once per session, not once per job. run_cluster(job, workers) is a session for one job;
run_job(job, workers) uses the session kept by an open shared_sessions() block (the driver opens
one around the study and its experiments), else a session of its own; start_shared(workers) starts
that session's workers ahead (the driver does so before its own imports) and returns its wait_ready,
which returns once each serving worker has written ready-K into the inbox (its TensorFlow and
strategy up, idle), so nothing is timed while they start. Whatever happens — success,
a worker that fails or hangs, the hard timeout, Ctrl-C or SIGTERM in the driver (run_all.py
turns SIGTERM into KeyboardInterrupt) — a session ends every worker when it closes or a job
fails: SIGTERM to its process group, SIGKILL after a grace period. Each worker also watches the
launching process (MULTI_WORKER_PARENT_PID: PR_SET_PDEATHSIG on Linux, and a check of its
parent), so even a driver killed with SIGKILL takes its workers with it.

A worker that fails makes the run raise ClusterError with one line naming it and its last
stderr message (a C++ abort's `what():` line included); one that hangs is named when the others'
set-up collectives time out (job["collective_timeout_s"]), when TensorFlow's heartbeats find it
stopped, or by the watchdog: while a job is pending, workers that together use almost no CPU for
collective_timeout_s seconds are waiting on each other for good, and after a short wait for a worker
whose collective timed out just then (BLAME_WAIT_S) the one that used least is named (the descent's
collectives carry no timeout of their own: see tf_models/multi_worker.py),
else at the hard timeout. A worker that cannot bind its port
(another process took it between the pick and the bind) makes the launcher retry with new ports.

Timing: the workers time themselves (a warm-up call, then the repeats, each around the whole
descent until its result is on the chief's host), so the start-up of processes and of the
strategy is outside the measurement, as imports and data generation are for every other
implementation: timings.csv means the same thing for multi-worker rows.
"""
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from comparisons.processes.isolated import exit_reason, last_meaningful
from comparisons.processes.scratch import make_owned_dir, with_private_tmp

WORKER_MODULE = "tf_models.multi_worker"
REPO_ROOT = Path(__file__).resolve().parents[2]  # workers run here, so `-m tf_models.multi_worker` and loop_result resolve
GRACE_S = 5.0  # SIGTERM, then this long before SIGKILL (well inside the 20 s promise)
BLAME_WAIT_S = 3.0  # after a first failure, how long to wait for the real culprit's own exit
PORT_IN_USE = ("address already in use", "could not start grpc server", "failed to add port", "bind")
STALL_CPU_FRACTION = 0.02  # workers using less than this share of one core together, for a whole window, are stalled
READY_FILE = "ready-{index}"  # a serving worker writes this into its inbox once started (TensorFlow and strategy up)
START_TIMEOUT_S = 300.0  # how long wait_ready waits for workers started ahead before it gives up on them
START_STALL_S = 60.0  # ... or how long they may use almost no CPU together while starting (StallWatch)


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
    """The last `error:` line of a worker's stderr, else its C++ abort (`terminate called ...: what(): ...`),
    else its last line that is not TensorFlow's start-up noise, else ''."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    lines = text.splitlines()
    errors = [line.strip() for line in lines if line.startswith("error:")]
    if errors:
        return errors[-1]
    # an uncaught C++ exception: "terminate called after throwing ..." then an indented "  what():  <reason>"
    aborts = [k for k, line in enumerate(lines) if line.strip().startswith("what():")]
    if aborts:
        k = aborts[-1]
        before = lines[k - 1].strip() if k and lines[k - 1].startswith("terminate called") else ""
        return " ".join(filter(None, [before, " ".join(lines[k].split())]))[:240]
    return last_meaningful(text)


def _stat_fields(pid):
    """The fields of /proc/<pid>/stat after the command name (state first), or None where unknown."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_seconds(pid):
    """CPU time (user + system, all threads) used so far by process `pid`, from /proc; None where unknown."""
    fields = _stat_fields(pid)
    try:
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (TypeError, IndexError, ValueError):
        return None


def is_stopped(pid):
    """Whether process `pid` is stopped by a signal (SIGSTOP, Ctrl-Z) or a debugger: state T or t in /proc."""
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] in ("T", "t")


class StallWatch:
    """Tells when running workers have waited on each other for `window_s`: together under STALL_CPU_FRACTION of a core.

    A live step uses a core; workers blocked in a collective whose peer is stopped, hung or
    deadlocked use only their heartbeats' crumbs. sample() is called often; stalled() gives the
    index of a stopped worker (is_stopped: it cannot be waiting on the others), else of the worker that
    used least CPU over the last window (the likeliest culprit), or None. Over a short window a worker
    blocked in a collective may use no clock tick either, so the CPU alone cannot tell it from a stopped peer.
    """

    def __init__(self, processes, window_s):
        self.processes, self.window_s, self.samples = processes, window_s, []

    def sample(self):
        if self.window_s is None:
            return
        now = time.monotonic()
        used = [cpu_seconds(p.pid) if p.poll() is None else None for p in self.processes]
        self.samples.append((now, used))
        while len(self.samples) > 2 and self.samples[1][0] <= now - self.window_s:
            self.samples.pop(0)  # keep one sample at least a window old

    def stalled(self):
        if self.window_s is None or len(self.samples) < 2:
            return None
        (then, first), (now, last) = self.samples[0], self.samples[-1]
        if now - then < self.window_s or None in first or None in last:
            return None  # not watched for a whole window yet, or a worker left (the caller handles that)
        used = [b - a for a, b in zip(first, last)]
        if sum(used) >= STALL_CPU_FRACTION * (now - then):
            return None
        return min(range(len(used)), key=lambda k: (not is_stopped(self.processes[k].pid), used[k], k))


def end_workers(processes, grace_s=GRACE_S):
    """End every worker still running: SIGTERM (and SIGCONT) to its process group, SIGKILL after grace_s; waits for each."""
    for proc in processes:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
                os.killpg(proc.pid, signal.SIGCONT)  # a stopped worker acts on its SIGTERM only once it runs again
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


class ClusterSession:
    """W loopback workers started once that run jobs one after another: one TensorFlow start-up per worker.

    The workers run tf_models.multi_worker's `serve` task: the launcher writes each job to the
    session's inbox and waits for the chief's result beside it. A job that fails (a worker's own
    error, a dead or hung peer, the hard timeout, Ctrl-C) ends every worker and raises; the next
    run() starts fresh workers. close() (or leaving the `with` block) ends them all.
    """

    def __init__(self, workers=2, ports=None, attempts=3, on_start=None):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self._pick = ports if callable(ports) else (lambda count: list(ports)) if ports else free_ports
        self._attempts, self._on_start = attempts, on_start
        self._processes, self._logs, self._ports, self._scratch, self._jobs = [], [], [], None, 0

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def run(self, job, timeout_s=300.0):
        """The chief's result dict of `job` (see tf_models.multi_worker); ClusterError (one line) on failure."""
        for attempt in range(self._attempts):
            try:
                if not self._processes:
                    self._start()
                return self._submit(job, timeout_s)
            except _PortTaken as taken:  # only a fresh start can meet it: the servers bind before the first job
                self.close()
                self._pick = free_ports
                if attempt == self._attempts - 1:
                    raise ClusterError(f"no free ports after {self._attempts} attempts: {taken}") from None
            except BaseException:  # ClusterError, KeyboardInterrupt, ...: no worker outlives a failed job
                self.close()
                raise

    def start(self):
        """Start the workers now when none runs, so their start-up overlaps the caller's own work; run() then uses them."""
        if not self._processes:
            self._start()

    def wait_ready(self, timeout_s=START_TIMEOUT_S):
        """Block until every worker has started (each wrote its READY_FILE) and idles on the inbox; True if they did.

        A worker that cannot bind its port makes it start fresh ones on free ports, as run() does. Workers
        that fail to start otherwise (an exit, no readiness within timeout_s) are ended and False is
        returned: the next run() starts fresh ones and reports a failure as it always does. Nothing
        started: True at once.
        """
        for attempt in range(self._attempts):
            if not self._processes:
                return True
            try:
                self._wait_started(timeout_s)
                return True
            except _PortTaken:
                self.close()
                self._pick = free_ports
                if attempt < self._attempts - 1:
                    self._start()
            except ClusterError:
                self.close()
                return False
        return False

    def _wait_started(self, timeout_s):
        ready = [self._scratch / READY_FILE.format(index=k) for k in range(self.workers)]
        deadline = time.monotonic() + timeout_s
        watch = StallWatch(self._processes, START_STALL_S)
        while not all(path.exists() for path in ready):
            if any(p.poll() is not None for p in self._processes):
                _blame(self._processes, self._logs, self._ports)  # raises _PortTaken or ClusterError
            watch.sample()
            if watch.stalled() is not None or time.monotonic() > deadline:
                raise ClusterError("the workers did not start")
            time.sleep(0.02)

    def close(self):
        """End every worker of this session and remove its scratch folder (nothing to do when none runs)."""
        try:
            end_workers(self._processes)
        finally:
            self._processes, self._logs = [], []
            if self._scratch is not None:
                shutil.rmtree(self._scratch, ignore_errors=True)
                self._scratch = None

    def _start(self):
        self._scratch = make_owned_dir("multi-worker-")  # owner-tagged: a later run removes it if this one is killed
        tmp = self._scratch
        self._ports, self._jobs = self._pick(self.workers), 0
        serve_path = tmp / "serve.json"
        serve_path.write_text(json.dumps({"task": "serve", "inbox": str(tmp)}))
        env = dict(with_private_tmp(tmp), TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",  # loopback workers: one CPU each
                   MULTI_WORKER_PARENT_PID=str(os.getpid()),  # the worker dies with this process (see the worker)
                   PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
        for index in range(self.workers):
            log_path = tmp / f"worker{index}.stderr"
            self._logs.append(log_path)
            with open(log_path, "wb") as log:
                self._processes.append(subprocess.Popen(
                    [sys.executable, "-m", WORKER_MODULE, "--job", str(serve_path)],
                    env={**env, "TF_CONFIG": tf_config(self._ports, index)}, cwd=REPO_ROOT,
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                    start_new_session=True))
        if self._on_start:
            self._on_start([p.pid for p in self._processes])

    def _send(self, job):
        """Put `job` in the inbox as the next number; the path of the chief's result for it."""
        tmp = self._scratch
        job_path, result_path = tmp / f"{self._jobs:04d}.json", tmp / f"{self._jobs:04d}.result.json"
        staged = job_path.with_suffix(".tmp")
        staged.write_text(json.dumps(job))
        os.replace(staged, job_path)  # a worker never reads half a job
        self._jobs += 1
        return result_path

    def _submit(self, job, timeout_s):
        result_path = self._send(job)
        _wait(self._processes, self._logs, timeout_s, self._ports, done=result_path.exists,
              stall_s=float(job.get("collective_timeout_s", 60)) or None)
        if not result_path.exists():
            raise ClusterError("the workers exited without the chief's result; "
                               f"worker 0's last message: {_last_message(self._logs[0]) or '(none)'}")
        return json.loads(result_path.read_text())


def run_cluster(job, workers=2, timeout_s=300.0, ports=None, attempts=3, on_start=None):
    """Run `job` (a dict, see tf_models.multi_worker) on `workers` loopback processes of its own; the chief's result dict.

    ports: a list of ports to try first, or a callable count -> ports (default free_ports);
    later attempts after a taken port always pick fresh free ones. on_start(pids) is called once
    the workers run (tests use it). Raises ClusterError (one line) on failure or timeout.
    """
    with ClusterSession(workers, ports=ports, attempts=attempts, on_start=on_start) as session:
        return session.run(job, timeout_s)


_shared = None  # (session options, {workers: ClusterSession}) while shared_sessions() is open


@contextlib.contextmanager
def shared_sessions(**session_options):
    """Within this block run_job keeps one session per worker count: a study pays each worker's start-up once.

    session_options (ports, attempts, on_start) go to every ClusterSession the block starts; tests use them.
    """
    global _shared
    if _shared is not None:  # already open further out: that block owns the sessions
        yield
        return
    _shared = (session_options, {})
    try:
        yield
    finally:
        (_, sessions), _shared = _shared, None
        for session in sessions.values():
            session.close()


def start_shared(workers=2):
    """Start the shared session of `workers` workers now (inside shared_sessions()); its wait_ready, for their start-up.

    run_job then finds it started. Outside a shared_sessions() block nothing is started (a session of
    run_job's own would end with its job) and the wait returns at once.
    """
    if _shared is None:
        return lambda: True
    options, sessions = _shared
    if workers not in sessions:
        sessions[workers] = ClusterSession(workers, **options)
    sessions[workers].start()
    return sessions[workers].wait_ready


def run_job(job, workers=2, timeout_s=300.0):
    """The chief's result of `job`: in the shared session of `workers` workers when shared_sessions() is open, else on a cluster of its own."""
    if _shared is None:
        return run_cluster(job, workers, timeout_s)
    options, sessions = _shared
    if workers not in sessions:
        sessions[workers] = ClusterSession(workers, **options)
    return sessions[workers].run(job, timeout_s)


def _wait(processes, logs, timeout_s, ports, done, stall_s=None):
    """Return when done() holds or every worker has left (the caller then looks for the result); raise
    ClusterError / _PortTaken naming the culprit when one fails, the workers stall for stall_s
    (StallWatch; None: not watched) or nothing comes by the timeout."""
    deadline = time.monotonic() + timeout_s
    watch = StallWatch(processes, stall_s)
    while True:
        codes = [p.poll() for p in processes]
        if done() or all(code == 0 for code in codes):
            return
        failed = [k for k, code in enumerate(codes) if code not in (None, 0)]
        if failed:
            _blame(processes, logs, ports)
        watch.sample()
        k = watch.stalled()
        if k is not None:
            # a collective that times out as the window closes (its timeout is the window) may be telling its worker
            # now, a busy machine delaying it: a worker that then fails names the cause as any failure does
            _wait_for_news(processes, logs)
            if any(code not in (None, 0) for code in (p.poll() for p in processes)):
                _blame(processes, logs, ports)
            # all wait on each other: the one whose last words are not a collective's timeout is the cause
            k = min(range(len(processes)), key=lambda j: (_is_victim(_last_message(logs[j])), j != k, j))
            raise ClusterError(f"worker {k} failed (hung? the workers used almost no CPU for {stall_s:g} s while "
                               f"the job was pending, waiting on each other); last message: "
                               f"{_last_message(logs[k]) or '(none)'}")
        if time.monotonic() > deadline:
            hung = [k for k, code in enumerate(codes) if code is None]
            k = hung[0]
            # serving workers never exit: which of them hangs is unknown, so the job is named, with the chief's news
            raise ClusterError(f"no result within the {timeout_s:g} s timeout (workers {', '.join(map(str, hung))} "
                               f"still running: hung?); worker {k}'s last message: "
                               f"{_last_message(logs[k]) or '(none)'}")
        time.sleep(0.05)


VICTIM_WORDS = ("collective", "aborted", "deadline", "unavailable", "timed out", "timeout")


def _wait_up_to_blame_wait(condition):
    """Poll condition() until it holds or BLAME_WAIT_S have passed."""
    end = time.monotonic() + BLAME_WAIT_S
    while time.monotonic() < end and not condition():
        time.sleep(0.05)


def _wait_for_news(processes, logs):
    """Wait up to BLAME_WAIT_S for a worker to exit or to say that its collective timed out."""
    _wait_up_to_blame_wait(lambda: any(p.poll() is not None for p in processes)
                           or any(_is_victim(_last_message(log)) for log in logs))


def _is_victim(message):
    """True when a worker's last message says it only waited on a peer (a collective timed out or was aborted)."""
    return any(word in (message or "").lower() for word in VICTIM_WORDS)


def _blame(processes, logs, ports):
    """A worker failed: wait briefly for the others, then raise naming the one that caused it."""
    _wait_up_to_blame_wait(lambda: all(p.poll() is not None for p in processes))
    messages = {k: _last_message(logs[k]) for k in range(len(processes))}
    for k, message in messages.items():
        if processes[k].poll() not in (None, 0) and any(s in message.lower() for s in PORT_IN_USE):
            raise _PortTaken(f"worker {k} could not bind 127.0.0.1:{ports[k]}: {message}")
    # the culprit: a worker killed by a signal or failing with its own error, before those whose
    # collectives merely timed out or were aborted because of it, and before one still running (hung)
    def rank(k):
        code = processes[k].poll()
        victim = _is_victim(messages[k])
        if code is not None and code < 0:
            return 0
        if code not in (None, 0) and not victim:
            return 1
        if code is None:
            return 2
        return 3
    culprit = min(range(len(processes)), key=lambda k: (rank(k), k))
    code = processes[culprit].poll()
    how = exit_reason(code) + (" (hung?)" if code is None else "")
    raise ClusterError(f"worker {culprit} failed ({how}); last message: {messages[culprit] or '(none)'}")


def train_job(X, y, W0, b0, lr, iterations, data_dir, repeats=0, collective_timeout_s=60.0, divergence_factor=1e6,
              warm=False):
    """The job dict of the study's gradient_tape:multi_worker (a warm-up, then `repeats` timed calls); X and y are saved as .npy in data_dir.

    warm=True: the previous train job of the session ran these same data (same data_dir, X, y, iterations and
    divergence rule): the workers reuse its warmed-up loop and make the timed calls only (tf_models.multi_worker).
    """
    data_dir = Path(data_dir)
    np.save(data_dir / "X.npy", X)
    np.save(data_dir / "y.npy", y)
    return {"task": "train", "data": {"X": str(data_dir / "X.npy"), "y": str(data_dir / "y.npy")},
            "dtype": str(X.dtype), "shard": "contiguous", "lr": float(lr), "iterations": int(iterations),
            "W0": np.asarray(W0, np.float64).reshape(-1, 1).tolist(), "b0": float(b0),
            "repeats": int(repeats), "divergence_factor": float(divergence_factor),
            "collective_timeout_s": float(collective_timeout_s), "warm": bool(warm)}
