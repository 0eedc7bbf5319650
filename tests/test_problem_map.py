"""The map of the fastest way to train (comparisons/output/problem_map.py) on doctored tables with answers worked by hand,
and its figure's artists."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from comparisons.core import registry  # noqa: E402
from comparisons.output import figures  # noqa: E402
from comparisons.output import problem_map as pm  # noqa: E402


def _tables():
    """timings at n = 100, scaling at n = 10,000 (and a jax row at 100 that timings must override), m = 1, float64.

    Cold run of k updates = start + k * per_update, start = first_call - iterations * per_update:
      n = 100:    numpy 1e-5 k;   jax 0.499 + 1e-6 k;  keras 0.9 + 1e-4 k;  numpy:gram 0.0005 + 5e-7 k
      n = 10,000: numpy 1e-3 k;   jax 0.59 + 1e-4 k
    gradient_tape would win everywhere but its loss curve is off numpy's (1e-3 > 1e-10): it never takes part.
    numpy:gram's gap (5e-10) passes only with its rounding bound (1e-9).
    """
    def timing(name, first, per_us):
        return dict(implementation=name, device="cpu", dtype="float64", n_samples=100, n_features=1, iterations=1000,
                    repeats=5, first_call_s=first, median_s=per_us * 1e-3, per_iteration_us=per_us)

    timings = pd.DataFrame([timing("numpy", 0.010, 10.0), timing("jax", 0.5, 1.0), timing("keras", 1.0, 100.0),
                            timing("numpy:gram", 0.001, 0.5), timing("gradient_tape", 1e-4, 0.1),
                            dict(implementation="ols", device="cpu", dtype="float64", n_samples=100, n_features=1,
                                 iterations=0, repeats=5, first_call_s=3e-4, median_s=2e-4, per_iteration_us=np.nan)])

    def scaled(name, n, first, iterations, per_s):
        return dict(implementation=name, device="cpu", dtype="float64", n_samples=n, n_features=1, first_call_s=first,
                    iterations=iterations, per_iteration_s=per_s, status="ok")

    scaling = pd.DataFrame([scaled("numpy", 10_000, 0.1, 100, 1e-3), scaled("jax", 10_000, 0.6, 100, 1e-4),
                            scaled("gradient_tape", 10_000, 1e-4, 100, 1e-7),
                            scaled("jax", 100, 50.0, 100, 1.0)])  # timings.csv wins at n = 100: this never counts
    equivalence = pd.DataFrame({"implementation": ["keras", "jax", "numpy:gram", "gradient_tape"], "device": "cpu",
                                "dtype": "float64", "max_rel_loss_diff": [1e-15, 1e-15, 5e-10, 1e-3],
                                "loss_bound": [np.nan, np.nan, 1e-9, np.nan]})
    return timings, scaling, equivalence


def _cell(table, n, k):
    return table[np.isclose(table.n_samples, n) & np.isclose(table.updates, k)].iloc[0]


def test_the_map_picks_the_cheapest_cold_run_at_measured_n():
    timings, scaling, equivalence = _tables()
    table = pm.fastest_way_map(timings, scaling, equivalence, n_grid=[100, 10_000], updates=[1e4, 1e5, 100, 1000],
                               routes=("streaming",))
    assert set(table.status) == {pm.MEASURED} and (table.dtype == "float64").all()
    # n = 100: numpy until 0.499 / 9e-6 = 55,444 updates, then jax
    assert _cell(table, 100, 1e4).fastest == "numpy" and _cell(table, 100, 1e4).seconds == pytest.approx(0.1)
    assert _cell(table, 100, 1e5).fastest == "jax" and _cell(table, 100, 1e5).seconds == pytest.approx(0.599)
    assert _cell(table, 100, 1e5).runner_up == "numpy" and _cell(table, 100, 1e5).runner_up_seconds == pytest.approx(1.0)
    # n = 10,000: numpy until 0.59 / 9e-4 = 656 updates, then jax
    assert _cell(table, 10_000, 100).fastest == "numpy" and _cell(table, 10_000, 100).seconds == pytest.approx(0.1)
    assert _cell(table, 10_000, 1000).fastest == "jax" and _cell(table, 10_000, 1000).seconds == pytest.approx(0.69)
    assert "gradient_tape" not in set(table.fastest) | set(table.runner_up)  # it does not agree with numpy


def test_the_map_interpolates_on_log_log_axes_only_between_measured_n_and_marks_the_rest():
    timings, scaling, equivalence = _tables()
    table = pm.fastest_way_map(timings, scaling, equivalence, n_grid=[50, 1000, 100_000], updates=[10, 1000, 1e4])
    # n = 1000 is the geometric middle of 100 and 10,000: the price is the geometric mean of the two
    middle = _cell(table, 1000, 1e4)
    assert middle.status == pm.INTERPOLATED and (middle.n_low, middle.n_high) == (100, 10_000)
    assert middle.fastest == "jax" and middle.seconds == pytest.approx(np.sqrt(0.509 * 1.59))
    assert middle.runner_up == "numpy" and middle.runner_up_seconds == pytest.approx(np.sqrt(0.1 * 10.0))
    assert _cell(table, 1000, 1000).fastest == "numpy"  # sqrt(0.01 * 1) = 0.1 against sqrt(0.5 * 0.69)
    # numpy:gram and keras were timed at n = 100 only: between the sizes they are not priced at all
    assert set(table[table.status == pm.INTERPOLATED].fastest) | set(table.runner_up) <= {"numpy", "jax", ""}
    for n in (50, 100_000):  # below the smallest and above the largest measured n: no answer
        cells = table[np.isclose(table.n_samples, n)]
        assert (cells.status == pm.BEYOND).all() and (cells.fastest == "").all() and cells.seconds.isna().all()


def test_the_gram_route_takes_part_within_its_rounding_bound_unless_the_routes_leave_it_out():
    timings, scaling, equivalence = _tables()
    every = pm.fastest_way_map(timings, scaling, equivalence, n_grid=[100], updates=[10, 1e6])
    # 0.0005 + 5e-7 k beats numpy's 1e-5 k from 53 updates on, and jax's 0.499 + 1e-6 k always
    assert _cell(every, 100, 1e6).fastest == "numpy:gram" and _cell(every, 100, 1e6).seconds == pytest.approx(0.5005)
    assert _cell(every, 100, 10).fastest == "numpy"
    lesson = pm.fastest_way_map(timings, scaling, equivalence, n_grid=[100], updates=[1e6], routes=("streaming",))
    assert _cell(lesson, 100, 1e6).fastest == "jax"
    assert pm.agreeing(equivalence, "float64") == {"numpy", "keras", "jax", "numpy:gram"}
    assert pm.agreeing(equivalence.assign(loss_bound=np.nan), "float64") == {"numpy", "keras", "jax"}


def test_a_cell_is_a_tie_when_the_runner_up_is_within_the_noise():
    """numpy's interval reaches down to half its median, jax's up to 1.2 times its own (per update).

    At n = 100, k = 1e5: jax 0.599 wins, numpy 1.0 is second; numpy at its fast end 1e-5 * 0.5 * 1e5 = 0.5 is below
    jax at its slow end 0.499 + 1.2e-6 * 1e5 = 0.619: a tie. At k = 1e6: 5.0 against 1.699: settled.
    """
    timings, scaling, equivalence = _tables()
    median = timings.median_s
    timings["median_low_s"] = np.where(timings.implementation == "numpy", 0.5, 1.0) * median
    timings["median_high_s"] = np.where(timings.implementation == "jax", 1.2, 1.0) * median
    table = pm.fastest_way_map(timings, scaling, equivalence, n_grid=[100], updates=[1e5, 1e6], routes=("streaming",))
    assert _cell(table, 100, 1e5).fastest == "jax" and bool(_cell(table, 100, 1e5).tie)
    assert _cell(table, 100, 1e6).fastest == "jax" and not _cell(table, 100, 1e6).tie
    settled = pm.fastest_way_map(timings.drop(columns=["median_low_s", "median_high_s"]), scaling, equivalence,
                                 n_grid=[100], updates=[1e5], routes=("streaming",))
    assert not _cell(settled, 100, 1e5).tie  # no interval given: only the medians, no tie


def test_a_single_runs_m_measured_at_one_n_gives_way_to_the_m_the_scaling_runs_measured():
    """A quick run: timings at m = 1 (one n), scaling at m = 32 only (two n): the map is drawn at m = 32."""
    timings, scaling, equivalence = _tables()
    scaling = scaling.assign(n_features=32)
    assert pm.default_features(timings, scaling) == 32
    assert pm.default_features(timings, _tables()[1]) == 1  # m = 1 priced at 100 and 10,000: the run's own m
    table = pm.fastest_way_map(timings, scaling, equivalence)
    assert (table.n_features == 32).all() and set(table[table.status == pm.MEASURED].n_samples) == {100, 10_000}


def test_wins_reads_each_ways_stretch_of_run_lengths_off_the_map():
    timings, scaling, equivalence = _tables()
    table = pm.fastest_way_map(timings, scaling, equivalence, n_grid=[50, 100, 10_000], updates=[10, 1e4, 1e5, 1e6],
                               routes=("streaming",))
    got = pm.wins(table)
    # by hand (see _tables): numpy to 55,444 updates at n = 100 and to 656 at n = 10,000, jax beyond; n = 50 unpriced
    assert got[["fastest", "n_samples", "from_updates", "to_updates"]].values.tolist() == [
        ["numpy", 100, 10, 1e4], ["jax", 100, 1e5, 1e6], ["numpy", 10_000, 10, 10], ["jax", 10_000, 1e4, 1e6]]
    assert (got.status == pm.MEASURED).all() and (got.tied == 0).all()


def test_the_default_grid_and_dtype_come_from_the_measurements():
    timings, scaling, equivalence = _tables()
    table = pm.fastest_way_map(timings, scaling, equivalence)
    assert table.n_samples.min() == 100 and table.n_samples.max() == pytest.approx(100_000)  # ten times the largest
    assert {100, 10_000} <= set(table[table.status == pm.MEASURED].n_samples)
    assert (table[table.n_samples > 10_000].status == pm.BEYOND).all()
    assert pm.default_dtype(timings, scaling, 1) == "float64"
    more = pd.concat([scaling.assign(dtype="float32"), scaling.assign(dtype="float32", n_samples=1e6)])
    assert pm.default_dtype(timings, more, 1) == "float32"  # measured at three n against two


def test_the_problem_map_figure_colours_each_cell_by_its_way_and_marks_what_was_not_measured():
    timings, scaling, equivalence = _tables()
    timings["median_low_s"] = np.where(timings.implementation == "numpy", 0.5, 1.0) * timings.median_s  # a tie at 1e5
    timings["median_high_s"] = timings.median_s
    grid = [50, 100, 1000, 10_000, 100_000]
    panels = [("the lesson's loop", pm.fastest_way_map(timings, scaling, equivalence, n_grid=grid,
                                                       updates=[10, 1e3, 1e5], routes=("streaming",))),
              ("any route", pm.fastest_way_map(timings, scaling, equivalence, n_grid=grid, updates=[10, 1e3, 1e5]))]
    fig = figures.problem_map_figure(panels, mark=(100, 1000))
    fig.canvas.draw()
    for ax, (heading, table) in zip(fig.axes, panels):
        assert ax.get_title() == heading and ax.get_xscale() == ax.get_yscale() == "log"
        mesh = next(c for c in ax.collections if c.get_gid() == "fastest way")
        codes = np.ma.getdata(mesh.get_array()).reshape(len(grid), 3)
        mask = np.ma.getmaskarray(mesh.get_array()).reshape(len(grid), 3)
        cells = table.pivot_table(index="n_samples", columns="updates", values="fastest", aggfunc="first")
        for i, n in enumerate(grid):
            for j, k in enumerate([10, 1e3, 1e5]):
                way = cells.loc[n, k]
                assert mask[i, j] == (way == "")  # an unpriced cell is left to the hatching
                if way:
                    assert to_hex(mesh.cmap(mesh.norm(codes[i, j]))) == figures.colour(way)
        beyond = [p for p in ax.patches if p.get_gid() == "beyond"]
        assert len(beyond) == 2 and all(p.get_hatch() == "//" for p in beyond)  # below 100 and above 10,000
        measured = sorted(line.get_ydata()[0] for line in ax.get_lines() if line.get_gid() == "measured n")
        assert measured == [100, 10_000]
        ties = [c for c in ax.collections if c.get_gid() == "tie"]
        assert len(ties) == (1 if table.tie.any() else 0)
        if ties:  # one dotted square per tied cell
            assert len(ties[0].get_paths()) == int(table.tie.sum())
        star = [line for line in ax.get_lines() if line.get_gid() == "the lesson"]
        assert len(star) == 1 and (star[0].get_xdata()[0], star[0].get_ydata()[0]) == (1000, 100)
    assert panels[0][1].tie.any()  # jax against numpy's wide interval at n = 100, 1e5 updates: drawn dotted above
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any("a tie" in t for t in texts)
    winners = set(panels[0][1].fastest) | set(panels[1][1].fastest) - {""}
    assert set(texts[:len(winners - {''})]) == {registry.label(w) for w in winners - {""}}  # titles, not ids
    assert "beyond the measured sizes" in texts and len(texts) <= 8
    assert "float64" in fig._suptitle.get_text() and "interpolated" in fig._suptitle.get_text()
    renderer = fig.canvas.get_renderer()
    box = fig.legends[0].get_window_extent(renderer)
    assert not any(box.overlaps(ax.get_window_extent(renderer)) for ax in fig.axes)
    plt.close(fig)


def test_problem_map_png_is_drawn_from_a_results_folder_and_skipped_without_the_scaling_table(tmp_path):
    timings, scaling, equivalence = _tables()
    timings.to_csv(tmp_path / "timings.csv", index=False)
    equivalence.to_csv(tmp_path / "equivalence.csv", index=False)
    assert figures.problem_map(tmp_path) is None  # no scaling.csv: one measured n is no map
    scaling.to_csv(tmp_path / "scaling.csv", index=False)
    path = figures.problem_map(tmp_path)
    assert path == tmp_path / "problem_map.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from comparisons.experiments import scaling as experiment  # the report draws it with scaling.png

    drawable = scaling.assign(floor_per_iteration_s=1e-9 * scaling.n_samples, one_pass_floor_s=1e-9 * scaling.n_samples,
                              route="streaming", time_1000_s=np.nan)  # the columns scaling.png needs besides
    assert [p.name for p in experiment.plot(drawable, tmp_path)] == ["scaling.png", "problem_map.png"]


def test_the_single_runs_star_is_drawn_only_on_a_map_of_its_own_m(tmp_path):
    timings, scaling, equivalence = _tables()
    timings.to_csv(tmp_path / "timings.csv", index=False)
    equivalence.to_csv(tmp_path / "equivalence.csv", index=False)
    drawn = []
    real = figures.problem_map_figure

    def spy(panels, mark=None):
        drawn.append((int(panels[0][1].n_features.iloc[0]), mark))
        return real(panels, mark)

    figures.problem_map_figure, saved = spy, figures.problem_map_figure
    try:
        figures.problem_map(tmp_path, scaling)  # m = 1 at n = 100 and 10,000: the run's own m, starred
        figures.problem_map(tmp_path, scaling.assign(n_features=32))  # m = 32 only: no star for an m = 1 run
    finally:
        figures.problem_map_figure = saved
    assert drawn == [(1, (100.0, 1000.0)), (32, None)]


def test_a_first_call_within_the_noise_of_the_warm_calls_costs_no_start():
    """numpy's first call 25 ms inside its timed calls' interval (up to 30 ms for 1000 updates): its start is 0, not
    25 - 20 = 5 ms, so a one-update run costs it 20 us and it beats an eager loop of 1 ms per update that has no start
    either (first call = median). Priced from the median's top instead, numpy would lose runs of up to 5 updates."""
    def timing(name, first, median, high):
        return dict(implementation=name, device="cpu", dtype="float64", n_samples=100, n_features=1, iterations=1000,
                    repeats=5, first_call_s=first, median_s=median, median_low_s=median * 0.9, median_high_s=high,
                    per_iteration_us=median * 1e3)
    timings = pd.DataFrame([timing("numpy", 0.025, 0.020, 0.030), timing("gradient_tape:eager", 1.0, 1.0, 1.1),
                            timing("jax", 0.5, 0.001, 0.0012)])
    prices = pm.prices(timings, None, "float64", 1).set_index("implementation")
    assert prices.start_s["numpy"] == 0.0 and prices.start_s["gradient_tape:eager"] == 0.0
    assert prices.start_s["jax"] == pytest.approx(0.5 - 1000 * 1.2e-6)  # a compile well outside the noise
    equivalence = pd.DataFrame({"implementation": ["gradient_tape:eager", "jax"], "device": "cpu", "dtype": "float64",
                                "max_rel_loss_diff": [1e-15, 1e-15], "loss_bound": [np.nan, np.nan]})
    table = pm.fastest_way_map(timings, None, equivalence, n_grid=[100], updates=[1, 3])
    assert set(table.fastest) == {"numpy"}
