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

from comparisons.report import document as report, front_page
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
        monkeypatch.setattr(report.figures, name, lambda *a, **k: None)
    monkeypatch.setattr(report.figures, "headline", lambda *a, **k: None, raising=False)
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


# --- the single run's findings -----------------------------------------------------------------------------

def test_agreement_opens_with_its_answer_and_explains_eps(folder):
    first = report.findings(folder)[0]
    assert first.startswith("Every way of training gives numpy's numbers up to rounding, and autodiff matches")
    assert len(first.split(". ")[0].split()) <= 25  # the answer, in at most ~25 words
    assert "eps, the dtype's machine epsilon, is the relative gap between 1 and the next number" in first
    assert "4 eps (8.9e-16 relative) in float64" in first  # 4 * 2^-52 = 8.88e-16
    assert "the Gram routes, whose loss formula cancels digits, to within 8.9e-16 in float64" in first
    assert first.index("eps, the dtype's") < first.index("4 eps")  # the term before its first number


def test_a_run_outside_tolerance_opens_the_first_finding(folder):
    edit_csv(folder, "equivalence", lambda t: t.assign(max_rel_loss_diff=np.where(
        t.implementation == "keras", 1e-6, t.max_rel_loss_diff)))
    first = report.findings(folder)[0]
    assert first.startswith("**1 run outside the tolerance**: `keras` [cpu, float64] did not give numpy's numbers")
    assert f"{1e-6 / EPS64:.3g} eps (1e-06 relative) in float64" in first


def test_least_squares_gap_in_standard_errors(folder, monkeypatch):
    data = pd.read_csv(folder / "data.csv")
    x, y = data.x1.to_numpy(), data.y.to_numpy()
    # simple regression in closed form (independent of the report's matrix algebra)
    sxx = ((x - x.mean()) ** 2).sum()
    slope = ((x - x.mean()) * (y - y.mean())).sum() / sxx
    intercept = y.mean() - slope * x.mean()
    sigma2 = ((y - intercept - slope * x) ** 2).sum() / (len(x) - 2)
    se_slope, se_intercept = math.sqrt(sigma2 / sxx), math.sqrt(sigma2 * (1 / len(x) + x.mean() ** 2 / sxx))
    second = report.findings(folder)[1]
    assert second.startswith("Descent reaches the least-squares answer, the loss's exact minimum: after 1000 iterations")
    assert f"{abs(slope - 3) / se_slope:.2g} standard errors for x1" in second
    assert f"{abs(intercept - 4) / se_intercept:.2g} standard errors for bias" in second
    assert f"here {se_slope:.2g} and {se_intercept:.2g})" in second
    assert "the noise in y, not the descent, sets that gap" in second
    assert f"x1 = {slope:.4g} +- {se_slope:.2g}, bias = {intercept:.4g} +- {se_intercept:.2g}" in build(folder, monkeypatch)
    edit_csv(folder, "weights", lambda t: t.assign(value=np.where(
        (t.implementation == "true") & (t.parameter == "x1"), slope + 10 * se_slope, t.value)))
    assert "more than 3 standard errors, more than the noise explains" in report.findings(folder)[1]
    (folder / "data.csv").unlink()
    assert "the data are not in the results folder at this size" in report.findings(folder)[1]


def test_a_mini_batch_run_that_did_not_settle(folder):
    edit_json(folder, "study", lambda s: {**s, "batch_size": 8})
    edit_csv(folder, "weights", lambda t: t.assign(value=np.where(t.implementation.isin(["ols", "true"]),
                                                                  t.value, t.value * 1.01)))
    gap = report.findings(folder)[1]
    assert gap.startswith("Mini-batch descent with a fixed step (batches of 8) wanders around the least-squares answer")
    assert "after 1000 updates the runs are 0.01 in float32 and 0.01 in float64 from it" in gap


