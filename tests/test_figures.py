"""The single run's figures, tested as data: bar lengths, axis limits and legend entries against the tables.

Each figure is built from a small table made here (so the expected values are known without the
code under test) and also from the committed results/, whose figures the report embeds.
"""
import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.collections import LineCollection, PathCollection  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from comparisons import figures  # noqa: E402

from .conftest import REPO, legend_clear_of_axes  # noqa: E402

RESULTS = REPO / "results"


def _timings_table():
    """Three runs whose times span five decades, the spread the headline figure must show."""
    return pd.DataFrame({
        "implementation": ["numpy", "gradient_tape", "keras:numpy_input"], "device": ["cpu"] * 3,
        "dtype": ["float64", "float32", "float64"], "n_samples": [100] * 3, "n_features": [1] * 3,
        "iterations": [1000] * 3, "repeats": [5, 5, 0], "first_call_s": [0.012, 0.4, 25.0],
        "median_s": [0.011, 0.0017, 25.0], "min_s": [0.010, 0.0015, 25.0], "max_s": [0.013, 0.0021, 25.0],
        "per_iteration_us": [11.0, 1.7, 25000.0], "speedup_vs_numpy": [1.0, 6.5, 0.00044]})


def _bars(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def check_timings_axes(ax, table):
    """Every assertion the timings figure must pass; shared by the tests below."""
    assert ax.get_xscale() == "log"
    left, right = ax.get_xlim()
    assert left > 0  # a log axis with a positive lower limit
    bars = _bars(ax)
    assert len(bars) == len(table)
    np.testing.assert_allclose([b.get_width() for b in bars], 1e3 * table.median_s.to_numpy(), rtol=1e-12)
    # every bar end, whisker and first-call tick inside the axis, with the axis not absurdly wider
    plotted = 1e3 * np.concatenate([table.min_s, table.max_s, table.median_s, table.first_call_s])
    assert left < plotted.min() and plotted.max() < right
    assert np.log10(right / left) < np.log10(plotted.max() / plotted.min()) + 3  # decades to spare: at most 3
    # the bars differ in length on screen: a longer bar ends further right, and two medians more than 12 %
    # apart (a twentieth of a decade) end at least a pixel apart (equal medians may share a length)
    widths = np.array([b.get_width() for b in bars])
    ends = np.array([ax.transData.transform((w, 0))[0] for w in widths])
    order = np.argsort(widths, kind="stable")
    assert (np.diff(ends[order]) >= -1e-9).all()
    apart = np.abs(np.log10(widths[:, None] / widths[None, :])) > 0.05
    assert apart.any() and (np.abs(ends[:, None] - ends[None, :]) >= 1)[apart].all()
    whiskers = [c for c in ax.collections if isinstance(c, LineCollection)]
    segments = np.concatenate([np.asarray(s) for c in whiskers for s in c.get_segments()])
    np.testing.assert_allclose(np.sort(segments[:, 0]),
                               np.sort(1e3 * np.concatenate([table.min_s, table.max_s])), rtol=1e-12)
    ticks = [c for c in ax.collections if isinstance(c, PathCollection)]
    np.testing.assert_allclose(ticks[0].get_offsets()[:, 0], 1e3 * table.first_call_s.to_numpy(), rtol=1e-12)
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        f"{r.implementation} [{r.device}, {r.dtype}]" for r in table.itertuples()]


def test_timings_bars_are_the_medians_on_a_readable_log_axis():
    table = _timings_table()
    fig = figures.timings_figure(table)
    check_timings_axes(fig.axes[0], table)


def test_committed_timings_figure_is_readable():
    table = pd.read_csv(RESULTS / "timings.csv")
    check_timings_axes(figures.timings_figure(table).axes[0], table)


def _curves():
    """numpy and keras in both dtypes over 5 iterations; keras float32 off by a known relative 1e-3."""
    rows = []
    for impl in ("numpy", "keras"):
        for dtype in ("float32", "float64"):
            loss = 10.0 * 0.5 ** np.arange(6)
            if impl == "keras" and dtype == "float32":
                loss = loss * (1 + 1e-3)
            rows.append(pd.DataFrame({"implementation": impl, "device": "cpu", "dtype": dtype,
                                      "iteration": np.arange(6), "loss": loss}))
    return pd.concat(rows, ignore_index=True)


def test_loss_curves_have_a_line_and_legend_entry_per_run_and_gaps_to_numpy():
    curves = _curves()
    fig = figures.loss_curves_figure(curves)
    top, bottom = fig.axes
    runs = ["numpy [cpu, float32]", "numpy [cpu, float64]", "keras [cpu, float32]", "keras [cpu, float64]"]
    assert [t.get_text() for t in top.get_legend().get_texts()] == runs
    for line, label in zip(top.get_lines(), runs):
        assert line.get_label() == label
        np.testing.assert_allclose(line.get_ydata(), 10.0 * 0.5 ** np.arange(6) * (1 + 1e-3 * (label == runs[2])))
    assert top.get_yscale() == "log" and top.get_ylim()[0] > 0
    gaps = {line.get_label(): np.asarray(line.get_ydata()) for line in bottom.get_lines() if line.get_label()[0] != "_"}
    assert set(gaps) == {"keras [cpu, float32]", "keras [cpu, float64]"}  # numpy has no gap to itself
    np.testing.assert_allclose(gaps["keras [cpu, float32]"], 1e-3, rtol=1e-9)
    assert (gaps["keras [cpu, float64]"] == 1e-18).all()  # an exact match drawn at the floor
    low, high = bottom.get_ylim()
    assert 0 < low <= 1e-18 and high >= 1e-3


