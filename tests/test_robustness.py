"""Runs never lose results: interrupts, divergence, failures late in a run (same-seed determinism: test_end_to_end.py)."""
import os
import signal
import subprocess
import sys
import threading

import pandas as pd
import pytest

from .conftest import REPO, mark_as_results, run_driver, sigint_as_in_a_terminal, snapshot

# The driver in a child process that prints TRAINING once it is inside a run (so the parent knows the study is
# past its staging folder): with HOLD, at its first timed training call, which then waits there for the signal
# instead of training; with IN_FIT, at the end of the second epoch of its first Keras fit, which goes on training.
# Either way the interrupt lands mid-run however fast or busy the machine is, with no clock involved.
TRAINING = "training now"
_ANNOUNCED_RUN = """
import sys, time
sys.path.insert(0, {repo!r})
import run_all
from comparisons.running import study

real_time_calls = study.time_interleaved

def announced(*args, **kwargs):
    if {hold!r}:
        print({line!r}, flush=True)
        while True:
            time.sleep(60)  # a signal ends the wait (its handler raises KeyboardInterrupt)
    return real_time_calls(*args, **kwargs)

study.time_interleaved = announced
if {in_fit!r}:
    import keras

    class Announce(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                print({line!r}, flush=True)

    real_fit = keras.Model.fit
    keras.Model.fit = lambda self, *args, callbacks=None, **kwargs: real_fit(
        self, *args, callbacks=[*(callbacks or []), Announce()], **kwargs)
sys.exit(run_all.main(sys.argv[1:]))
"""


@pytest.fixture
def previous_results(tmp_path):
    """A stand-in for an earlier results folder, with known bytes."""
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "report.md").write_text("# an earlier run\n")
    (folder / "weights.csv").write_text("implementation,device,dtype,parameter,value\nnumpy,cpu,float64,x1,3\n")
    return mark_as_results(folder)


def _interrupt_mid_run(previous_results, sig, *args, in_fit=False):
    """Start the driver, send `sig` once it is training, and check that it stopped cleanly with the old results kept.

    By default the run holds at its first timed call; in_fit=True lets a Keras fit train and interrupts it there.
    """
    before = snapshot(previous_results)
    script = _ANNOUNCED_RUN.format(repo=str(REPO), line=TRAINING, hold=not in_fit, in_fit=in_fit)
    # PYTHONFAULTHANDLER: should the driver die of a native fault instead (SIGSEGV, SIGABRT), the failure below shows
    # where it was in Python
    proc = subprocess.Popen([sys.executable, "-c", script,
                             "--out", str(previous_results), *args],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONFAULTHANDLER="1"), preexec_fn=sigint_as_in_a_terminal)
    guard = threading.Timer(600, proc.kill)  # against a hang only: nothing here depends on how long a step takes
    guard.start()
    try:
        lines = []
        while TRAINING not in lines:
            line = proc.stdout.readline()
            assert line, f"the study ended before training: {proc.wait()} {proc.stderr.read()}"
            lines.append(line.strip())
        assert list(previous_results.parent.glob(f".results.tmp-{proc.pid}.*"))  # it had begun writing
        proc.send_signal(sig)
        _, stderr = proc.communicate()
    finally:
        guard.cancel()
        if proc.poll() is None:  # a failed check above: leave no driver behind
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1].startswith("error: interrupted")
    assert "Traceback" not in stderr
    assert snapshot(previous_results) == before
    assert sorted(p.name for p in previous_results.parent.iterdir()) == ["results"]  # no half-written folder


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_run_keeps_previous_results(previous_results, sig):
    _interrupt_mid_run(previous_results, sig, "--only", "numpy", "--dtype", "float64", "--experiments", "none")


@pytest.mark.slow
def test_interrupt_inside_a_keras_fit_keeps_previous_results(previous_results):
    """The signal arrives while Keras trains (after its second of 5000 epochs): TensorFlow's code must let it through."""
    _interrupt_mid_run(previous_results, signal.SIGINT, "--only", "keras:numpy_input", "--iterations", "5000",
                       "--dtype", "float64", "--experiments", "none", in_fit=True)


