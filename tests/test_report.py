"""The report's generated sentences against their tables. Every test builds a small results folder of its own
(hand-chosen numbers, so each expected sentence is computed by hand here), doctors it, and checks that the
text follows; only the README-block test reads the committed results/."""
import ast
import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest

from types import SimpleNamespace

from comparisons import experiments as experiment_registry
from comparisons.output import figures
from comparisons.report import document as report, front_page, reading
from comparisons.report import facts as findings_facts
from comparisons.output import findings
from comparisons.output.findings import MAX_WORDS, Finding, render, words
from comparisons.inputs.data import make_synthetic
from comparisons.experiments import lr_sweep, variants
from comparisons.output.prose import md_table, span
from comparisons.core.registry import REGISTRY

from .conftest import REPO

RESULTS = REPO / "results"
EPS64, EPS32 = 2.0 ** -52, 2.0 ** -23
N, ITERATIONS = 1000, 1000


def timing_row(name, dtype, first, median, low, high, iterations=ITERATIONS, repeats=5, device="cpu"):
    """One timings.csv row; the derived columns are filled by `derive` from numpy's row, by hand-written arithmetic."""
    return dict(implementation=name, device=device, dtype=dtype, n_samples=100, n_features=1, iterations=iterations,
                repeats=repeats, first_call_s=first, median_s=median, min_s=low, max_s=high,
                per_iteration_us=1e6 * median / iterations if iterations else np.nan, median_low_s=low,
                median_high_s=high, interval_coverage=0.9375 if repeats == 5 else 0.0)


def derive(rows):
    """speedup_vs_numpy, its interval and break_even_updates, written out from their definitions."""
    t = pd.DataFrame(rows)
    ref = t[t.implementation == "numpy"].drop_duplicates("dtype").set_index("dtype")
    for i, r in t.iterrows():
        R = ref.loc[r["dtype"]]
        t.loc[i, "speedup_vs_numpy"] = R.median_s / r.median_s
        t.loc[i, "speedup_low"] = R.median_low_s / r.median_high_s
        t.loc[i, "speedup_high"] = R.median_high_s / r.median_low_s
        if r.iterations == 0:
            t.loc[i, "break_even_updates"] = np.nan
            continue
        per, ref_per = r.median_s / r.iterations, R.median_s / R.iterations
        extra, ref_extra = r.first_call_s - r.median_s, R.first_call_s - R.median_s
        t.loc[i, "break_even_updates"] = (math.inf if per > ref_per else 0.0 if per == ref_per and extra <= ref_extra
                                          else max(0.0, (extra - ref_extra) / (ref_per - per)) if per < ref_per
                                          else math.inf)
    return t


TIMINGS = [
    timing_row("numpy", "float32", 0.022, 0.022, 0.021, 0.023),
    timing_row("numpy", "float64", 0.020, 0.020, 0.019, 0.021),
    timing_row("keras", "float64", 1.0, 0.2, 0.19, 0.21),
    timing_row("gradient_tape:xla", "float64", 0.9, 0.003, 0.0029, 0.0031),
    timing_row("gradient_tape", "float64", 1.0, 0.00305, 0.00295, 0.0032),
    timing_row("numpy:gram", "float64", 0.020, 0.0201, 0.0195, 0.0205),
    timing_row("ols", "float64", 0.0004, 0.0002, 0.00015, 0.00025, iterations=0),
]
# break-even of the XLA loop, by hand: (0.9 - 0.003 - 0) / (0.020 / 1000 - 0.003 / 1000) = 0.897 / 1.7e-5
XLA_BREAK_EVEN = 52_765  # 52,764.7 rounded up to whole updates


def write_folder(folder, timings=TIMINGS, environment=None, with_data=True):
    """A complete small results folder: n = 100, m = 1, numpy and four other rows in float64, numpy in float32."""
    folder.mkdir(parents=True, exist_ok=True)
    data = make_synthetic(100, 1, 0.5, 0)
    A = np.column_stack([data.X[:, 0], np.ones(100)])
    slope, intercept = np.linalg.lstsq(A, data.y[:, 0], rcond=None)[0]
    names = [r["implementation"] for r in timings if r["iterations"]]
    keys = [(r["implementation"], r["device"], r["dtype"]) for r in timings if r["iterations"]]
    weights = [dict(implementation=n, device=d, dtype=t, parameter=p, value=v)
               for n, d, t in keys for p, v in (("x1", slope * (1 + 1e-7)), ("bias", intercept))]
    weights += [dict(implementation="ols", device="cpu", dtype="float64", parameter="x1", value=slope),
                dict(implementation="ols", device="cpu", dtype="float64", parameter="bias", value=intercept),
                dict(implementation="true", device="cpu", dtype="float64", parameter="x1", value=3.0),
                dict(implementation="true", device="cpu", dtype="float64", parameter="bias", value=4.0)]
    modes = {"gradient_tape": "xla", "gradient_tape:xla": "xla"}
    runs = [dict(implementation=n, device=d, dtype=t, status="ok", iterations_run=ITERATIONS, final_loss=0.25,
                 jit_compile=n in modes if n != "numpy" else np.nan, mode=modes.get(n, np.nan)) for n, d, t in keys]
    equivalence = [dict(implementation=n, device=d, dtype=t, reference="numpy",
                        max_rel_loss_diff=(4 * EPS64 if t == "float64" else 3 * EPS32), max_abs_weight_diff=0.0,
                        loss_bound=(1e-11 if REGISTRY[n].route == "gram" else np.nan))
                   for n, d, t in keys if n != "numpy"]
    grads = [dict(implementation=n, device=d, dtype=t, iteration=i, method="analytic_vs_autodiff",
                  max_abs_diff=1e-15, max_rel_diff=2 * EPS64)
             for n, d, t in keys if REGISTRY[n].checks_gradient for i in range(3)]
    pd.DataFrame(weights).to_csv(folder / "weights.csv", index=False)
    pd.DataFrame(runs).to_csv(folder / "runs.csv", index=False)
    pd.DataFrame(equivalence, columns=["implementation", "device", "dtype", "reference", "max_rel_loss_diff",
                                       "max_abs_weight_diff", "loss_bound"]).to_csv(folder / "equivalence.csv", index=False)
    pd.DataFrame(grads, columns=["implementation", "device", "dtype", "iteration", "method", "max_abs_diff",
                                 "max_rel_diff"]).to_csv(folder / "gradient_check.csv", index=False)
    derive(timings).to_csv(folder / "timings.csv", index=False)
    if with_data:
        pd.DataFrame({"x1": data.X[:, 0], "y": data.y[:, 0]}).to_csv(folder / "data.csv", index=False,
                                                                     float_format="%.17g")
    study = dict(data_source="synthetic: n=100, m=1", n_samples=100, n_features=1, feature_names=["x1"], target="y",
                 standardized=False, batch_size=None, initial_weights=[0.8], initial_bias=-1.9, lambda_min=0.28,
                 lambda_max=4.6, max_stable_lr=0.43, preflight=None, skipped=[])
    env = environment or dict(cpu_model="Example CPU", cpu_cores_usable=4, platform="Linux", blas={"name": "openblas"},
                              versions={"numpy": "2"}, numerics={"op_determinism": True, "tf32_enabled": False},
                              xla_jit_compile={"gradient_tape": True, "keras": False},
                              tensorflow={"gpus": [], "physical_devices": ["CPU:0"]}, started_at="now",
                              wall_clock_s=1.0, git_commit="abc", command_line=["run_all.py"])
    config = dict(lr=0.05, iterations=ITERATIONS, dtypes=["float32", "float64"], seed=0, time_budget_s=6.0)
    for name, value in (("study", study), ("environment", env), ("config", config), ("experiments", {})):
        (folder / f"{name}.json").write_text(json.dumps(value))
    return folder