def test_speed_states_first_call_steady_time_ties_break_even_and_the_solve(folder):
    speed = report.findings(folder)[2]
    assert speed.startswith("For one fit of 1,000 updates numpy beats every framework from a cold start; *GradientTape loop, "
                            "XLA* is 6.7x faster per update once running "
                            f"and overtakes numpy after {XLA_BREAK_EVEN:,} "
                            "updates. On 100 samples its first call took 900 ms (tracing and compiling included), then")
    assert len(speed.split(". ")[0].split()) <= 30  # the answer first, in plain words
    assert "then 3 ms per run" in speed
    assert "First calls, a whole run each: numpy 20-22 ms, the other frameworks 0.9-1 s."  # numpy:gram's 20 ms is numpy's in speed
    assert f"its 94% interval {span(0.0029, 0.0031)}" in speed and "against numpy's 20 ms first call" in speed
    assert "tied with it within the noise (their intervals overlap): *GradientTape loop* (cpu, float64)" in speed
    assert "*Keras fit*" not in speed  # not tied: its interval is far away
    assert "closed form instead takes 200 us, 100x the speed of numpy's 1,000 updates" in speed


def test_speed_calls_a_tie_with_numpy_and_never_ranks_inside_the_noise(tmp_path):
    rows = [timing_row("numpy", "float64", 0.020, 0.020, 0.015, 0.025),
            timing_row("gradient_tape:xla", "float64", 0.9, 0.019, 0.016, 0.024)]
    speed = report.findings(write_folder(tmp_path / "results", rows))[2]
    assert "no other way is faster per update beyond the noise" in speed and "the intervals overlap, a tie" in speed
    assert "overtakes" not in speed


def test_speed_when_numpy_did_not_run_or_nothing_compares(tmp_path):
    only = [timing_row("numpy", "float64", 0.020, 0.020, 0.019, 0.021)]
    speed = report.findings(write_folder(tmp_path / "a", only))[2]
    assert speed == "numpy trains in 20 ms (float64); no other implementation did the same work to compare with."


def test_a_diverged_run_is_named_and_left_out_of_the_gap(folder):
    edit_csv(folder, "runs", lambda t: t.assign(status=np.where(t.implementation == "keras",
                                                                "diverged at iteration 7", t.status)))
    edit_csv(folder, "weights", lambda t: t.assign(value=np.where(t.implementation == "keras", 1e3, t.value)))
    agreement, gap = report.findings(folder)[:2]
    assert "1 run diverged and stopped (`keras` [cpu, float64] diverged at iteration 7)" in agreement
    assert "Descent reaches the least-squares answer" in gap  # the diverged run's weights are not a fit


def test_a_failed_a_missing_and_an_unknown_experiment(folder, monkeypatch):
    sweep().to_csv(folder / "lr_sweep.csv", index=False)
    edit_json(folder, "experiments", lambda s: {"lr_sweep": {"status": "ok"}, "variants": {"status": "ok"},
                                                "matmul": {"status": "failed: RuntimeError: boom\nmore"},
                                                "not_yet": {"status": "ok", "seconds": 1.0}})
    bullets = report.findings(folder)
    assert bullets[-1] == ("Not measured in this run: `variants` (ok, but variants.csv is missing); `matmul` "
                           "(failed: RuntimeError: boom); `not_yet` (not an experiment this version knows).")
    assert any(b.startswith("Full-batch descent is stable only for learning rates below") for b in bullets)


def test_no_more_than_ten_findings(folder, monkeypatch):
    monkeypatch.setattr(lr_sweep, "findings", lambda table: ["one.", "two.", "three."], raising=False)
    names = {f"lr_sweep_{k}": {"status": "ok"} for k in range(12)}
    monkeypatch.setattr(report, "EXPERIMENTS", ("lr_sweep", *names))
    for name in names:
        pd.DataFrame({"a": [1]}).to_csv(folder / f"{name}.csv", index=False)
    monkeypatch.setattr(report.experiment_registry, "load", lambda name: lr_sweep)
    edit_json(folder, "experiments", lambda s: {**names, "gone": {"status": "failed: x"}})
    bullets = report.findings(folder)
    assert len(bullets) == 10 and bullets[3] == "one. two."  # two sentences per experiment at most
    assert bullets[-1].startswith("Not measured in this run: `gone`")


# --- which to use when ---------------------------------------------------------------------------------------

