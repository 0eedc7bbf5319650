"""comparisons/output/consistency.py: every per-update time measured twice, side by side, on doctored tables and the committed run."""
import math
import re
from pathlib import Path

import pandas as pd
import pytest

from comparisons.output import consistency

RESULTS = Path(__file__).resolve().parent.parent / "results"
N, M = 100, 1


def timings(rows):
    """A timings.csv with the interval columns: rows of (implementation, dtype, iterations, repeats, median, low, high)."""
    return pd.DataFrame([{"implementation": name, "device": "cpu", "dtype": dtype, "n_samples": N, "n_features": M,
                          "iterations": k, "repeats": repeats, "first_call_s": 1.0, "median_s": med, "min_s": low,
                          "max_s": high, "median_low_s": low, "median_high_s": high}
                         for name, dtype, k, repeats, med, low, high in rows])


def scaling(rows):
    """A scaling.csv: rows of (implementation, dtype, n, iterations, repeats, median, min, max)."""
    return pd.DataFrame([{"implementation": name, "device": "cpu", "dtype": dtype, "n_samples": n, "n_features": M,
                          "iterations": k, "repeats": repeats, "median_s": med, "min_s": low, "max_s": high}
                         for name, dtype, n, k, repeats, med, low, high in rows])


def variants(rows, epochs=2):
    """A variants.csv: rows of (implementation, batch size, updates per call, median, low, high), epochs + 1 rows each."""
    return pd.DataFrame([{"implementation": name, "dtype": "float64", "batch_size": batch, "epoch": e,
                          "steps": e * k // epochs, "median_s": med, "repeats": 5, "n_samples": N,
                          "updates_per_call": k, "median_low_s": low, "median_high_s": high}
                         for name, batch, k, med, low, high in rows for e in range(epochs + 1)])


def one(table, **where):
    """The one row of `table` matching every column = value in `where`."""
    mask = pd.Series(True, index=table.index)
    for column, value in where.items():
        mask &= table[column] == value
    assert mask.sum() == 1, table
    return table[mask].iloc[0]


def test_same_work_within_the_intervals_agrees():
    tables = {"timings.csv": timings([("numpy", "float32", 1000, 5, 0.020, 0.019, 0.022)]),
              "scaling.csv": scaling([("numpy", "float32", N, 1000, 3, 0.021, 0.0215, 0.023)])}
    pair = one(consistency.pairs(tables), implementation="numpy")
    assert (pair.source_a, pair.source_b) == ("timings", "scaling")
    assert pair.per_update_s_a == pytest.approx(20e-6) and pair.per_update_s_b == pytest.approx(21e-6)
    assert (pair.low_s_a, pair.high_s_a) == pytest.approx((19e-6, 22e-6))
    assert (pair.low_s_b, pair.high_s_b) == pytest.approx((21.5e-6, 23e-6))
    assert pair.agree and pair.verdict == "agree" and pair.differences == ""


def test_same_work_apart_disagrees():
    tables = {"timings.csv": timings([("numpy", "float32", 1000, 5, 0.020, 0.019, 0.021)]),
              "scaling.csv": scaling([("numpy", "float32", N, 1000, 3, 0.045, 0.040, 0.050)])}
    pair = one(consistency.pairs(tables), implementation="numpy")
    assert not pair.agree and pair.verdict == "disagree" and pair.differences == ""


def test_more_updates_per_call_explain_only_a_faster_side():
    """2000 updates per call spread a fixed cost thinner: that explains the 2000-update side being faster, not slower."""
    faster = {"timings.csv": timings([("numpy", "float32", 1000, 5, 0.040, 0.039, 0.041)]),
              "scaling.csv": scaling([("numpy", "float32", N, 2000, 3, 0.050, 0.048, 0.052)])}  # 25 us vs 40 us
    pair = one(consistency.pairs(faster), implementation="numpy")
    assert pair.verdict == "differs in work" and "1000 vs 2000 updates per call" in pair.differences
    slower = {"timings.csv": faster["timings.csv"],
              "scaling.csv": scaling([("numpy", "float32", N, 2000, 3, 0.100, 0.096, 0.104)])}  # 50 us vs 40 us
    pair = one(consistency.pairs(slower), implementation="numpy")
    assert pair.verdict == "disagree" and "1000 vs 2000 updates per call" in pair.differences


def test_variants_full_batch_differs_in_work_from_the_single_run():
    """Variants feeds index arrays (a gather every step) over few updates per call: slower per update, explained."""
    tables = {"timings.csv": timings([("numpy", "float64", 1000, 5, 0.020, 0.019, 0.021)]),
              "variants.csv": variants([("numpy", N, 20, 0.0013, 0.00125, 0.0014), ("numpy", 32, 80, 0.004, 0.0039,
                                                                                    0.0041)])}
    found = consistency.pairs(tables)
    pair = one(found, implementation="numpy", batch_size=N)
    assert (pair.source_a, pair.source_b, pair.updates_per_call_b) == ("timings", "variants", 20)
    assert pair.per_update_s_b == pytest.approx(0.0013 / 20)
    assert pair.verdict == "differs in work"
    assert "variants gathers rows every step" in pair.differences and "1000 vs 20" in pair.differences
    assert len(found) == 1  # batch size 32 is measured once only


