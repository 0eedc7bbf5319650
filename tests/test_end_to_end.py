"""run_all.py end to end in a subprocess: the results contract, the report rebuild, atomic publishing."""
import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from comparisons.core import registry
from comparisons.core.registry import REGISTRY
from comparisons.output.tables import TABLE_COLUMNS
from comparisons.core.tolerances import EQUIVALENCE as TOLERANCE

from .conftest import REPO, imports_of_runs, run_driver, run_driver_process

CONTRACT_FILES = ["weights.csv", "loss_curves.csv", "gradient_check.csv", "timings.csv", "equivalence.csv",
                  "environment.json", "report.md", "loss_curves.png", "timings.png"]


QUICK_STUDY_ITERATIONS = 20
QUICK_STUDY_REPEATS = 1
QUICK_STUDY_ROWS = 101  # not divisible by the 2 replicas or workers


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory):
    """One --quick study with the cheap experiments, shared by the tests below.

    20 updates and 1 timed repeat instead of --quick's 100 and 2 (test_quick_means_few_updates_and_repeats
    checks those): every implementation, device, dtype, table and figure is the same; only the curves are
    shorter and the slowest calls (Keras fit) are made twice instead of three times. 101 rows instead of
    100: the default 2 replicas and 2 workers then hold unequal shards (51 and 50 rows), the case that
    only dividing by the global n gets right, and every equivalence row of the study must still hold.
    """
    out = tmp_path_factory.mktemp("study") / "results"
    proc = run_driver_process("--quick", "--iterations", QUICK_STUDY_ITERATIONS, "--repeats", QUICK_STUDY_REPEATS,
                              "--n-samples", QUICK_STUDY_ROWS, "--out", out, "--experiments", "lr_sweep,lesson_claims")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def study_lr(out):
    """The learning rate the study ran with, from its config.json."""
    return json.loads((out / "config.json").read_text())["lr"]


def test_quick_means_few_updates_and_repeats():
    """--quick alone: 100 updates, 2 timed repeats and the short time budget (the study above asks for fewer updates)."""
    import run_all

    parser = run_all.build_parser()
    argv = ["--quick"]
    config = run_all.config_from_args(parser.parse_args(argv), argv)
    assert (config.iterations, config.repeats, config.time_budget_s, config.quick) == (100, 2, 2.0, True)
    assert run_all.config_from_args(parser.parse_args([]), []).iterations > 100  # the default run does more


