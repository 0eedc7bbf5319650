"""The run plan read from the registry: which (implementation, device, dtype) runs, and what is skipped and why."""
from comparisons.core.config import StudyConfig
from comparisons.core.registry import REGISTRY
from comparisons.running.study import plan


def test_the_slow_idiom_runs_one_dtype_when_both_are_asked_and_says_so():
    the_plan = plan(StudyConfig())
    triples, skipped = the_plan.triples(["cpu"]), list(the_plan.skipped)
    idiom = [t for t in triples if t[0] == "keras:numpy_input"]
    assert idiom == [("keras:numpy_input", "cpu", "float64")]
    assert [s for s in skipped if s[0] == "keras:numpy_input"] == [
        ("keras:numpy_input", "in float32 (it runs in float64): its cost is per-step machinery, the same in either "
                              "dtype; --dtype float32 runs it there")]
    # every other default implementation in both dtypes; a distributed one once per dtype on the --device spec
    for name, impl in REGISTRY.items():
        if not impl.one_dtype_enough:
            device = "auto" if impl.distributed else "cpu"
            assert {(name, device, "float32"), (name, device, "float64")} <= set(triples), name


def test_asked_for_alone_the_slow_idiom_runs_in_that_dtype():
    the_plan = plan(StudyConfig(dtypes=("float32",), only=("keras:numpy_input",)))
    triples, skipped = the_plan.triples(["cpu"]), list(the_plan.skipped)
    assert triples == [("keras:numpy_input", "cpu", "float32")] and skipped == []


def test_batch_size_skips_the_full_batch_only_ones():
    the_plan = plan(StudyConfig(batch_size=10))
    triples, skipped = the_plan.triples(["cpu"]), the_plan.skipped
    assert {t[0] for t in triples} == {"numpy", "keras", "keras:jax"}
    assert {s[0] for s in skipped} == {n for n, impl in REGISTRY.items() if not impl.minibatch}


def test_a_full_batch_only_trainer_refuses_a_sample_order_before_building_anything():
    """Only numpy, keras and keras:jax follow mini-batches (as the plan above keeps); every other name refuses them at once."""
    import numpy as np
    import pytest

    from comparisons.running.implementations import make_trainer

    X, y, batches = np.ones((4, 1)), np.ones((4, 1)), [np.array([0, 1])]
    refusing = [name for name in REGISTRY if name not in ("numpy", "keras", "keras:jax")]
    assert refusing == [n for n, impl in REGISTRY.items() if not impl.minibatch]
    for name in refusing:
        with pytest.raises(ValueError, match=f"^{name} trains full batch only$"):
            make_trainer(name, X, y, 0.1, 1, batches=batches)
    assert make_trainer("numpy", X, y, 0.1, 1, batches=batches)(np.zeros((1, 1)), 0.0).loss_curve.shape == (2,)


def test_the_plan_acts_on_capabilities_not_names(monkeypatch):
    """A new row costly per step runs one dtype; one in its own process or distributed is left out of the sweeps."""
    from comparisons.core import registry

    costly = registry.Implementation("numpy:costly", "test only", "numpy", "unused:builder",
                                     step_cost_s=registry.MACHINERY_STEP_COST_S)
    apart = registry.Implementation("numpy:apart", "test only", "numpy", "unused:builder", own_process=True)
    for impl in (costly, apart):
        monkeypatch.setitem(registry.REGISTRY, impl.name, impl)
    the_plan = plan(StudyConfig(only=("numpy", "numpy:costly")))
    triples, skipped = the_plan.triples(["cpu"]), the_plan.skipped
    assert [t for t in triples if t[0] == "numpy:costly"] == [("numpy:costly", "cpu", "float64")]
    assert [s[0] for s in skipped] == ["numpy:costly"]
    assert registry.swept(("numpy", "numpy:costly", "numpy:apart", "jax:sharded")) == ["numpy", "numpy:costly"]