@pytest.fixture
def folder(tmp_path):
    return write_folder(tmp_path / "results")


def edit_csv(folder, name, change):
    """Rewrite folder/name.csv as change(table)."""
    path = folder / f"{name}.csv"
    change(pd.read_csv(path)).to_csv(path, index=False)


def edit_json(folder, name, change):
    """Rewrite folder/name.json as change(dict)."""
    path = folder / f"{name}.json"
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def build(folder, monkeypatch):
    """report.build without drawing the figures (their artists are tested in test_figures)."""
    for name in ("loss_curves", "timings", "fitted_line"):
        monkeypatch.setattr(figures, name, lambda *a, **k: None)
    monkeypatch.setattr(figures, "headline", lambda *a, **k: None, raising=False)
    return report.build(folder).read_text()


# --- the committed README block -------------------------------------------------------------------------

def test_readme_block_is_what_the_committed_results_give():
    readme = (REPO / "README.md").read_text()
    assert front_page.readme_block_of(readme) == front_page.readme_block(RESULTS)


def test_sync_readme_rewrites_only_the_blocks(folder):
    readme = folder.parent / "README.md"
    readme.write_text(f"# title\n\nkept\n\n{report.FINDINGS_START}\nstale 1.6 ms\n{report.FINDINGS_END}\n\nalso kept\n\n"
                      f"{front_page.START.format(key='which to use')}\nstale table\n"
                      f"{front_page.END.format(key='which to use')}\n")
    assert front_page.sync_readme(folder) == readme
    text = readme.read_text()
    assert text.startswith("# title\n\nkept\n\n") and "\n\nalso kept\n\n" in text
    assert "stale" not in text and front_page.readme_block_of(text) == front_page.readme_block(folder)
    assert "| numpy, by hand |" in text
    other = folder.parent / "elsewhere"
    shutil.copytree(folder, other)
    assert front_page.sync_readme(other) is None  # only the folder called results/ beside the README


# --- the single run's findings: records of facts, checked against hand-computed numbers ------------------------

def facts(folder, kind_prefix):
    """The facts of the one finding of `folder` whose kind starts with kind_prefix."""
    found = [f for f in findings_facts.findings(folder) if f.kind.startswith(kind_prefix)]
    assert len(found) == 1, [f.kind for f in findings_facts.findings(folder)]
    return found[0].kind, found[0].facts


def test_the_first_three_findings_answer_the_three_questions_in_the_headline_dtype(folder):
    bullets = findings_facts.findings(folder)
    assert [b.kind for b in bullets[:3]] == ["same_numbers_with_gram", "cost", "payoff"]  # numpy:gram ran
    rendered = [render(b) for b in bullets]
    assert all(words(r) <= MAX_WORDS for r in rendered[:3]), [words(r) for r in rendered]
    assert sum(map(words, rendered)) / len(rendered) <= MAX_WORDS
    assert all("float64" in r for r in rendered[:3])  # every claim names its dtype: float64 has the most rows here
    assert all(r.startswith("**") for r in rendered[:3])  # the answer first, set apart


def test_same_numbers_in_eps_with_the_gram_route_apart(folder):
    kind, f = facts(folder, "same_numbers")
    assert kind == "same_numbers_with_gram" and f["dtype"] == "float64"
    assert f["ways"] == 4  # numpy, keras and the two tape loops in float64; numpy:gram is counted apart
    assert f["worst"] == pytest.approx(4) and f["grad"] == pytest.approx(2)  # 4 * 2^-52 and 2 * 2^-52, in eps
    assert f["eps"] == EPS64 and f["gram_routes"] == 1 and f["gram_worst"] == pytest.approx(4)  # its 4 * 2^-52
    edit_csv(folder, "equivalence", lambda t: t[t.implementation != "numpy:gram"])
    assert facts(folder, "same_numbers")[0] == "same_numbers"  # no Gram route: no clause for it


def test_a_run_outside_tolerance_or_diverged_turns_the_answer_to_no(folder):
    edit_csv(folder, "equivalence", lambda t: t.assign(max_rel_loss_diff=np.where(
        t.implementation == "keras", 1e-6, t.max_rel_loss_diff)))
    kind, f = facts(folder, "same_numbers")
    assert kind == "same_numbers_no" and f["count"] == 1 and f["runs"] == ["*Keras fit* (cpu, float64)"]
    write_folder(folder)
    edit_csv(folder, "runs", lambda t: t.assign(status=np.where(t.implementation == "keras",
                                                                "diverged at iteration 7", t.status)))
    kind, f = facts(folder, "same_numbers")
    assert kind == "same_numbers_no" and f["runs"] == ["*Keras fit* (cpu, float64, diverged at iteration 7)"]


def test_a_gram_route_is_allowed_its_rounding_bound_and_no_more(folder):
    """A Gram row past the tolerance but within tolerance + its loss_bound passes; past both it fails."""
    def gram_gap(gap, bound):
        return lambda eq: eq.assign(
            max_rel_loss_diff=np.where(eq.implementation == "numpy:gram", gap, eq.max_rel_loss_diff),
            loss_bound=np.where(eq.implementation == "numpy:gram", bound, eq.loss_bound))
    edit_csv(folder, "equivalence", gram_gap(3e-10, 5e-10))  # 3e-10 > 1e-10 tolerance, < 1e-10 + 5e-10
    assert facts(folder, "same_numbers")[0] == "same_numbers_with_gram"
    edit_csv(folder, "equivalence", gram_gap(7e-10, 5e-10))  # beyond 1e-10 + 5e-10
    kind, f = facts(folder, "same_numbers")
    assert kind == "same_numbers_no" and f["runs"] == ["*numpy, Gram route* (cpu, float64)"]


