"""The single run's figures, tested as data: bar lengths, axis limits and legend entries against the tables.

Each figure is built from a small table made here (so the expected values are known without the
code under test) and also from the committed results/, whose figures the report embeds.
"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection, PathCollection  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from comparisons.output import figures

from comparisons.core import registry  # noqa: E402

from .conftest import REPO, legend_clear_of_axes  # noqa: E402

RESULTS = REPO / "results"
EPS64, EPS32 = np.finfo(np.float64).eps, np.finfo(np.float32).eps


def _styles(ax):
    """(colour, marker, line style) of every legend entry of ax, in legend order."""
    styles = []
    for handle in ax.get_legend().legend_handles:
        if isinstance(handle, Line2D):
            styles.append((to_hex(handle.get_color()), handle.get_marker(), handle.get_linestyle(),
                           str(handle.get_markerfacecolor()), handle.get_linewidth()))
        elif isinstance(handle, Rectangle):
            styles.append((to_hex(handle.get_facecolor()), handle.get_hatch(), "patch"))
        else:  # a scatter's handle
            styles.append((to_hex(handle.get_facecolor()[0]), "scatter", id(handle.get_paths()[0])))
    return styles


def _distinct_styles(ax):
    styles = _styles(ax)
    return len(set(styles)) == len(styles)


@pytest.fixture
def throwaway_rows():
    """Registry rows added by a test, removed after it."""
    added = []

    def add(impl):
        added.append(impl.name)
        return registry.register(impl)

    yield add
    for name in added:
        registry.REGISTRY.pop(name, None)


# --- timings.png ------------------------------------------------------------------------------------------

def _timings_table(intervals=True):
    """Three runs whose times span five decades (numpy in both dtypes), a warm-up-only row and the closed-form solve."""
    table = pd.DataFrame({
        "implementation": ["numpy", "numpy", "gradient_tape", "keras:numpy_input", "ols"], "device": ["cpu"] * 5,
        "dtype": ["float64", "float32", "float32", "float64", "float64"], "n_samples": [100] * 5,
        "n_features": [1] * 5, "iterations": [1000, 1000, 1000, 1000, 0], "repeats": [5, 5, 5, 0, 5],
        "first_call_s": [0.012, 0.013, 0.4, 25.0, 3e-4], "median_s": [0.011, 0.012, 0.0017, 25.0, 2.5e-4],
        "min_s": [0.010, 0.011, 0.0015, 25.0, 2e-4], "max_s": [0.013, 0.014, 0.0021, 25.0, 3.5e-4],
        "per_iteration_us": [11.0, 12.0, 1.7, 25000.0, np.nan], "speedup_vs_numpy": [1.0, 1.0, 7.0, 0.00044, 44.0]})
    if intervals:  # narrower than min-max, so the test tells the two apart
        table["median_low_s"] = [0.0105, 0.0115, 0.0016, 25.0, 2.2e-4]
        table["median_high_s"] = [0.0120, 0.0130, 0.0019, 25.0, 3.0e-4]
    return table


def _bars(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def _row_of(ax, bar):
    """The display-space (bottom, top) of the table row a bar sits in (rows are one data unit tall)."""
    row = round(bar.get_y() + bar.get_height() / 2)
    bottom, top = sorted(ax.transData.transform([(1, row + 0.5), (1, row - 0.5)])[:, 1])
    return bottom, top


def check_timings_axes(fig, table, words=None):
    """Every assertion the timings figure must pass; shared by the tests below. words: bar label -> expected text."""
    ax, ax_f = fig.axes
    runs = table[table.iterations > 0].reset_index(drop=True)
    for a in (ax, ax_f):
        assert a.get_xscale() == "log" and a.get_xlim()[0] > 0  # a log axis with a positive lower limit
    # left: one bar per timed row, its length the median per update in us (the whole run's median / its updates)
    bars = _bars(ax)
    assert len(bars) == len(runs)
    per_us = 1e6 * runs.median_s.to_numpy() / runs.iterations.to_numpy()
    np.testing.assert_allclose([b.get_width() for b in bars], per_us, rtol=1e-12)
    assert "time per update" in ax.get_xlabel() and "updates" not in ax.get_xlabel().replace("per update", "")
    assert [t.get_text() for t in ax.get_xticklabels() if t.get_text()]  # ticks in time words
    assert all(t.get_text().endswith(("s", "")) for t in ax.get_xticklabels())
    low, high = ((runs.median_low_s, runs.median_high_s) if "median_low_s" in runs else (runs.min_s, runs.max_s))
    whiskers = [c for c in ax.collections if isinstance(c, LineCollection)][0]
    segments = np.concatenate([np.asarray(s) for s in whiskers.get_segments()])
    np.testing.assert_allclose(np.sort(segments[:, 0]),
                               np.sort(1e6 * np.concatenate([low, high]) / np.tile(runs.iterations, 2)), rtol=1e-12)
    # every bar end, whisker and label inside its axis
    right = ax.get_xlim()[1]
    assert ax.get_xlim()[0] < min(per_us.min(), (1e6 * low / runs.iterations).min()) and (1e6 * high / runs.iterations).max() < right
    # one colour per implementation, the shared one; a second dtype of the same way paler
    for bar, name, dtype in zip(bars, runs.implementation, runs.dtype):
        assert to_hex(bar.get_facecolor()) == figures.colour(name)
        assert bar.get_alpha() == (0.9 if dtype == "float64" else 0.45)
    # rows: one per way, named by its registry title (never its id), top-down in table order
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks == [registry.label(n) + ("" if d == "cpu" else f" ({d})")
                     for n, d in dict.fromkeys(zip(runs.implementation, runs.device))]
    assert not any(n in ticks for n in runs.implementation if registry.get(n).title)
    renderer = fig.canvas.get_renderer()
    labels = [t for t in ax.texts if t.get_gid() == "bar label"]
    assert len(labels) == len(bars)
    for bar, label, r in zip(bars, labels, runs.itertuples()):
        box = label.get_window_extent(renderer)
        bottom, top = _row_of(ax, bar)
        assert bottom <= box.y0 and box.y1 <= top, label.get_text()
        whisker_end = ax.transData.transform((max(bar.get_width(), 1e6 * high[r.Index] / r.iterations), 0))[0]
        assert whisker_end <= box.x0 <= whisker_end + 30, label.get_text()
        assert ("warm-up only" in label.get_text()) == (r.repeats == 0)
    if words:
        assert [t.get_text() for t in labels] == words
    # right: the first call, one diamond per row at its value, in the row's colour
    first = [c for c in ax_f.collections if isinstance(c, PathCollection)][0]
    np.testing.assert_allclose(first.get_offsets()[:, 0], runs.first_call_s.to_numpy(), rtol=1e-12)
    assert [to_hex(c) for c in first.get_edgecolors()] == [figures.colour(n) for n in runs.implementation]
    # the closed-form solve: no updates, so no bar; a line at its time in the first-call panel
    solve = table[table.iterations == 0]
    lines = [line for line in ax_f.get_lines() if line.get_gid() == "solve"]
    assert len(lines) == len(solve) > 0 or len(solve) == 0
    for line in lines:
        assert list(line.get_xdata()) == [solve.median_s.iloc[0]] * 2 and "no updates" in line.get_label()
    legend = fig.legends[0]
    texts = [t.get_text() for t in legend.get_texts()]
    assert len(texts) <= 5 and any("closed-form" in t for t in texts) == (len(solve) > 0)
    box = legend.get_window_extent(renderer)
    assert not any(box.overlaps(a.get_window_extent(renderer)) for a in (ax, ax_f))


def test_timings_bars_are_the_cost_per_update_with_noise_whiskers_and_labels_in_their_rows():
    table = _timings_table()
    fig = figures.timings_figure(table)
    fig.canvas.draw()
    # labels in the tables' words: three significant figures in their unit, written out here
    check_timings_axes(fig, table, words=["11 us", "12 us", "1.7 us", "25 ms (warm-up only)"])
    assert fig.axes[0].get_yticklabels()[0].get_text() == "numpy, by hand"  # both numpy rows share one row
    plt.close(fig)


def test_timings_figure_draws_a_table_without_the_interval_columns():
    table = _timings_table(intervals=False)
    fig = figures.timings_figure(table)
    fig.canvas.draw()
    check_timings_axes(fig, table)
    plt.close(fig)


def test_committed_timings_figure_is_readable():
    table = pd.read_csv(RESULTS / "timings.csv")
    fig = figures.timings_figure(table)
    fig.canvas.draw()
    check_timings_axes(fig, table)
    rows = table[table.iterations > 0].groupby(["implementation", "device"]).ngroups
    assert fig.get_size_inches()[1] * 110 <= 0.5 * 110 * rows + 300  # half an inch a way, not one row per dtype
    plt.close(fig)


# --- loss_curves.png --------------------------------------------------------------------------------------

def _curves(extra=()):
    """numpy, keras and gradient_tape in both dtypes over 5 iterations, plus `extra` (name, dtype, relative offset).

    keras float32 is off by a known 3 eps of float32, gradient_tape float64 by 2 eps of float64.
    """
    offsets = {("keras", "float32"): 3 * EPS32, ("gradient_tape", "float64"): 2 * EPS64}
    offsets.update({(name, dtype): gap for name, dtype, gap in extra})
    rows = []
    names = ["numpy", "keras", "gradient_tape"] + list(dict.fromkeys(name for name, _, _ in extra))
    for impl in names:
        for dtype in ("float32", "float64"):
            if impl not in ("numpy", "keras", "gradient_tape") and (impl, dtype) not in offsets:
                continue
            loss = 10.0 * 0.5 ** np.arange(6) * (1 + offsets.get((impl, dtype), 0.0))
            rows.append(pd.DataFrame({"implementation": impl, "device": "cpu", "dtype": dtype,
                                      "iteration": np.arange(6), "loss": loss}))
    return pd.concat(rows, ignore_index=True)


def _legend(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_loss_curves_group_runs_by_family_with_their_gap_in_eps(throwaway_rows):
    throwaway_rows(registry.Implementation("test:jax_row", "a JAX row made by the test", "jax", "nowhere:none"))
    curves = _curves(extra=[("numpy:gram", "float32", 1e-3), ("test:jax_row", "float64", 0.0)])
    fig = figures.loss_curves_figure(curves)
    top, gaps64, gaps32 = fig.axes
    assert gaps64.get_ylabel().endswith("float64") and gaps32.get_ylabel().endswith("float32")
    # the loss panel: numpy per dtype and one band entry for the other runs of each dtype
    assert _legend(top) == ["the other 3 runs, float64", "numpy, by hand, float64 (the reference)",
                            "the other 3 runs, float32", "numpy, by hand, float32 (the reference)"]
    assert len(top.get_lines()) == len(curves.groupby(["implementation", "dtype"]))  # every run drawn
    assert top.get_yscale() == "log" and top.get_ylim()[0] > 0
    # the gap panels: one entry per (framework, route, distributed), the JAX row in its own group
    def gap_eps(name, dtype):  # the doctored run's relative gap to numpy, in eps, computed here
        run, ref = (curves[(curves.implementation == n) & (curves.dtype == dtype)].loss.to_numpy() for n in (name, "numpy"))
        return np.abs(run - ref) / ref / np.finfo(dtype).eps

    # the largest gap in the tables' rounding (three significant figures): one number per quantity
    tf64, tf32 = (f"TensorFlow: 2 runs, up to {gap_eps(n, d).max():.3g} eps"
                  for n, d in (("gradient_tape", "float64"), ("keras", "float32")))
    assert _legend(gaps64) == [tf64, "JAX: 1 run, identical to numpy"]  # an untitled row: its framework's words
    assert _legend(gaps32) == [tf32, f"numpy, Gram route: 1 run, up to {gap_eps('numpy:gram', 'float32').max():.3g} eps"]
    lines = {ax: {l.get_label(): np.asarray(l.get_ydata()) for l in ax.get_lines() if l.get_label()[0] != "_"}
             for ax in (gaps64, gaps32)}
    np.testing.assert_allclose(lines[gaps32][tf32][1:], gap_eps("keras", "float32")[1:])
    np.testing.assert_allclose(lines[gaps64][tf64][1:], np.maximum.accumulate(gap_eps("gradient_tape", "float64"))[1:])
    # a family of one titled way takes that way's colour of every figure; one of several a grey
    gram = next(h for h, t in zip(gaps32.get_legend().legend_handles, _legend(gaps32)) if t.startswith("numpy, Gram"))
    assert to_hex(gram.get_color()) == figures.colour("numpy:gram")
    tf = next(h for h, t in zip(gaps32.get_legend().legend_handles, _legend(gaps32)) if t.startswith("TensorFlow"))
    assert to_hex(tf.get_color()) not in {figures.colour(n) for n in registry.REGISTRY}
    assert (lines[gaps64]["JAX: 1 run, identical to numpy"] == figures.GAP_FLOOR_EPS).all()  # 0 drawn at the floor
    # the same family has the same style in both panels, and no two entries of one axes share one
    for ax in fig.axes:
        assert _distinct_styles(ax) and len(_legend(ax)) <= 8
    tf64 = next(h for h, t in zip(gaps64.get_legend().legend_handles, _legend(gaps64)) if t.startswith("TensorFlow"))
    tf32 = next(h for h, t in zip(gaps32.get_legend().legend_handles, _legend(gaps32)) if t.startswith("TensorFlow"))
    assert (tf64.get_color(), tf64.get_marker()) == (tf32.get_color(), tf32.get_marker())
    plt.close(fig)


def test_loss_curves_legend_stays_short_for_many_runs_of_few_families():
    names = [n for n in registry.names() if registry.get(n).framework == "tensorflow"
             and registry.get(n).route == "streaming" and not registry.get(n).distributed]
    curves = _curves(extra=[(n, d, 1e-6) for n in names for d in ("float32", "float64")])
    fig = figures.loss_curves_figure(curves)
    top, gaps64, gaps32 = fig.axes
    assert len(_legend(top)) == 4 and _legend(gaps64) == [f"TensorFlow: {len(names)} runs, up to "
                                                          f"{figures.eps_words(1e-6, 'float64')}"]
    plt.close(fig)


# --- fit.png ----------------------------------------------------------------------------------------------

def _weights(runs):
    rows = [(name, p, v) for name, (w, b) in runs.items() for p, v in (("x1", w), ("bias", b))]
    return pd.DataFrame({"implementation": [r[0] for r in rows], "device": "cpu", "dtype": "float64",
                         "parameter": [r[1] for r in rows], "value": [r[2] for r in rows]})


def test_fit_draws_one_line_for_the_coinciding_runs_with_least_squares_and_the_generator():
    weights = _weights({"numpy": (2.0, 1.0), "keras": (2.0 + 1e-7, 1.0), "gradient_tape": (2.0, 1.0 - 1e-7),
                        "keras:numpy_input": (np.inf, 1.0), "ols": (2.1, 0.9), "true": (3.0, 4.0)})
    X = np.linspace(0, 2, 20).reshape(-1, 1)
    fig = figures.fitted_line_figure(weights, X, 2 * X + 1)
    ax = fig.axes[0]
    texts = _legend(ax)
    assert len(texts) == 4 and texts[0] == "data"  # data, least squares, the generator and one learned line
    learned = [l for l in ax.get_lines() if "gradient descent" in l.get_label()]
    assert len(learned) == 1 and "all 3 runs" in learned[0].get_label()  # the infinite run is left out
    assert "(W and b within 1e-07 of each other)" in learned[0].get_label()
    np.testing.assert_allclose(learned[0].get_ydata(), 2.0 * np.asarray(learned[0].get_xdata()) + 1.0)
    by_words = {l.get_label().split(":")[0]: l for l in ax.get_lines()}
    ols, true = by_words["least squares (closed form)"], by_words["the generator's line"]
    np.testing.assert_allclose(ols.get_ydata(), 2.1 * np.asarray(ols.get_xdata()) + 0.9)
    np.testing.assert_allclose(true.get_ydata(), 3.0 * np.asarray(true.get_xdata()) + 4.0)
    assert "all 3 runs" in ax.get_title()
    assert _distinct_styles(ax) and legend_clear_of_axes(ax)  # the legend hides no point
    plt.close(fig)


def test_fit_separates_a_run_whose_line_differs():
    weights = _weights({"numpy": (2.0, 1.0), "keras": (2.0, 1.0), "gradient_tape": (2.5, 0.5)})
    X = np.linspace(0, 2, 20).reshape(-1, 1)
    fig = figures.fitted_line_figure(weights, X, 2 * X + 1)
    learned = sorted(l.get_label() for l in fig.axes[0].get_lines() if "gradient descent" in l.get_label())
    assert [label.split(":")[0] for label in learned] == ["gradient descent, 1 of 3 runs (GradientTape loop)",
                                                         "gradient descent, 2 of 3 runs (numpy, by hand, Keras fit) (identical W and b)"]
    lines = {l.get_label().split(":")[0]: l for l in fig.axes[0].get_lines()}
    assert to_hex(lines["gradient descent, 1 of 3 runs (GradientTape loop)"].get_color()) == figures.colour("gradient_tape")
    shared = to_hex(lines["gradient descent, 2 of 3 runs (numpy, by hand, Keras fit) (identical W and b)"].get_color())
    assert shared not in {figures.colour(n) for n in registry.REGISTRY}  # two ways' line: no one way's colour
    plt.close(fig)


# --- headline.png -----------------------------------------------------------------------------------------

def _headline_tables():
    """Eight implementations in a tight cluster (a factor 2 apart) plus numpy far away, each in both dtypes."""
    names = ["numpy", "keras", "gradient_tape", "gradient_tape:xla", "gradient_tape:graph", "numpy:gram",
             "gradient_tape:gram", "gradient_tape:mirrored", "keras:mirrored"]
    rows, gaps = [], []
    for k, name in enumerate(names):
        for dtype in ("float32", "float64"):
            per_update = 20.0 if name == "numpy" else 3.0 * (1 + 0.15 * k)
            first = 0.02 if name == "numpy" else 0.9 * (1 + 0.1 * k)
            rows.append({"implementation": name, "device": "cpu", "dtype": dtype, "n_samples": 100, "n_features": 1,
                         "iterations": 1000, "repeats": 5, "first_call_s": first + (dtype == "float32"),
                         "median_s": per_update * 1e-3, "min_s": per_update * 1e-3, "max_s": per_update * 1e-3,
                         "per_iteration_us": per_update})
            if name != "numpy":
                gaps.append({"implementation": name, "device": "cpu", "dtype": dtype, "reference": "numpy",
                             "max_rel_loss_diff": k * np.finfo(dtype).eps, "max_abs_weight_diff": 0.0})
    rows.append({"implementation": "ols", "device": "cpu", "dtype": "float64", "n_samples": 100, "n_features": 1,
                 "iterations": 0, "repeats": 5, "first_call_s": 3e-4, "median_s": 2e-4, "min_s": 2e-4, "max_s": 2e-4,
                 "per_iteration_us": np.nan})
    return pd.DataFrame(rows), pd.DataFrame(gaps), names


def test_headline_puts_each_implementation_at_its_times_with_its_agreement_and_no_label_overlaps():
    timings, equivalence, names = _headline_tables()
    fig = figures.headline_figure(timings, equivalence)
    fig.tight_layout()  # as save() does: the labels must survive the final layout
    fig.canvas.draw()
    ax = fig.axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert "lower left is better" in ax.get_title()
    offsets = np.concatenate([c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)])
    f64 = timings[(timings.dtype == "float64") & (timings.iterations > 0)]
    assert sorted(map(tuple, offsets)) == sorted(zip(f64.per_iteration_us, f64.first_call_s))  # float64, no ols
    labels = [t for t in ax.texts if t.get_gid() == "headline label"]
    expected = {registry.label(n) + (" (reference)" if n == "numpy" else
                                     f" ({'identical' if k == 0 else f'{k} eps'})") for k, n in enumerate(names)}
    assert {t.get_text() for t in labels} == expected
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in labels]
    frame = ax.get_window_extent(renderer)
    for i, a in enumerate(boxes):
        assert frame.x0 <= a.x0 and a.x1 <= frame.x1 and frame.y0 <= a.y0 and a.y1 <= frame.y1
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), (labels[i].get_text(), a, b)
    # and no label covers another implementation's point
    points = ax.transData.transform(offsets)
    for label, box in zip(labels, boxes):
        assert not any(box.x0 < px < box.x1 and box.y0 < py < box.y1 for px, py in points), label.get_text()
    assert legend_clear_of_axes(ax)
    plt.close(fig)


def test_headline_png_is_written_from_a_results_folder(tmp_path):
    timings, equivalence, _ = _headline_tables()
    timings.to_csv(tmp_path / "timings.csv", index=False)
    equivalence.to_csv(tmp_path / "equivalence.csv", index=False)
    path = figures.headline(tmp_path)
    assert path == tmp_path / "headline.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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
    runs = {line.get_gid(): line for line in losses.get_lines() if line.get_gid()}
    for (name, dtype), rows in table.groupby(["implementation", "dtype"]):
        line = runs[f"{name} [{dtype}]"]
        assert to_hex(line.get_color()) == figures.colour(name)  # the way's colour of every figure
        finished = rows[rows.diverged_at < 0]
        np.testing.assert_allclose(line.get_xdata(), finished.lr)
        np.testing.assert_allclose(line.get_ydata(), finished.final_loss)
        assert _inside(losses, finished.lr, finished.final_loss)
    threshold = next(line for label, line in lines.items() if label.startswith("2 / lambda_max"))
    assert list(threshold.get_xdata()) == [table.threshold.iloc[0]] * 2
    assert losses.get_xscale() == "log" and losses.get_xlim()[0] > 0
    per_rate = table.drop_duplicates("lr")
    stable = per_rate[(per_rate.predicted_iterations > 0) & (per_rate.measured_iterations >= 0)]
    measured = _labelled_lines(iterations)["measured (numpy, by hand, float64)"]
    np.testing.assert_allclose(measured.get_ydata(), stable.measured_iterations)
    assert _inside(iterations, stable.lr, stable.predicted_iterations)


def test_variants_figure_has_a_line_per_implementation_and_batch_size():
    from comparisons.experiments import variants

    table = pd.read_csv(RESULTS / "variants.csv")
    by_epoch, by_time = variants.figure(table).axes
    lines = _labelled_lines(by_epoch)
    from comparisons.core import registry

    assert set(lines) == {f"{registry.label(n)}, batch {b}" for n, b in zip(table.implementation, table.batch_size)}
    for (name, batch_size), rows in table.groupby(["implementation", "batch_size"]):
        excess = np.maximum(rows.sort_values("epoch").full_loss - rows.sort_values("epoch").ols_loss, 1e-17)
        np.testing.assert_allclose(lines[f"{registry.label(name)}, batch {batch_size}"].get_ydata(), excess)
        assert _inside(by_epoch, rows.epoch, excess)
    assert by_epoch.get_yscale() == "log" and by_epoch.get_ylim()[0] > 0
    assert len(_labelled_lines(by_time)) == len(lines)
    # one colour per way (the shared one) in both panels; the batch size as the marker, the same in both
    for ax in (by_epoch, by_time):
        for label, line in _labelled_lines(ax).items():
            name = next(n for n in table.implementation if label.startswith(registry.label(n) + ","))
            assert to_hex(line.get_color()) == figures.colour(name)
    assert "/" not in by_time.get_xlabel() and "wall-clock time" in by_time.get_xlabel()
    fig = by_epoch.figure
    fig.canvas.draw()
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    ways, batches = table.implementation.nunique(), table.batch_size.nunique()
    assert len(texts) == ways + batches  # a short key: the ways, then the batch sizes
    renderer = fig.canvas.get_renderer()
    box = fig.legends[0].get_window_extent(renderer)
    assert not any(box.overlaps(ax.get_window_extent(renderer)) for ax in (by_epoch, by_time))
    plt.close(fig)


def test_matmul_figure_has_every_method_and_its_times():
    from comparisons.experiments import matmul

    table = pd.read_csv(RESULTS / "matmul.csv")
    fig = matmul.figure(table)
    times, rates = fig.axes
    lines = {label: line for label, line in _labelled_lines(times).items() if line.get_gid() != "slope guide"}
    groups = table.groupby(["method", "dtype"])
    assert table.device.nunique() == 1  # the committed run: one device, said in the title, not on every line
    assert set(lines) == {f"{matmul.method_title(m)}, {t}" for m, t in groups.groups}
    for (method, dtype), rows in groups:
        rows = rows.sort_values("n")
        line = lines[f"{matmul.method_title(method)}, {dtype}"]
        np.testing.assert_allclose(line.get_ydata(), rows.min_s)
        assert line.get_linestyle() == ("--" if dtype == "float32" else "-")
        assert _inside(times, rows.n, rows.min_s) and _inside(rates, rows.n, rows.gflops)
    # one colour per method across dtypes and panels, and no method id left in the key
    for method in table.method.unique():
        mine = [line for line in times.get_lines() + rates.get_lines()
                if line.get_label().startswith(matmul.method_title(method) + ",")]
        assert len({line.get_color() for line in mine}) == 1, method
    key = [t.get_text() for t in fig.legends[0].get_texts()]
    assert key[:table.method.nunique()] == [matmul.method_title(m) for m in
                                            sorted(table.method.unique(), key=list(matmul.METHOD_TITLES).index)]
    assert not set(key) & {"python_loop", "tf_eager", "tf_function", "strassen_1level"}
    assert times.get_legend() is None and rates.get_legend() is None  # one key for both panels
    assert times.get_yscale() == rates.get_yscale() == "log"
    plt.close(fig)


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


def _matmul_table():
    """Two methods timed exactly as n^3 and n^2.5 (seconds), from n = 64 to 1024."""
    rows = []
    for method, exponent in (("numpy", 3.0), ("tf_function", 2.5)):
        for n in (64, 128, 256, 512, 1024):
            t = 1e-9 * n ** exponent
            rows.append({"method": method, "device": "cpu", "dtype": "float64", "n": n, "min_s": t,
                         "gflops": 2 * n ** 3 / t / 1e9})
    return pd.DataFrame(rows)


def test_matmul_time_panel_has_n2_and_n3_guides_and_a_legend_clear_of_the_data():
    from comparisons.experiments import matmul

    fig = matmul.figure(_matmul_table())
    times, rates = fig.axes
    guides = [line for line in times.get_lines() if line.get_gid() == "slope guide"]
    slopes = sorted(np.polyfit(np.log(line.get_xdata()), np.log(line.get_ydata()), 1)[0] for line in guides)
    np.testing.assert_allclose(slopes, [2, 3], atol=1e-9)
    fig.canvas.draw()
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["numpy.matmul", "TensorFlow tf.matmul in a tf.function", "float64",
                      "slope guide: time ~ n^2 (reading the matrices)", "slope guide: time ~ n^3 (classical product)"]
    styles = [(to_hex(h.get_color()), h.get_marker(), h.get_linestyle()) for h in fig.legends[0].legend_handles]
    assert len(set(styles)) == len(styles)  # no two entries of the key look alike
    renderer = fig.canvas.get_renderer()
    box = fig.legends[0].get_window_extent(renderer)
    assert not any(box.overlaps(ax.get_window_extent(renderer)) for ax in fig.axes)  # the key hides no data
    for line in guides:  # over the sizes the exponent is fitted on, and inside the axes
        assert min(line.get_xdata()) >= matmul.FIT_MIN_N and _inside(times, line.get_xdata(), line.get_ydata())
    plt.close(fig)


def _sweep_table():
    """Three rates around a threshold of 1; the slow implementation ran 25 iterations, the others 1000."""
    rows = []
    for name, dtype, iterations in (("numpy", "float64", 1000), ("keras", "float32", 1000),
                                    ("gradient_tape:eager", "float64", 25)):
        for lr in (0.05, 0.5, 2.0):
            diverged = lr > 1
            rows.append({"implementation": name, "dtype": dtype, "lr": lr, "lr_over_threshold": lr, "threshold": 1.0,
                         "iterations": iterations, "final_loss": 1e9 if diverged else 0.3 + 10 / iterations,
                         "diverged_at": 5 if diverged else -1,
                         "predicted_iterations": -1.0 if diverged else 20 / lr, "measured_iterations": -1 if diverged
                         else int(20 / lr)})
    return pd.DataFrame(rows)


def test_lr_sweep_marks_the_runs_rate_and_the_runs_of_fewer_iterations(tmp_path, monkeypatch):
    from comparisons.experiments import lr_sweep

    table = _sweep_table()
    fig = lr_sweep.figure(table, lr=0.5)
    losses, iterations = fig.axes
    for ax in (losses, iterations):
        marks = [line for line in ax.get_lines() if list(line.get_xdata()) == [0.5, 0.5]]
        assert len(marks) == 1  # the run's rate, and only it, at 0.5
    lines = _labelled_lines(losses)
    assert "the run's rate lr = 0.5" in lines
    short = next(line for label, line in lines.items() if label.startswith("fewer than 1000 iterations"))
    slow = table[table.iterations < 1000]
    np.testing.assert_allclose(sorted(short.get_xdata()), sorted(slow.lr))
    assert any(label.startswith("fewer than 1000 iterations") and "GradientTape, eager (25)" in label for label in lines)
    assert _distinct_styles(losses) and legend_clear_of_axes(losses)
    assert len(_legend(losses)) <= 8  # the styles, not one entry per way and dtype
    assert not any(name in " ".join(_legend(losses)) for name in table.implementation if ":" in name)  # titles, not ids
    plt.close(fig)
    # plot() reads the rate from the folder's config.json
    seen = []
    real = lr_sweep.figure
    monkeypatch.setattr(lr_sweep, "figure", lambda t, lr=None: seen.append(lr) or real(t, lr))
    (tmp_path / "config.json").write_text('{"lr": 0.125}')
    lr_sweep.plot(table, tmp_path)
    assert seen == [0.125] and (tmp_path / "lr_sweep.png").exists()


def _gram_table():
    """The shown case with a loss that falls from 100 toward 1 and is frozen from iteration 30 on, and a float64 case."""
    rows = []
    for noise, dtype in (gram_module().SHOWN, (gram_module().SHOWN[0], "float64")):
        k = np.arange(50)
        stream = 1 + 99 * 0.8 ** k
        ours = stream * (1 + 1e-5 * np.cos(k))
        if dtype == "float32":
            stream[30:], ours[30:] = stream[30], ours[30]  # both losses repeat exactly from iteration 30
        rows.append(pd.DataFrame({"noise": noise, "dtype": dtype, "n_samples": 100, "s": 1e5, "iteration": k,
                                  "streaming_loss": stream, "gram_loss": ours, "rel_gap": np.abs(ours - stream) / stream,
                                  "bound": 1e-3, "tolerance": 1e-4, "max_abs_weight_diff": 1e-6}))
    return pd.concat(rows, ignore_index=True)


def gram_module():
    from comparisons.experiments import gram

    return gram


def test_gram_figure_says_where_it_starts_and_where_float32_freezes():
    gram = gram_module()
    table = _gram_table()
    assert gram.frozen_from(np.array([3.0, 2.0, 1.0] + [0.5] * 10)) == 3
    assert gram.frozen_from(np.array([3.0, 2.0, 1.0, 0.5])) is None  # too short a flat end to say
    fig = gram.figure(table)
    left, right = fig.axes
    case = table[table.dtype == "float32"]
    start = int(np.argmax(case.streaming_loss.to_numpy() < 3 * case.streaming_loss.iloc[-1]))  # first below 3x final
    assert f"from iteration {start}," in left.get_title() and "3x its final value" in left.get_title()
    assert min(left.get_lines()[0].get_xdata()) == start
    frozen = [line for line in left.get_lines() if list(line.get_xdata()) == [30, 30]]
    assert len(frozen) == 1 and "rounds away" in frozen[0].get_label()
    assert "from iteration 30:" in right.get_title() and "rounds away" in right.get_title()
    plt.close(fig)


def _scaling_rows(names, features=(1, 32)):
    """Rows of scaling.csv for `names` at two n and each m; at m = 1 the floors coincide (X and y of equal bytes)."""
    rows = []
    for m in features:
        for k, name in enumerate(names):
            for n in (100, 10_000):
                gram = name in registry.REGISTRY and registry.get(name).route == "gram"
                rows.append(dict(implementation=name, device="cpu", dtype="float32", n_samples=n, n_features=m,
                                 per_iteration_s=1e-6 * (k + 1) * n, floor_per_iteration_s=8e-9 * n * m,
                                 one_pass_floor_s=4e-9 * n * (m + 1), bandwidth_gbs=10.0,
                                 route="gram" if gram else "streaming", time_1000_s=2e-3 * (k + 1) if gram else np.nan))
    return pd.DataFrame(rows)


def test_scaling_figure_keeps_each_ways_colour_in_every_panel_with_one_short_legend():
    """Every sweeping registry row and a scaling-only formulation, at m = 1 and m = 32: one legend of titles."""
    from comparisons.experiments import scaling

    names = [n for n in registry.names() if registry.get(n).sweeps] + ["numpy:broadcast"]
    table = _scaling_rows(names)
    fig = scaling.figure(table)
    fig.canvas.draw()
    panels = fig.axes[:2]
    assert all(ax.get_legend() is None for ax in panels)  # one legend for the figure, not one per panel
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts[:len(names)] == [registry.label(n) for n in names[:-1]] + ["numpy, by hand, broadcast form (timed here only)"]
    assert not any(n in texts for n in names)  # no registry id
    handles = fig.legends[0].legend_handles[:len(names)]
    assert len({to_hex(h.get_color()) for h in handles}) == len(names)  # no two ways alike
    for ax in panels:  # each line in its way's colour, in both panels
        for line in ax.get_lines():
            if line.get_gid() in names:
                assert to_hex(line.get_color()) == figures.colour(line.get_gid())
    # the floors: one line where they coincide (m = 1), two where they differ (m = 32), each said once in the key
    floors = [[line for line in ax.get_lines() if line.get_gid() in ("floor", "one-pass floor")] for ax in panels]
    assert [len(f) for f in floors] == [1, 2]
    assert sum("coincide" in t for t in texts) == 1 and sum("one-pass floor" in t for t in texts) == 1
    # every entry of the key in a style of its own: the coinciding floors' line is not the two-pass floor's
    styles = [(to_hex(h.get_color()), h.get_linestyle(), h.get_marker()) for h in fig.legends[0].legend_handles]
    assert len(set(styles)) == len(styles)
    coinciding = fig.legends[0].legend_handles[next(i for i, t in enumerate(texts) if "coincide" in t)]
    assert (to_hex(floors[0][0].get_color()), floors[0][0].get_linestyle()) == (to_hex(coinciding.get_color()),
                                                                                coinciding.get_linestyle())
    np.testing.assert_allclose(floors[0][0].get_ydata(), table[(table.n_features == 1)].drop_duplicates(
        "n_samples").floor_per_iteration_s)
    renderer = fig.canvas.get_renderer()
    box = fig.legends[0].get_window_extent(renderer)
    assert not any(box.overlaps(ax.get_window_extent(renderer)) for ax in panels)
    plt.close(fig)


def test_headline_agreement_is_in_the_tables_rounding():
    """One number per quantity: the eps a label gives is the tables' three significant figures, not a rounded integer."""
    assert figures.eps_words(6.531 * EPS64, "float64") == "6.53 eps"
    assert figures.eps_words(0.0, "float32") == "identical" and figures.eps_words(0.4 * EPS32, "float32") == "0.4 eps"
    timings, equivalence, names = _headline_tables()
    equivalence.loc[(equivalence.implementation == "keras") & (equivalence.dtype == "float64"),
                    "max_rel_loss_diff"] = 6.531 * EPS64
    fig = figures.headline_figure(timings, equivalence)
    texts = [t.get_text() for t in fig.axes[0].texts if t.get_gid() == "headline label"]
    assert f"{registry.label('keras')} (6.53 eps)" in texts
    plt.close(fig)


