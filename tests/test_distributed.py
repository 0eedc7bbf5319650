"""tf.distribute variants against the hand-rolled numpy run, and the multi-worker launcher's reliability.

The mirrored variants need the CPU split into logical devices before TensorFlow initialises, so
they run in a fresh interpreter (one per test, several runs each, to pay TensorFlow's start-up
once). The multi-worker runs start real worker processes on loopback; every one of those tests
also checks that no worker is left behind. Oracle: handrolled.descend on the same data and start.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from comparisons.inputs.data import initial_parameters, make_synthetic
from comparisons.core.tolerances import EQUIVALENCE

from .conftest import REPO, mark_as_results, sigint_as_in_a_terminal
from .equivalence import assert_matches_numpy

ITERATIONS = 30  # small: each run is a few ms per step; the equivalence of 1000 steps is the default run's


def run_fresh(code, timeout=240):
    """Run `code` in a fresh interpreter at the repository root; the JSON of its last stdout line."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


MIRRORED_RUNS = """
import json
import numpy as np
from tf_models.quiet_import import import_tensorflow
import_tensorflow()
from tf_models.distributed import split_cpu
split_cpu(3)  # before anything initialises TensorFlow; R = 2 uses the first two
from tf_models.devices import configure_numerics
configure_numerics(0)
from comparisons.inputs.data import initial_parameters, make_synthetic
from comparisons.running.implementations import make_trainer
out = []
for name, n, replicas, dtype in CASES:
    data = make_synthetic(n, 2, 0.5, seed=1)
    X, y = data.X.astype(dtype), data.y.astype(dtype)
    W0, b0 = initial_parameters(2, seed=1)
    r = make_trainer(name, X, y, 0.05, ITERATIONS, device="cpu", replicas=replicas)(W0, b0)
    out.append(dict(name=name, n=n, replicas=replicas, dtype=dtype, device=r.device, weights=r.weights.tolist(),
                    bias=float(r.bias), loss_curve=r.loss_curve.tolist(), diverged_at=r.diverged_at,
                    grad_rel=None if r.grad_rel_diff is None else r.grad_rel_diff.tolist()))
# the runtime is initialised now: the same split again is nothing to do, a wider one is a clear error
from tf_models.distributed import DistributionError, replica_devices
import tensorflow as tf
split_cpu(3)
split_cpu(2)  # narrower: the first two of the three
try:
    split_cpu(4)
    message = None
except DistributionError as exc:
    message = str(exc)
split = dict(devices=replica_devices(2, "cpu"), message=message, logical=len(tf.config.list_logical_devices("CPU")))
print(json.dumps(dict(runs=out, split=split)))
"""


@pytest.mark.slow
def test_mirrored_variants_match_numpy_over_three_replicas_and_a_late_split_is_a_clear_error():
    """Both mirrored variants over R = 3 (101 rows: shards of 34, 34 and 33; R = 3 is not a power of two,
    which Keras' loss scaling needs a correction for in float64).

    R = 2 over 101 rows, both variants in both dtypes, is the end-to-end study's case
    (tests/test_end_to_end.py checks its equivalence rows). The same child (one TensorFlow start-up)
    then asks for the same split again and a narrower one (nothing to do: R = 2 uses the first two
    of three) and a wider one after the runtime started (a clear error).
    """
    cases = [(name, 101, 3, "float64") for name in ("gradient_tape:mirrored", "keras:mirrored")]
    found = run_fresh(f"CASES = {cases!r}\nITERATIONS = {ITERATIONS}\n" + textwrap.dedent(MIRRORED_RUNS))
    split, results = found["split"], found["runs"]
    assert split["devices"] == ["cpu:0", "cpu:1"] and split["logical"] == 3
    assert "cannot split the CPU into 4" in split["message"] and "fresh process" in split["message"]
    assert len(results) == len(cases)
    for r in results:
        data = make_synthetic(r["n"], 2, 0.5, seed=1)
        X, y = data.X.astype(r["dtype"]), data.y.astype(r["dtype"])
        try:
            assert_matches_numpy(r, X, y, *initial_parameters(2, seed=1), 0.05, ITERATIONS)
        except AssertionError:
            print("CASE", r["name"], r["n"], r["replicas"], r["dtype"])
            raise
        assert r["device"] == "+".join(f"cpu:{k}" for k in range(r["replicas"]))
        if r["name"].startswith("gradient_tape"):  # the reduced per-step check, recorded for every step
            assert len(r["grad_rel"]) == ITERATIONS and max(r["grad_rel"]) < EQUIVALENCE[r["dtype"]]