def test_cost_names_numpy_the_ways_faster_beyond_the_noise_and_the_slowest(folder):
    kind, f = facts(folder, "cost")
    assert kind == "cost" and f["dtype"] == "float64" and f["n"] == 100
    assert f["numpy_update"] == pytest.approx(20e-6) and f["numpy_first"] == pytest.approx(0.020)
    assert f["faster"] == ["*GradientTape loop, XLA*", "*GradientTape loop*"]  # the Gram route is another algorithm
    assert f["faster_update"] == pytest.approx((3e-6, 3.05e-6)) and f["faster_first"] == pytest.approx((0.9, 1.0))
    assert f["slower_count"] == 1 and f["slowest"] == "*Keras fit*" and f["slowest_update"] == pytest.approx(200e-6)


def test_payoff_is_a_range_of_break_evens_from_the_intervals(folder):
    kind, f = facts(folder, "payoff")
    assert kind == "payoff"
    # by hand: extra first-call cost / (numpy's per update - the row's), at the ends of their intervals
    xla = (0.9 - 0.003) / (21e-6 - 2.9e-6), (0.9 - 0.003) / (19e-6 - 3.1e-6)
    tape = (1.0 - 0.00305) / (21e-6 - 2.95e-6), (1.0 - 0.00305) / (19e-6 - 3.2e-6)
    assert f["break_even"] == pytest.approx((min(xla[0], tape[0]), max(xla[1], tape[1])))
    assert f["speedup"] == pytest.approx((0.019 / 0.0032, 0.021 / 0.0029))
    assert "49,000-64,000 updates" in render(findings_facts.findings(folder)[2])  # two figures: what five runs carry
    assert findings.rounded(49_558) == 49_000 and findings.rounded(63_098, up=True) == 64_000


def test_no_payoff_when_every_way_ties_or_loses(tmp_path):
    rows = [timing_row("numpy", "float64", 0.020, 0.020, 0.015, 0.025),
            timing_row("gradient_tape:xla", "float64", 0.9, 0.019, 0.016, 0.024)]
    folder = write_folder(tmp_path / "results", rows)
    assert facts(folder, "payoff")[0] == "payoff_never" and facts(folder, "cost")[0] == "cost_ties"  # one way, tied


@pytest.mark.parametrize("xla_median, keras_median, kind", [
    (0.003, 0.200, "cost"), (0.003, 0.020, "cost_none_slower"), (0.020, 0.200, "cost_none_faster"),
    (0.020, 0.020, "cost_ties")])
def test_cost_says_only_what_there_is_when_no_way_is_faster_or_none_slower(tmp_path, xla_median, keras_median, kind):
    """numpy's 20 ms (15-25 ms) against a compiled loop and Keras: each of them faster, tied or slower beyond the noise."""
    rows = [timing_row("numpy", "float64", 0.020, 0.020, 0.015, 0.025),
            timing_row("gradient_tape:xla", "float64", 0.9, xla_median, 0.8 * xla_median, 1.2 * xla_median),
            timing_row("keras", "float64", 0.5, keras_median, 0.8 * keras_median, 1.2 * keras_median)]
    folder = write_folder(tmp_path / "results", rows)
    found, f = facts(folder, "cost")
    assert found == kind
    assert f["slower_count"] == (keras_median > 0.025 / 0.8)  # Keras is slower when its interval clears numpy's
    assert ("faster" in f) == (xla_median < 0.015 / 1.2)  # the loop is faster when its interval is below numpy's
    text = render(next(b for b in findings_facts.findings(folder) if b.kind == found))  # as the report shows it
    assert "nan" not in text and " none " not in text and "0 ways" not in text and words(text) <= MAX_WORDS


def test_payoff_names_the_scaling_sizes_where_a_framework_won(folder):
    def point(name, n, median, low, high):
        return dict(implementation=name, device="cpu", dtype="float32", n_samples=n, n_features=1, iterations=100,
                    repeats=3, median_s=median, min_s=low, max_s=high, status="ok")
    scaling = pd.DataFrame([point("numpy", 100, 2e-3, 1.9e-3, 2.1e-3), point("jax", 100, 1e-3, 0.9e-3, 1.1e-3),
                            point("numpy", 10_000, 2e-3, 1.9e-3, 2.1e-3), point("jax", 10_000, 2e-3, 1.5e-3, 2.5e-3),
                            point("numpy:gram", 10_000, 1e-4, 0.9e-4, 1.1e-4)])  # another algorithm: not counted
    assert findings_facts.scaling_wins(scaling) == {"jax": [(100, 1)]}
    scaling.to_csv(folder / "scaling.csv", index=False)
    edit_json(folder, "experiments", lambda s: {"scaling": {"status": "ok", "seconds": 1}})
    kind, f = facts(folder, "payoff")
    assert f["scaling_dtype"] == "float32" and f["largest"] == 10_000 and f["sizes"] == ["100x1"]


def test_the_fit_trap_has_its_own_finding_and_code(folder, monkeypatch):
    write_folder(folder, TIMINGS + [timing_row("keras:numpy_input", "float64", 30.0, 30.0, 30.0, 30.0, repeats=0)])
    kind, f = facts(folder, "fit_trap")
    assert f["trap_update"] == pytest.approx(30e-3) and f["fit_update"] == pytest.approx(200e-6)
    assert f["trap_ratio"] == pytest.approx(0.020 / 30.0)
    text = build(folder, monkeypatch)
    assert "**The `fit` trap.**" in text and "steps_per_execution=N" in text.split("**The `fit` trap.**")[1]


def test_least_squares_gap_in_standard_errors(folder):
    data = pd.read_csv(folder / "data.csv")
    x, y = data.x1.to_numpy(), data.y.to_numpy()
    # simple regression in closed form (independent of the report's matrix algebra)
    sxx = ((x - x.mean()) ** 2).sum()
    slope = ((x - x.mean()) * (y - y.mean())).sum() / sxx
    intercept = y.mean() - slope * x.mean()
    sigma2 = ((y - intercept - slope * x) ** 2).sum() / (len(x) - 2)
    se_slope, se_intercept = math.sqrt(sigma2 / sxx), math.sqrt(sigma2 * (1 / len(x) + x.mean() ** 2 / sxx))
    kind, f = facts(folder, "least_squares")
    assert kind == "least_squares" and f["gap"] == pytest.approx(1e-7, rel=1e-3)  # every run's x1 is ols * (1 + 1e-7)
    assert f["errors"] == pytest.approx([abs(slope - 3) / se_slope, abs(intercept - 4) / se_intercept], rel=1e-6)
    assert f["parameters"] == ["x1", "bias"]
    edit_csv(folder, "weights", lambda t: t.assign(value=np.where(
        (t.implementation == "true") & (t.parameter == "x1"), slope + 10 * se_slope, t.value)))
    assert facts(folder, "least_squares")[0] == "least_squares_no_errors"  # more than the noise explains: not claimed