def test_a_crowded_group_of_points_gets_its_labels_in_a_column_in_the_points_order():
    fig, ax = plt.subplots(figsize=(8, 5))
    xs, ys = np.array([3.0, 3.1, 3.2, 3.3, 300.0]), np.array([1.0, 1.05, 0.95, 1.1, 1.0])  # four within a few points
    ax.scatter(xs, ys)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(0.01, 1e4)
    ax.set_ylim(0.1, 10)
    fig.canvas.draw()
    texts = [f"way number {k}" for k in range(5)]
    labelled, boxes = figures.column_labels(ax, xs, ys, texts)
    assert sorted(labelled) == [0, 1, 2, 3]  # the far point is not in the group
    labels = {t.get_text(): t for t in ax.texts if t.get_gid() == "headline label"}
    column = [labels[texts[k]] for k in labelled]
    assert len({round(t.get_window_extent().x1, 3) for t in column}) == 1  # right-aligned at one x
    tops = [t.get_window_extent().y0 for t in column]
    assert tops == sorted(tops, reverse=True)  # top to bottom, in the points' order of height
    assert [k for k in labelled] == sorted(range(4), key=lambda k: -ys[k])
    assert all(not a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert all(b.x1 < ax.transData.transform((xs[:4].min(), 1))[0] for b in boxes)  # left of the group
    assert len([c for c in ax.texts if c.get_text() == ""]) == 4  # a leader line to each point
    plt.close(fig)


def test_loss_curves_name_a_family_of_one_titled_way_by_its_title():
    """jax:sharded alone in its (jax, streaming, replicas) family: its title, not 'JAX, mirrored replicas'."""
    curves = _curves(extra=[("jax:sharded", "float64", 1e-15)])
    fig = figures.loss_curves_figure(curves)
    texts = _legend(fig.axes[1])
    assert any(t.startswith(f"{registry.label('jax:sharded')}: 1 run") for t in texts), texts
    assert not any("mirrored" in t for t in texts)
    handle = next(h for h, t in zip(fig.axes[1].get_legend().legend_handles, texts) if t.startswith("JAX, sharded"))
    assert to_hex(handle.get_color()) == figures.colour("jax:sharded")
    plt.close(fig)


def test_every_registry_row_has_its_own_colour_the_same_in_every_call():
    names = list(registry.REGISTRY)
    colours = [figures.colour(n) for n in names]
    assert len(set(colours)) == len(names) and colours == [figures.colour(n) for n in names]
    assert figures.colour("numpy:broadcast") not in colours  # a row the registry lacks: a colour left over
    assert not {"#7f7f7f", "#000000"} & set(colours)  # grey and black stay for references and floors
