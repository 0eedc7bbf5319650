"""Runs never lose results: interrupts, divergence, determinism."""
import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from .conftest import REPO


def _start(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen([sys.executable, "run_all.py", *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def previous_results(tmp_path):
    """A stand-in for an earlier results folder, with known bytes."""
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "report.md").write_text("# an earlier run\n")
    (folder / "weights.csv").write_text("implementation,device,dtype,parameter,value\nnumpy,cpu,float64,x1,3\n")
    return folder


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_run_keeps_previous_results(previous_results, sig):
    before = _snapshot(previous_results)
    # keras:numpy_input with many epochs keeps the study busy long enough to be interrupted mid-run
    proc = _start("--out", str(previous_results), "--only", "numpy,keras:numpy_input", "--iterations", "5000",
                  "--dtype", "float64", "--experiments", "none")
    staging = previous_results.parent / f".results.tmp-{proc.pid}"
    deadline = time.time() + 120
    while not staging.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert staging.exists(), "the study never started writing"
    time.sleep(1.0)
    proc.send_signal(sig)
    started = time.time()
    _, stderr = proc.communicate(timeout=60)
    assert time.time() - started < 30  # prompt
    assert proc.returncode == 130
    assert stderr.strip().splitlines()[-1].startswith("error: interrupted")
    assert "Traceback" not in stderr
    assert _snapshot(previous_results) == before
    assert sorted(p.name for p in previous_results.parent.iterdir()) == ["results"]  # no half-written folder


def test_divergent_run_is_reported_and_others_finish(tmp_path):
    out = tmp_path / "results"
    proc = _start("--out", str(out), "--lr", "10", "--iterations", "50", "--dtype", "float64", "--repeats", "1",
                  "--only", "numpy,keras,gradient_tape", "--experiments", "none")
    _, stderr = proc.communicate(timeout=300)
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
    assert timings.iterations.to_dict() == {"numpy": k, "keras": 50, "gradient_tape": k}
    # a speedup only where the work was the same: Keras did 50 updates against numpy's k
    assert pd.isna(timings.speedup_vs_numpy["keras"]) and timings.speedup_vs_numpy["gradient_tape"] > 0
    assert "warning: --lr 10 is above the largest stable step" in stderr


def test_curves_that_overflow_alike_are_no_difference():
    """inf against inf (and NaN against NaN) is the same result, not a NaN 'outside tolerance'."""
    import numpy as np

    from comparisons.tables import _relative_gaps

    a = np.array([1.0, 2.0, np.inf, np.nan])
    gaps = _relative_gaps(a, np.array([1.0, 2.5, np.inf, np.nan]))
    assert gaps.tolist() == [0.0, 0.2, 0.0, 0.0]
    assert np.isinf(_relative_gaps(np.array([np.inf]), np.array([1.0]))[0])  # a real difference stays one


def test_same_seed_same_results(tmp_path):
    outputs = []
    for k in range(2):
        out = tmp_path / f"run{k}"
        proc = _start("--out", str(out), "--iterations", "30", "--repeats", "1", "--seed", "3",
                      "--only", "numpy,keras,gradient_tape,gradient_tape:graph", "--experiments", "none")
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        outputs.append(out)
    for name in ["weights.csv", "loss_curves.csv", "gradient_check.csv"]:
        assert (outputs[0] / name).read_bytes() == (outputs[1] / name).read_bytes(), name


def test_failure_after_staging_keeps_previous_results(previous_results, monkeypatch, capsys):
    """A study that fails late (tables written, the report not) exits 1 and leaves no trace but the old folder."""
    import run_all
    from comparisons import report

    before = _snapshot(previous_results)
    seen = []

    def broken_build(folder):
        seen.append(sorted(p.name for p in folder.iterdir()))  # the staging folder, full of tables by now
        raise RuntimeError("the disk filled up while drawing")

    monkeypatch.setattr(report, "build", broken_build)
    code = run_all.main(["--out", str(previous_results), "--only", "numpy", "--dtype", "float64", "--iterations", "20",
                         "--repeats", "1", "--experiments", "none"])
    assert code == 1
    assert seen and "weights.csv" in seen[0]  # it really failed after staging was written
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: the study failed: RuntimeError: the disk filled up while drawing")
    assert _snapshot(previous_results) == before
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
    before = _snapshot(previous_results)
    with pytest.raises(OSError, match="rename refused"):
        publish(staging, previous_results)
    assert _snapshot(previous_results) == before