def test_fitted_lines_one_per_finite_run():
    weights = pd.DataFrame({
        "implementation": ["numpy", "numpy", "ols", "ols", "keras", "keras"], "device": ["cpu"] * 6,
        "dtype": ["float64"] * 6, "parameter": ["x1", "bias"] * 3, "value": [2.0, 1.0, 2.5, 0.5, np.inf, 1.0]})
    X = np.linspace(0, 2, 20).reshape(-1, 1)
    fig = figures.fitted_line_figure(weights, X, 3 * X + 1)
    ax = fig.axes[0]
    lines = {line.get_label().split(":")[0]: line for line in ax.get_lines()}
    assert set(lines) == {"numpy [cpu, float64]", "ols [cpu, float64]"}  # the infinite keras run is left out
    line = lines["numpy [cpu, float64]"]
    np.testing.assert_allclose(line.get_ydata(), 2.0 * np.asarray(line.get_xdata()) + 1.0)
    assert len(ax.get_legend().get_texts()) == 3  # data and two lines
    assert legend_clear_of_axes(ax)  # two dozen coinciding lines' legend would hide half the data



# --- the experiments' figures, from their committed tables ---------------------------------------------

def _labelled_lines(ax):
    return {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}


def _inside(ax, xs, ys):
    """Every finite plotted point inside the axis limits."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    ok = np.isfinite(xs) & np.isfinite(ys)
    return bool(np.all((x0 <= xs[ok]) & (xs[ok] <= x1) & (y0 <= ys[ok]) & (ys[ok] <= y1)))


def test_lr_sweep_figure_has_every_run_and_the_threshold():
    from comparisons.experiments import lr_sweep

    table = pd.read_csv(RESULTS / "lr_sweep.csv")
    fig = lr_sweep.figure(table)
    losses, iterations = fig.axes
    lines = _labelled_lines(losses)
    for (name, dtype), rows in table.groupby(["implementation", "dtype"]):
        line = lines[f"{name} [{dtype}]"]
        finished = rows[rows.diverged_at < 0]
        np.testing.assert_allclose(line.get_xdata(), finished.lr)
        np.testing.assert_allclose(line.get_ydata(), finished.final_loss)
        assert _inside(losses, finished.lr, finished.final_loss)
    threshold = next(line for label, line in lines.items() if label.startswith("2 / lambda_max"))
    assert list(threshold.get_xdata()) == [table.threshold.iloc[0]] * 2
    assert losses.get_xscale() == "log" and losses.get_xlim()[0] > 0
    per_rate = table.drop_duplicates("lr")
    stable = per_rate[(per_rate.predicted_iterations > 0) & (per_rate.measured_iterations >= 0)]
    measured = _labelled_lines(iterations)["measured (numpy, float64)"]
    np.testing.assert_allclose(measured.get_ydata(), stable.measured_iterations)
    assert _inside(iterations, stable.lr, stable.predicted_iterations)


def test_variants_figure_has_a_line_per_implementation_and_batch_size():
    from comparisons.experiments import variants

    table = pd.read_csv(RESULTS / "variants.csv")
    by_epoch, by_time = variants.figure(table).axes
    lines = _labelled_lines(by_epoch)
    assert set(lines) == {f"{n}, batch {b}" for n, b in zip(table.implementation, table.batch_size)}
    for (name, batch_size), rows in table.groupby(["implementation", "batch_size"]):
        excess = np.maximum(rows.sort_values("epoch").full_loss - rows.sort_values("epoch").ols_loss, 1e-17)
        np.testing.assert_allclose(lines[f"{name}, batch {batch_size}"].get_ydata(), excess)
        assert _inside(by_epoch, rows.epoch, excess)
    assert by_epoch.get_yscale() == "log" and by_epoch.get_ylim()[0] > 0
    assert len(_labelled_lines(by_time)) == len(lines)


def test_matmul_figure_has_every_method_and_its_times():
    from comparisons.experiments import matmul

    table = pd.read_csv(RESULTS / "matmul.csv")
    times, rates = matmul.figure(table).axes
    lines = _labelled_lines(times)
    groups = table.groupby(["method", "device", "dtype"])
    assert set(lines) == {f"{m} [{d}, {t}]" for m, d, t in groups.groups}
    for (method, device, dtype), rows in groups:
        rows = rows.sort_values("n")
        np.testing.assert_allclose(lines[f"{method} [{device}, {dtype}]"].get_ydata(), rows.min_s)
        assert _inside(times, rows.n, rows.min_s) and _inside(rates, rows.n, rows.gflops)
    assert [t.get_text() for t in rates.get_legend().get_texts()] == sorted(lines, key=list(lines).index)
    assert times.get_yscale() == rates.get_yscale() == "log"


def test_lesson_claims_figure_has_a_bar_per_claim_in_its_verdicts_colour():
    from matplotlib.colors import to_hex

    from comparisons.experiments import lesson_claims

    table = pd.read_csv(RESULTS / "lesson_claims.csv")
    ax = lesson_claims.figure(table).axes[0]
    bars = _bars(ax)
    assert len(bars) == len(table)
    top_down = sorted(bars, key=lambda b: -b.get_y())
    assert [to_hex(b.get_facecolor()) for b in top_down] == [lesson_claims.COLOURS[v] for v in table.verdict]
    counts = table.verdict.value_counts()
    assert ax.get_title(loc="left") == "The lesson's claims, tested: " + ", ".join(
        f"{counts.get(v, 0)} {v}" for v in ("holds", "wrong", "imprecise"))