def test_which_to_use_when_reads_ties_break_even_and_the_solve(folder):
    t = report.load(folder)
    caption, table = report.use_when_rows(t)
    assert caption.startswith("float64, n = 100, m = 1, 1,000 updates per run.")
    rows = table.set_index("way of training")
    assert rows.loc["GradientTape loop, XLA", "use it when"] == f"for runs longer than {XLA_BREAK_EVEN:,} updates"
    assert rows.loc["Keras fit", "use it when"] == "never faster than numpy at this size"
    assert rows.loc["numpy, Gram route", "use it when"] == "a tie with numpy per update (the noise intervals overlap)"
    assert rows.loc["numpy, by hand", "use it when"] == "the reference: the lesson's own loop"
    assert rows.loc["least squares, solved in closed form", "use it when"] == (
        "when the exact least-squares answer is all you need: 100x the speed of numpy's 1,000 updates")
    assert rows.loc["GradientTape loop, XLA", "time to first result"] == "900 ms"
    assert rows.loc["GradientTape loop, XLA", "time per update"] == f"3 us ({span(2.9e-6, 3.1e-6)})"
    assert rows.loc["GradientTape loop, XLA", "agreement with numpy"] == "4 eps"
    assert rows.loc["numpy, Gram route", "agreement with numpy"] == (
        "4 eps (Gram loss: within its rounding bound)")


def test_which_to_use_when_at_once_not_compared_and_not_equivalent(folder):
    def doctor(t):
        xla = t.implementation == "gradient_tape:xla"
        keras = t.implementation == "keras"
        return t.assign(break_even_updates=np.where(xla, 0.0, t.break_even_updates),
                        speedup_vs_numpy=np.where(keras, np.nan, t.speedup_vs_numpy))
    edit_csv(folder, "timings", doctor)
    edit_csv(folder, "equivalence", lambda t: t.assign(max_rel_loss_diff=np.where(
        t.implementation == "gradient_tape", 1e-3, t.max_rel_loss_diff)))
    rows = report.use_when_rows(report.load(folder))[1].set_index("way of training")["use it when"]
    assert rows["GradientTape loop, XLA"] == "faster than numpy at this size from the first update"
    assert rows["Keras fit"] == "not compared: it made a different number of updates"
    assert rows["GradientTape loop"].startswith("**not equivalent to numpy in this run**; ")


def test_old_timings_without_interval_columns_read_min_to_max(folder):
    old = ["median_low_s", "median_high_s", "interval_coverage", "speedup_low", "speedup_high", "break_even_updates"]
    edit_csv(folder, "timings", lambda t: t.drop(columns=old))
    rows = report.use_when_rows(report.load(folder))[1].set_index("way of training")["use it when"]
    assert rows["GradientTape loop, XLA"] == f"for runs longer than {XLA_BREAK_EVEN:,} updates"
    assert "min to max" in report.findings(folder)[2]


# --- the timings reading, the set-up, one quantity one number, machine facts -----------------------------------

def test_timings_reading_has_no_empty_bullets_and_reads_the_registry(folder, monkeypatch):
    rows = TIMINGS + [timing_row("numpy", "float64", 0.02, 0.02, 0.019, 0.021, device="cpu:0+cpu:1")]
    write_folder(folder, rows)
    text = build(folder, monkeypatch)
    reading = text.split("**Reading the timings.**", 1)[1].split("\n## ", 1)[0]
    bullets = [b for b in reading.splitlines() if b.startswith("- ")]
    assert not any(b.startswith("- cpu:0+cpu:1") for b in bullets)  # numpy alone there: nothing to read
    cpu = next(b for b in bullets if b.startswith("- cpu, float64:"))
    assert f"*GradientTape loop, XLA* ({REGISTRY['gradient_tape:xla'].summary}, ran as XLA)" in cpu
    assert "*numpy, Gram route*" in cpu and "a tie with numpy (intervals overlap)" in cpu
    assert not any(b.startswith("- cpu, float32:") for b in bullets)  # only numpy in float32


def test_set_up_renders_numerics_and_xla_in_words(folder, monkeypatch):
    text = build(folder, monkeypatch)
    assert "- numerics: op determinism on, TF32 off" in text
    assert "- compiled by XLA (`jit_compile`): yes: *GradientTape loop*; no: *Keras fit*" in text
    assert "{'" not in text and "(issue" not in text