def test_lr_sweep_calls_are_samples_without_first_calls_or_diverged_runs():
    rows = [(True, -1, 9.0), (False, -1, 0.030), (False, 12, 0.001), (False, -1, 0.020), (False, -1, 0.025),
            (False, -1, 0.040), (False, -1, 0.035)]
    sweep = pd.DataFrame([{"implementation": "numpy", "dtype": "float64", "lr": 0.1 * i, "iterations": 1000,
                           "diverged_at": diverged, "seconds": s, "first_call": first}
                          for i, (first, diverged, s) in enumerate(rows)])
    found = consistency.measurements({"lr_sweep.csv": sweep}, {"n_samples": N, "n_features": M})
    m = one(found, source="lr_sweep")
    # the five steady calls 0.020 .. 0.040: median 0.030; five samples give [min, max] (93.75 %)
    assert m.per_update_s == pytest.approx(30e-6) and (m.low_s, m.high_s) == pytest.approx((20e-6, 40e-6))
    assert (m.n_samples, m.n_features, m.batch_size, m.updates_per_call) == (N, M, N, 1000)
    older = sweep.drop(columns="first_call")  # no column: the first row of each implementation is its first call
    assert one(consistency.measurements({"lr_sweep.csv": older}, {"n_samples": N, "n_features": M}),
               source="lr_sweep").per_update_s == pytest.approx(30e-6)


def test_distributed_steps_are_per_update_fastest_calls_of_the_tape_loop():
    table = pd.DataFrame([
        {"kind": "measured", "what": "step", "strategy": "mirrored", "replicas": 2, "workers": 1, "n_samples": N,
         "n_features": M, "dtype": "float32", "seconds_per_step": 0.001, "iterations": 99},
        {"kind": "measured", "what": "step", "strategy": "multi_worker", "replicas": 1, "workers": 2, "n_samples": N,
         "n_features": M, "dtype": "float32", "seconds_per_step": 0.004, "iterations": 9},
        {"kind": "measured", "what": "allreduce", "strategy": "multi_worker", "replicas": 1, "workers": 2,
         "n_samples": math.nan, "n_features": math.nan, "dtype": "float32", "seconds_per_step": math.nan,
         "iterations": math.nan}])
    found = consistency.measurements({"distributed.csv": table})
    mirrored = one(found, device="cpu:0+cpu:1")
    assert mirrored.implementation == "gradient_tape:mirrored"  # the registry's tape loop over replicas
    assert mirrored.per_update_s == pytest.approx(0.001 * 100 / 99) and mirrored.statistic == "min"
    workers = one(found, device="worker0/cpu:0+worker1/cpu:0")
    assert workers.implementation == "gradient_tape:multi_worker" and workers.per_update_s == pytest.approx(0.004 * 10 / 9)
    assert len(found) == 2
    from comparisons.core import registry
    from comparisons.core.registry import Implementation

    other = Implementation("test_only:sharded", "a throwaway row of another framework, distributed over replicas",
                           "numpy", "comparisons.running.adapters.numpy_trainers:descent", checks_gradient=True,
                           distributed="replicas")
    saved = dict(registry.REGISTRY)
    try:
        registry.register(other)  # another framework's row distributed over replicas changes nothing
        assert one(consistency.measurements({"distributed.csv": table}), device="cpu:0+cpu:1").implementation == \
            "gradient_tape:mirrored"
    finally:
        registry.REGISTRY.clear()
        registry.REGISTRY.update(saved)
    # against the single run's median: the fastest call explains a faster distributed side
    single = timings([("gradient_tape:mirrored", "float32", 1000, 5, 1.5, 1.4, 1.6)]).assign(device="cpu:0+cpu:1")
    pair = one(consistency.pairs({"timings.csv": single, "distributed.csv": table}), source_b="distributed")
    assert pair.verdict == "differs in work" and "distributed gives a fastest call" in pair.differences


def test_old_timings_without_intervals_use_min_and_max_and_a_lone_call_is_its_own_interval():
    old = timings([("numpy", "float32", 1000, 5, 0.020, 0.019, 0.022),
                   ("keras:numpy_input", "float64", 1000, 0, 50.0, 50.0, 50.0)]).drop(
        columns=["median_low_s", "median_high_s"])
    found = consistency.measurements({"timings.csv": old})
    assert one(found, implementation="numpy").interval == "min-max"
    lone = one(found, implementation="keras:numpy_input")
    assert lone.interval == "one call" and lone.first_call_included and lone.low_s == lone.high_s == 0.05


def runs(rows):
    """A runs.csv: rows of (implementation, dtype, mode)."""
    return pd.DataFrame([{"implementation": name, "device": "cpu", "dtype": dtype, "status": "ok", "mode": mode}
                         for name, dtype, mode in rows])