def test_a_mini_batch_run_that_did_not_settle(folder):
    edit_json(folder, "study", lambda s: {**s, "batch_size": 8})
    edit_csv(folder, "weights", lambda t: t.assign(value=np.where(t.implementation.isin(["ols", "true"]),
                                                                  t.value, t.value * 1.01)))
    kind, f = facts(folder, "least_squares")
    assert kind == "least_squares_wanders" and f["batch"] == 8 and f["gap"] == pytest.approx(1.01 * (1 + 1e-7) - 1)


def test_a_failed_a_missing_an_unknown_and_a_second_reading_experiment(folder, monkeypatch):
    sweep().to_csv(folder / "lr_sweep.csv", index=False)
    pd.DataFrame({"a": [1]}).to_csv(folder / "gram.csv", index=False)
    monkeypatch.setattr(experiment_registry, "load",
                        lambda name: lr_sweep if name == "lr_sweep" else SimpleNamespace(
                            findings=lambda t: [Finding("gram", {}, "second reading.")],
                            report_section=lambda t: "## The Gram route"))
    edit_json(folder, "experiments", lambda s: {"lr_sweep": {"status": "ok"}, "variants": {"status": "ok"},
                                                "gram": {"status": "ok"},
                                                "matmul": {"status": "failed: RuntimeError: boom\nmore"},
                                                "not_yet": {"status": "ok", "seconds": 1.0}})
    bullets = findings_facts.findings(folder)
    assert bullets[-1].kind == "not_measured" and bullets[-1].facts["what"] == [
        "`variants` (ok, but variants.csv is missing)", "`matmul` (failed: RuntimeError: boom)",
        "`not_yet` (not an experiment this version knows)"]
    kinds = [b.kind for b in bullets]
    assert "lr_sweep" in kinds  # the sweep's answer, with its explanation when both fit in MAX_WORDS
    assert "gram" not in kinds  # the Gram experiment's answer stays in its section
    done = reading.experiment_tables(folder, json.loads((folder / "experiments.json").read_text()))[0]
    assert findings_facts.second_reading(done) == ("For a second reading, in their sections below: "
                                           "[The Gram route](#the-gram-route).")


def test_no_more_than_ten_findings_and_experiment_sentences_within_the_word_limit(folder, monkeypatch):
    monkeypatch.setattr(lr_sweep, "findings", lambda table: [Finding("one", {"k": 30}, "one " * 30 + "{k}."),
                                                             Finding("two", {"k": 40}, "two " * 40 + "{k}.")])
    names = {f"lr_sweep_{k}": {"status": "ok"} for k in range(12)}
    for module in (findings_facts, reading):  # the findings' order, and the experiments this version knows
        monkeypatch.setattr(module, "EXPERIMENTS", ("lr_sweep", *names))
    for name in names:
        pd.DataFrame({"a": [1]}).to_csv(folder / f"{name}.csv", index=False)
    monkeypatch.setattr(experiment_registry, "load", lambda name: lr_sweep)
    edit_json(folder, "experiments", lambda s: {**names, "gone": {"status": "failed: x"}})
    bullets = findings_facts.findings(folder)
    assert len(bullets) == 10 and bullets[-1].kind == "not_measured"
    experiment = [b for b in bullets if b.kind == "one"][0]
    assert render(experiment) == "one " * 30 + "30."  # the second would pass 60 words: the first alone


def test_an_experiments_two_findings_make_one_bullet_when_they_fit():
    first, second = Finding("a", {"x": 1}, "**A is {x:n}.**"), Finding("b", {"y": 2}, "B is {y:n}.")
    both = findings_facts._experiment_finding([first, second])
    assert render(both) == "**A is 1.** B is 2." and both.facts == {"x": 1, "y": 2} and both.kind == "a"
    with pytest.raises(ValueError, match="one fact two values"):
        findings_facts._experiment_finding([first, Finding("b", {"x": 3}, "x is {x:n}.")])


def test_render_formats_each_unit():
    assert render(Finding("anything", {"x": 2}, "x is {x:n}")) == "x is 2"  # a finding's own template
    f = Finding("payoff", dict(dtype="float64", n=100, iterations=1000, speedup=(2.84, 9.97),
                               break_even=(20_123.0, 68_601.0), scaling=""))
    assert "2.8-10x faster" in render(f) and "after 20,000-69,000 updates" in render(f) and "1,000" in render(f)
    assert words("**Same numbers: yes.** In float64, all") == 6


# --- which to use when ---------------------------------------------------------------------------------------

def test_which_to_use_when_reads_ties_break_even_ranges_and_the_solve(folder):
    t = reading.load(folder)
    caption, table = report.use_when_rows(t)
    assert caption.startswith("In float64, n = 100, m = 1, 1,000 updates per run")
    assert "break-even at n = 100" in caption
    rows = table.set_index("way of training")
    low, high = (0.9 - 0.003) / (21e-6 - 2.9e-6), (0.9 - 0.003) / (19e-6 - 3.1e-6)  # 49,558 and 56,415
    assert rows.loc["GradientTape loop, XLA", "faster than numpy"] == (
        f"after {findings.rounded(low):,}-{findings.rounded(high, up=True):,} updates")
    assert rows.loc["Keras fit", "faster than numpy"] == "no"
    assert rows.loc["numpy, Gram route", "faster than numpy"] == "tie"
    assert rows.loc["numpy, by hand", "faster than numpy"] == "reference"
    assert rows.loc["least squares, solved in closed form", "faster than numpy"] == (
        "the exact answer, no iterations: 200 us once warm, 100x the speed of numpy's 1,000 updates")
    assert rows.loc["least squares, solved in closed form", "first run"] == "400 us"
    assert rows.loc["GradientTape loop, XLA", "first run"] == "900 ms"
    assert rows.loc["GradientTape loop, XLA", "per update"] == f"3 us ({span(2.9e-6, 3.1e-6)})"
    assert rows.loc["GradientTape loop, XLA", "same numbers as numpy"] == "4 eps"
    assert rows.loc["numpy, Gram route", "same numbers as numpy"] == "4 eps (inside its rounding bound)"


def test_the_problem_map_is_embedded_only_when_drawn(folder, monkeypatch):
    assert "problem_map.png" not in build(folder, monkeypatch)
    (folder / "problem_map.png").write_bytes(b"png")
    text = build(folder, monkeypatch)
    assert "![the fastest way that gives numpy's numbers, by n and updates](problem_map.png)" in text
    assert "Read the map at your problem's size" in text
    readme_part = front_page.render("which to use", reading.load(folder))
    assert "](results/problem_map.png)" in readme_part and "```python" not in readme_part  # the README has its block
    assert "[terms](results/report.md#words-used-here)" in readme_part  # the glossary is in the report, not the README