def test_same_loop_pairs_agree_or_say_what_differs(folder, monkeypatch):
    text = build(folder, monkeypatch)
    assert ("*GradientTape loop* and *GradientTape loop, XLA* (cpu, float64) ran the same loop (`mode` xla in "
            "runs.csv), and their times agree within the measured noise") in text
    edit_csv(folder, "timings", lambda t: t.assign(
        median_s=np.where(t.implementation == "gradient_tape", 0.0045, t.median_s),
        median_low_s=np.where(t.implementation == "gradient_tape", 0.0044, t.median_low_s),
        median_high_s=np.where(t.implementation == "gradient_tape", 0.0046, t.median_high_s)))
    text = build(folder, monkeypatch)
    assert "yet were timed at 4.5 ms and 3 ms per run, outside each other's interval" in text
    assert "the work is the same, so the gap is noise of the machine" in text


def test_the_same_cost_per_update_in_an_experiment_agrees_or_is_explained(folder):
    tables = report.load(folder)
    scaling = pd.DataFrame([dict(implementation="numpy", device="cpu", dtype="float64", n_samples=100, n_features=1,
                                 iterations=200, median_s=0.0098, min_s=0.0096, max_s=0.01, status="ok", mode=np.nan),
                            dict(implementation="numpy:gram", device="cpu", dtype="float64", n_samples=100,
                                 n_features=1, iterations=200, median_s=1.0, min_s=1.0, max_s=1.0, status="ok",
                                 mode=np.nan)])  # 48-50 us per update against 19-21 us; the Gram row is left out
    variants_table = pd.DataFrame([dict(implementation="numpy", dtype="float64", batch_size=100, n_samples=100,
                                        epoch=e, steps=e, median_s=0.0013) for e in range(21)])  # 65 us per update
    notes = report.consistency_notes(tables, {"scaling": (None, scaling), "variants": (None, variants_table)})
    assert not any("Gram route" in n for n in notes)  # its scaling time leaves the pass out: another quantity
    scaled = next(n for n in notes if "in scaling" in n)
    assert scaled.startswith("*numpy, by hand*'s cost per update at n = 100, m = 1, float64 reads 20 us in the "
                             "timings and 49 us in scaling, outside the timings' interval (19-21 us)")
    assert ("scaling times 200 updates per call against 1,000 in the timings, so each call's fixed cost (entering "
            "the loop, returning the result) is spread over fewer updates;") in scaled
    assert "nothing in the work explains" not in scaled
    varied = next(n for n in notes if "in variants" in n)
    assert "65 us in variants" in varied and "gathering the batch's rows at every step" in varied
    more = scaling.assign(iterations=2000, median_s=0.098, min_s=0.096, max_s=0.1)  # more updates, yet dearer
    note = next(n for n in report.consistency_notes(tables, {"scaling": (None, more)}) if "in scaling" in n)
    assert "spread over more updates, which would push the other way" in note
    assert "nothing in the work explains the gap, so read it as the machine's noise" in note
    agreeing = scaling.assign(iterations=1000, median_s=0.02, min_s=0.0195, max_s=0.0205)
    assert any(n.endswith("the same within the measured noise.")
               for n in report.consistency_notes(tables, {"scaling": (None, agreeing)}))
    other_loop = agreeing.assign(implementation="gradient_tape:xla", mode="blocked", median_s=0.006, min_s=0.0058,
                                 max_s=0.0062)
    note = next(n for n in report.consistency_notes(tables, {"scaling": (None, other_loop)}) if "in scaling" in n)
    assert "it ran a different loop there (`mode` blocked against xla)" in note


def test_an_all_reduce_longer_than_its_step_is_explained(folder):
    table = pd.DataFrame([
        dict(kind="measured", what="allreduce", workers=2, numbers=33, bytes=264, seconds=3.85e-3, seconds_per_step=np.nan,
             n_samples=np.nan),
        dict(kind="measured", what="step", workers=2, numbers=np.nan, bytes=np.nan, seconds=np.nan,
             seconds_per_step=3.59e-3, n_samples=100)])
    notes = report.consistency_notes(report.load(folder), {"distributed": (None, table)})
    note = next(n for n in notes if "all-reduce" in n)
    assert note.startswith("One all-reduce of 33 numbers between 2 workers is reported at 3.85 ms, longer than a whole "
                           "2-worker step that contains one (3.59 ms at n = 100). The work differs")
    shorter = table.assign(seconds=np.where(table.what == "allreduce", 1e-3, table.seconds))
    assert "as a part of a step should be" in report.consistency_notes(
        report.load(folder), {"distributed": (None, shorter)})[-1]