def test_two_names_of_one_loop_are_judged_by_the_same_rule():
    """The tape loop under two names (same framework and mode): agree when the intervals overlap, else disagree."""
    rows = [("numpy", "float64", 1000, 5, 0.020, 0.019, 0.021), ("gradient_tape", "float64", 1000, 5, 0.003, 0.0029, 0.0031),
            ("gradient_tape:xla", "float64", 1000, 5, 0.0031, 0.0030, 0.0032),
            ("jax:eager", "float64", 1000, 5, 0.05, 0.049, 0.051), ("gradient_tape:eager", "float64", 1000, 1, 3.0, 3.0, 3.0)]
    modes = runs([("numpy", "float64", None), ("gradient_tape", "float64", "xla"), ("gradient_tape:xla", "float64", "xla"),
                  ("jax:eager", "float64", "eager"), ("gradient_tape:eager", "float64", "eager")])
    found = consistency.same_loop_pairs(timings(rows), modes)
    assert list(found.implementation) == ["gradient_tape = gradient_tape:xla"]  # JAX's eager is not TensorFlow's
    pair = found.iloc[0]
    assert pair.agree and pair.verdict == "agree" and (pair.low_s_a, pair.high_s_b) == pytest.approx((2.9e-6, 3.2e-6))
    rows[2] = ("gradient_tape:xla", "float64", 1000, 5, 0.0045, 0.0044, 0.0046)
    pair = consistency.same_loop_pairs(timings(rows), modes).iloc[0]
    assert not pair.agree and pair.verdict == "disagree"  # the same work: nothing explains the gap
    assert consistency.same_loop_pairs(timings(rows), modes.drop(columns="mode")).empty


def test_both_estimates_of_the_lessons_500_loop_are_found():
    matmul = pd.DataFrame({"method": ["python_loop", "python_loop", "numpy"], "n": [32, 64, 500],
                           "min_s": [0.02, 0.1, 0.01]})
    claims = pd.DataFrame({"key": ["other", "loop_500"], "measured": ['{"x": 1}', '{"n": 48, "predicted_500_s": 85.0}']})
    found = consistency.loop_estimates({"matmul.csv": matmul, "lesson_claims.csv": claims})
    assert found == [("matmul", 64, pytest.approx(0.1 * (500 / 64) ** 3)), ("lesson_claims", 48, 85.0)]
    assert consistency.loop_estimates({}) == []


def test_the_closed_form_solve_is_no_per_update_time():
    solve = timings([("ols", "float64", 0, 5, 0.0002, 0.00015, 0.00025)])
    assert consistency.measurements({"timings.csv": solve}).empty


def _interleaved_run():
    """Whether results/ was timed by the interleaved harness (its timings.csv has the interval columns)."""
    return (RESULTS / "timings.csv").exists() and "median_low_s" in pd.read_csv(RESULTS / "timings.csv", nrows=0)


@pytest.mark.skipif(not _interleaved_run(), reason="results/ predates the interleaved harness: regenerate it")
def test_the_committed_run_pairs_each_quantity_measured_twice_and_its_report_shows_every_pair_that_does_not_agree():
    """Every quantity the committed run measured twice is paired and judged, and report.md says each verdict.

    Whether the pairs agree is a fact about the machine while the run ran, not about the code: two measurements
    minutes apart meet its drift (here, the same call took 2.9 s and 4.7 s in two runs a minute apart), so a
    committed run may hold a disagreement. The report must then show it; the rule itself is tested above, on
    doctored tables.
    """
    found = consistency.check(RESULTS)
    assert list(found.columns) == consistency.PAIR_COLUMNS
    one_loop = found.implementation.str.contains(" = ")  # two names of one loop, both in timings.csv
    assert (found.source_a[~one_loop] != found.source_b[~one_loop]).all()
    assert (found[["per_update_s_a", "per_update_s_b"]] > 0).all().all()
    assert set(found.verdict) <= {"agree", "differs in work", "disagree"}
    section = (RESULTS / "report.md").read_text().split("## One quantity, one number", 1)[1].split("\n## ", 1)[0]
    counts = found.verdict.value_counts()
    said = dict((verdict, int(count)) for count, verdict in
                re.findall(r"(\d+) (agree|differs in work|disagree)", section.split("\n\n")[1]))
    assert said == counts.to_dict()
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| way of")]
    assert len(rows) == (found.verdict != "agree").sum()  # one table row per pair that does not agree
    last_cells = [row.rstrip(" |").rsplit("| ", 1)[1] for row in rows]
    assert sum(cell.startswith("disagree") for cell in last_cells) == counts.get("disagree", 0)


def test_command_line(tmp_path, capsys):
    assert consistency.main([str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: no timings.csv in ")
    timings([("numpy", "float32", 1000, 5, 0.020, 0.019, 0.022)]).to_csv(tmp_path / "timings.csv", index=False)
    assert consistency.main([str(tmp_path)]) == 0
    assert "no quantity is measured twice" in capsys.readouterr().out
