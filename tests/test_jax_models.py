"""jax_models against the hand-rolled numpy descent: jax, jax:eager, op-by-op, jax:sharded and keras:jax.

Every JAX trainer runs the lesson's data (n = 100, m = 1) and an m = 3, n = 101 case (rows not
divisible by 2 devices) in both dtypes and is compared with handrolled.descend point by point
within comparisons.core.tolerances.EQUIVALENCE. Trainers are built once per module (one compile per
trainer shape); keras:jax and the CPU split need their own processes. That jax, jax:eager and keras:jax
run where TensorFlow cannot be imported is tests/test_without_tensorflow.py's driver run.
"""
import dataclasses
import json
import logging
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import handrolled
from loop_result import LoopResult

from comparisons.inputs.data import initial_parameters, make_synthetic
from comparisons.core.tolerances import EQUIVALENCE

from .conftest import REPO
from .equivalence import assert_matches_numpy

DTYPES = ["float64", "float32"]
LR = 0.05
DIVERGENT_LR = 2.0  # the lesson's data blow up within a few updates at this rate
CASES = {"lesson": (100, 1, 1000), "m3": (101, 3, 200)}  # n, m, iterations


def case_data(case):
    n, m, iterations = CASES[case]
    data = make_synthetic(n, m, 0.5, seed=0)
    return data, initial_parameters(m, seed=0), iterations


@pytest.fixture(scope="module")
def gradient_tolerance():
    """The study's per-step tolerance, enforced on every autodiff-checking row."""
    from comparisons.core.tolerances import GRADIENT

    return GRADIENT