def test_machine_facts_come_from_environment_json_only(folder, monkeypatch):
    env = dict(json.loads((folder / "environment.json").read_text()), cpu_model="Big Iron 9000", cpu_cores_usable=16,
               tensorflow={"gpus": ["/physical_device:GPU:0"], "physical_devices": ["CPU:0", "GPU:0"]})
    (folder / "environment.json").write_text(json.dumps(env))
    text = build(folder, monkeypatch) + front_page.readme_block(folder)
    assert "Big Iron 9000, 16 usable cores" in text and "GPU /physical_device:GPU:0" in text
    assert "TensorFlow saw a GPU (/physical_device:GPU:0), but no run in these tables used it" in text
    write_folder(folder, TIMINGS + [timing_row("keras", "float64", 1.0, 0.2, 0.19, 0.21, device="gpu:0")], env)
    assert "GPU (/physical_device:GPU:0): compare the gpu rows with the cpu rows above" in build(folder, monkeypatch)
    for stale in ("No GPU was detected", "no GPU", "2 usable cores", "two cores", "2 cores", "2-core", "AMD EPYC"):
        assert stale not in text, stale


def test_generated_text_types_no_machine_fact():
    """The sources that write the report's and README's text state no core count or CPU model of their own."""
    sources = [REPO / "comparisons" / f for f in ("report/document.py", "output/prose.py", "report/front_page.py")]
    sources += sorted((REPO / "comparisons" / "experiments").glob("*.py"))
    for path in sources:
        text = path.read_text().lower()
        for stale in ("two cores", "2 cores", "2-core", "epyc", "(issue "):
            assert stale not in text, (path.name, stale)


def test_report_compares_no_implementation_name():
    """Per-implementation words come from the registry (summary, title, note), never from name tests."""
    tree = ast.parse((REPO / "comparisons" / "report" / "document.py").read_text())
    tables = [node for node in ast.walk(tree) if isinstance(node, ast.Assign)
              and any(getattr(t, "id", "") in ("FRAMEWORK_WORDS",) for t in node.targets)]
    allowed = {id(k) for table in tables for k in table.value.keys}  # notes keyed by row; framework words
    named = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and node.value in REGISTRY
             and id(node) not in allowed]
    assert named == []


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
    assert first == ("Full-batch descent is stable only for learning rates below 0.4 here; all 6 runs of the sweep "
                     "(2 implementations, 0.5x to 2x the threshold) landed on the side it predicts.")
    assert second == ("The threshold is 2/lambda_max, lambda_max = 5 being the largest eigenvalue of the loss's curvature "
                      "(its Hessian 2/n [X, 1]^T [X, 1]); at the 2 stable rates the numpy float64 run needed 0.95 to "
                      "0.98 of the predicted iterations to close the distance to least squares to 1e-06 of its start.")
    assert lr_sweep.agreement_sentence(sweep()) == (
        "Every one of the 6 runs landed on the side theory predicts (0.5x to 2x the threshold, nearest it 0.99x): "
        "`numpy` and `keras` in float64 at 3 rates.")


def test_lr_sweep_sentence_names_a_disagreeing_run():
    t = sweep()
    hit = (t.implementation == "keras") & (t.lr_over_threshold == 2.0)
    t = t.assign(agrees_with_theory=~hit, observed_side=np.where(hit, "stable", t.observed_side))
    assert lr_sweep.agreement_sentence(t).startswith(
        "**1 run of 6 disagree with theory**: `keras` [float64] at lr 0.8 (2x) was stable.")
    assert lr_sweep.findings(t)[0].endswith("**1 of 6 runs of the sweep did not** land on the predicted side.")


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
    assert variants.findings(epochs_table()) == [
        "Given the same shuffled order of samples, Keras fit (`keras`) takes exactly numpy's steps at batch sizes 1 "
        "and 100: per-step losses differ by at most 1e-15 relative.",
        "After 2 passes over the data, batches of 1 end 0.01 above the least-squares loss and full batches 20."]
    numpy_only = epochs_table()[lambda t: t.implementation == "numpy"]
    assert "Only numpy ran" in variants.report_section(numpy_only)
    assert not any("Keras" in s for s in variants.findings(numpy_only))
    assert variants.findings(epochs_table(keras_gap=1e-3))[0].startswith(
        "**Keras fit (`keras`) parts ways with numpy on the same sample order**")