def test_each_framework_s_rows_run_on_that_framework_s_devices():
    """A GPU TensorFlow sees is not given to a JAX row (nor any device to numpy but the CPU), in the run and the experiments."""
    from comparisons.experiments import ExperimentContext

    devices = {"numpy": ["cpu"], "tensorflow": ["cpu", "gpu:0"], "jax": ["cpu"]}
    triples = plan(StudyConfig(only=("numpy", "keras", "jax"), dtypes=("float64",))).triples(devices)
    assert triples == [("numpy", "cpu", "float64"), ("keras", "cpu", "float64"), ("keras", "gpu:0", "float64"),
                       ("jax", "cpu", "float64")]
    ctx = ExperimentContext(config=StudyConfig(), out_dir=None, devices=devices)
    assert [ctx.devices_for(f) for f in ("numpy", "tensorflow", "jax")] == [("cpu",), ("cpu", "gpu:0"), ("cpu",)]
    assert ExperimentContext(config=StudyConfig(), out_dir=None, devices={"numpy": ["cpu"]}).devices_for("jax") == ("cpu",)


def test_the_plan_is_made_once_per_run():
    """The orchestrator plans once and hands the plan to the device set-up and the runs."""
    import ast
    import inspect

    from comparisons import pipeline

    calls = [n for n in ast.walk(ast.parse(inspect.getsource(pipeline))) if isinstance(n, ast.Call)
             and getattr(n.func, "id", None) == "plan"]
    assert len(calls) == 1


def test_a_builder_must_give_the_parts_its_row_s_capabilities_need(monkeypatch):
    """make_trainer refuses a bare callable, and a Trainer without the autodiff gradient or stages its row requires."""
    import numpy as np
    import pytest

    from comparisons.core import registry
    from comparisons.running.adapters import Trainer
    from comparisons.running.implementations import gram_stages, make_trainer

    def builder(parts):
        return lambda spec: Trainer(spec, lambda W0, b0, rate=spec.lr: None, **parts) if parts is not None else print

    cases = {"bare": ({}, None, "not a Trainer"), "checks": ({"checks_gradient": True}, {}, "autodiff_gradient"),
             "gram": ({"route": "gram"}, {}, "stages")}
    X, y = np.ones((4, 1)), np.ones((4, 1))
    for name, (capabilities, parts, words) in cases.items():
        impl = registry.Implementation(f"numpy:{name}", "test only", "numpy", builder(parts), **capabilities)
        monkeypatch.setitem(registry.REGISTRY, impl.name, impl)
        with pytest.raises(TypeError, match=words):
            make_trainer(impl.name, X, y, 0.1, 1)
    impl = registry.Implementation("numpy:whole", "test only", "numpy", builder({"stages": ("pass", "iterate")}),
                                   route="gram")
    monkeypatch.setitem(registry.REGISTRY, impl.name, impl)
    assert gram_stages(make_trainer(impl.name, X, y, 0.1, 1)) == ("pass", "iterate")


def test_own_process_rows_start_ahead_of_the_set_up_and_are_waited_for_before_the_runs(monkeypatch, tmp_path):
    """The driver starts an own-process row's processes (its starter, given --workers) before it imports frameworks,
    and waits for them before the first run; a row without a starter, or not in its own process, starts nothing."""
    import pytest

    from comparisons import pipeline
    from comparisons.core import registry

    events = []

    def starter(**settings):
        events.append(("start", settings))
        return lambda: events.append("wait")

    class Stop(Exception):
        pass

    def run_single(*args, **kwargs):
        events.append("run")
        raise Stop

    rows = [registry.Implementation("numpy:ahead", "test only", "numpy", "unused:builder", own_process=True,
                                    starter=starter),
            registry.Implementation("numpy:plain", "test only", "numpy", "unused:builder", own_process=True),
            registry.Implementation("numpy:here", "test only", "numpy", "unused:builder", starter=starter)]
    for impl in rows:
        monkeypatch.setitem(registry.REGISTRY, impl.name, impl)
    set_up = pipeline.set_up_devices
    monkeypatch.setattr(pipeline, "set_up_devices", lambda *a: events.append("set_up") or set_up(*a))
    monkeypatch.setattr(pipeline, "run_single", run_single)
    config = StudyConfig(only=tuple(impl.name for impl in rows), experiments=(), workers=3)
    with pytest.raises(Stop):
        pipeline.run(config, tmp_path / "out", tmp_path / "staging")
    assert events == [("start", {"workers": 3}), "set_up", "wait", "run"]
