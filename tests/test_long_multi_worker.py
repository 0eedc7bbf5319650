"""Multi-worker runs of any length: flat thread counts however many steps a run makes, and a stalled peer still fails the run.

Real worker processes on loopback (comparisons.processes.cluster). The thread leak this guards against:
TensorFlow starts one sleeping watchdog thread per collective that carries a timeout, so one
all-reduce per step under CommunicationOptions(timeout_seconds=60) grew each worker by about a
thread per step until it aborted ("Resource temporarily unavailable", some thousands of steps in).
Each such thread sleeps for the whole 60 s, so a run of LONG_STEPS steps that ends within a minute
shows every leaked thread at once: the count right after it would be LONG_STEPS above the start.
A count that stays flat over LONG_STEPS collectives is flat over any number of them.
"""
import concurrent.futures
import os
import signal
import threading
import time

import pytest

from comparisons.processes import cluster
from comparisons.inputs.data import initial_parameters, make_synthetic

from .equivalence import assert_matches_numpy

LONG_STEPS = 500  # a leak of one thread per step would add 500, against the 32 allowed, in a run far shorter than the 60 s a leaked thread lives
LEAK_MARGIN = 32  # threads a worker may gain over a run (TensorFlow's pools growing), far below one per step
BUSY_CPU_S = 1.0  # CPU seconds worker 0 spends on a fresh job before it is broken: a few times a job's set-up on warm workers, so in the descent
# the watchdog's window in the tests that break a run: the workers together under 2 % of a core for this long are
# stalled (cluster.StallWatch), and a stopped worker is told from one waiting on it by its /proc state
# (cluster.is_stopped), so a short window names the right one; a running worker on a busy machine still gets
# far more than 2 % of a core over it
STALL_WINDOW_S = 2.0


def threads_of(pid):
    """The thread count of process `pid` (/proc/<pid>/status), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            return next(int(line.split()[1]) for line in handle if line.startswith("Threads:"))
    except (OSError, StopIteration):
        return None


def lesson_job(tmp_path, iterations, **changes):
    data = make_synthetic(100, 1, 0.5, seed=3)
    W0, b0 = initial_parameters(1, seed=3)
    folder = tmp_path / f"job-{iterations}-{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    job = cluster.train_job(data.X, data.y, W0, b0, 0.05, iterations, folder, collective_timeout_s=60)
    return {**job, **changes}, (data.X, data.y, W0, b0)


class WarmSessions:
    """Two-worker ClusterSessions, each warmed by a short job (TensorFlow's start-up and thread pools behind it).

    A test that breaks its session's workers asks for the next one at once (prepare): its workers start and
    warm up in a background thread while the launcher's watchdog waits out the broken run, instead of after
    it. Only as many sessions are prepared as the tests still to come here need.
    """

    def __init__(self, tmp_path_factory, users):
        self._tmp, self._left = tmp_path_factory, users
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self.sessions, self._current, self._next = [], None, None

    def _warm(self):
        pids = []
        session = cluster.ClusterSession(2, on_start=pids.extend)
        self.sessions.append(session)
        warm_job, _ = lesson_job(self._tmp.mktemp("warm"), 100)
        session.run(warm_job, timeout_s=300)
        return session, pids

    def take(self):
        """A warm session for one test and its two worker pids (the one before it if it is still whole)."""
        self._left -= 1
        if self._current is None:
            self._current = (self._next or self._pool.submit(self._warm)).result()
            self._next = None
        return self._current

    def broken(self):
        """The current session's workers are being broken: start the next test's (if one comes) in the background."""
        self._current = None
        if self._left > 0 and self._next is None:
            self._next = self._pool.submit(self._warm)

    def close(self):
        self._pool.shutdown(wait=True)
        for session in self.sessions:
            session.close()


@pytest.fixture(scope="module")
def workers(request, tmp_path_factory):
    """Warm two-worker sessions for the tests of this file that use them (see WarmSessions).

    The long run and then the killed peer share one start; a test that breaks the workers has the next
    session started while it waits, so any order (or subset) of the tests works. The launcher's wait
    for a culprit's own exit is 1 s instead of 3: a killed worker is named by its signal at once and
    a stopped one never exits, so the wait changes no verdict here.
    """
    users = sum(1 for item in request.session.items
                if item.module is request.module and "workers" in getattr(item, "fixturenames", ()))
    warm = WarmSessions(tmp_path_factory, users)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cluster, "BLAME_WAIT_S", 1.0)
        try:
            yield warm
        finally:
            warm.close()


def warmed(workers):
    """A warm session of `workers` (see WarmSessions) and its two pids."""
    session, pids = workers.take()
    return session, pids[-2:]


class ThreadSampler:
    """Samples the workers' thread counts every 0.05 s in a background thread while a job runs."""

    def __init__(self, pids):
        self.pids, self.samples, self._stop = pids, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.05):
            self.samples.append([threads_of(pid) for pid in self.pids])

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