def test_the_headline_dtype_is_the_one_with_most_rows_float64_on_a_tie():
    rows = lambda *dtypes: pd.DataFrame({"dtype": list(dtypes)})
    assert reading.headline_dtype(rows("float32", "float64")) == "float64"
    assert reading.headline_dtype(rows("float32", "float32", "float64")) == "float32"


def test_what_each_way_is_for_comes_from_its_capabilities():
    purpose = {name: report.purpose(impl) for name, impl in REGISTRY.items()}
    assert purpose["numpy"].startswith("learning and checking")
    assert purpose["numpy:gram"] == purpose["gradient_tape:gram"] and "X is read once" in purpose["numpy:gram"]
    assert "several hosts" in purpose["gradient_tape:multi_worker"] and "several GPUs" in purpose["jax:sharded"]
    assert "debugging" in purpose["jax:eager"] and "autodiff" in purpose["jax"] and "ready-made" in purpose["keras"]
    assert "avoid" in purpose["keras:numpy_input"]


def test_which_to_use_when_at_once_not_compared_not_equivalent_and_scaling(folder):
    def doctor(t):
        xla = t.implementation == "gradient_tape:xla"
        keras = t.implementation == "keras"
        return t.assign(first_call_s=np.where(xla, 0.003, t.first_call_s),
                        speedup_vs_numpy=np.where(keras, np.nan, t.speedup_vs_numpy))
    edit_csv(folder, "timings", doctor)
    edit_csv(folder, "equivalence", lambda t: t.assign(max_rel_loss_diff=np.where(
        t.implementation == "gradient_tape", 1e-3, t.max_rel_loss_diff)))
    rows = report.use_when_rows(reading.load(folder))[1].set_index("way of training")["faster than numpy"]
    assert rows["GradientTape loop, XLA"] == "from the first update"
    assert rows["Keras fit"] == "not compared: it made a different number of updates"
    assert rows["GradientTape loop"].startswith("**not equivalent to numpy in this run**; ")
    scaling = pd.DataFrame([dict(implementation=n, device="cpu", dtype="float32", n_samples=10_000, n_features=32,
                                 iterations=10, repeats=3, median_s=m, min_s=m, max_s=m, status="ok")
                            for n, m in (("numpy", 1.0), ("keras", 0.5))])
    rows = report.use_when_rows(reading.load(folder), scaling)[1].set_index("way of training")["faster than numpy"]
    assert rows["Keras fit"] == "not compared: it made a different number of updates; scaling: 10,000x32"


def test_old_timings_without_interval_columns_read_min_to_max(folder):
    old = ["median_low_s", "median_high_s", "interval_coverage", "speedup_low", "speedup_high", "break_even_updates"]
    edit_csv(folder, "timings", lambda t: t.drop(columns=old))
    rows = report.use_when_rows(reading.load(folder))[1].set_index("way of training")
    assert rows.loc["GradientTape loop, XLA", "per update"] == f"3 us ({span(2.9e-6, 3.1e-6)})"  # min to max


def test_a_row_without_timed_repeats_is_read_as_its_first_call(folder):
    edit_csv(folder, "timings", lambda t: t.assign(
        repeats=np.where(t.implementation == "keras", 0, t.repeats),
        median_low_s=np.where(t.implementation == "keras", t.median_s, t.median_low_s),
        median_high_s=np.where(t.implementation == "keras", t.median_s, t.median_high_s)))
    rows = report.use_when_rows(reading.load(folder))[1].set_index("way of training")
    assert rows.loc["Keras fit", "per update"] == "200 us (first call only: too slow to repeat)"


# --- the report's shape: contents, terms before use, titles, one number per quantity ---------------------------

def test_contents_link_every_section_and_terms_come_before_use(folder, monkeypatch):
    text = build(folder, monkeypatch)
    heads = [line[3:] for line in text.splitlines() if line.startswith("## ")]
    contents = next(line for line in text.splitlines() if line.startswith("**Contents:**"))
    for head in heads:
        assert f"[{head}](#{report.anchor(head)})" in contents
    assert report.anchor("The Gram route's price (in precision)") == "the-gram-routes-price-in-precision"
    glossary = text.index("## Words used here")
    for term in ("noise interval", "Gram route", "all-reduce", "loopback", "break-even"):
        assert text.index(term) >= glossary, term  # no term before its definition
    # why 94%: with 5 timed runs, fastest to slowest covers 1 - 2 / 2^5 of the median's distribution
    assert "covers 94% (1 - 2/2^5)" in text


def test_no_registry_id_in_the_report_where_a_title_exists(folder, monkeypatch):
    write_folder(folder, TIMINGS + [timing_row("keras:numpy_input", "float64", 30.0, 30.0, 30.0, 30.0, repeats=0)])
    text = build(folder, monkeypatch)
    for name in REGISTRY:
        if ":" in name:
            assert name not in text, name
    for r in pd.read_csv(folder / "timings.csv").itertuples():
        label = "least squares, solved in closed form" if r.iterations == 0 else REGISTRY[r.implementation].label
        assert f"| {label} | {r.device} |" in text


def test_the_weights_table_groups_runs_that_agree_to_the_digits_shown(folder, monkeypatch):
    text = build(folder, monkeypatch)
    section = text.split("## Learned weights", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "float64" in line]
    assert len(rows) == 3  # every run (x1 = ols * (1 + 1e-7) prints as ols), least squares, the generator
    assert "Descent reaches" not in section  # said once, in the findings


def test_one_quantity_one_number_lists_only_what_does_not_agree(folder, monkeypatch):
    text = build(folder, monkeypatch)
    assert "Of 1 pair: 1 agree." in text  # the two tape rows: one loop under two names, in float64
    edit_csv(folder, "timings", lambda t: t.assign(
        median_s=np.where(t.implementation == "gradient_tape", 0.0045, t.median_s),
        median_low_s=np.where(t.implementation == "gradient_tape", 0.0044, t.median_low_s),
        median_high_s=np.where(t.implementation == "gradient_tape", 0.0046, t.median_high_s)))
    text = build(folder, monkeypatch)
    section = text.split("## One quantity, one number", 1)[1].split("\n## ", 1)[0]
    assert "| GradientTape loop = GradientTape loop, XLA | float64 | 100x1 |" in section
    assert section.count("\n| ") == 2  # header and the one pair that does not agree