def test_md_table_escapes_bars_and_formats_floats():
    frame = pd.DataFrame({"a": ["x|y"], "b": [1 / 3], "c": [7]})
    assert md_table(frame, "{:.2f}") == "| a | b | c |\n|---|---|---|\n| x\\|y | 0.33 | 7 |"


def test_span_keeps_one_unit():
    assert span(9.8e-4, 1.06e-3) == "0.98-1.06 ms" and span(19.4e-6, 20.2e-6) == "19.4-20.2 us"
    assert span(150e-6, 250e-6) == "150-250 us" and span(2.0, 3.5) == "2-3.5 s" and span(0.02, 0.02) == "20 ms"


def test_a_gram_route_is_allowed_its_rounding_bound_and_no_more(folder):
    """A Gram row past the tolerance but within tolerance + its loss_bound passes; past both it fails."""
    def gram_gap(gap, bound):
        return lambda eq: eq.assign(
            max_rel_loss_diff=np.where(eq.implementation == "numpy:gram", gap, eq.max_rel_loss_diff),
            loss_bound=np.where(eq.implementation == "numpy:gram", bound, eq.loss_bound))
    edit_csv(folder, "equivalence", gram_gap(3e-10, 5e-10))  # 3e-10 > 1e-10 tolerance, < 1e-10 + 5e-10
    first = report.findings(folder)[0]
    assert "outside the tolerance" not in first and "derived rounding bound 5e-10" in first
    edit_csv(folder, "equivalence", gram_gap(7e-10, 5e-10))  # beyond 1e-10 + 5e-10
    first = report.findings(folder)[0]
    assert first.startswith("**1 run outside the tolerance**: `numpy:gram` [cpu, float64]")


def test_the_numerics_note_says_where_tensorflow_ran(folder):
    env = json.loads((folder / "environment.json").read_text())
    assert report._numerics_note(env, {"numpy", "keras"}).startswith("TensorFlow ran with op determinism on and TF32 off")
    driver_without = {**env, "numerics": None}  # what a run leaves when its process never loaded TensorFlow
    assert report._numerics_note(driver_without, {"numpy"}).startswith("No TensorFlow run")
    assert report._numerics_note(driver_without, {"numpy", "gradient_tape:multi_worker"}).startswith(
        "TensorFlow ran only in the worker processes, each with op determinism on")


def test_speed_when_a_framework_starts_faster_than_numpy(tmp_path):
    rows = [timing_row("numpy", "float64", 0.020, 0.020, 0.019, 0.021),
            timing_row("gradient_tape:xla", "float64", 0.010, 0.003, 0.0029, 0.0031)]
    speed = report.findings(write_folder(tmp_path / "results", rows))[2]
    assert speed.startswith("For one fit of 1,000 updates *GradientTape loop, XLA* starts as fast as numpy or faster "
                            "(10 ms against numpy's 20 ms first calls); *GradientTape loop, XLA* is 6.7x faster per "
                            "update once running and overtakes numpy after 412 updates.")  # 0.007 / 1.7e-5 = 411.8


def test_a_same_loop_pair_timed_by_a_first_call_says_which(folder, monkeypatch):
    edit_csv(folder, "timings", lambda t: t.assign(repeats=np.where(t.implementation == "gradient_tape:xla", 0,
                                                                    t.repeats)))
    text = build(folder, monkeypatch)
    assert ("ran the same loop (`mode` xla in runs.csv); *GradientTape loop, XLA*'s 3 ms is a first call only (no "
            "timed repeat fitted the budget), tracing and compiling included, so the two times do not compare the loop."
            ) in text


