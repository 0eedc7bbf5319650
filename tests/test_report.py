"""The report's generated sentences against their tables: built from doctored copies of the committed
results/, each sentence must change with the table it reads. And the README block is what results/ gives."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from comparisons import report
from comparisons.experiments import lr_sweep, variants
from comparisons.prose import md_table

from .conftest import REPO

RESULTS = REPO / "results"


@pytest.fixture
def results(tmp_path):
    """A copy of the committed results' tables (no figures, no tensorboard), free to doctor."""
    out = tmp_path / "results"
    shutil.copytree(RESULTS, out, ignore=shutil.ignore_patterns("*.png", "tensorboard", "report.md"))
    return out


def edit_csv(folder, name, change):
    """Rewrite folder/name.csv as change(table)."""
    path = folder / f"{name}.csv"
    change(pd.read_csv(path)).to_csv(path, index=False)


def edit_json(folder, name, change):
    """Rewrite folder/name.json as change(dict)."""
    path = folder / f"{name}.json"
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def test_committed_findings_are_at_most_ten_and_read_their_tables():
    bullets = report.findings(RESULTS)
    assert 3 <= len(bullets) <= report.MAX_FINDINGS
    timings = pd.read_csv(RESULTS / "timings.csv")
    others = timings[timings.implementation != "numpy"].sort_values("speedup_vs_numpy")
    fast, slow = others.iloc[-1], others.iloc[0]  # independent of the report: sorted here
    speed = next(b for b in bullets if "fastest" in b)
    assert f"`{fast['implementation']}` [{fast['device']}, {fast['dtype']}]" in speed  # row['dtype']: not Series.dtype
    assert f"`{slow['implementation']}` [{slow['device']}, {slow['dtype']}]" in speed
    assert f"{fast.median_s * 1e3:.3g} ms" in speed and f"{fast.speedup_vs_numpy:.2g}x" in speed
    eq = pd.read_csv(RESULTS / "equivalence.csv")
    streaming = eq[eq.loss_bound.isna()] if "loss_bound" in eq else eq  # Gram routes are reported apart
    worst64 = streaming[streaming.dtype == "float64"].max_rel_loss_diff.max()
    assert f"{worst64 / 2.0 ** -52:.3g} eps ({worst64:.2g} relative) in float64" in bullets[0]
    text = (RESULTS / "report.md").read_text()
    assert text.index("## Findings") < text.index("## Set-up") < text.index("## Timings")


def test_readme_block_is_what_the_committed_results_give():
    readme = (REPO / "README.md").read_text()
    assert report.readme_block_of(readme) == report.readme_block(RESULTS)


def test_sync_readme_rewrites_only_the_block(tmp_path):
    shutil.copytree(RESULTS, tmp_path / "results", ignore=shutil.ignore_patterns("*.png", "tensorboard"))
    (tmp_path / "README.md").write_text(f"# title\n\nkept\n\n{report.FINDINGS_START}\nstale 1.6 ms\n"
                                        f"{report.FINDINGS_END}\n\nalso kept\n")
    assert report.sync_readme(tmp_path / "results") == tmp_path / "README.md"
    text = (tmp_path / "README.md").read_text()
    assert text.startswith("# title\n\nkept\n\n") and text.endswith("\n\nalso kept\n")
    assert "stale" not in text and report.readme_block_of(text) == report.readme_block(tmp_path / "results")
    other = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "results", other)
    assert report.sync_readme(other) is None  # only the folder called results/ beside the README


# --- the single run's sentences ------------------------------------------------------------------------

def test_a_run_outside_tolerance_is_named(results):
    before = report.findings(results)[0]
    assert "inside every tolerance" in before
    edit_csv(results, "equivalence", lambda t: t.assign(max_rel_loss_diff=np.where(
        (t.implementation == "keras") & (t.dtype == "float64"), 1e-6, t.max_rel_loss_diff)))
    after = report.findings(results)[0]
    assert "**1 run outside the tolerance**: `keras` [cpu, float64]" in after
    assert "4.5e+09 eps (1e-06 relative) in float64" in after  # 1e-6 / 2^-52


