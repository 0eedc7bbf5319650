"""run_all.py end to end in a subprocess: the results contract, the report rebuild, atomic publishing."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from comparisons.config import IMPLEMENTATIONS
from comparisons.registry import REGISTRY
from comparisons.tables import TABLE_COLUMNS

from .conftest import REPO

CONTRACT_FILES = ["weights.csv", "loss_curves.csv", "gradient_check.csv", "timings.csv", "equivalence.csv",
                  "environment.json", "report.md", "loss_curves.png", "timings.png"]
TOLERANCE = {"float64": 1e-10, "float32": 1e-4}


def run_study(*args, timeout=600):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "run_all.py", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory):
    """One --quick study with the cheap experiments, shared by the tests below."""
    out = tmp_path_factory.mktemp("study") / "results"
    proc = run_study("--quick", "--out", str(out), "--experiments", "lr_sweep,lesson_claims")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def test_every_contract_file_with_exact_columns(quick_results):
    out, _ = quick_results
    for name in CONTRACT_FILES:
        assert (out / name).is_file(), name
    for name, columns in TABLE_COLUMNS.items():
        assert list(pd.read_csv(out / name).columns) == columns, name
    runs = list((out / "tensorboard").iterdir())
    assert len(runs) == len(IMPLEMENTATIONS) * 2  # one per implementation x dtype on the CPU
    assert all(any(f.name.startswith("events.out.tfevents") for f in r.iterdir()) for r in runs)


def test_every_implementation_for_every_dtype_and_device(quick_results):
    out, _ = quick_results
    weights = pd.read_csv(out / "weights.csv")
    present = set(zip(weights.implementation, weights.device, weights.dtype))
    expected_device = {"gradient_tape:mirrored": "cpu:0+cpu:1", "keras:mirrored": "cpu:0+cpu:1",
                       "gradient_tape:multi_worker": "worker0/cpu:0+worker1/cpu:0"}  # the default 2 replicas, 2 workers
    assert set(expected_device) == {n for n, impl in REGISTRY.items() if impl.distributed and impl.default}
    for name in IMPLEMENTATIONS:
        for dtype in ("float32", "float64"):
            assert (name, expected_device.get(name, "cpu"), dtype) in present
    assert ("ols", "cpu", "float64") in present and ("true", "none", "float64") in present
    curves = pd.read_csv(out / "loss_curves.csv")
    sizes = curves.groupby(["implementation", "device", "dtype"]).size()
    assert (sizes == 101).all()  # --quick: 100 iterations, N + 1 points


def test_values_are_sane(quick_results):
    out, _ = quick_results
    weights = pd.read_csv(out / "weights.csv")
    ols = weights[weights.implementation == "ols"].set_index("parameter").value
    numpy64 = weights[(weights.implementation == "numpy") & (weights.dtype == "float64")].set_index("parameter").value
    study = json.loads((out / "study.json").read_text())
    start = pd.Series(study["initial_weights"] + [study["initial_bias"]], index=["x1", "bias"])
    # 100 updates at lr 0.05 are not converged (the slow direction shrinks by 1 - lr * lambda_min per step),
    # but they must have closed most of the distance to least squares and nearly reached its loss
    assert np.abs(numpy64 - ols).max() < 0.25 * np.abs(start - ols).max()
    curves = pd.read_csv(out / "loss_curves.csv")
    final = curves[(curves.implementation == "numpy") & (curves.dtype == "float64")].loss.iloc[-1]
    data = pd.read_csv(out / "data.csv")
    ols_loss = np.mean((data.y - ols["x1"] * data.x1 - ols["bias"]) ** 2)
    assert ols_loss < final < 1.5 * ols_loss
    eq = pd.read_csv(out / "equivalence.csv")
    assert (eq.max_rel_loss_diff <= eq.dtype.map(TOLERANCE)).all(), eq
    grads = pd.read_csv(out / "gradient_check.csv")
    autodiff = grads[(grads.method == "analytic_vs_autodiff") & (grads.dtype == "float64")]
    assert len(autodiff) and autodiff.max_abs_diff.max() < 1e-12
    assert set(grads.method) == {"analytic_vs_autodiff", "finite_difference"}
    timings = pd.read_csv(out / "timings.csv")
    assert (timings.median_s > 0).all() and (timings.min_s <= timings.median_s).all()
    assert (timings[timings.implementation == "numpy"].repeats == 2).all()  # --quick: 2 timed repeats
    unrepeated = timings[timings.repeats == 0]  # too slow for the time budget: the warm-up is the measurement
    assert (unrepeated.median_s == unrepeated.first_call_s).all()
    assert np.allclose(timings[timings.implementation == "numpy"].speedup_vs_numpy, 1.0)
    env = json.loads((out / "environment.json").read_text())
    for key in ("versions", "cpu_model", "blas", "tensorflow", "numerics", "seed", "command_line",
                "git_commit", "started_at", "thread_settings"):
        assert key in env, key
    assert env["numerics"]["tf32_enabled"] is False and env["numerics"]["op_determinism"] is True
    assert (out / "lr_sweep.csv").is_file() and (out / "lesson_claims.csv").is_file()


def test_report_rebuilds_from_tables_alone(quick_results, tmp_path):
    out, _ = quick_results
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    for generated in ["report.md", "loss_curves.png", "timings.png"]:
        (copy / generated).unlink()
    proc = subprocess.run([sys.executable, "-m", "comparisons.report", str(copy)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (copy / "report.md").read_text() == (out / "report.md").read_text()
    assert (copy / "loss_curves.png").is_file() and (copy / "timings.png").is_file()


def test_terminal_summary_and_report_path(quick_results):
    out, proc = quick_results
    assert "report:" in proc.stderr and str(out / "report.md") in proc.stderr
    assert "Traceback" not in proc.stderr


def test_failed_run_leaves_previous_results_untouched(quick_results, tmp_path):
    out, _ = quick_results
    previous = tmp_path / "results"
    shutil.copytree(out, previous)
    before = {p.relative_to(previous): p.read_bytes() for p in previous.rglob("*") if p.is_file()}
    # a GPU that is not there fails after parsing, once the study has started loading TensorFlow
    proc = run_study("--quick", "--out", str(previous), "--only", "numpy", "--data", str(tmp_path / "missing.csv"),
                     "--target", "y")
    assert proc.returncode == 2 and proc.stderr.startswith("error:")
    after = {p.relative_to(previous): p.read_bytes() for p in previous.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]  # no staging folder left behind


def test_help_is_complete_and_does_not_load_tensorflow():
    proc = run_study("--help")
    assert proc.returncode == 0
    for flag in ["--out", "--seed", "--n-samples", "--features", "--noise", "--iterations", "--lr", "--dtype",
                 "--device", "--repeats", "--only", "--data", "--target", "--standardize", "--batch-size",
                 "--experiments", "--full", "--quick", "--debug"]:
        assert flag in proc.stdout
    # what keeps --help instant: TensorFlow, pandas and matplotlib are not imported to print it
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, run_all\ntry:\n    run_all.main(['--help'])\nexcept SystemExit:\n    pass\n"
         "print(sorted(m for m in ('tensorflow', 'keras', 'pandas', 'matplotlib') if m in sys.modules))"],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip().splitlines()[-1] == "[]"