def test_two_estimates_of_the_500_loop_become_one_range():
    matmul = pd.DataFrame({"method": ["python_loop"], "n": [50], "min_s": [0.05]})  # 0.05 * 10^3 = 50 s
    claims = pd.DataFrame({"measured": ['{"n": 40, "predicted_500_s": 90.0}']})
    note = report.loop_notes({"matmul.csv": matmul, "lesson_claims.csv": claims})[0]
    assert "50 s from matmul's n = 50 and 90 s from lesson_claims's n = 40" in note
    assert note.endswith("so read it as 50-90 s, under the lesson's 120 s either way.")
    claims = pd.DataFrame({"measured": ['{"n": 40, "predicted_500_s": 150.0}']})
    assert report.loop_notes({"matmul.csv": matmul, "lesson_claims.csv": claims})[0].endswith(
        "on both sides of the lesson's 120 s.")
    assert report.loop_notes({"matmul.csv": matmul}) == []


def test_an_all_reduce_longer_than_its_step_is_explained(folder):
    table = pd.DataFrame([
        dict(kind="measured", what="allreduce", workers=2, numbers=33, bytes=264, seconds=3.85e-3, seconds_per_step=np.nan,
             n_samples=np.nan),
        dict(kind="measured", what="step", workers=2, numbers=np.nan, bytes=np.nan, seconds=np.nan,
             seconds_per_step=3.59e-3, n_samples=100)])
    note = report.allreduce_notes({"distributed": (None, table)})[0]
    assert note.startswith("One all-reduce of 33 numbers between 2 workers is reported at 3.85 ms, longer than a whole "
                           "2-worker step that contains one (3.59 ms at n = 100). The work differs")
    shorter = table.assign(seconds=np.where(table.what == "allreduce", 1e-3, table.seconds))
    assert "as a part of a step should be" in report.allreduce_notes({"distributed": (None, shorter)})[-1]


# --- the timings reading, the set-up, one quantity one number, machine facts -----------------------------------

def test_set_up_renders_numerics_and_xla_in_words(folder, monkeypatch):
    text = build(folder, monkeypatch)
    assert "- numerics: op determinism on, TF32 off" in text
    assert "- compiled by XLA (`jit_compile`): yes: *GradientTape loop*; no: *Keras fit*" in text
    assert "{'" not in text and "(issue" not in text


def test_machine_facts_come_from_environment_json_only(folder, monkeypatch):
    env = dict(json.loads((folder / "environment.json").read_text()), cpu_model="Big Iron 9000", cpu_cores_usable=16,
               tensorflow={"gpus": ["/physical_device:GPU:0"], "physical_devices": ["CPU:0", "GPU:0"]})
    (folder / "environment.json").write_text(json.dumps(env))
    text = build(folder, monkeypatch) + front_page.readme_block(folder)
    assert "Big Iron 9000, 16 usable cores" in text and "GPU /physical_device:GPU:0" in text
    assert "TensorFlow saw a GPU (/physical_device:GPU:0), but no run in these tables used it" in text
    write_folder(folder, TIMINGS + [timing_row("keras", "float64", 1.0, 0.2, 0.19, 0.21, device="gpu:0")], env)
    assert "GPU (/physical_device:GPU:0): compare the gpu rows with the cpu rows" in build(folder, monkeypatch)
    for stale in ("No GPU was detected", "no GPU", "2 usable cores", "two cores", "2 cores", "2-core", "AMD EPYC"):
        assert stale not in text, stale


def test_a_gpu_only_jax_sees_is_the_machines_gpu_too(folder, monkeypatch):
    """README and Set-up read every framework's devices: TensorFlow's CPU-only list does not make it 'no GPU'."""
    env = dict(json.loads((folder / "environment.json").read_text()),
               tensorflow={"gpus": [], "physical_devices": ["CPU:0"]},
               jax={"devices": ["cpu:0 (cpu)", "gpu:0 (cuda)"], "gpus": ["gpu:0 (cuda)"]})
    (folder / "environment.json").write_text(json.dumps(env))
    readme, text = front_page.readme_block(folder), build(folder, monkeypatch)
    assert "GPU gpu:0 (cuda)" in readme and "no GPU" not in readme
    assert "- devices JAX saw: cpu:0 (cpu), gpu:0 (cuda); GPUs: gpu:0 (cuda)" in text
    assert "JAX saw a GPU (gpu:0 (cuda)), but no run in these tables used it" in text
    del env["jax"]  # a run that never loaded JAX: said so, and TensorFlow saw no GPU
    (folder / "environment.json").write_text(json.dumps(env))
    assert "no GPU" in front_page.readme_block(folder)
    assert "- devices JAX saw: none (JAX not loaded by the study process)" in build(folder, monkeypatch)


def test_generated_text_types_no_machine_fact():
    """The sources that write the report's and README's text state no core count or CPU model of their own."""
    sources = [REPO / "comparisons" / f for f in ("report/document.py", "report/facts.py", "report/reading.py",
                                                  "output/findings.py", "output/prose.py", "report/front_page.py")]
    sources += sorted((REPO / "comparisons" / "experiments").glob("*.py"))
    for path in sources:
        text = path.read_text().lower()
        for stale in ("two cores", "2 cores", "2-core", "epyc", "(issue "):
            assert stale not in text, (path.name, stale)


def test_report_compares_no_implementation_name():
    """Per-implementation words come from the registry (summary, title, note), never from name tests."""
    for module in ("document", "facts", "reading", "front_page"):
        tree = ast.parse((REPO / "comparisons" / "report" / f"{module}.py").read_text())
        named = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and node.value in REGISTRY]
        assert named == [], module


# --- the experiments' sentences and the helpers ---------------------------------------------------------------

def sweep():
    """A hand-made lr sweep: threshold 2 / 5 = 0.4; numpy and keras in float64 at 0.5x, 0.99x and 2x."""
    rows = []
    for name in ("numpy", "keras"):
        for ratio, predicted, measured in ((0.5, 100.0, 95), (0.99, 5000.0, 4900), (2.0, 0.0, -1)):
            side = "stable" if ratio < 1 else "diverges"
            rows.append(dict(implementation=name, dtype="float64", lr=0.4 * ratio, lr_over_threshold=ratio,
                             threshold=0.4, lambda_min=0.3, lambda_max=5.0, iterations=1000, theory_side=side,
                             observed_side=side, agrees_with_theory=True, predicted_iterations=predicted,
                             measured_iterations=measured, tolerance=1e-6))
    return pd.DataFrame(rows)