def test_a_diverged_run_is_named_and_left_out_of_the_gap_and_the_speed(results):
    def diverge(t):
        hit = (t.implementation == "gradient_tape:graph") & (t.dtype == "float64")
        return t.assign(status=np.where(hit, "diverged at iteration 7", t.status))

    def no_speedup(t):
        hit = (t.implementation == "gradient_tape:xla") & (t.dtype == "float32")
        return t.assign(speedup_vs_numpy=np.where(hit, np.nan, t.speedup_vs_numpy))

    def far_weights(t):
        hit = (t.implementation == "gradient_tape:graph") & (t.dtype == "float64")
        return t.assign(value=np.where(hit, 1e3, t.value))

    edit_csv(results, "runs", diverge)
    edit_csv(results, "timings", no_speedup)
    edit_csv(results, "weights", far_weights)
    agreement, gap, speed = report.findings(results)[:3]
    assert "1 run diverged and stopped (`gradient_tape:graph` [cpu, float64] diverged at iteration 7)" in agreement
    assert "descent has converged" in gap  # the diverged run's weights are not a fit
    timings = pd.read_csv(results / "timings.csv").dropna(subset=["speedup_vs_numpy"])
    best = timings[timings.implementation != "numpy"].sort_values("speedup_vs_numpy").iloc[-1]
    assert (best["implementation"], best["dtype"]) != ("gradient_tape:xla", "float32")
    assert "`gradient_tape:xla` [cpu, float32]" not in speed
    assert f"the fastest is `{best['implementation']}` [cpu, {best['dtype']}]" in speed


def test_a_mini_batch_run_that_did_not_settle(results):
    edit_json(results, "study", lambda s: {**s, "batch_size": 8})
    edit_csv(results, "weights", lambda t: t.assign(value=np.where(t.implementation.isin(["ols", "true"]),
                                                                   t.value, t.value * 1.01)))
    gap = report.findings(results)[1]
    assert gap.startswith("After 1000 updates")
    assert "mini-batch descent with a fixed step (batches of 8) wanders around that fit" in gap
    assert "(float32) and 0.01 (float64)" in gap  # every parameter 1% off


def test_numpy_alone_without_tensorflow(results):
    for name in ("weights", "runs", "timings", "loss_curves"):
        edit_csv(results, name, lambda t: t[t.implementation.isin(["numpy", "ols", "true"])])
    for name in ("equivalence", "gradient_check"):
        edit_csv(results, name, lambda t: t.iloc[:0])
    edit_json(results, "experiments", lambda s: {})
    bullets = report.findings(results)
    assert bullets[0] == "Only one implementation ran, so nothing was compared with the hand-rolled run."
    medians = pd.read_csv(results / "timings.csv").set_index("dtype").median_s  # numpy's rows only, by now
    assert bullets[2].startswith(f"numpy trains in {medians['float32'] * 1e3:.3g} ms (float32) and "
                                 f"{medians['float64'] * 1e3:.3g} ms (float64); no other implementation")
    assert len(bullets) == 3
    text = report.build(results).read_text()
    assert "_no gradient_tape run in this study_" in text and "fastest" not in text


def test_a_failed_a_missing_and_an_unknown_experiment(results):
    edit_json(results, "experiments", lambda s: {**s, "matmul": {"status": "failed: RuntimeError: boom\nmore"},
                                                 "not_yet": {"status": "ok", "seconds": 1.0}})
    (results / "variants.csv").unlink()
    bullets = report.findings(results)
    assert not any("classical product" in b or "sample order" in b for b in bullets)
    assert bullets[-1] == ("Not measured in this run: `variants` (ok, but variants.csv is missing); `matmul` "
                           "(failed: RuntimeError: boom); `not_yet` (not an experiment this version knows).")
    assert any(b.startswith("Full-batch descent is stable") for b in bullets)  # the others still speak


def test_no_more_than_ten_findings(results, monkeypatch):
    monkeypatch.setattr(lr_sweep, "findings", lambda table: ["one.", "two.", "three."], raising=False)
    names = {f"lr_sweep_{k}": {"status": "ok"} for k in range(12)}
    monkeypatch.setattr(report, "EXPERIMENTS", ("lr_sweep", *names))
    for name in names:
        shutil.copy(results / "lr_sweep.csv", results / f"{name}.csv")
    monkeypatch.setattr(report.experiment_registry, "load", lambda name: lr_sweep)
    edit_json(results, "experiments", lambda s: {**names, "gone": {"status": "failed: x"}})
    bullets = report.findings(results)
    assert len(bullets) == 10 and bullets[3] == "one. two."  # two sentences per experiment at most
    assert bullets[-1].startswith("Not measured in this run: `gone`")