def test_shards_follow_array_split_and_cover_every_row():
    from tf_models.distributed import shards

    for n, parts in [(100, 2), (101, 2), (101, 3), (5, 4), (7, 7)]:
        expected = [(int(a[0]), int(a[-1]) + 1) for a in np.array_split(np.arange(n), parts)]
        assert shards(n, parts) == expected


@pytest.mark.parametrize("n, replicas", [(100, 2), (101, 2), (101, 3), (5, 4)])
def test_balanced_rows_weight_the_padding_out_of_the_mean(n, replicas):
    """Keras' per-replica mean over c rows, divided by R, must add up to the plain mean over n rows."""
    from tf_models.distributed import balanced_rows

    rng = np.random.default_rng(n + replicas)
    X, y = rng.standard_normal((n, 3)), rng.standard_normal((n, 1))
    X_p, y_p, w, rows = balanced_rows(X, y, replicas)
    c = rows // replicas
    assert rows % replicas == 0 and rows - n < replicas and X_p.shape == (rows, 3) and w.shape == (rows,)
    r = rng.standard_normal(rows) * (w > 0)  # any residuals on the real rows; padding is weighted out anyway
    keras_style = sum(np.sum(w[k * c:(k + 1) * c] * r[k * c:(k + 1) * c] ** 2) / c for k in range(replicas)) / replicas
    assert keras_style == pytest.approx(np.mean(r[:n] ** 2), rel=1e-14)
    np.testing.assert_array_equal(X_p[:n], X)
    assert not X_p[n:].any() and not y_p[n:].any() and not w[n:].any()


# ------------------------------------------------------------------------------------ multi-worker

def alive(pid):
    """Whether a process exists and is not a zombie (psutil-free: /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def children_running(parent, marker="tf_models.multi_worker"):
    """Pids of the processes whose parent is `parent` and whose command line contains `marker`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read().decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if ppid == parent and marker in cmdline:
            found.append(int(entry))
    return found