def test_lr_sweep_findings_open_with_the_threshold_and_explain_it():
    first, second = lr_sweep.findings(sweep())
    assert first.kind == "lr_sweep" and first.facts == dict(threshold=0.4, runs=6, implementations=2, low=0.5, high=2.0,
                                                            disagree=0)
    # the stable rates 0.5x and 0.99x: measured 95 of 100 and 4900 of 5000 predicted iterations
    assert second.kind == "lr_sweep_why" and second.facts == pytest.approx(dict(
        lambda_max=5.0, stable_rates=2, share_low=0.95, share_high=0.98, tolerance=1e-6))
    assert render(first).startswith("**") and words(render(first)) <= MAX_WORDS and words(render(second)) <= MAX_WORDS
    assert lr_sweep.agreement_sentence(sweep()) == (
        "Every one of the 6 runs landed on the side theory predicts (0.5x to 2x the threshold, nearest it 0.99x): "
        "`numpy` and `keras` in float64 at 3 rates.")
    never = sweep().assign(measured_iterations=-1)  # no run reached the tolerance: the bound alone
    assert lr_sweep.findings(never)[1].kind == "lr_sweep_why_alone"


def test_lr_sweep_sentence_names_a_disagreeing_run():
    t = sweep()
    hit = (t.implementation == "keras") & (t.lr_over_threshold == 2.0)
    t = t.assign(agrees_with_theory=~hit, observed_side=np.where(hit, "stable", t.observed_side))
    assert lr_sweep.agreement_sentence(t).startswith(
        "**1 run of 6 disagree with theory**: `keras` [float64] at lr 0.8 (2x) was stable.")
    first = lr_sweep.findings(t)[0]
    assert first.kind == "lr_sweep_disagree" and first.facts["disagree"] == 1 and first.facts["runs"] == 6


def epochs_table(keras_gap=1e-15):
    """A hand-made variants table: batch sizes 1 and 100, two epochs, numpy and keras, OLS loss 0.25."""
    rows = []
    for name in ("numpy", "keras"):
        for batch, losses in ((1, (70.0, 0.3, 0.26)), (100, (70.0, 40.0, 20.0))):
            for epoch, loss in enumerate(losses):
                rows.append(dict(implementation=name, dtype="float64", lr=0.05, batch_size=batch, epoch=epoch,
                                 steps=epoch * 100 // batch, full_loss=loss, ols_loss=0.25, median_s=0.01,
                                 first_call_s=0.02, repeats=3, max_rel_step_loss_diff_vs_numpy=
                                 keras_gap if name == "keras" else 0.0, max_abs_param_diff_vs_numpy=0.0,
                                 n_samples=100, data_source="synthetic"))
    return pd.DataFrame(rows)


def test_variants_findings_follow_their_table():
    same, excess = variants.findings(epochs_table())
    assert same.kind == "variants_same_path" and same.facts == dict(ways=["*Keras fit*"], sizes=[1, 100], worst=1e-15)
    # after 2 epochs numpy ends at 0.26 (batches of 1) and 20 (full batches) against the least-squares 0.25
    assert excess.kind == "variants_excess" and excess.facts == pytest.approx(dict(epochs=2, small=1, small_excess=0.01,
                                                                                   full_excess=19.75))
    numpy_only = epochs_table()[lambda t: t.implementation == "numpy"]
    assert "Only numpy ran" in variants.report_section(numpy_only)
    assert [f.kind for f in variants.findings(numpy_only)] == ["variants_excess"]
    apart = variants.findings(epochs_table(keras_gap=1e-3))[0]
    assert apart.kind == "variants_apart" and apart.facts == dict(apart=["*Keras fit*"], worst=1e-3)


def test_md_table_escapes_bars_and_formats_floats():
    frame = pd.DataFrame({"a": ["x|y"], "b": [1 / 3], "c": [7]})
    assert md_table(frame, "{:.2f}") == "| a | b | c |\n|---|---|---|\n| x\\|y | 0.33 | 7 |"


def test_span_keeps_one_unit():
    assert span(9.8e-4, 1.06e-3) == "0.98-1.06 ms" and span(19.4e-6, 20.2e-6) == "19.4-20.2 us"
    assert span(150e-6, 250e-6) == "150-250 us" and span(2.0, 3.5) == "2-3.5 s" and span(0.02, 0.02) == "20 ms"


def test_the_numerics_note_says_where_tensorflow_ran(folder):
    env = json.loads((folder / "environment.json").read_text())
    assert report._numerics_note(env, {"numpy", "keras"}).startswith("TensorFlow ran with op determinism on and TF32 off")
    driver_without = {**env, "numerics": None}  # what a run leaves when its process never loaded TensorFlow
    assert report._numerics_note(driver_without, {"numpy"}).startswith("No TensorFlow run")
    assert report._numerics_note(driver_without, {"numpy", "gradient_tape:multi_worker"}).startswith(
        "TensorFlow ran only in the worker processes, each with op determinism on")


def _loop_tables(rows):
    """timings.csv and runs.csv rows from (implementation, dtype, first_call_s, median_s, low, high, jit, mode)."""
    timings = pd.DataFrame([dict(implementation=n, device="cpu", dtype=d, n_samples=100, n_features=1, iterations=1000,
                                 repeats=5, first_call_s=f, median_s=m, min_s=lo, max_s=hi, per_iteration_us=1e3 * m,
                                 speedup_vs_numpy=0.02 / m, median_low_s=lo, median_high_s=hi)
                            for n, d, f, m, lo, hi, _, _ in rows])
    runs = pd.DataFrame([dict(implementation=n, device="cpu", dtype=d, status="ok", iterations_run=1000, final_loss=0.3,
                              jit_compile=j, mode=mo) for n, d, _, _, _, _, j, mo in rows])
    return timings, runs


def test_the_two_xla_front_ends_are_set_side_by_side_and_ties_called():
    """TensorFlow's and JAX's compiled loops: a tie when the intervals overlap, a ratio when not; eager rows left out."""
    tied = [("numpy", "float64", 0.02, 0.02, 0.019, 0.021, None, None),
            ("gradient_tape:xla", "float64", 0.5, 0.004, 0.003, 0.005, True, "xla"),
            ("jax", "float64", 0.7, 0.0045, 0.004, 0.006, True, "jit"),
            ("jax:eager", "float64", 0.6, 0.06, 0.05, 0.07, True, "python_loop"),
            ("gradient_tape:eager", "float64", 4.0, 3.6, 3.5, 3.7, False, "eager")]
    text = "\n".join(report.compiled_loops_lines(*_loop_tables(tied)))
    assert "Two front ends of one compiler" in text and "JAX, Python loop" not in text
    assert ("In float64, *GradientTape loop, XLA* and *JAX jit loop* tie per update; *GradientTape loop, XLA* starts "
            "sooner (500 ms against 700 ms).") in text
    apart = [r if r[0] != "jax" else ("jax", "float64", 0.3, 0.002, 0.0018, 0.0022, True, "jit") for r in tied]
    text = "\n".join(report.compiled_loops_lines(*_loop_tables(apart)))
    assert "In float64, *JAX jit loop* is 2x faster per update than *GradientTape loop, XLA*, outside the noise" in text
    only_tf = [r for r in tied if not r[0].startswith("jax")]
    assert report.compiled_loops_lines(*_loop_tables(only_tf)) == []  # one framework: nothing to set side by side