# --- the experiments' sentences --------------------------------------------------------------------------

def sweep():
    return pd.read_csv(RESULTS / "lr_sweep.csv")


def test_lr_sweep_sentence_names_who_ran_where():
    text = lr_sweep.agreement_sentence(sweep())
    assert "`keras:numpy_input` and `gradient_tape:eager` in float64 at 5 rates" in text
    assert "in float32 and float64 at 9 rates" in text and "nearest it 0.99x and 1.01x" in text


def test_lr_sweep_sentence_with_fewer_rates_and_one_dtype():
    t = sweep()
    t = t[(t.implementation == "numpy") & (t.dtype == "float64") & (t.lr_over_threshold < 0.5)]
    assert lr_sweep.agreement_sentence(t) == (
        f"Every one of the {len(t)} runs landed on the side theory predicts (0.001x to 0.116x the threshold): "
        f"`numpy` in float64 at {len(t)} rates.")
    assert lr_sweep.findings(t)[0].endswith("all 3 runs of the sweep (1 implementations, 0.001x to 0.116x the "
                                            "threshold) landed on the side it predicts.")


def test_lr_sweep_sentence_names_a_disagreeing_run():
    t = sweep()
    hit = (t.implementation == "keras") & (t.dtype == "float32") & (t.lr == 10.0)
    t = t.assign(agrees_with_theory=~hit, observed_side=np.where(hit, "stable", t.observed_side))
    text = lr_sweep.agreement_sentence(t)
    assert text.startswith(f"**1 run of {len(t)} disagree with theory**: `keras` [float32] at lr 10 (23.1x) was stable.")
    assert lr_sweep.findings(t)[0].endswith(f"**1 of {len(t)} runs of the sweep did not** land on the predicted side.")


def test_variants_without_keras_and_with_a_differing_keras():
    t = pd.read_csv(RESULTS / "variants.csv")
    numpy_only = t[t.implementation == "numpy"]
    assert "Only numpy ran" in variants.report_section(numpy_only)
    assert not any("Keras" in s for s in variants.findings(numpy_only))
    apart = t.assign(max_rel_step_loss_diff_vs_numpy=np.where(t.implementation == "keras", 1e-3, 0.0))
    assert variants.findings(apart)[0].startswith("**Keras and numpy part ways")


def test_md_table_escapes_bars_and_formats_floats():
    frame = pd.DataFrame({"a": ["x|y"], "b": [1 / 3], "c": [7]})
    assert md_table(frame, "{:.2f}") == "| a | b | c |\n|---|---|---|\n| x\\|y | 0.33 | 7 |"


def test_a_gram_route_is_allowed_its_rounding_bound_and_no_more(results):
    """A Gram row past the tolerance but within tolerance + its loss_bound passes, and the report says why; past both it fails."""
    def gram_row(gap, bound):
        def change(eq):
            row = eq[(eq.implementation == "numpy:gram") | (eq.implementation == "keras")].iloc[[0]].copy()
            row["implementation"], row["dtype"] = "numpy:gram", "float32"
            row["max_rel_loss_diff"], row["loss_bound"] = gap, bound
            return pd.concat([eq[eq.implementation != "numpy:gram"], row])
        return change

    edit_csv(results, "equivalence", gram_row(3e-4, 5e-4))  # 3e-4 > 1e-4 tolerance, < 1e-4 + 5e-4
    first = report.findings(results)[0]
    assert "outside the tolerance" not in first and "Gram routes" in first and "derived rounding bound 0.0005" in first
    edit_csv(results, "equivalence", gram_row(7e-4, 5e-4))  # beyond 1e-4 + 5e-4
    first = report.findings(results)[0]
    assert "1 run outside the tolerance" in first and "`numpy:gram` [cpu, float32]" in first


def test_the_numerics_note_says_where_tensorflow_ran(results):
    env = json.loads((results / "environment.json").read_text())
    assert report._numerics_note(env, {"numpy", "keras"}).startswith("TensorFlow ran with op determinism on and TF32 off")
    driver_without = {**env, "numerics": None}  # what a run leaves when its process never loaded TensorFlow
    assert report._numerics_note(driver_without, {"numpy"}).startswith("No TensorFlow run")
    assert report._numerics_note(driver_without, {"numpy", "gradient_tape:multi_worker"}).startswith(
        "TensorFlow ran only in the worker processes, each with op determinism on")