def lesson_job(tmp_path, dtype="float64", n=101, iterations=ITERATIONS, **changes):
    from comparisons.processes.cluster import train_job

    data = make_synthetic(n, 2, 0.5, seed=2)
    X, y = data.X.astype(dtype), data.y.astype(dtype)
    W0, b0 = initial_parameters(2, seed=2)
    job = train_job(X, y, W0, b0, 0.05, iterations, tmp_path, collective_timeout_s=30)
    return {**job, **changes}, (X, y, W0, b0)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Every real multi-worker job of these tests, in one shared two-worker session (as the driver runs them).

    The session is started ahead and waited for (start_shared, as the driver does); its first start meets
    a port someone else listens on (worker 0 cannot bind it) and the wait retries on fresh ports; it then serves
    a float64 lesson run on 101 rows (uneven shards) and the same job again marked warm (its loop reused), the
    study's adapter in float32 with its own timing, and the benchmark tasks, before a job whose
    worker 1 hangs ends it (worker 0's collective times out). A second session's worker 1 dies as it
    starts (killed before it could import TensorFlow: a death costs the launcher no start-up to see).
    What each step gave is checked by the tests below; every worker ever started must be gone at the end.
    """
    from comparisons.processes import cluster
    from comparisons.running.implementations import make_trainer

    tmp = tmp_path_factory.mktemp("served")
    found, started, failures = {}, [], {}

    def kill_worker_1(pids):
        started.append(pids)
        os.kill(pids[1], signal.SIGKILL)

    with socket.socket() as taken, pytest.MonkeyPatch.context() as patch:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        # short waits for the hang: it comes after both workers joined, so worker 0's collective times out
        # only because of it (2 s), and the launcher's wait for the culprit's own exit (1 s) changes no verdict
        patch.setattr(cluster, "BLAME_WAIT_S", 1.0)
        with cluster.shared_sessions(ports=[taken.getsockname()[1], cluster.free_ports(1)[0]],
                                     on_start=started.append):
            found["ready"] = cluster.start_shared(2)()  # started ahead and waited for, as the driver does
            (tmp / "lesson").mkdir()
            job, problem = lesson_job(tmp / "lesson")
            found["float64"] = (cluster.run_job(job, 2, timeout_s=240), problem)
            found["warm"] = cluster.run_job({**job, "warm": True, "repeats": 1}, 2, timeout_s=240)
            found["starts_before_adapter"] = len(started)

            data = make_synthetic(100, 1, 0.5, seed=0)
            X, y = data.X.astype("float32"), data.y.astype("float32")
            W0, b0 = initial_parameters(1, seed=0)
            trainer = make_trainer("gradient_tape:multi_worker", X, y, 0.05, ITERATIONS, workers=2)
            found["adapter"] = (trainer, trainer(W0, b0, repeats=2, budget_s=None), (X, y, W0, b0))
            found["benchmark"] = cluster.run_job(BENCHMARK_JOB, 2, timeout_s=240)
            found["starts_while_serving"] = len(started)
            (tmp / "hang").mkdir()
            job, _ = lesson_job(tmp / "hang", fault={"worker": 1, "kind": "hang"}, collective_timeout_s=2)
            with pytest.raises(cluster.ClusterError) as failure:
                cluster.run_job(job, 2, timeout_s=240)
            failures["hang"] = str(failure.value)
        with cluster.shared_sessions(on_start=kill_worker_1):
            (tmp / "killed").mkdir()
            job, _ = lesson_job(tmp / "killed")
            with pytest.raises(cluster.ClusterError) as failure:
                cluster.run_job(job, 2, timeout_s=240)
            failures["killed"] = str(failure.value)
    found["failures"], found["started"] = failures, started
    return found


BENCHMARK_JOB = {"task": "benchmark", "sizes": [100], "m": 4, "dtype": "float32", "target_s": 0.01, "repeats": 1,
                 "collective_timeout_s": 60, "allreduce": [{"numbers": 5, "rounds": 5}, {"numbers": 4096, "rounds": 2}]}


@pytest.mark.slow
def test_two_workers_match_numpy_after_a_taken_port(served):
    result, problem = served["float64"]
    assert served["ready"] is True  # the wait saw the second start's workers ready...
    assert served["starts_before_adapter"] == 2  # ...the first start failed on the taken port, the second ran the job
    assert_matches_numpy(result, *problem, 0.05, ITERATIONS)
    assert result["device"] == "worker0/cpu:0+worker1/cpu:0" and result["n"] == 101
    assert max(result["grad_rel_diff"]) < EQUIVALENCE["float64"]


@pytest.mark.slow
def test_a_warm_job_reuses_the_loop_of_the_job_before_and_makes_only_its_timed_calls(served):
    """The same data again, marked warm: no warm-up call (first_call_s None), one timed call, the same numbers."""
    warm, (first, _) = served["warm"], served["float64"]
    assert warm["warm"] is True and first["warm"] is False
    assert warm["first_call_s"] is None and len(warm["repeat_s"]) == 1 and warm["repeat_s"][0] > 0
    assert warm["weights"] == first["weights"] and warm["loss_curve"] == first["loss_curve"]


@pytest.mark.slow
def test_multi_worker_adapter_float32_with_its_own_timing(served):
    trainer, r, (X, y, W0, b0) = served["adapter"]
    assert trainer.spec.implementation.own_process
    assert_matches_numpy(r, X, y, W0, b0, 0.05, ITERATIONS)
    assert r.device == "worker0/cpu:0+worker1/cpu:0" and r.weights.dtype == np.float32
    assert r.timing.repeats == 2 and r.timing.first_call_s > 0 and len(r.grad_abs_diff) == ITERATIONS


@pytest.mark.slow
def test_one_session_serves_every_job_and_a_failed_job_ends_it(served):
    """The adapter's run and the benchmark went to the workers already running; a failure forced a fresh start."""
    assert served["starts_while_serving"] == 2  # no start after the taken port's retry
    assert len(served["started"]) == 3  # the second session, after the hang had ended the first
    assert not [pid for pids in served["started"] for pid in pids if alive(pid)]
    assert not children_running(os.getpid())


@pytest.mark.slow
def test_cluster_tasks_time_steps_and_allreduces(served):
    result = served["benchmark"]
    assert [r["numbers"] for r in result["allreduce"]] == [5, 4096]
    assert all(r["seconds"] > 0 and r["workers"] == 2 for r in result["allreduce"])
    (step,) = result["steps"]
    assert step["n"] == 100 and step["workers"] == 2 and step["seconds_per_step"] > 0
    assert np.isfinite(step["first_call_s"])


@pytest.mark.slow
@pytest.mark.parametrize("kind, named", [("killed", "SIGKILL"), ("hang", "hung")])
def test_a_dead_or_hanging_worker_fails_the_run_naming_it(served, kind, named):
    message = served["failures"][kind]
    # a hung worker's last line may be its gRPC complaint about the peer that gave up on it
    assert "\n" not in message and message.startswith("worker 1 ") and named in message, message


@pytest.mark.slow
def test_interrupted_multi_worker_run_ends_every_worker_and_keeps_previous_results(tmp_path):
    """Ctrl-C (SIGINT) while the workers run. SIGTERM takes the same path: run_all turns it into the same
    KeyboardInterrupt, which tests/test_robustness.py::test_signal_mid_run_keeps_previous_results checks."""
    sig = signal.SIGINT
    out = tmp_path / "results"
    out.mkdir()
    (out / "report.md").write_text("previous run\n")
    mark_as_results(out)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    driver = subprocess.Popen(
        [sys.executable, "run_all.py", "--only", "gradient_tape:multi_worker", "--experiments", "none",
         "--dtype", "float64", "--iterations", "100000", "--out", str(out)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        preexec_fn=sigint_as_in_a_terminal)
    try:
        deadline = time.monotonic() + 180
        workers = []
        while len(workers) < 2 and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.2)
            workers = children_running(driver.pid)
        assert len(workers) == 2, f"workers never started; driver said: {driver.stderr.read()[-2000:] if driver.poll() is not None else ''}"
        driver.send_signal(sig)
        _, stderr = driver.communicate(timeout=20)
        gone_by = time.monotonic() + 20
        while any(alive(pid) for pid in workers) and time.monotonic() < gone_by:
            time.sleep(0.1)
        assert not [pid for pid in workers if alive(pid)]
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert driver.returncode == 130
    assert stderr.strip().splitlines()[-1].startswith("error: interrupted")
    assert (out / "report.md").read_text() == "previous run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]  # no staging folder left


@pytest.mark.parametrize("flag", ["--replicas", "--workers"])
@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_bad_replicas_or_workers_are_usage_errors(flag, value):
    proc = subprocess.run([sys.executable, "run_all.py", flag, value], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and flag in lines[0]


def _fake_workers(tmp_path, scripts):
    """Short-lived stand-ins for workers: (Popen list, stderr log paths), each running `script`."""
    processes, logs = [], []
    for k, script in enumerate(scripts):
        log = tmp_path / f"worker{k}.stderr"
        with open(log, "wb") as handle:
            processes.append(subprocess.Popen([sys.executable, "-c", script], stderr=handle, start_new_session=True))
        logs.append(log)
    return processes, logs


@pytest.mark.parametrize("scripts, culprit, how", [
    # a peer whose collective timed out is a victim: the one still running is named as hung
    (["import time; time.sleep(60)",
      "import sys; print('error: worker 1: DeadlineExceeded: Collective ops is aborted by: timed out', file=sys.stderr);"
      " sys.exit(1)"], 0, "hung"),
    # a worker with its own error is named before the victims of its failure
    (["import sys; print('error: worker 0: UnavailableError: Collective ops is aborted by: peer died', file=sys.stderr);"
      " sys.exit(1)",
      "import sys; print('error: worker 1: ValueError: bad data', file=sys.stderr); sys.exit(1)"], 1, "exit code 1"),
    # killed by a signal: named as such
    (["import time; time.sleep(60)", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"], 1, "SIGKILL"),
], ids=["hung_peer", "own_error_before_victims", "killed"])
def test_the_launcher_names_the_worker_that_caused_a_failure(tmp_path, monkeypatch, scripts, culprit, how):
    from comparisons.processes import cluster

    monkeypatch.setattr(cluster, "BLAME_WAIT_S", 1.0)
    processes, logs = _fake_workers(tmp_path, scripts)
    try:
        with pytest.raises(cluster.ClusterError) as failure:
            cluster._wait(processes, logs, timeout_s=30, ports=[1, 2], done=lambda: False)
    finally:
        cluster.end_workers(processes, grace_s=2)
    message = str(failure.value)
    assert message.startswith(f"worker {culprit} failed") and how in message, message
    assert not [p.pid for p in processes if alive(p.pid)]


def test_a_collective_timeout_that_comes_as_the_watchdog_fires_still_names_the_hung_peer(tmp_path, monkeypatch):
    """Both workers idle, the watchdog's window is the collective's timeout: worker 0 reports its timeout 0.5 s after
    the window closes (a busy machine), and it is worker 1, asleep, that is named, not the first of two equally idle."""
    from comparisons.processes import cluster

    monkeypatch.setattr(cluster, "BLAME_WAIT_S", 3.0)
    stall_s = 1.0
    processes, logs = _fake_workers(tmp_path, [
        f"import sys, time; time.sleep({stall_s + 0.5}); "
        "print('error: worker 0: DeadlineExceeded: Collective ops is aborted by: timed out', file=sys.stderr); "
        "sys.exit(1)",
        "import time; time.sleep(60)"])
    try:
        with pytest.raises(cluster.ClusterError) as failure:
            cluster._wait(processes, logs, timeout_s=30, ports=[1, 2], done=lambda: False, stall_s=stall_s)
    finally:
        cluster.end_workers(processes, grace_s=2)
    message = str(failure.value)
    assert message.startswith("worker 1 failed") and "hung" in message, message
    assert not [p.pid for p in processes if alive(p.pid)]


def test_the_launcher_retries_when_a_worker_cannot_bind_its_port(tmp_path, monkeypatch):
    from comparisons.processes import cluster

    monkeypatch.setattr(cluster, "BLAME_WAIT_S", 1.0)
    processes, logs = _fake_workers(tmp_path, [  # TensorFlow's own message when the port is taken
        "import sys; print('error: worker 0: UnknownError: Could not start gRPC server', file=sys.stderr); sys.exit(1)",
        "import time; time.sleep(60)"])
    try:
        with pytest.raises(cluster._PortTaken):
            cluster._wait(processes, logs, timeout_s=30, ports=[1, 2], done=lambda: False)
    finally:
        cluster.end_workers(processes, grace_s=2)
    assert not [p.pid for p in processes if alive(p.pid)]


def test_a_job_without_a_result_by_the_hard_timeout_is_one_line_and_ends_the_session(tmp_path):
    """Stand-in workers that join and then never answer (stuck without a collective to time out)."""
    from comparisons.processes import cluster

    processes, logs = _fake_workers(tmp_path, [
        "import sys, time; print('worker 0: waiting for peers', file=sys.stderr, flush=True); time.sleep(60)",
        "import time; time.sleep(60)"])
    try:  # had the workers' 60 s run out first, they would have left with exit 0 and nothing raised
        with pytest.raises(cluster.ClusterError) as failure:
            cluster._wait(processes, logs, timeout_s=0.5, ports=[1, 2], done=lambda: False)
    finally:
        cluster.end_workers(processes, grace_s=2)
    message = str(failure.value)
    assert "\n" not in message and message.startswith("no result within the 0.5 s timeout"), message
    assert "workers 0, 1 still running" in message and message.endswith("waiting for peers")
    assert not [p.pid for p in processes if alive(p.pid)]


def test_a_workers_last_message_is_its_error_line_else_its_last_line_that_is_not_start_up_noise(tmp_path):
    from comparisons.processes.cluster import _last_message

    log = tmp_path / "worker1.stderr"
    noise = ("E0000 00:00:1795790000.091313   19795 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
             "Failed call to cuInit: UNKNOWN ERROR (303)\n")
    log.write_text("worker 1: injected fault: hanging\n" + noise)
    assert _last_message(log) == "worker 1: injected fault: hanging"
    log.write_text(noise)
    assert _last_message(log) == ""
    log.write_text("error: worker 1: ValueError: bad data\nlater chatter\n" + noise)
    assert _last_message(log) == "error: worker 1: ValueError: bad data"
    assert _last_message(tmp_path / "missing.stderr") == ""


def test_a_worker_whose_port_is_taken_says_so_before_importing_tensorflow(tmp_path):
    """The launcher's retry on a taken port then costs no TensorFlow start-up (the real retry: the `served` fixture)."""
    from comparisons.processes.cluster import PORT_IN_USE, tf_config

    job = tmp_path / "job.json"
    job.write_text(json.dumps({"task": "train"}))
    script = ("import sys\nfrom tf_models import multi_worker\ncode = multi_worker.main(['--job', sys.argv[1]])\n"
              "print('tensorflow' in sys.modules, code)")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {**os.environ, "TF_CONFIG": tf_config([taken.getsockname()[1], 1], 0)}
        proc = subprocess.run([sys.executable, "-c", script, str(job)], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=60)
    assert proc.stdout.split() == ["False", "1"], proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: worker 0: OSError: cannot bind port") and any(s in line.lower() for s in PORT_IN_USE)


def test_a_worker_imports_tensorflow_with_matplotlib_pandas_and_jax_hidden_and_restores_them(tmp_path):
    """Against a stand-in `tensorflow` that tries to import them (as Keras and TensorFlow Lite do) and records what it got."""
    fake = tmp_path / "tensorflow"
    fake.mkdir()
    (fake / "__init__.py").write_text(textwrap.dedent("""
        import importlib, os
        seen = {}
        for name in ("matplotlib", "pandas", "jax", "json"):
            try:
                importlib.import_module(name)
                seen[name] = "imported"
            except ImportError:
                seen[name] = "hidden"
        log_level = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
        class _Logger:
            level = None
            def setLevel(self, level):
                self.level = level
        _logger = _Logger()
        def get_logger():
            return _logger
        class config:
            @staticmethod
            def list_physical_devices():
                return []
        """))
    script = textwrap.dedent("""
        import json, sys
        from tf_models.quiet_import import import_tensorflow_for_worker
        tf = import_tensorflow_for_worker()
        import pandas, jax  # importable again once TensorFlow is loaded
        print(json.dumps(dict(seen=tf.seen, level=tf.get_logger().level, log_level=tf.log_level,
                              pandas_after=pandas.__name__, jax_after=jax.__name__)))
        """)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(REPO)])
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert found["seen"] == {"matplotlib": "hidden", "pandas": "hidden", "jax": "hidden", "json": "imported"}
    assert found["level"] == "ERROR" and found["log_level"] == "2"
    assert (found["pandas_after"], found["jax_after"]) == ("pandas", "jax")


def test_what_a_worker_leaves_in_its_temporary_directory_goes_with_the_sessions_scratch_folder(tmp_path, monkeypatch):
    """Stand-in workers report their temporary directory: inside the session's scratch folder, removed by close()."""
    import tempfile

    from comparisons.processes import cluster

    (tmp_path / "standin_worker.py").write_text(textwrap.dedent("""
        import json, pathlib, sys, tempfile, time
        inbox = pathlib.Path(json.loads(pathlib.Path(sys.argv[2]).read_text())["inbox"])
        seen = inbox / f"tmp-{time.monotonic_ns()}.json"
        seen.with_suffix(".part").write_text(json.dumps(tempfile.gettempdir()))
        seen.with_suffix(".part").rename(seen)
        time.sleep(60)
    """))
    monkeypatch.setattr(cluster, "WORKER_MODULE", "standin_worker")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    session = cluster.ClusterSession(workers=2)
    try:
        session._start()
        scratch = session._scratch
        deadline = time.monotonic() + 60
        while len(list(scratch.glob("tmp-*.json"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        seen = [Path(json.loads(p.read_text())) for p in scratch.glob("tmp-*.json")]
    finally:
        session.close()
    assert len(seen) == 2 and all(s == scratch / "tmp" for s in seen), (seen, scratch)
    assert Path(tempfile.gettempdir()) in scratch.parents and not scratch.exists()