@pytest.mark.slow
@pytest.mark.long
def test_a_long_run_keeps_thread_counts_flat_and_matches_numpy(workers, tmp_path):
    session, pids = warmed(workers)
    baseline = [threads_of(pid) for pid in pids]
    job, (X, y, W0, b0) = lesson_job(tmp_path, LONG_STEPS)
    with ThreadSampler(pids) as sampler:
        result = session.run(job, timeout_s=600)
    # a leaked thread sleeps out its 60 s timeout: right after the run, all of them would still be here
    after = [threads_of(pid) for pid in pids]
    assert len(sampler.samples) > 3, "the long job ended before its thread counts could be watched"
    for k, start in enumerate(baseline):
        peak = max(sample[k] for sample in sampler.samples if sample[k] is not None)
        # with one thread per step alive for the 60 s timeout the peak would be LONG_STEPS above the start
        assert peak <= start + LEAK_MARGIN and after[k] <= start + LEAK_MARGIN, (k, start, peak, after[k])
    assert result["diverged_at"] is None and len(result["loss_curve"]) == LONG_STEPS + 1
    assert_matches_numpy(result, X, y, W0, b0, 0.05, LONG_STEPS)


def _run_and_break(workers, tmp_path, timeout_s, breaking):
    """Start a long job on warm workers, then breaking(pids) once its descent runs; (ClusterError text, seconds from the break to it)."""
    broken = {}
    session, pids = warmed(workers)
    set_up = cluster.cpu_seconds(pids[0])

    def break_when_running():
        # the descent is running once worker 0 has used some CPU on the new job (its set-up is a fraction of that)
        while (cluster.cpu_seconds(pids[0]) or 0) < set_up + BUSY_CPU_S:
            time.sleep(0.05)
        broken["at"] = time.monotonic()
        breaking(pids)
        workers.broken()  # the next test's workers start while the watchdog waits this run out

    job, _ = lesson_job(tmp_path, 2_000_000, collective_timeout_s=timeout_s)
    helper = threading.Thread(target=break_when_running, daemon=True)
    helper.start()
    try:
        with pytest.raises(cluster.ClusterError) as failure:
            session.run(job, timeout_s=900)
        ended = time.monotonic()
    finally:
        workers.broken()  # also when the run failed before it was broken: its session is not reused
        for pid in pids:  # a stopped worker gets SIGKILL from the launcher; make sure of it
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    helper.join(timeout=5)
    assert "at" in broken, f"the run failed before it was broken: {failure.value}"
    return str(failure.value), ended - broken["at"]


@pytest.mark.slow
@pytest.mark.long
@pytest.mark.parametrize("how", ["killed", "stopped"])
def test_a_peer_killed_or_stopped_mid_run_fails_the_run_within_the_timeout(workers, tmp_path, how):
    timeout_s = STALL_WINDOW_S  # the watchdog's window, as for a whole cluster that stalls
    sig = signal.SIGKILL if how == "killed" else signal.SIGSTOP
    message, waited = _run_and_break(workers, tmp_path, timeout_s, lambda pids: os.kill(pids[1], sig))
    assert "\n" not in message and message.startswith("worker 1 "), message
    assert ("SIGKILL" if how == "killed" else "hung") in message, message
    # the watchdog's window (or TensorFlow's heartbeats), the launcher's wait for the culprit and its polling;
    # generous for a busy machine, far below the run's own length (2,000,000 steps)
    assert waited < timeout_s + cluster.BLAME_WAIT_S + 30, waited


