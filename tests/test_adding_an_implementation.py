"""docs/adding-an-implementation.md, followed alone: a test-only row appears in every table, figure and the report."""
import dataclasses
import json
import re

import numpy as np
import pandas as pd
import pytest

from handrolled import DescentResult
from loop_result import LoopResult

from comparisons.core import registry
from comparisons.core.results import from_run
from comparisons.running.adapters import Trainer
from comparisons.core.tolerances import EQUIVALENCE

from .conftest import REPO

NAME = "python_loop:test_only"


def python_loop_descent(X, y, W0, b0, lr, iterations):
    """Step 1: the lesson's descent with a Python loop over the rows (no matrix products)."""
    n, m = X.shape
    W, b = np.array(W0, X.dtype).reshape(m, 1), X.dtype.type(b0)
    losses = []
    for _ in range(iterations + 1):
        residuals = [y[i, 0] - (sum(X[i, j] * W[j, 0] for j in range(m)) + b) for i in range(n)]
        losses.append(sum(r * r for r in residuals) / n)
        if len(losses) == iterations + 1:
            break
        grad_W = np.array([[-2 / n * sum(X[i, j] * residuals[i] for i in range(n))] for j in range(m)], X.dtype)
        grad_b = -2 / n * sum(residuals)
        W, b = W - lr * grad_W, X.dtype.type(b - lr * grad_b)
    return LoopResult(W, b, np.asarray(losses, X.dtype))  # step 1: a framework loop's result type, its three fields


def build_python_loop(spec):
    """Step 2: the builder, returning a Trainer whose train(W0, b0, rate) -> RunResult goes through the thin wrapper."""
    def train(W0, b0, rate=spec.lr):
        return from_run(spec.name, spec.dtype, python_loop_descent(spec.X, spec.y, W0, b0, float(rate), spec.iterations))
    return Trainer(spec, train)


@pytest.fixture
def registered(monkeypatch):
    """Step 3: the row, registered for this test only."""
    monkeypatch.setitem(registry.REGISTRY, NAME, registry.Implementation(
        NAME, "a plain-Python loop over numpy rows (test only)", "numpy", f"{__name__}:build_python_loop",
        title="Python loop (test only)", step_cost_s=1e-3, details="A plain-Python loop over the rows (test only)."))
    return registry.get(NAME)


def test_a_registered_row_is_in_every_table_figure_and_the_report(registered, tmp_path):
    import run_all
    from comparisons.output import figures
    from comparisons.report import implementations_page

    out = tmp_path / "out"
    code = run_all.main(["--only", f"numpy,{NAME}", "--iterations", "20", "--repeats", "2", "--experiments", "none",
                         "--out", str(out)])
    assert code == 0
    for table in ("weights", "loss_curves", "equivalence", "timings", "runs", "gradient_check"):
        frame = pd.read_csv(out / f"{table}.csv")
        if table == "gradient_check":  # it checks no gradient: no rows, as its capabilities say
            assert NAME not in set(frame.implementation)
            continue
        assert NAME in set(frame.implementation), table
    eq = pd.read_csv(out / "equivalence.csv")
    eq = eq[eq.implementation == NAME]
    assert set(eq.dtype) == {"float32", "float64"}
    assert (eq.max_rel_loss_diff <= eq.dtype.map(EQUIVALENCE)).all(), eq
    runs = pd.read_csv(out / "runs.csv")
    assert set(runs[runs.implementation == NAME].status) == {"ok"}
    # the figures: its bars in timings.png, its curve's group in loss_curves.png
    timing_labels = [t.get_text() for ax in figures.timings_figure(pd.read_csv(out / "timings.csv")).axes
                     for t in ax.get_yticklabels() + ax.texts]
    assert any(NAME in text or registered.label in text for text in timing_labels), timing_labels
    legend_texts = [t.get_text() for ax in figures.loss_curves_figure(pd.read_csv(out / "loss_curves.csv")).axes
                    if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert any(NAME in text or registered.label in text or "numpy" in text for text in legend_texts), legend_texts
    report = (out / "report.md").read_text()
    assert NAME in report or registered.label in report
    assert json.loads((out / "config.json").read_text())["only"] == ["numpy", NAME]
    # step 4: the generated page has its words and its capabilities
    assert f"| `{NAME}` ({registered.title}) | numpy | {registered.details} |" in implementations_page.render()


def test_the_command_line_knows_a_registered_row_and_refuses_a_sample_order_for_it(registered):
    import run_all
    from comparisons.core.errors import UsageError

    assert NAME in "".join(run_all.build_parser().format_help().split())
    with pytest.raises(UsageError, match="full batch only"):
        run_all.config_from_args(run_all.build_parser().parse_args(["--only", NAME, "--batch-size", "10"]),
                                 ["run_all.py"])


def test_the_steps_name_every_capability_the_registry_declares():
    """Step 3's list of capabilities is the registry's: every field the study acts on, and the derived ones."""
    from comparisons.report.implementations_page import CAPABILITIES

    step = (REPO / "docs" / "adding-an-implementation.md").read_text().split("3. **Add its row**")[1].split("4. **")[0]
    listed = set(re.findall(r"`(\w+)`", step.split("and its capabilities:")[1]))
    assert set(CAPABILITIES) <= listed, set(CAPABILITIES) - listed
    fields = {f.name for f in dataclasses.fields(registry.Implementation)}
    derived = {name for name in CAPABILITIES if name not in fields}
    assert derived and all(isinstance(getattr(registry.Implementation, name), property) for name in derived)


def test_the_thin_wrapper_takes_the_two_loop_result_types_only():
    """from_run reads numpy's DescentResult and TF/JAX's LoopResult; another type with their fields is refused by name."""
    Other = dataclasses.make_dataclass("Other", ["weights", "bias", "loss_curve"])
    with pytest.raises(TypeError, match=r"handrolled.DescentResult or loop_result.LoopResult, not Other$"):
        from_run(NAME, "float64", Other(np.zeros((1, 1)), 0.0, np.ones(2)))
    numpy_run = from_run(NAME, "float64", DescentResult(np.zeros((1, 1)), np.float64(0.5), np.array([4.0, 1.0]), None,
                                                         None))
    assert (numpy_run.device, numpy_run.bias, numpy_run.diverged_at, numpy_run.jit_compile, numpy_run.mode,
            numpy_run.grad_rel_diff) == ("cpu", 0.5, None, None, None, None)
    loop = LoopResult(np.zeros((1, 1)), np.float64(0.5), np.array([4.0, 1.0, 0.5]), device="gpu:0", jit_compile=True,
                      grad_abs_diff=np.array([1e-17, 2e-17]), grad_rel_diff=np.array([1e-16, 3e-16]), mode="xla")
    run = from_run(NAME, "float64", loop)
    assert (run.device, run.jit_compile, run.mode, run.diverged_at) == ("gpu:0", True, "xla", None)
    np.testing.assert_array_equal(run.grad_rel_diff, [1e-16, 3e-16])
    assert from_run(NAME, "float64", loop, device="cpu").device == "cpu"  # the caller's label wins