def tensorboard_losses(run_folder):
    """The loss scalars of one TensorBoard run as TensorBoard itself reads them: step -> value."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    events = EventAccumulator(str(run_folder), size_guidance={"tensors": 0}).Reload()
    return {e.step: float(tensor_util.make_ndarray(e.tensor_proto)) for e in events.Tensors("loss")}


@pytest.mark.slow
def test_every_contract_file_with_exact_columns(quick_results):
    out, _ = quick_results
    for name in CONTRACT_FILES:
        assert (out / name).is_file(), name
    for name, columns in TABLE_COLUMNS.items():
        assert list(pd.read_csv(out / name).columns) == columns, name
    # one TensorBoard run per row of runs.csv (every device TensorFlow saw, a GPU too), named after it
    runs = pd.read_csv(out / "runs.csv")
    expected = {f"{r.implementation.replace(':', '_')}_{r.device.replace(':', '').replace('/', '-')}_{r.dtype}"
                for r in runs.itertuples()}
    boards = list((out / "tensorboard").iterdir())
    assert {b.name for b in boards} == expected
    assert all(any(f.name.startswith("events.out.tfevents") for f in b.iterdir()) for b in boards)
    curves = pd.read_csv(out / "loss_curves.csv", float_precision="round_trip")
    keras32 = curves[(curves.implementation == "keras") & (curves.dtype == "float32")]
    assert tensorboard_losses(out / "tensorboard" / "keras_cpu_float32") == dict(zip(keras32.iteration, keras32.loss))


@pytest.mark.slow
def test_every_implementation_for_every_dtype_and_device(quick_results):
    out, _ = quick_results
    weights = pd.read_csv(out / "weights.csv")
    present = set(zip(weights.implementation, weights.device, weights.dtype))
    expected_device = {"gradient_tape:mirrored": "cpu:0+cpu:1", "keras:mirrored": "cpu:0+cpu:1",
                       "gradient_tape:multi_worker": "worker0/cpu:0+worker1/cpu:0",
                       "jax:sharded": "cpu:0+cpu:1"}  # the default 2 replicas, 2 workers
    assert set(expected_device) == {n for n, impl in REGISTRY.items() if impl.distributed}
    for name in registry.names():
        # a slow idiom (keras:numpy_input) runs in float64 alone when both dtypes are asked for, and says so
        dtypes = ("float64",) if REGISTRY[name].one_dtype_enough else ("float32", "float64")
        for dtype in dtypes:
            assert (name, expected_device.get(name, "cpu"), dtype) in present
    assert ("ols", "cpu", "float64") in present and ("true", "none", "float64") in present
    curves = pd.read_csv(out / "loss_curves.csv")
    sizes = curves.groupby(["implementation", "device", "dtype"]).size()
    assert (sizes == QUICK_STUDY_ITERATIONS + 1).all()  # N + 1 points


@pytest.mark.slow
def test_values_are_sane(quick_results):
    out, _ = quick_results
    weights = pd.read_csv(out / "weights.csv")
    ols = weights[weights.implementation == "ols"].set_index("parameter").value
    numpy64 = weights[(weights.implementation == "numpy") & (weights.dtype == "float64")].set_index("parameter").value
    study = json.loads((out / "study.json").read_text())
    start = pd.Series(study["initial_weights"] + [study["initial_bias"]], index=["x1", "bias"])
    # full-batch gradient descent on the MSE is linear in theta = (w, b): with A = [x, 1] and H = 2/n A^T A,
    # theta_N = theta_ols + (I - lr H)^N (theta_0 - theta_ols), a closed form that the numpy run must follow
    data = pd.read_csv(out / "data.csv", float_precision="round_trip")
    A = np.column_stack([data.x1, np.ones(len(data))])
    step = np.eye(2) - study_lr(out) * 2 / len(data) * A.T @ A
    theta = ["x1", "bias"]
    expected = ols[theta].values + np.linalg.matrix_power(step, QUICK_STUDY_ITERATIONS) @ (start - ols)[theta].values
    np.testing.assert_allclose(numpy64[theta].values, expected, rtol=TOLERANCE["float64"])
    assert np.abs(numpy64 - ols).max() < np.abs(start - ols).max()  # on its way to least squares
    curves = pd.read_csv(out / "loss_curves.csv", float_precision="round_trip")
    final = curves[(curves.implementation == "numpy") & (curves.dtype == "float64")].loss.iloc[-1]
    ols_loss = np.mean((data.y - ols["x1"] * data.x1 - ols["bias"]) ** 2)
    assert final == pytest.approx(np.mean((data.y - A @ expected) ** 2), rel=TOLERANCE["float64"]) and ols_loss < final
    eq = pd.read_csv(out / "equivalence.csv")
    assert (eq.max_rel_loss_diff <= eq.dtype.map(TOLERANCE)).all(), eq
    # SPEC's `allowed`: the dtype's tolerance, plus the rounding bound for a Gram route
    np.testing.assert_allclose(eq.allowed, eq.dtype.map(TOLERANCE) + eq.loss_bound.fillna(0.0), rtol=0, atol=0)
    assert eq.loss_bound.notna().any()  # the Gram routes ran: the bound is really added somewhere
    # the weights too: |w| here is below 10 (the loss curve's own check is relative), so 10 x tolerance absolute
    assert (eq.max_abs_weight_diff <= 10 * eq.dtype.map(TOLERANCE)).all(), eq
    distributed = {name for name, impl in REGISTRY.items() if impl.distributed}
    assert {(r.implementation, r.dtype) for r in eq.itertuples() if r.implementation in distributed} == {
        (name, dtype) for name in distributed for dtype in ("float32", "float64")}  # uneven shards, both dtypes
    grads = pd.read_csv(out / "gradient_check.csv")
    autodiff = grads[(grads.method == "analytic_vs_autodiff") & (grads.dtype == "float64")]
    assert len(autodiff) and autodiff.max_abs_diff.max() < 1e-12
    assert set(grads.method) == {"analytic_vs_autodiff", "finite_difference"}
    timings = pd.read_csv(out / "timings.csv", float_precision="round_trip")
    assert (timings.median_s > 0).all() and (timings.min_s <= timings.median_s).all()
    # up to --repeats timed repeats, as many as fit in the time budget at the row's pace (timing.calls_owed): none
    # when the warm-up alone took more than three budgets (timing.WARM_UP_BUDGETS), else at least one, and at least
    # as many as fit at its slowest timed call
    config = json.loads((out / "config.json").read_text())
    assert config["repeats"] == QUICK_STUDY_REPEATS
    budget, repeats = config["time_budget_s"], config["repeats"]
    assert ((timings.repeats == 0) == (timings.first_call_s > 3 * budget)).all(), \
        timings[["implementation", "first_call_s", "repeats"]]
    timed = timings[timings.repeats > 0]
    assert (timed.repeats >= (budget // timed.max_s).clip(upper=repeats)).all(), timed
    assert timings.repeats.between(0, repeats).all()
    unrepeated = timings[timings.repeats == 0]  # too slow for the time budget: the warm-up is the measurement
    assert (unrepeated.median_s == unrepeated.first_call_s).all()
    # the speedup is numpy's median in the same dtype over each median (same work here: nothing diverged)
    numpy_median = timings[timings.implementation == "numpy"].set_index("dtype").median_s
    np.testing.assert_allclose(timings.speedup_vs_numpy, timings.dtype.map(numpy_median) / timings.median_s, rtol=1e-12)
    env = json.loads((out / "environment.json").read_text())
    for key in ("versions", "cpu_model", "blas", "tensorflow", "numerics", "seed", "command_line",
                "git_commit", "started_at", "thread_settings"):
        assert key in env, key
    assert env["numerics"]["tf32_enabled"] is False and env["numerics"]["op_determinism"] is True
    assert (out / "lr_sweep.csv").is_file() and (out / "lesson_claims.csv").is_file()


@pytest.mark.slow
def test_report_rebuilds_from_tables_alone(quick_results, tmp_path):
    from comparisons.report import drawing

    out, _ = quick_results
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    for generated in ["report.md", *(p.name for p in copy.glob("*.png"))]:
        (copy / generated).unlink()
    proc = subprocess.run([sys.executable, "-m", "comparisons.report", str(copy)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = (copy / "report.md").read_text()
    # the run drew its figures in two processes (report.drawing's helper), the rebuild in one: the same files, and
    # the same report (the run's text was written once every figure it may embed was drawn)
    assert text == (out / "report.md").read_text()
    drawn = sorted(p.name for p in out.glob("*.png"))
    assert drawn == sorted(p.name for p in copy.glob("*.png"))
    assert [n for n in drawn if (out / n).read_bytes() != (copy / n).read_bytes()] == []
    assert not (out / drawing.CLAIMS).exists()
    # findings first, then the sections; every run of the tables named in the report; every figure it embeds drawn
    assert text.index("## Findings") < text.index("## Set-up") < text.index("## Equivalence") < text.index("## Timings")
    findings = text.split("## Findings", 1)[1].split("## ", 1)[0]
    assert 3 <= findings.count("\n- ") <= 10
    for r in pd.read_csv(copy / "timings.csv").itertuples():  # by title, as the reader knows each way
        label = "least squares, solved in closed form" if r.iterations == 0 else registry.label(r.implementation)
        assert f"| {label} | {r.device} |" in text
    for image in re.findall(r"!\[[^]]*\]\(([^)]+)\)", text):
        assert (copy / image).stat().st_size > 1000, image
    assert {"lr_sweep.png", "lesson_claims.png", "loss_curves.png", "timings.png"} <= {
        p.name for p in copy.glob("*.png")}


@pytest.mark.slow
def test_same_seed_same_numbers_here_as_in_the_fresh_study(quick_results, tmp_path, capsys, monkeypatch):
    """The study above ran in a fresh interpreter; the same arguments in this one (whatever ran here before)
    give the same bytes in every table of numbers, run by run. The report is skipped here: the tables are
    written before it is drawn from them."""
    from comparisons.report import document as report

    out, _ = quick_results
    names = ["numpy", "keras", "gradient_tape", "gradient_tape:graph"]  # the in-process ones of both kinds
    monkeypatch.setattr(report, "build", lambda folder, **_: folder / "report.md")
    here = run_driver(capsys, "--quick", "--iterations", QUICK_STUDY_ITERATIONS, "--repeats", QUICK_STUDY_REPEATS,
                      "--n-samples", QUICK_STUDY_ROWS, "--out", tmp_path / "here",
                      "--only", ",".join(names), "--experiments", "none")
    assert here.returncode == 0, here.stderr
    for table in ["weights.csv", "loss_curves.csv", "gradient_check.csv"]:
        mine = pd.read_csv(tmp_path / "here" / table, dtype=str)  # as text: equal frames are equal bytes
        fresh = pd.read_csv(out / table, dtype=str)
        # those runs, and the rows of no run (weights.csv's truth and least squares)
        fresh = fresh[fresh.implementation.isin(names) | ~fresh.implementation.isin(REGISTRY)].reset_index(drop=True)
        assert len(fresh) > 0
        pd.testing.assert_frame_equal(mine, fresh, obj=table)


@pytest.mark.slow
def test_terminal_summary_and_report_path(quick_results):
    out, proc = quick_results
    assert "report:" in proc.stderr and str(out / "report.md") in proc.stderr
    assert "Traceback" not in proc.stderr
    # TensorFlow's C++ start-up lines (absl's "I0000 00:00:...", "E0000 ... failed call to cuInit" on a CPU-only
    # machine) are filtered out of the user's terminal; so is absl's notice before its log is initialised
    lines = proc.stderr.replace("\r", "\n").splitlines()
    assert not [line for line in lines if re.match(r"[IWEF]\d{4} ", line) or "absl::InitializeLog" in line]


def test_help_is_complete():
    proc = run_driver_process("--help")
    assert proc.returncode == 0 and proc.stderr == ""
    for flag in ["--out", "--seed", "--n-samples", "--features", "--noise", "--iterations", "--lr", "--dtype",
                 "--device", "--repeats", "--only", "--data", "--target", "--standardize", "--batch-size",
                 "--experiments", "--full", "--quick", "--debug"]:
        assert flag in proc.stdout
    # what keeps --help instant (no TensorFlow, numpy, pandas or matplotlib) is checked in test_cli_errors


def test_a_numpy_only_run_never_loads_tensorflow(tmp_path):
    """--only numpy under the default --device auto: no TensorFlow, yet the TensorBoard runs are written and read back."""
    out = tmp_path / "results"
    (found,) = imports_of_runs([["--out", out, "--only", "numpy", "--experiments", "none", "--iterations", "20",
                                 "--repeats", "1"]])
    assert found["code"] == 0, found["stderr"]
    assert "tensorflow" not in found["heavy"] and "keras" not in found["heavy"], found["heavy"]
    assert {"numpy", "pandas"} <= set(found["heavy"])  # the probe does see what the run imported
    curves = pd.read_csv(out / "loss_curves.csv", float_precision="round_trip")
    assert set(curves.implementation) == {"numpy"}
    for dtype in ("float32", "float64"):
        expected = curves[curves.dtype == dtype]
        # the TensorFlow-free writer keeps every loss exactly (float64), as loss_curves.csv has it
        assert tensorboard_losses(out / "tensorboard" / f"numpy_cpu_{dtype}") == dict(zip(expected.iteration,
                                                                                             expected.loss))
    environment = json.loads((out / "environment.json").read_text())
    assert environment["tensorflow"] is None  # no TensorFlow devices looked up for a run that had none to place


def test_the_driver_loads_tensorflow_only_for_work_in_its_own_process(monkeypatch):
    """A multi-worker-only run leaves TensorFlow to its workers; one in-process TensorFlow run, or an experiment, loads it."""
    import run_all
    from comparisons.running.devices import resolve_devices
    from comparisons.running.study import plan
    from tf_models import quiet_import as tf_runtime

    class Loaded(Exception):
        pass

    def refuse():
        raise Loaded

    monkeypatch.setattr(tf_runtime, "import_tensorflow", refuse)
    parser = run_all.build_parser()

    def config(*argv):
        return run_all.config_from_args(parser.parse_args(list(argv)), list(argv))

    def resolve(config):
        return resolve_devices(config, plan(config))

    assert resolve(config("--only", "gradient_tape:multi_worker", "--experiments", "none")) == {"numpy": ["cpu"]}
    for argv in (["--only", "gradient_tape:multi_worker,keras", "--experiments", "none"],
                 ["--only", "gradient_tape:multi_worker", "--experiments", "lr_sweep"]):
        with pytest.raises(Loaded):
            resolve(config(*argv))
