"""The scaling experiment's arithmetic, its floors and their probes, its Gram columns, its figure's artists and its
findings. No speed assertions: every timing below is either made up (to test the table logic) or only checked for
structure."""
import math

import numpy as np
import pandas as pd
import pytest

from comparisons.core.config import StudyConfig
from comparisons.experiments import ExperimentContext, scaling
from comparisons.running.timing import Timing


NAMES = ["numpy", "gradient_tape", "numpy:gram", "gradient_tape:gram"]
FRAMEWORK = {"numpy": "numpy", "gradient_tape": "tensorflow", "numpy:gram": "numpy", "gradient_tape:gram": "tensorflow"}


def _table(per_iteration, one_pass=None, sizes=(100, 10_000, 1_000_000), m=32, dtype="float32", bandwidth=1e10,
           gemm=1e11, modes=None):
    """A made-up scaling table: per_iteration[name] and one_pass[name] are lists over `sizes`."""
    one_pass, modes = one_pass or {}, modes or {}
    rows = []
    for name in per_iteration:
        gram = name in one_pass
        for k, n in enumerate(sizes):
            x_bytes, y_bytes = n * m * 4, n * 4
            iterations = 1000 if gram else 50
            per = per_iteration[name][k]
            passed = one_pass[name][k] if gram else np.nan
            median = (passed + per * iterations) if gram else per * iterations
            rows.append({"implementation": name, "device": "cpu", "framework": FRAMEWORK.get(name, "tensorflow"),
                         "route": "gram" if gram else "streaming", "dtype": dtype, "n_samples": n, "n_features": m,
                         "iterations": iterations, "median_s": median, "median_low_s": 0.9 * median,
                         "median_high_s": 1.1 * median, "per_iteration_s": per, "one_pass_s": passed,
                         "x_bytes": x_bytes, "y_bytes": y_bytes, "bandwidth_gbs": bandwidth / 1e9,
                         "bandwidth_sum_gbs": bandwidth / 1e9, "bandwidth_gemv_gbs": bandwidth / 2e9,
                         "gemm_gflops": gemm / 1e9, "status": "ok", "mode": modes.get(name),
                         "floor_per_iteration_s": scaling.floor_per_iteration(x_bytes, bandwidth),
                         "one_pass_floor_s": scaling.one_pass_floor(x_bytes, y_bytes, bandwidth),
                         "gram_pass_floor_s": scaling.gram_pass_floor(n, m, x_bytes, y_bytes, bandwidth, gemm)
                         if gram else np.nan})
    return scaling.with_ratios(pd.DataFrame(rows))


PER = {"numpy": [2e-5, 1e-4, 3e-2], "gradient_tape": [1e-5, 2e-4, 4e-2],
       "numpy:gram": [8e-6, 8e-6, 9e-6], "gradient_tape:gram": [3e-6, 3e-6, 3e-6]}
PASS = {"numpy:gram": [1e-4, 2e-3, 0.2], "gradient_tape:gram": [5e-2, 5e-2, 0.3]}


def test_floor_arithmetic_against_hand_computed_cases():
    # n = 10^6, m = 32, float64: X is 256 MB, y 8 MB; at 10 GB/s the two-pass floor reads X twice
    x_bytes, y_bytes = 10**6 * 32 * 8, 10**6 * 8
    assert scaling.floor_per_iteration(x_bytes, 1e10) == pytest.approx(0.0512)
    assert scaling.one_pass_floor(x_bytes, y_bytes, 1e10) == pytest.approx(0.0264)
    assert scaling.gram_flops(10**6, 32) == 2 * 10**6 * 33 * 33 == 2.178e9
    # at 100 GFLOP/s the arithmetic takes 21.78 ms, less than the 26.4 ms read: bandwidth sets the floor
    assert scaling.gram_pass_floor(10**6, 32, x_bytes, y_bytes, 1e10, 1e11) == pytest.approx(0.0264)
    # at 50 GFLOP/s it takes 43.56 ms: arithmetic sets it
    assert scaling.gram_pass_floor(10**6, 32, x_bytes, y_bytes, 1e10, 5e10) == pytest.approx(0.04356)
    # m = 1: 2 n (m + 1)^2 = 8 n flops against 16 n bytes
    assert scaling.gram_pass_floor(1000, 1, 8000, 8000, 1e9, 1e9) == pytest.approx(max(8e3 / 1e9, 16e3 / 1e9))