def test_a_row_without_timed_repeats_is_read_as_its_first_call(folder, monkeypatch):
    edit_csv(folder, "timings", lambda t: t.assign(
        repeats=np.where(t.implementation == "keras", 0, t.repeats),
        median_low_s=np.where(t.implementation == "keras", t.median_s, t.median_low_s),
        median_high_s=np.where(t.implementation == "keras", t.median_s, t.median_high_s)))
    rows = report.use_when_rows(report.load(folder))[1].set_index("way of training")
    assert rows.loc["Keras fit", "time per update"] == "200 us (first call only: no repeat fitted the time budget)"
    text = build(folder, monkeypatch)
    assert "*Keras fit* (" in text and "200 us per update (its first call only: no repeat fitted the time budget)" in text


def test_speed_with_numpy_rows_only(tmp_path):
    rows = [timing_row("numpy", "float64", 0.020, 0.020, 0.019, 0.021),
            timing_row("numpy:gram", "float64", 0.004, 0.002, 0.0019, 0.0021)]
    speed = report.findings(write_folder(tmp_path / "results", rows))[2]
    # break-even by hand: (0.002 - 0) / (2e-5 - 2e-6) = 111.1 -> 112 updates
    assert speed.startswith("For one fit of 1,000 updates, *numpy, Gram route* is 10x faster per update once running "
                            "and overtakes numpy after 112 updates. On 100 samples its first call took 4 ms, then")
    assert "First calls" not in speed  # no other framework to compare from cold


def test_in_one_dtype_a_tie_is_read_on_the_medians_intervals(tmp_path):
    rows = [timing_row("numpy", "float64", 0.020, 0.020, 0.019, 0.021),
            timing_row("gradient_tape:xla", "float64", 0.9, 0.003, 0.0029, 0.0031),
            timing_row("gradient_tape", "float64", 1.0, 0.0032, 0.00315, 0.0033)]  # speedups overlap, medians not
    speed = report.findings(write_folder(tmp_path / "results", rows))[2]
    assert "*GradientTape loop, XLA* is 6.7x faster" in speed and "tied with it" not in speed


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
    lines = report.compiled_loops_lines(*_loop_tables(tied))
    text = "\n".join(lines)
    assert "Two front ends of one compiler" in text
    assert "| GradientTape loop, XLA (`gradient_tape:xla`) | float64 | 500 ms | 4 us (3-5 us) | 5x |" in text
    assert "JAX, Python loop" not in text and "eager" not in text.split("**")[2].split("|")[0]
    assert ("Per update GradientTape loop, XLA and JAX jit loop are a tie in float64 (their intervals overlap); "
            "GradientTape loop, XLA starts sooner (500 ms against 700 ms).") in text
    apart = [r if r[0] != "jax" else ("jax", "float64", 0.3, 0.002, 0.0018, 0.0022, True, "jit") for r in tied]
    text = "\n".join(report.compiled_loops_lines(*_loop_tables(apart)))
    assert "Per update JAX jit loop is 2x faster than GradientTape loop, XLA in float64, outside the noise" in text
    assert "JAX jit loop starts sooner (300 ms against 500 ms)" in text
    only_tf = [r for r in tied if not r[0].startswith("jax")]
    assert report.compiled_loops_lines(*_loop_tables(only_tf)) == []  # one framework: nothing to set side by side


def test_same_mode_in_two_frameworks_is_not_called_the_same_loop():
    rows = [("numpy", "float64", 0.02, 0.02, 0.019, 0.021, None, None),
            ("gradient_tape:eager", "float64", 4.0, 3.6, 3.5, 3.7, False, "eager"),
            ("jax:eager", "float64", 0.6, 0.06, 0.05, 0.07, True, "eager")]  # the same word, not the same code
    assert report.same_loop_notes(*_loop_tables(rows)) == []
    rows.append(("gradient_tape", "float64", 0.7, 0.004, 0.003, 0.005, True, "eager"))
    notes = report.same_loop_notes(*_loop_tables(rows))
    assert len(notes) == 1 and "*GradientTape loop* and *GradientTape, eager*" in notes[0] or \
        "*GradientTape, eager* and *GradientTape loop*" in notes[0]