# --- issue 27 item 8: each fact once -------------------------------------------------------------------------

def test_each_purpose_is_said_once_and_names_its_ways(folder):
    caption, table = report.use_when_rows(reading.load(folder))
    shown = report.use_when_markdown(reading.load(folder))
    assert "| way of training | first run |" in shown  # the purpose is said once below the table, not on every row
    lines = [line for line in report.purpose_lines(table) if line.startswith("- ")]
    compiled = report.purpose(REGISTRY["gradient_tape"])
    assert compiled == report.purpose(REGISTRY["gradient_tape:xla"])
    assert f"- {compiled}: *GradientTape loop, XLA* and *GradientTape loop*." in lines  # the table's order
    assert sum(line.startswith(f"- {compiled}") for line in lines) == 1
    assert "- the answer alone, when you need no gradient descent: *least squares, solved in closed form*." in lines
    assert len(lines) == len({report.purpose(REGISTRY[n]) for n in ("numpy", "keras", "gradient_tape",
                                                                    "numpy:gram")}) + 1  # + the solve


def test_the_timings_table_leaves_the_headline_dtypes_times_to_which_to_use_when(folder, monkeypatch):
    t = reading.timed(reading.load(folder)["timings"])
    text = report.timings_table(t, "float64")
    header = next(line for line in text.splitlines() if line.startswith("| way of training"))
    assert "first call, float64" not in header and "per update, float64" not in header
    assert "x numpy, float64" in header and "first call, float32" in header and "per update, float32" in header
    # the XLA row's speed against numpy from its two medians, by hand: 0.020 / 0.003 = 6.7
    assert "| GradientTape loop, XLA | cpu | - | - | - | 6.7 (6.1-7.2) |" in text
    assert "first call, float64" in report.timings_table(t)  # nothing shown elsewhere: every column
    section = build(folder, monkeypatch).split("## Timings", 1)[1].split("\n## ", 1)[0]
    assert "[Which to use when](#which-to-use-when)" in section and "docs/method.md" in section


def test_weights_rows_holding_most_ways_of_a_dtype_name_the_others(folder, monkeypatch):
    # the XLA row's float64 weights moved past the digits shown: the other 4 float64 ways share a row
    edit_csv(folder, "weights", lambda t: t.assign(value=np.where(
        (t.implementation == "gradient_tape:xla") & (t.parameter == "bias"), t.value + 1e-3, t.value)))
    section = build(folder, monkeypatch).split("## Learned weights", 1)[1].split("\n## ", 1)[0]
    assert "| every way but *GradientTape loop, XLA* (4) | float64 |" in section
    assert "| GradientTape loop, XLA | float64 |" in section
    assert "| numpy, by hand | float32 |" in section  # a dtype's only way is named, never 'every way'


def test_variants_section_reads_titles_and_whether_small_batches_end_closer():
    text = variants.report_section(epochs_table())
    assert "ms/epoch, Keras fit" in text and "keras ms/epoch" not in text  # titles, not registry ids, in headers
    assert "Batch 1 makes more updates per epoch than batch 100 and ends closer" in text  # 0.01 above against 19.75
    swapped = epochs_table().assign(batch_size=lambda t: t.batch_size.map({1: 100, 100: 1}))
    assert "and ends no closer" in variants.report_section(swapped)


def test_lr_sweep_names_few_implementations_and_counts_many():
    many = pd.concat([sweep().assign(implementation=name) for name in ("numpy", "keras", "jax", "gradient_tape")])
    assert "4 implementations in float64 at 3 rates" in lr_sweep.agreement_sentence(many)
    assert "`numpy` and `keras` in float64 at 3 rates" in lr_sweep.agreement_sentence(sweep())


def test_pairs_that_all_differ_in_work_show_only_why(folder, monkeypatch):
    # the tape loop's two names made to differ in work: 1000 against 2000 updates per call, slower on the short side
    edit_csv(folder, "timings", lambda t: t.assign(
        iterations=np.where(t.implementation == "gradient_tape", 2000, t.iterations),
        median_s=np.where(t.implementation == "gradient_tape", 0.0045 * 2 / 3, t.median_s),
        median_low_s=np.where(t.implementation == "gradient_tape", 0.0044 * 2 / 3, t.median_low_s),
        median_high_s=np.where(t.implementation == "gradient_tape", 0.0046 * 2 / 3, t.median_high_s)))
    section = build(folder, monkeypatch).split("## One quantity, one number", 1)[1].split("\n## ", 1)[0]
    row = next(line for line in section.splitlines() if line.startswith("| GradientTape loop"))
    assert "; those that differ in work, and why:" in section
    assert "2000 vs 1000 updates per call" in row or "1000 vs 2000 updates per call" in row
    assert "differs in work" not in row


# --- the figures drawn by two processes -----------------------------------------------------------------

def test_a_process_draws_only_the_jobs_it_claims_and_marks_each_done(monkeypatch, tmp_path):
    """Claims split the jobs: one claimed elsewhere is not drawn here; each drawn here is marked done."""
    from comparisons.report import drawing

    drawn = []
    monkeypatch.setattr(drawing, "draw", lambda folder, job: drawn.append(job))
    (tmp_path / "b").touch()  # another process claimed b
    drawing.draw_claimed(tmp_path / "results", ["a", "b", "c"], tmp_path)
    assert drawn == ["a", "c"]
    assert sorted(p.name for p in tmp_path.glob("*.done")) == ["a.done", "c.done"]


def test_what_a_failing_helper_leaves_undone_is_drawn_here_once(monkeypatch, tmp_path):
    """A helper that claims a job and fails without drawing it: this process draws every job, each once, and
    leaves no claims behind; without a helper it draws them in order."""
    from comparisons.report import drawing

    fake = tmp_path / "python"  # stands for `python -m comparisons.report.drawing FOLDER CLAIMS JOB...`
    fake.write_text('#!/bin/sh\ntouch "$4/$5"\nexit 1\n')
    fake.chmod(0o755)
    monkeypatch.setattr(drawing.sys, "executable", str(fake))
    drawn = []
    monkeypatch.setattr(drawing, "draw", lambda folder, job: drawn.append(job))
    results = tmp_path / "results"
    results.mkdir()
    drawing.draw_all(results, ["a", "b", "c"], helper=True)
    assert sorted(drawn) == ["a", "b", "c"]
    assert list(results.iterdir()) == []
    drawn.clear()
    drawing.draw_all(results, ["c", "a"])
    assert drawn == ["c", "a"]