def test_probe_rates_are_work_over_the_median_and_the_bandwidth_is_the_better_probe():
    timings = {"bandwidth:sum": Timing(1.0, (0.04, 0.02, 0.03)), "bandwidth:gemv": Timing(1.0, (0.01, 0.05, 0.02)),
               "gemm": Timing(1.0, (0.5, 0.25, 0.1))}
    work = {"bandwidth:sum": 3e8, "bandwidth:gemv": 3e8, "gemm": 2e10}
    rate = scaling.probe_rates(timings, work)
    assert rate["bandwidth_sum"] == pytest.approx(3e8 / 0.03)  # medians: 0.03, 0.02, 0.25
    assert rate["bandwidth_gemv"] == pytest.approx(3e8 / 0.02)
    assert rate["bandwidth"] == pytest.approx(1.5e10)
    assert rate["gemm"] == pytest.approx(2e10 / 0.25)


def test_floor_probes_do_the_work_they_claim():
    calls, work = scaling.floor_probes(2**20, 16)
    assert work["bandwidth:sum"] == work["bandwidth:gemv"] == 2**20 and work["gemm"] == 2 * 16 ** 3
    assert np.shape(calls["bandwidth:gemv"]()) == (2**20 // 256,) and np.shape(calls["gemm"]()) == (16, 16)
    assert scaling.kernel_column("X @ W") == "kernel_X_at_W_s" and len({scaling.kernel_column(k) for k in scaling.KERNELS}) == len(scaling.KERNELS)


def test_floors_ratios_and_the_time_of_1000_iterations():
    table = _table(PER, PASS)
    x = table.x_bytes.to_numpy(float)
    np.testing.assert_allclose(table.floor_per_iteration_s, 2 * x / 1e10)
    np.testing.assert_allclose(table.one_pass_floor_s, (x + table.y_bytes) / 1e10)
    np.testing.assert_allclose(table.ratio_to_one_pass_floor, table.per_iteration_s / table.one_pass_floor_s)
    row = table[(table.implementation == "numpy:gram") & (table.n_samples == 1_000_000)].iloc[0]
    assert row.time_1000_s == pytest.approx(0.2 + 1000 * 9e-6)  # the pass counts
    assert row.pass_ratio_to_one_pass_floor == pytest.approx(0.2 / ((32e6 * 4 + 4e6) / 1e10))
    # its floor: 2.178e9 flops at 1e11 flop/s = 21.78 ms against 13.2 ms of reading: arithmetic
    assert row.gram_pass_floor_s == pytest.approx(0.02178)
    assert row.pass_ratio_to_floor == pytest.approx(0.2 / 0.02178)
    assert row.pass_gflops == pytest.approx(2.178e9 / 0.2 / 1e9)
    row = table[(table.implementation == "numpy") & (table.n_samples == 10_000)].iloc[0]
    assert row.time_1000_s == pytest.approx(1000 * 1e-4)
    assert np.isnan(row.pass_ratio_to_floor)


def test_targets_are_judged_at_a_million_rows_and_say_met_or_missed():
    # numpy at 10^6, m = 32, float32: X 128 MB, floor 2 x 128e6 / 1e10 = 25.6 ms; 30 ms is 1.17x: met
    table = _table(PER, PASS)
    forms = scaling.numpy_forms(table)
    assert list(forms.implementation) == ["numpy"] and forms.ratio_to_floor.iloc[0] == pytest.approx(0.03 / 0.0256)
    report = scaling.report_section(table)
    assert "| numpy's fastest streaming form, m = 32: within 1.5x of the floor | 1.17x (*numpy, by hand*) | met |  |" in report
    # the Gram pass: numpy:gram 200 ms against 21.78 ms, missed; one read (128e6 + 4e6) / 1e10 = 13.2 ms of 200 ms;
    # the rate 2.178e9 flops / 0.2 s = 10.9 GFLOP/s, 0.11 of the square 100
    assert ("| *numpy, Gram route*'s pass, m = 32: within 2x of its floor | 9.18x | missed | reading X and y once: "
            "0.07 of its time; the rest is arithmetic, at 10.9 GFLOP/s (0.11 of the square-GEMM rate) |") in report
    # a slower numpy (60 ms: 2.34x the 25.6 ms floor) misses, and at m = 32 no probe explains it
    slow = scaling.report_section(_table(dict(PER, numpy=[2e-5, 1e-4, 6e-2]), PASS))
    assert "| 2.34x (*numpy, by hand*) | missed | no probe at m = 32 separates the cause |" in slow
    small = _table(PER, PASS, sizes=(100, 1000, 10_000))
    assert "measured up to n = 10,000 only" in scaling.report_section(small)
    assert "Targets** at n = 10,000" in scaling.report_section(small)


def test_the_blocked_loop_is_judged_from_the_mode_column_not_names():
    per = {"numpy": PER["numpy"], "tape_a": [1e-5, 2e-4, 2.0e-2], "tape_b": [1e-5, 2e-4, 2.1e-2]}
    table = _table(per, modes={"tape_a": "blocked", "tape_b": "graph"})
    pairs = scaling.blocked_against_graph(table)
    assert len(pairs) == 1 and pairs.blocked.iloc[0] == "tape_a" and pairs.graph.iloc[0] == "tape_b"
    # one-pass floor (128e6 + 4e6) / 1e10 = 13.2 ms: 20 ms is 1.52x, missed; the intervals +-10% overlap: a tie
    assert pairs.blocked_ratio_to_one_pass_floor.iloc[0] == pytest.approx(0.02 / 0.0132)
    report = scaling.report_section(table)
    assert ("*tape_a* reads X in blocks at each step; at m = 32 it took 1.52x its one-pass floor, X and y read "
            "once (target 1.5x: missed), a tie with *tape_b*.") in report
    apart = _table(dict(per, tape_b=[1e-5, 2e-4, 3.0e-2]), modes={"tape_a": "blocked", "tape_b": "graph"})
    assert "missed), 0.67x the time of *tape_b*." in scaling.report_section(apart)  # 20 / 30 ms
    swapped = _table(per, modes={"tape_a": "graph", "tape_b": "blocked"})
    assert scaling.blocked_against_graph(swapped).blocked.iloc[0] == "tape_b"
    assert scaling.blocked_against_graph(_table(per)).empty and "blocked GradientTape" not in scaling.report_section(
        _table(per))


def test_crossover_is_the_smallest_n_from_which_gram_always_wins():
    # numpy: streaming 1000 x [2e-5, 1e-4, 3e-2] = [0.02, 0.1, 30] s; Gram [0.0081, 0.010, 0.209] s: wins from 100
    # gradient_tape: streaming [0.01, 0.2, 40] s; Gram [0.053, 0.053, 0.303] s: loses at 100, wins from 10,000
    crossover = scaling.gram_crossover(_table(PER, PASS)).set_index("implementation")
    assert crossover.loc["numpy:gram", "beats_streaming_from_n"] == 100
    assert crossover.loc["gradient_tape:gram", "beats_streaming_from_n"] == 10_000
    assert crossover.loc["gradient_tape:gram", "streaming_1000_s"] == pytest.approx(40.0)
    assert crossover.loc["numpy:gram", "streaming"] == "numpy"  # the streaming row of its own framework
    never = dict(PASS, **{"numpy:gram": [1.0, 1.0, 100.0]})
    assert pd.isna(scaling.gram_crossover(_table(PER, never)).set_index("implementation").loc[
        "numpy:gram", "beats_streaming_from_n"])
    where = scaling.findings(_table(PER, never))[1].facts["where"]
    assert sorted(where) == ["*GradientTape, Gram route* from n = 10,000", "*numpy, Gram route* not within n = 1,000,000"]
    # a faster streaming row of the same framework at the largest n becomes the one to beat
    faster = dict(PER, **{"numpy:fast": [2e-5, 1e-4, 1e-3]})
    FRAMEWORK["numpy:fast"] = "numpy"
    try:
        crossover = scaling.gram_crossover(_table(faster, PASS)).set_index("implementation")
    finally:
        del FRAMEWORK["numpy:fast"]
    assert crossover.loc["numpy:gram", "streaming"] == "numpy:fast"
    assert crossover.loc["numpy:gram", "streaming_1000_s"] == pytest.approx(1.0)


def test_findings_and_report_read_the_table():
    table = _table(PER, PASS)
    answer, where = scaling.findings(table)
    assert sorted(where.facts["where"]) == ["*GradientTape, Gram route* from n = 10,000", "*numpy, Gram route* from n = 100"]
    assert answer.kind == "scaling_gram_pays" and answer.facts["n"] == 1_000_000 and answer.facts["m"] == 32
    # 1000 iterations: numpy streaming 30 s against its Gram route's pass and iterations; gradient_tape 40 s against its
    assert sorted(t.split(" against ")[0] for t in answer.facts["times"]) == ["*GradientTape loop* 40 s",
                                                                              "*numpy, by hand* 30 s"]
    slower = _table(dict(PER, numpy=[2e-5, 1e-4, 6e-2]), PASS)
    assert any(t.startswith("*numpy, by hand* 60 s") for t in scaling.findings(slower)[0].facts["times"])
    report = scaling.report_section(table)
    # against numpy's 1000 x [2e-5, 1e-4, 3e-2] = [0.02, 0.1, 30] s: gradient_tape:gram [0.053, 0.053, 0.303] s wins
    # from 10,000; numpy:gram [0.0081, 0.010, 0.209] s from 100
    assert ("*GradientTape, Gram route* from n = 10,000 at m = 32; *numpy, Gram route* from n = 100 (the smallest "
            "measured) at m = 32; at n = 1,000,000, m = 32, float32, 99 to 144x faster.") in report  # 30 / 0.303, 30 / 0.209
    # the slowest pass at 10^6, gradient_tape:gram's 0.3 s, is 10 of numpy's 30 ms iterations
    assert "Its pass took the time of 10 (m = 32) iterations of *numpy, by hand* at n = 1,000,000" in report
    # per iteration, +-10% intervals: gradient_tape's 1.1e-5 below numpy's 1.8e-5 at n = 100 only
    assert "beyond the noise, in float32, only at n x m = 100x32 (*GradientTape loop*)." in report
    # floor 2 x n x 32 x 4 / 1e10: ratios numpy [7.8, 0.39, 1.17], gradient_tape [3.9, 0.78, 1.56]
    assert "from n = 10,000, *GradientTape loop* (m = 32) and *numpy, by hand* (m = 32)." in report
    # the table: floor 25.6 ms; a Gram route's whole call over 1000 iterations, 0.209 ms, is 0.0082x of it
    assert "| floor: X read twice | 25.6 |" in report and "| numpy, Gram route | 0.209 (0.0082x) |" in report
    assert "| GradientTape loop | 40 (1.6x) |" in report
    far = scaling.report_section(_table(dict(PER, gradient_tape=[1e-3, 1e-2, 1.0]), PASS))  # 39x the floor at 10^6
    assert "every larger n) only: from n = 10,000, *numpy, by hand* (m = 32).\n" in far
    tied = scaling.report_section(_table(dict(PER, gradient_tape=[1.9e-5, 2e-4, 4e-2]), PASS))  # 2.09e-5 > 1.8e-5
    assert "No framework's streaming loop** beat *numpy, by hand* per iteration beyond the noise" in tied


def test_the_section_names_titles_and_says_the_device_and_dtype_once():
    table = _table(PER, PASS)
    report = scaling.report_section(table)
    assert "Every way here ran on the CPU, in float32," in report and "[cpu]" not in report and "(cpu)" not in report
    for name in NAMES:
        assert f"`{name}`" not in report and f"| {name} |" not in report  # titles, never registry ids
    assert len(report.split()) < 600  # the answer, two tables and pointers; the method is in docs/method.md
    both = pd.concat([table, _table(PER, PASS, dtype="float64").assign(device="gpu")])
    report = scaling.report_section(both)
    assert "| way of training | m = 32, float32 | m = 32, float64 |" in report
    assert "| numpy, Gram route (gpu) | - | " in report and "| numpy, Gram route (cpu) | 0.209 (0.0082x) | - |" in report


def test_a_scaling_only_formulation_reads_as_its_title():
    form = scaling.FORMULATIONS[0]
    assert form.title and ":" not in form.title and scaling.title(form.name) == form.title
    table = _table(dict(PER, **{form.name: [2e-5, 1e-4, 2e-2]}))
    report = scaling.report_section(table)
    assert f"`{form.name}`" not in report and f"| {form.title} | 20 (0.78x) |" in report
    assert f"*{form.title}* is timed here only: {form.summary}." in report


def test_figure_draws_a_line_per_implementation_both_floors_and_contains_every_value():
    from comparisons.output.figures import plt

    table = pd.concat([_table(PER, PASS), _table(PER, PASS, dtype="float64")], ignore_index=True)
    fig = scaling.figure(table)
    axes = [ax for ax in fig.axes if ax.get_lines()]
    assert len(axes) == 2
    for ax in axes:
        gids = [line.get_gid() for line in ax.get_lines()]  # what each line is (its legend is the figure's)
        for name in ("numpy", "gradient_tape"):
            assert name in gids
        for name in ("numpy:gram", "gradient_tape:gram"):
            assert gids.count(name) == gids.count(f"{name} whole call") == 1  # after the pass; pass included
        floors = [line for line in ax.get_lines() if line.get_gid() in ("floor", "one-pass floor")]
        assert sorted(line.get_gid() for line in floors) == ["floor", "one-pass floor"]
        two = next(line for line in floors if line.get_gid() == "floor")
        np.testing.assert_allclose(two.get_ydata(), 2 * np.array([100, 10_000, 1_000_000]) * 32 * 4 / 1e10)
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        values = np.concatenate([np.asarray(line.get_ydata(), float) for line in ax.get_lines()])
        xs = np.concatenate([np.asarray(line.get_xdata(), float) for line in ax.get_lines()])
        assert (values > 0).all() and (xs > 0).all()
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        assert 0 < x0 <= xs.min() and xs.max() <= x1 and 0 < y0 <= values.min() and values.max() <= y1
        # the Gram line after the pass is flat: the figure shows the values given, not a fit
        flat = next(line for line in ax.get_lines() if line.get_gid() == "gradient_tape:gram")
        np.testing.assert_allclose(flat.get_ydata(), PER["gradient_tape:gram"])
        assert ax.get_legend() is None  # one legend for the figure, below the panels (tests/test_figures.py)
    plt.close(fig)


def test_tiny_run_has_the_floor_and_ratio_columns(tmp_path, monkeypatch):
    """numpy's rows (the registry's two and the scaling-only formulation) through the real loop, tiny probes."""
    monkeypatch.setattr(scaling, "plan", lambda config: ((100, 2000), (1, 3), ("float64",), ["numpy", "numpy:gram"],
                                                        0.002, 2))
    monkeypatch.setattr(scaling, "QUICK_PROBE_BYTES", 2**20)
    monkeypatch.setattr(scaling, "QUICK_GEMM_N", 32)
    monkeypatch.setattr(scaling, "GRAM_ITERATIONS", 20)
    ctx = ExperimentContext(config=StudyConfig(quick=True, repeats=1, dtypes=("float64",)), out_dir=tmp_path,
                            devices=("cpu",))
    table = scaling.run(ctx)
    # per point: numpy and numpy:gram, and numpy:broadcast at m = 1 only
    assert len(table) == 2 * 2 * 2 + 2 and set(table[table.implementation == "numpy:broadcast"].n_features) == {1}
    assert (table.status == "ok").all() and (table.repeats == 2).all()
    for column in ("floor_per_iteration_s", "one_pass_floor_s", "gram_pass_floor_s", "ratio_to_floor",
                   "ratio_to_one_pass_floor", "pass_ratio_to_floor", "pass_gflops", "bandwidth_gbs", "gemm_gflops",
                   "median_low_s", "median_high_s", "route", "framework"):
        assert column in table.columns
    bandwidth = table.bandwidth_gbs * 1e9
    np.testing.assert_allclose(bandwidth, np.maximum(table.bandwidth_sum_gbs, table.bandwidth_gemv_gbs) * 1e9)
    np.testing.assert_allclose(table.floor_per_iteration_s, 2 * table.x_bytes / bandwidth)
    np.testing.assert_allclose(table.ratio_to_floor, table.per_iteration_s / table.floor_per_iteration_s)
    gram = table[table.route == "gram"]
    flops = 2 * gram.n_samples * (gram.n_features + 1) ** 2
    np.testing.assert_allclose(gram.gram_pass_floor_s, np.maximum(flops / (gram.gemm_gflops * 1e9),
                                                                  (gram.x_bytes + gram.y_bytes) / (gram.bandwidth_gbs * 1e9)))
    np.testing.assert_allclose(gram.pass_ratio_to_floor, gram.one_pass_s / gram.gram_pass_floor_s)
    assert table[table.route == "streaming"].gram_pass_floor_s.isna().all() and table.cast_s.isna().all()
    assert (gram.cached_pass_s > 0).all() and table[table.route == "streaming"].cached_pass_s.isna().all()
    # one floor per point: every row of a point shares its probes' rates
    assert (table.groupby(["n_samples", "n_features"]).bandwidth_gbs.nunique() == 1).all()
    m1 = table[table.n_features == 1]
    assert m1[[scaling.kernel_column(k) for k in scaling.KERNELS]].gt(0).all().all()
    assert table[table.n_features == 3][scaling.kernel_column("X @ W")].isna().all()
    text = scaling.report_section(table)
    assert "numpy:broadcast" not in text and f"| {scaling.FORMULATIONS[0].title} |" in text
    # the same table, doctored so numpy's forms at m = 1 miss: the reason reads the kernels timed beside them
    big = m1[m1.n_samples == 2000]
    one = big[scaling.kernel_column("X * w into R")].iloc[0] / big.floor_per_iteration_s.iloc[0]
    slow = scaling.with_ratios(table.assign(per_iteration_s=table.per_iteration_s.where(
        table.route == "gram", 10 * table.floor_per_iteration_s)))
    text = scaling.report_section(slow)
    assert (f"| numpy's fastest streaming form, m = 1: within 1.5x of the floor | 10.00x") in text
    assert (f"its step makes {scaling.VECTOR_OPERATIONS} passes over n-long vectors, the floor counts 2; one, timed "
            f"alone, took {one:.2f}x the floor") in text
    # the lower bound is said only when two such operations pass the target: doctor the kernel both ways
    for kernel_ratio, said in ((0.9, True), (0.7, False)):
        doctored = slow.assign(**{scaling.kernel_column("X * w into R"): kernel_ratio * slow.floor_per_iteration_s})
        text = scaling.report_section(doctored)
        assert (f"{2 * kernel_ratio:.2f}x at best: without fused loops the target cannot be met" in text) is said


@pytest.mark.slow
def test_tiny_run_times_the_gram_stages(tmp_path, tf_ready, monkeypatch):
    monkeypatch.setattr(scaling, "plan", lambda config: ((100, 3000), (4,), ("float32",), NAMES, 0.005, 1))
    monkeypatch.setattr(scaling, "QUICK_PROBE_BYTES", 2**20)
    monkeypatch.setattr(scaling, "QUICK_GEMM_N", 32)
    monkeypatch.setattr(scaling, "GRAM_ITERATIONS", 100)  # the structure, not the lesson's 1000 (each a checked step)
    ctx = ExperimentContext(config=StudyConfig(quick=True, repeats=1), out_dir=tmp_path, devices=("cpu",))
    table = scaling.run(ctx)
    assert len(table) == len(NAMES) * 2 and (table.status == "ok").all()
    gram = table[table.route == "gram"]
    assert (gram.iterations == 100).all() and (gram.one_pass_s > 0).all()
    assert table[table.route == "streaming"].one_pass_s.isna().all()
    np.testing.assert_allclose(gram.time_1000_s, gram.median_s * 10)  # the whole call, scaled to 1000 iterations
    np.testing.assert_allclose(table.one_pass_floor_s, (table.x_bytes + table.y_bytes) / (table.bandwidth_gbs * 1e9))
    assert [p.name for p in scaling.plot(table, tmp_path)] == ["scaling.png"]
    assert len(scaling.findings(table)) == 2


def test_quick_takes_the_cheapest_row_of_each_framework_and_route():
    from comparisons.core import registry
    from comparisons.core.registry import Implementation

    fake = [Implementation(f"fake{k}", "", framework, "x:y", route=route, step_cost_s=cost)
            for k, (framework, route, cost) in enumerate([("numpy", "streaming", 2e-5), ("numpy", "streaming", 1e-5),
                                                          ("jax", "streaming", 1e-5), ("jax", "streaming", 1e-5),
                                                          ("jax", "gram", 3e-3)])]
    saved = dict(registry.REGISTRY)
    try:
        for impl in fake:
            registry.register(impl)
        assert scaling.cheapest_per_route([f.name for f in fake]) == ["fake1", "fake2", "fake4"]
    finally:
        registry.REGISTRY.clear()
        registry.REGISTRY.update(saved)


def test_stable_lr_from_the_gram_pass_is_the_stability_analysis_one():
    from comparisons.running import stability
    from comparisons.inputs.data import make_synthetic

    for m in (1, 5):
        data = make_synthetic(3000, m, 0.5, seed=m)
        assert scaling.stable_lr(data.X, data.y) == pytest.approx(stability.analyse(data.X).max_stable_lr, rel=1e-12)
        assert scaling.stable_lr(data.X.astype(np.float32), data.y.astype(np.float32)) == pytest.approx(
            stability.analyse(data.X.astype(np.float32)).max_stable_lr, rel=1e-12)


def test_an_older_table_without_the_new_columns_still_reports():
    """A committed scaling.csv from before the floors were interleaved: route and framework come from the registry."""
    table = _table(PER, PASS).drop(columns=["route", "framework", "gemm_gflops", "gram_pass_floor_s", "median_low_s",
                                            "median_high_s", "pass_ratio_to_floor"])
    full = scaling.complete(table)
    assert list(full.route) == list(_table(PER, PASS).route) and full.gram_pass_floor_s.isna().all()
    report = scaling.report_section(table)
    assert "measured once before the rows (an older run)" in report and "pass, m = 32: within" not in report
    assert "*numpy, Gram route* from n = 100 (the smallest measured)" in report
    assert scaling.gram_crossover(table).set_index("implementation").loc["numpy:gram", "beats_streaming_from_n"] == 100


def test_a_float32_gram_point_times_the_cast_of_its_pass(tmp_path, monkeypatch):
    monkeypatch.setattr(scaling, "plan", lambda config: ((500,), (2,), ("float32",), ["numpy:gram"], 0.002, 1))
    monkeypatch.setattr(scaling, "QUICK_PROBE_BYTES", 2**20)
    monkeypatch.setattr(scaling, "QUICK_GEMM_N", 32)
    monkeypatch.setattr(scaling, "GRAM_ITERATIONS", 10)
    ctx = ExperimentContext(config=StudyConfig(quick=True, repeats=1), out_dir=tmp_path, devices=("cpu",))
    table = scaling.run(ctx)
    assert len(table) == 1 and table.cast_s.iloc[0] > 0  # timed; a float64 point has nothing to cast (NaN)
    slow = table.assign(n_samples=1_000_000, one_pass_s=100 * table.gram_pass_floor_s, cached_pass_s=np.nan)
    assert f"; converting X to float64: {table.cast_s.iloc[0] / slow.one_pass_s.iloc[0]:.2f};" in scaling.report_section(slow)
    # a cast that with the flops at the square-GEMM rate passes the target is the reason no such pass can meet it
    # the GEMM rate doctored so that the pass's 2 n (m + 1)^2 flops take 0.3 floors: the cast decides either way
    r, arithmetic = slow.iloc[0], 0.3
    rate = slow.assign(gemm_gflops=2 * r.n_samples * (r.n_features + 1) ** 2 / (arithmetic * r.gram_pass_floor_s) / 1e9)
    for cast_ratio in (2.5, 1.95 - arithmetic, 2.05 - arithmetic, 0.1):
        doctored = rate.assign(cast_s=cast_ratio * slow.gram_pass_floor_s)
        text = scaling.report_section(doctored)
        said = (f"that conversion alone, done as the pass does it and timed in the same rounds, took {cast_ratio:.2f}x "
                f"the floor, and its arithmetic at the square-GEMM rate would add {arithmetic:.2f}x: a pass that converts, "
                "then sums in float64, cannot come within the target on this machine")
        assert (said in text) == bool(cast_ratio + arithmetic > scaling.GRAM_PASS_TARGET), cast_ratio


def test_short_run_counts_the_pass_once_and_is_judged_against_the_target():
    # numpy at 10^6: 50 x 30 ms = 1.5 s; numpy:gram: 0.2 s pass + 50 x 9 us = 0.20045 s: 7.48x, missed (target 10x)
    table = _table(PER, PASS)
    gram = table[(table.implementation == "numpy:gram") & (table.n_samples == 1_000_000)].iloc[0]
    assert gram.time_short_s == pytest.approx(0.2 + scaling.SHORT_RUN * 9e-6)
    numpy_row = table[(table.implementation == "numpy") & (table.n_samples == 1_000_000)].iloc[0]
    assert numpy_row.time_short_s == pytest.approx(scaling.SHORT_RUN * 3e-2)
    report = scaling.report_section(table)
    assert ("| *numpy, Gram route*, 50 iterations with its pass, m = 32: 10x faster than *numpy, by hand* | 7.48x | "
            "missed | 10x needs 0.15 s; the pass alone took 0.2 s |") in report
    faster = _table(PER, dict(PASS, **{"numpy:gram": [1e-4, 2e-3, 0.1]}))  # 1.5 / 0.10045 = 14.9x: met
    assert "10x faster than *numpy, by hand* | 14.9x | met |  |" in scaling.report_section(faster)


def test_a_missed_pass_names_its_cause_from_the_cached_probe():
    table = _table(PER, PASS)  # numpy:gram's pass 200 ms against a 21.78 ms floor: missed
    at = (table.implementation == "numpy:gram") & (table.n_samples == 1_000_000)
    slow = table.assign(cached_pass_s=np.where(at, 0.1, np.nan))  # 100 ms in cache: 4.59x the floor, arithmetic-bound
    report = scaling.report_section(slow)
    assert ("on data in cache it still took 4.59x the floor: its arithmetic, at 10.9 GFLOP/s (0.11 of the square-GEMM "
            "rate), bounds it |") in report
    quick = table.assign(cached_pass_s=np.where(at, 0.03, np.nan))  # 30 ms in cache: 1.38x, memory is the rest
    assert "on data in cache it took 1.38x the floor: the rest is reading X |" in scaling.report_section(quick)


def test_iterations_follow_the_rows_own_earlier_points():
    """Two earlier points give a line a + b n (the oracle: a hand-made line); one point gives no prediction."""
    line = lambda n: 2e-5 + 3e-9 * n  # noqa: E731  seconds per iteration
    history = [(100, line(100)), (10_000, line(10_000))]
    assert scaling.predicted_step_s(history, 1_000_000) == pytest.approx(line(1_000_000), rel=1e-12)
    assert scaling.predicted_step_s(history[:1], 1_000_000) is None
    # a row that got faster with n (noise at small n) is never predicted below its last time
    assert scaling.predicted_step_s([(100, 5e-3), (10_000, 1e-3)], 1_000_000) == 1e-3
    # the call then lasts about the target: 0.04 s / 3.02 ms = 13 iterations; clamped to [8, 2000]
    assert scaling.choose_iterations("numpy", 8e6, 3e10, 0.04, predicted_s=line(1_000_000)) == round(0.04 / line(1_000_000))
    assert scaling.choose_iterations("numpy", 8e6, 3e10, 0.04, predicted_s=1.0) == 8
    assert scaling.choose_iterations("numpy", 8e6, 3e10, 0.04, predicted_s=1e-9) == 2000