def test_divergent_run_is_reported_and_others_finish(tmp_path, capsys):
    out = tmp_path / "results"
    proc = run_driver(capsys, "--out", out, "--lr", "10", "--iterations", "50", "--dtype", "float64", "--repeats", "1",
                      "--only", "numpy,keras,gradient_tape", "--experiments", "none")
    stderr = proc.stderr
    assert proc.returncode == 0, stderr
    runs = pd.read_csv(out / "runs.csv")
    assert set(runs.implementation) == {"numpy", "keras", "gradient_tape"}
    assert runs.status.str.startswith("diverged at iteration").all()
    assert runs.status.nunique() == 1  # every implementation stops at the same iteration
    assert "diverged at iteration" in (out / "report.md").read_text()
    k = int(runs.status[0].rsplit(" ", 1)[1])
    # every implementation ends with the parameters after k updates, Keras included (it cannot stop
    # inside one fit call, so they come from a second run of k updates): float64 agreement
    weights = pd.read_csv(out / "weights.csv").pivot_table(index="implementation", columns="parameter", values="value")
    for name in ("keras", "gradient_tape"):
        assert weights.loc[name].to_numpy() == pytest.approx(weights.loc["numpy"].to_numpy(), rel=1e-10)
    # timings say how many updates a timed call really did: numpy and the tape stop, Keras does all 50
    timings = pd.read_csv(out / "timings.csv").set_index("implementation")
    assert timings.iterations.to_dict() == {"numpy": k, "keras": 50, "gradient_tape": k, "ols": 0}  # ols: the solve
    # a speedup only where the work was the same: Keras did 50 updates against numpy's k
    assert pd.isna(timings.speedup_vs_numpy["keras"]) and timings.speedup_vs_numpy["gradient_tape"] > 0
    assert "warning: --lr 10 is above the largest stable step" in stderr


def test_curves_that_overflow_alike_are_no_difference():
    """inf against inf (and NaN against NaN) is the same result, not a NaN 'outside tolerance'."""
    import numpy as np

    from comparisons.output.tables import _relative_gaps

    a = np.array([1.0, 2.0, np.inf, np.nan])
    gaps = _relative_gaps(a, np.array([1.0, 2.5, np.inf, np.nan]))
    assert gaps.tolist() == [0.0, 0.2, 0.0, 0.0]
    assert np.isinf(_relative_gaps(np.array([np.inf]), np.array([1.0]))[0])  # a real difference stays one


def test_failure_after_staging_keeps_previous_results(previous_results, monkeypatch, capsys):
    """A study that fails late (tables written, the report not) exits 1 and leaves no trace but the old folder."""
    import run_all
    from comparisons.report import document as report

    before = snapshot(previous_results)
    seen = []

    def broken_build(folder, **_):
        seen.append(sorted(p.name for p in folder.iterdir()))  # the staging folder, full of tables by now
        raise RuntimeError("the disk filled up while drawing")

    monkeypatch.setattr(report, "build", broken_build)
    code = run_all.main(["--out", str(previous_results), "--only", "numpy", "--dtype", "float64", "--iterations", "20",
                         "--repeats", "1", "--experiments", "none"])
    assert code == 1
    assert seen and "weights.csv" in seen[0]  # it really failed after staging was written
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: the study failed: RuntimeError: the disk filled up while drawing")
    assert snapshot(previous_results) == before
    assert sorted(p.name for p in previous_results.parent.iterdir()) == ["results"]


def test_publish_puts_the_old_results_back_when_the_swap_fails(previous_results, tmp_path):
    """If the new folder cannot be renamed into place, the previous one is renamed back."""
    from pathlib import Path

    from comparisons.pipeline import publish

    class Unmovable(type(Path())):
        def rename(self, target):
            raise OSError("rename refused")

    staging = Unmovable(tmp_path / ".results.tmp-1")
    staging.mkdir()
    (staging / "report.md").write_text("# the new run\n")
    before = snapshot(previous_results)
    with pytest.raises(OSError, match="rename refused"):
        publish(staging, previous_results)
    assert snapshot(previous_results) == before