@pytest.fixture(scope="module")
def trainer():
    """trainer(mode, dtype, case): a JAX trainer built (and compiled at its first call) once per module."""
    from functools import cache

    from jax_models.loop import make_jax_trainer

    @cache
    def build(mode, dtype, case):
        data, _, iterations = case_data(case)
        return make_jax_trainer(data.X.astype(dtype), data.y.astype(dtype), LR, iterations, mode=mode)

    return build


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["jit", "python_loop"])
def test_jax_matches_numpy(trainer, gradient_tolerance, mode, dtype, case):
    data, (W0, b0), iterations = case_data(case)
    X, y = data.X.astype(dtype), data.y.astype(dtype)
    result = trainer(mode, dtype, case)(W0, b0)
    assert_matches_numpy(result, X, y, W0, b0, LR, iterations)
    assert type(result) is LoopResult  # the loop result tf_models and jax_models share
    assert (result.device, result.mode, result.jit_compile) == ("cpu", mode, True)
    # the per-step check: one row per update, all within the study's tolerance
    assert result.grad_abs_diff.shape == result.grad_rel_diff.shape == (iterations,)
    assert float(result.grad_rel_diff.max()) <= gradient_tolerance[dtype]
    assert float(result.grad_abs_diff.max()) < (1e-12 if dtype == "float64" else 1e-4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.bias = 0.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_op_by_op_matches_numpy(gradient_tolerance, dtype):
    from jax_models.loop import make_jax_trainer

    data, (W0, b0), _ = case_data("m3")
    X, y = data.X.astype(dtype), data.y.astype(dtype)
    result = make_jax_trainer(X, y, LR, 30, mode="op_by_op")(W0, b0)  # every op dispatched alone: a short run
    assert_matches_numpy(result, X, y, W0, b0, LR, 30)
    assert (result.mode, result.jit_compile) == ("op_by_op", False)
    assert float(result.grad_rel_diff.max()) <= gradient_tolerance[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
def test_step_values_are_the_lessons_gradients(dtype):
    """One step against numpy: loss, autodiff gradients, and the recorded differences' own definition."""
    from jax_models.loop import jnp, step_values

    data, (W0, b0), _ = case_data("m3")
    X, y = data.X.astype(dtype), data.y.astype(dtype)
    W, b = W0.astype(dtype), np.dtype(dtype).type(b0)
    n = X.shape[0]
    col_abs_max = np.abs(X).sum(axis=0).max()
    loss, grad_W, grad_b, abs_diff, rel_diff = step_values(jnp.asarray(X), jnp.asarray(y), jnp.asarray(W),
                                                           jnp.asarray(b), n, col_abs_max)
    residuals = y - handrolled.predict(X, W, b)
    analytic_W, analytic_b = handrolled.gradients_from_residuals(X, residuals)
    tol = EQUIVALENCE[dtype]
    assert float(loss) == pytest.approx(float(handrolled.mse(y, handrolled.predict(X, W, b))), rel=tol)
    np.testing.assert_allclose(np.asarray(grad_W), analytic_W, rtol=tol)
    assert float(grad_b) == pytest.approx(float(analytic_b), rel=tol)
    # the relative difference is the absolute one over 2/n max|r| max(sum_i |x_ij|, n)
    scale = 2.0 / n * np.abs(residuals).max() * max(col_abs_max, n)
    assert float(rel_diff) == pytest.approx(float(abs_diff) / scale, rel=1e-3)
    expected_abs = max(np.abs(np.asarray(grad_W) - analytic_W).max(), abs(float(grad_b) - float(analytic_b)))
    assert float(abs_diff) <= 8 * expected_abs + 8 * np.finfo(dtype).eps * scale  # same quantity, other rounding


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["jit", "python_loop"])
def test_divergence_stops_where_numpy_does(trainer, mode, dtype):
    data, (W0, b0), iterations = case_data("lesson")
    X, y = data.X.astype(dtype), data.y.astype(dtype)
    result = trainer(mode, dtype, "lesson")(W0, b0, DIVERGENT_LR)  # the same compiled trainer, another rate
    reference = assert_matches_numpy(result, X, y, W0, b0, DIVERGENT_LR, iterations)
    assert reference.diverged_at is not None and reference.diverged_at < iterations
    assert result.diverged_at == handrolled.divergence_point(result.loss_curve) == reference.diverged_at
    assert len(result.loss_curve) == result.diverged_at + 1  # the curve ends at the divergent point
    assert result.grad_abs_diff.shape == (result.diverged_at + 1,)  # the divergent step was checked too


def test_a_new_rate_does_not_retrace(trainer, caplog):
    """lr is an input of the compiled loop: a second rate compiles nothing."""
    import jax

    data, (W0, b0), _ = case_data("lesson")
    train = trainer("jit", "float64", "lesson")
    train(W0, b0)
    previous = jax.config.jax_log_compiles
    jax.config.update("jax_log_compiles", True)
    try:
        with caplog.at_level(logging.DEBUG):
            train(W0, b0, 0.01)
    finally:
        jax.config.update("jax_log_compiles", previous)
    assert not [r for r in caplog.records if "Compiling" in r.getMessage()]


def test_zero_iterations_give_the_starting_loss():
    from jax_models.loop import make_jax_trainer

    data, (W0, b0), _ = case_data("lesson")
    result = make_jax_trainer(data.X, data.y, LR, 0)(W0, b0)
    assert_matches_numpy(result, data.X, data.y, W0, b0, LR, 0)
    assert result.grad_abs_diff.shape == (0,)


@pytest.mark.parametrize("case", list(CASES))
def test_finite_differences_agree_with_autodiff(trainer, case):
    from comparisons.running.finite_difference import central_differences, check
    from jax_models.finite_difference import autodiff_gradient64

    data, (W0, b0), _ = case_data(case)
    result = trainer("jit", "float64", case)(W0, b0)
    for W, b in [(W0, b0), (result.weights, result.bias)]:  # the start and the end, as the study checks
        abs_diff, rel_diff, within = check(autodiff_gradient64(data.X, data.y, W, b), data.X, data.y, W, b)
        assert within
        assert rel_diff < 1e-8  # central differences of a quadratic: rounding only, ~eps * loss / h
        # against the lesson's analytic gradient, an oracle independent of JAX's autodiff
        numeric, rounding = central_differences(data.X, data.y, W, b)
        grad_W, grad_b = handrolled.gradients(data.X, data.y, np.asarray(W, np.float64).reshape(-1, 1), float(b))
        analytic = np.append(grad_W.ravel(), grad_b)
        assert np.all(np.abs(numeric - analytic) <= 100 * rounding + 1e-12 * np.abs(analytic).max())


def test_finite_differences_see_a_wrong_gradient():
    """The check is not vacuous: the numeric gradient is far from a gradient off by 1e-6 relative."""
    from comparisons.running.finite_difference import central_differences

    data, (W0, b0), _ = case_data("lesson")
    numeric, rounding = central_differences(data.X, data.y, W0, b0)
    grad_W, grad_b = handrolled.gradients(data.X, data.y, W0, b0)
    wrong = np.append(grad_W.ravel(), grad_b) * (1 + 1e-6)
    assert np.any(np.abs(numeric - wrong) > 100 * rounding)


def test_devices_and_labels():
    from jax_models import runtime

    jax = runtime.import_jax()
    assert jax.config.jax_enable_x64 and str(jax.config.jax_default_matmul_precision) == "highest"
    from comparisons.running.devices import DeviceError, resolve_for

    assert resolve_for("jax", "cpu") == ["cpu"]
    assert resolve_for("jax", "auto") == ["cpu"] + runtime.detected_gpus()
    assert runtime.label_of(runtime.device_of("cpu")) == "cpu"
    with pytest.raises(DeviceError, match="unknown device 'tpu'"):
        resolve_for("jax", "tpu")
    report = runtime.runtime_report()
    assert report["x64"] and report["jax"] == jax.__version__


def test_gpu_request_without_a_gpu_names_what_jax_saw():
    from jax_models import runtime

    if runtime.detected_gpus():
        pytest.skip("JAX sees a GPU here")
    from comparisons.running.devices import DeviceError, resolve_for

    with pytest.raises(DeviceError) as error:
        resolve_for("jax", "gpu")
    message = str(error.value)
    assert "JAX detected no GPU" in message and "cpu:0" in message and "\n" not in message


def _gpu_or_skip():
    from jax_models import runtime

    gpus = runtime.detected_gpus()
    if not gpus:
        pytest.skip(f"JAX sees no GPU (it sees: {', '.join(runtime.seen_devices())})")
    return gpus[0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_jax_on_the_gpu_matches_numpy(dtype):
    gpu = _gpu_or_skip()
    from jax_models.loop import make_jax_trainer

    data, (W0, b0), iterations = case_data("lesson")
    X, y = data.X.astype(dtype), data.y.astype(dtype)
    result = make_jax_trainer(X, y, LR, iterations, device=gpu)(W0, b0)
    assert_matches_numpy(result, X, y, W0, b0, LR, iterations)
    assert result.device == gpu


# ---- in other processes -----------------------------------------------------------------------------

def run_python(script, env_extra=None, timeout=600):
    """Run a Python script in a fresh interpreter at the repository root; its last stdout line as JSON."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    env.update(env_extra or {})
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@pytest.fixture(scope="module")
def keras_runs():
    """keras:jax jobs in one child (one Keras and JAX start-up): per dtype, full batch (the lesson's rate and a
    divergent one) and a mini-batch order; first of all, Keras' promotion as shipped (50 updates in float64).

    One child serves several jobs in turn (keras_jax_child.run_jobs), each building and compiling its own model
    and setting Keras' promotion for itself: the float64 jobs after the one as shipped must still match numpy
    to float64's tolerance (test_keras_jax_matches_numpy), the float32 jobs after the float64 ones float32's,
    and the one as shipped must still round (its own test).
    """
    from comparisons.running.keras_jax_child import run_jobs

    data, (W0, b0), iterations = case_data("lesson")
    order = handrolled.sample_order(data.n, handrolled.epochs_needed(data.n, 32, 40), seed=5)
    batches = handrolled.batch_indices(order, 32, 40)
    jobs = {"as_shipped": dict(X=data.X, y=data.y, W0=W0, b0=b0, rates=(LR,), iterations=50, keep_float64=False)}
    for dtype in DTYPES:  # float64 first: float32's jobs then follow a float64 one that kept float64
        X, y = data.X.astype(dtype), data.y.astype(dtype)
        jobs |= {
            (dtype, "full"): dict(X=X, y=y, W0=W0, b0=b0, rates=(LR, DIVERGENT_LR), iterations=iterations, repeats=2),
            (dtype, "batches"): dict(X=X, y=y, W0=W0, b0=b0, rates=(LR,), iterations=40, batches=batches)}
    return dict(zip(jobs, run_jobs(list(jobs.values())))), batches


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES)
def test_keras_jax_matches_numpy(keras_runs, dtype):
    runs, batches = keras_runs
    data, (W0, b0), iterations = case_data("lesson")
    X, y = data.X.astype(dtype), data.y.astype(dtype)
    full = runs[dtype, "full"]
    result = full.results[0]
    assert_matches_numpy(result, X, y, W0, b0, LR, iterations)
    assert (result.device, result.mode, result.jit_compile, result.grad_abs_diff) == ("cpu", "keras", True, None)
    assert not full.tensorflow_imported  # TensorFlow is installed here, yet Keras on JAX never loaded it
    assert full.float64_kept == (dtype == "float64") and full.learning_rate_dtype == dtype
    assert full.first_call_s > 0 and len(full.repeat_s) == 2 and min(full.repeat_s) > 0
    # mini-batch: the study's sample order, the loss before each update on its batch
    assert_matches_numpy(runs[dtype, "batches"].results[0], X, y, W0, b0, LR, 40, batches=batches)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES)
def test_keras_jax_divergence_point_is_numpys(keras_runs, dtype):
    """fit cannot stop between steps: the curve runs on, and its first divergent point is numpy's."""
    runs, _ = keras_runs
    data, (W0, b0), iterations = case_data("lesson")
    diverging = runs[dtype, "full"].results[1]
    assert len(diverging.loss_curve) == iterations + 1 and diverging.diverged_at is None
    reference = handrolled.descend(data.X.astype(dtype), data.y.astype(dtype), W0, b0, DIVERGENT_LR, iterations)
    point = handrolled.divergence_point(diverging.loss_curve)
    assert point == reference.diverged_at is not None
    np.testing.assert_allclose(diverging.loss_curve[:point + 1], reference.loss_curve, rtol=EQUIVALENCE[dtype])


@pytest.mark.slow
def test_keras_as_shipped_rounds_float64_through_float32(keras_runs):
    """Without keep_float64, Keras' promotion makes the JAX backend's mse a float32 mean: off numpy by float32
    rounding, far beyond float64's tolerance; the study's keras:jax keeps float64 (test above)."""
    runs, _ = keras_runs
    data, (W0, b0), _ = case_data("lesson")
    run = runs["as_shipped"]
    reference = handrolled.descend(data.X, data.y, W0, b0, LR, 50)
    gap = np.max(np.abs(run.results[0].loss_curve / reference.loss_curve - 1))
    assert not run.float64_kept and run.learning_rate_dtype == "float64"  # the rate is float64: the gap is the mean's
    assert EQUIVALENCE["float64"] < gap < 10 * np.finfo(np.float32).eps


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES)
def test_keras_jax_on_the_gpu_matches_numpy(dtype):
    gpu = _gpu_or_skip()
    from comparisons.running.keras_jax_child import make_keras_jax_trainer

    data, (W0, b0), iterations = case_data("lesson")
    X, y = data.X.astype(dtype), data.y.astype(dtype)
    result = make_keras_jax_trainer(X, y, LR, iterations, device=gpu)(W0, b0)
    assert_matches_numpy(result, X, y, W0, b0, LR, iterations)
    assert result.device == gpu


def test_keras_jax_bad_arguments_fail_before_a_child_starts(tmp_path):
    from comparisons.running.keras_jax_child import write_job

    data, (W0, b0), _ = case_data("lesson")
    with pytest.raises(ValueError, match="3 batches for 5 updates"):
        write_job(tmp_path / "job.npz", data.X, data.y, W0, b0, [LR], 5, batches=[np.arange(10)] * 3)
    assert not (tmp_path / "job.npz").exists()


@pytest.mark.slow
def test_keras_jax_child_failure_is_one_line():
    from comparisons.running.keras_jax_child import KerasJaxError, make_keras_jax_trainer

    data, (W0, b0), _ = case_data("lesson")
    with pytest.raises(KerasJaxError) as error:
        make_keras_jax_trainer(data.X, data.y, LR, 5, device="gpu:7")(W0, b0)  # no such device in the child
    message = str(error.value)
    assert message.startswith("keras:jax child failed (exit code 1): ")
    assert "DeviceError: device 'gpu:7': JAX sees 0 GPU device(s)" in message
    assert "\n" not in message


@pytest.mark.slow
def test_a_shared_child_serves_jobs_in_turn_and_a_failed_job_ends_only_its_child(monkeypatch, tmp_path):
    """Inside shared_child(): a job that fails is one line with the child's last words and ends its child; the next
    jobs (both dtypes) run in one fresh child, match numpy, and the block's end ends that child. (The failing job
    is a missing job file, met once the child has imported JAX and Keras; a failure inside Keras is the test above.)"""
    from comparisons.running import keras_jax_child
    from comparisons.running.keras_jax_child import KerasJaxError, make_keras_jax_trainer

    monkeypatch.setattr(keras_jax_child, "_shared", None)  # this block's own child, whatever this process opened
    data, (W0, b0), _ = case_data("lesson")
    pids = []
    with keras_jax_child.shared_child():
        session = keras_jax_child._shared
        with pytest.raises(KerasJaxError) as error:
            session.run(tmp_path / "missing.npz", tmp_path / "result.npz")
        message = str(error.value)
        assert message.startswith("keras:jax child failed (exit code 1): FileNotFoundError: ") and "\n" not in message
        assert "missing.npz" in message
        assert session._proc is None  # the failed child is gone; the next job starts another
        assert keras_jax_child.start_shared()() is True  # started ahead, as the driver does: imports done, idle
        ahead = session._proc.pid
        for dtype in DTYPES:
            X, y = data.X.astype(dtype), data.y.astype(dtype)
            assert_matches_numpy(make_keras_jax_trainer(X, y, LR, 5)(W0, b0), X, y, W0, b0, LR, 5)
            pids.append(session._proc.pid)
        child = session._proc
    assert pids == [ahead, ahead] and child.poll() is not None  # the child started ahead served both; the block ended it


@pytest.mark.slow
def test_jax_starts_quietly():
    out, stderr = run_python("""
        import json
        from jax_models.loop import make_jax_trainer
        import numpy as np
        r = make_jax_trainer(np.ones((4, 1)), np.ones((4, 1)), 0.1, 3)(np.zeros((1, 1)), 0.0)
        print(json.dumps({"points": len(r.loss_curve)}))
    """)
    assert out == {"points": 4}
    assert stderr == ""


def test_the_keras_jax_child_loads_keras_without_matplotlib_or_pandas_and_can_import_them_after():
    """Keras imports both for integrations a fit on arrays never uses; the child's start-up skips them."""
    out, _ = run_python("""
        import json, sys
        from comparisons.running.keras_jax_child import import_keras_on_jax
        keras_fit, _ = import_keras_on_jax()
        loaded = {name: name in sys.modules for name in ("keras", "matplotlib", "pandas")}
        import pandas  # importable again afterwards
        print(json.dumps({**loaded, "pandas_after": pandas.__name__}))
    """)
    assert out == {"keras": True, "matplotlib": False, "pandas": False, "pandas_after": "pandas"}


@pytest.mark.slow
def test_sharded_over_a_split_cpu_matches_numpy():
    """jax:sharded over 2 CPU devices (the host platform split before JAX starts), rows divisible or not."""
    script = """
        import json
        import numpy as np
        from jax_models.runtime import HostSplitError, import_jax, request_cpu_devices
        jax = import_jax(cpu_devices=2)
        import handrolled
        from comparisons.inputs.data import initial_parameters, make_synthetic
        from jax_models.sharded import make_sharded_trainer
        out = {"devices": len(jax.devices("cpu")), "runs": []}
        for n, m, iterations in [(100, 1, 1000), (101, 3, 200)]:
            data, (W0, b0) = make_synthetic(n, m, 0.5, seed=0), initial_parameters(m, seed=0)
            for dtype in ("float64", "float32"):
                X, y = data.X.astype(dtype), data.y.astype(dtype)
                train = make_sharded_trainer(X, y, 0.05, iterations, replicas=2)
                for lr in (0.05, 2.0):
                    r, ref = train(W0, b0, lr), handrolled.descend(X, y, W0, b0, lr, iterations)
                    same_length = len(r.loss_curve) == len(ref.loss_curve)
                    out["runs"].append({
                        "dtype": dtype, "lr": lr, "device": r.device, "mode": r.mode, "diverged": [r.diverged_at, ref.diverged_at],
                        "loss": float(np.max(np.abs(r.loss_curve / ref.loss_curve - 1))) if same_length else None,
                        "weights": float(np.max(np.abs(r.weights - ref.weights)) / max(1.0, np.abs(ref.weights).max())),
                        "grad_rel": float(r.grad_rel_diff.max())})
        try:
            request_cpu_devices(4)
            out["late_split"] = "no error"
        except HostSplitError as error:
            out["late_split"] = str(error)
        print(json.dumps(out))
    """
    out, _ = run_python(script)
    assert out["devices"] == 2
    for run in out["runs"]:
        tol = EQUIVALENCE[run["dtype"]]
        assert run["device"] == "cpu:0+cpu:1" and run["mode"] == "sharded"
        assert run["diverged"][0] == run["diverged"][1]
        assert run["loss"] is not None and run["loss"] <= tol and run["weights"] <= tol
        assert run["grad_rel"] <= (1e-10 if run["dtype"] == "float64" else 1e-4)
    assert [r["diverged"][0] is not None for r in out["runs"]] == [False, True] * 4
    assert "already started with 2 CPU device(s)" in out["late_split"]


def test_jax_models_imports_only_jax_keras_numpy_the_result_type_and_the_standard_library():
    """The layout's rule: jax_models never imports comparisons, handrolled, tf_models or TensorFlow.

    Of the study it imports only loop_result (numpy only), the loop result type it shares with tf_models.
    """
    import ast

    allowed = {"jax", "jaxlib", "keras", "numpy", "loop_result"} | set(sys.stdlib_module_names)
    for path in sorted((REPO / "jax_models").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [] if node.level else [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


def test_start_up_filter_drops_known_notices_only():
    from jax_models.runtime import KNOWN_NOISE

    notices = ["An NVIDIA GPU may be present on this machine, but a CUDA-enabled jaxlib is not installed.",
               "E0000 00:00:1 cuda_executor.cc:1] failed call to cuInit: UNKNOWN ERROR (303)", "   "]
    assert all(KNOWN_NOISE.search(line) for line in notices)
    errors = ["RuntimeError: Unable to initialize backend 'cpu': out of memory",
              "F0000 xla/service/cpu.cc:12] Check failed: buffer != nullptr"]
    assert not any(KNOWN_NOISE.search(line) for line in errors)


@pytest.mark.parametrize("args", [[], ["job.npz"], ["job.npz", "result.npz", "job2.npz"]])  # none, or a job without its result
def test_keras_jax_child_usage_error(args):
    done = subprocess.run([sys.executable, "-m", "comparisons.running.keras_jax_child", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: usage: python -m comparisons.running.keras_jax_child JOB.npz RESULT.npz [JOB.npz RESULT.npz ...]"]


def test_keras_jax_child_plans_repeats_from_its_steady_pace(monkeypatch):
    """A slow warm-up (compiling) does not starve the timed calls: after one, the slowest timed call sets the pace."""
    from comparisons.running import timing

    def timed(budget_s):
        durations = iter([0.05] + [0.001] * 10)  # a warm-up, then steady calls (a simulated clock)
        clock = {"t": 0.0}

        def call():
            clock["t"] += next(durations)
            return "done"

        monkeypatch.setattr(timing.time, "perf_counter", lambda: clock["t"])
        result, t = timing.time_calls(call, repeats=5, budget_s=budget_s)  # what the keras:jax child times with
        return result, t.first_call_s, t.repeat_s

    result, first, times = timed(0.06)  # one call fits at the warm-up's pace; then the steady pace plans all 5
    assert result == "done" and first == pytest.approx(0.05) and len(times) == 5
    assert len(timed(0.01)[2]) == 0  # not even one at the warm-up's pace: the warm-up is the measurement
    assert len(timed(float("inf"))[2]) == 5