@pytest.mark.slow
@pytest.mark.long
def test_a_whole_cluster_that_stalls_is_ended_by_the_watchdog(workers, tmp_path):
    """Both workers stopped: no heartbeat or collective of TensorFlow's can notice; the launcher's watchdog does."""
    timeout_s = STALL_WINDOW_S
    message, waited = _run_and_break(workers, tmp_path, timeout_s, lambda pids: [os.kill(p, signal.SIGSTOP) for p in pids])
    assert "\n" not in message and f"almost no CPU for {timeout_s:g} s" in message, message
    assert timeout_s <= waited < timeout_s + 30, waited


def test_a_workers_cxx_abort_reaches_the_message(tmp_path):
    """An uncaught C++ exception prints its reason on an indented `what():` line, which the message keeps."""
    log = tmp_path / "worker0.stderr"
    log.write_text("I0000 port.cc:153] oneDNN custom operations are on.\n"
                   "terminate called after throwing an instance of 'std::system_error'\n"
                   "  what():  Resource temporarily unavailable\n")
    assert cluster._last_message(log) == ("terminate called after throwing an instance of 'std::system_error' "
                                          "what(): Resource temporarily unavailable")


def _watch_on_made_up_clocks(monkeypatch, clock, cpu_seconds, is_stopped, window_s):
    """A StallWatch over two running workers (pids 11 and 12) that reads clock[0], cpu_seconds(pid) and is_stopped(pid)."""
    class Running:
        def __init__(self, pid):
            self.pid = pid

        def poll(self):
            return None

    monkeypatch.setattr(cluster.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(cluster, "cpu_seconds", cpu_seconds)
    monkeypatch.setattr(cluster, "is_stopped", is_stopped)
    return cluster.StallWatch([Running(11), Running(12)], window_s=window_s)


def test_the_stall_watch_names_the_idlest_worker_only_after_a_whole_window(monkeypatch):
    """StallWatch on made-up CPU clocks: busy workers never stall; idle ones do after the window, naming the idlest."""
    clock, used = [0.0], {11: 0.0, 12: 0.0}

    watch = _watch_on_made_up_clocks(monkeypatch, clock, lambda pid: used[pid], lambda pid: False, window_s=10.0)
    for _ in range(30):  # busy: worker 11 computes at a full core
        clock[0] += 0.5
        used[11] += 0.5
        watch.sample()
        assert watch.stalled() is None
    for step in range(30):  # both wait: worker 11 at heartbeat crumbs, worker 12 at nothing
        clock[0] += 0.5
        used[11] += 0.001
        watch.sample()
        assert watch.stalled() == (1 if step >= 19 else None), step


def test_the_stall_watch_names_a_stopped_worker_before_an_idle_one(monkeypatch):
    """Both idle to the clock tick (a stopped worker, and one blocked in a collective on it): the stopped one is named."""
    clock, stopped = [0.0], {11: False, 12: True}

    watch = _watch_on_made_up_clocks(monkeypatch, clock, lambda pid: 0.0, lambda pid: stopped[pid], window_s=5.0)
    for _ in range(11):
        clock[0] += 0.5
        watch.sample()
    assert watch.stalled() == 1
    stopped[12] = False
    assert watch.stalled() == 0  # a tie on the CPU alone goes to the first


def test_is_stopped_reads_the_process_state():
    """This process runs; a child stopped by SIGSTOP is stopped until SIGCONT."""
    import subprocess
    import sys

    assert not cluster.is_stopped(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        os.kill(child.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 10
        while not cluster.is_stopped(child.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cluster.is_stopped(child.pid)
        os.kill(child.pid, signal.SIGCONT)
        deadline = time.monotonic() + 10
        while cluster.is_stopped(child.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not cluster.is_stopped(child.pid)
    finally:
        child.kill()
        child.wait()
