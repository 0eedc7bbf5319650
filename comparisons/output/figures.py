"""Figures of the single run, drawn from the tables alone (so they can be redrawn without training)."""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.transforms import Bbox, ScaledTranslation  # noqa: E402

from comparisons.core import registry  # noqa: E402

MARKERS = "os^vD<>xP*"
COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
           "tab:olive", "tab:cyan", "tab:gray")
FRAMEWORK_WORDS = {"numpy": "numpy", "tensorflow": "TensorFlow", "jax": "JAX"}  # keyed by the registry's field
DISTRIBUTED_WORDS = {"replicas": "mirrored replicas", "workers": "worker processes"}
GAP_FLOOR_EPS = 1e-2  # an exact match (gap 0) is drawn here, in eps, on the log axis


def save(fig, path):
    """Lay out, write as PNG and close a figure; returns the path. Every figure of the study goes through here.

    Each figure is built by a function returning its Figure unsaved (`*_figure(table)` here, `figure(table)`
    in an experiment module), so tests can inspect its artists; the saving wrapper only calls save().
    """
    fig.tight_layout()
    # tight_layout leaves a do-nothing placeholder engine behind, and savefig answers any engine with a
    # whole extra (unrendered) draw before the real one; the layout is done, so drop it: same pixels
    fig.set_layout_engine(None)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def legend_outside(ax, below=True, **options):
    """A legend beside the axes (below it, or to its right) so it never hides a line or a point."""
    place = (dict(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2) if below
             else dict(loc="upper left", bbox_to_anchor=(1.02, 1.0)))
    return ax.legend(**{**place, **options})


def _label(row):
    return f"{row.implementation} [{row.device}, {row.dtype}]"


def family(name):
    """(framework, route, distributed) of an implementation, from the registry's fields: runs that share it coincide."""
    impl = registry.REGISTRY.get(name)
    return (impl.framework, impl.route, impl.distributed) if impl else (name, "streaming", "")


def family_words(key):
    """('tensorflow', 'gram', '') -> 'TensorFlow, Gram route'."""
    framework, route, distributed = key
    words = [FRAMEWORK_WORDS.get(framework, framework)]
    if route == "gram":
        words.append("Gram route")
    if distributed:
        words.append(DISTRIBUTED_WORDS.get(distributed, distributed))
    return ", ".join(words)


def eps_words(gap, dtype):
    """A relative gap in eps of its dtype, as a reader reads it: 'identical', '<1 eps', '3 eps'."""
    if not np.isfinite(gap):
        return "diverged"
    units = gap / np.finfo(dtype).eps
    return "identical" if units == 0 else "<1 eps" if units < 1 else f"{round(units)} eps"


def _family_styles(keys):
    """One (colour, marker, linestyle) per family, the same in every panel; no two families share one."""
    return {key: dict(color=COLOURS[k % len(COLOURS)], marker=MARKERS[k % len(MARKERS)],
                      linestyle=("-", "--", "-.", ":")[k // len(COLOURS) % 4]) for k, key in enumerate(keys)}


def _gaps(curves):
    """Per run other than the reference: its relative gap to numpy's loss of the same dtype, per iteration."""
    rows = []
    for (impl, device, dtype), g in curves.groupby(["implementation", "device", "dtype"], sort=False):
        reference = curves[(curves.implementation == registry.REFERENCE) & (curves.dtype == dtype)]
        if impl == registry.REFERENCE or reference.empty:
            continue
        reference = reference.drop_duplicates("iteration")[["iteration", "loss"]]
        merged = g.merge(reference, on="iteration", suffixes=("", "_numpy"))
        gap = np.abs(merged.loss - merged.loss_numpy) / np.abs(merged.loss_numpy)
        rows.append(pd.DataFrame({"implementation": impl, "device": device, "dtype": dtype,
                                  "family": [family(impl)] * len(merged), "iteration": merged.iteration.to_numpy(),
                                  "gap": np.nan_to_num(gap.to_numpy(), nan=np.inf)}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["implementation", "device", "dtype", "family", "iteration", "gap"])


def loss_curves_figure(curves):
    """The Figure of loss_curves.png from loss_curves.csv's rows: losses above, grouped gaps to numpy below.

    Runs are grouped by the registry's (framework, route, distributed): the gap panels (one per dtype,
    in eps of that dtype) draw one line per group, the largest gap of any of its runs up to each iteration.
    """
    dtypes = sorted(curves.dtype.unique(), key=lambda d: np.finfo(d).eps)  # float64 first
    fig = plt.figure(figsize=(11, 8.5))
    grid = fig.add_gridspec(2, len(dtypes), height_ratios=[1, 1])
    top = fig.add_subplot(grid[0, :])
    panels = [fig.add_subplot(grid[1, k]) for k in range(len(dtypes))]
    runs = curves.groupby(["implementation", "device", "dtype"], sort=False)
    for k, dtype in enumerate(dtypes):
        colour = ("tab:blue", "tab:orange", "tab:green")[k % 3]
        others = [g for (impl, _, d), g in runs if d == dtype and impl != registry.REFERENCE]
        for j, g in enumerate(others):  # a thick pale band under the reference's line, narrower per dtype: both show
            top.plot(g.iteration, g.loss, "-", color=colour, linewidth=10 - 4 * (k % 2), alpha=0.3,
                     solid_capstyle="butt", label=f"the other {len(others)} runs, {dtype}" if j == 0 else "_")
        for (impl, _, d), g in runs:
            if impl == registry.REFERENCE and d == dtype:
                top.plot(g.iteration, g.loss, "-" if k == 0 else "--", color="black", linewidth=1.2,
                         label=f"{registry.label(impl)}, {dtype} (the reference)")
                break
    top.set_yscale("log")
    top.set_ylabel("MSE loss (log scale)")
    top.set_xlabel("iteration (update number)")
    top.set_title(f"Loss before each update: {runs.ngroups} runs; every other run is drawn as a pale band under "
                  "numpy's line\n(where a band shows beside the line, that run left numpy's curve)", fontsize=10)
    top.legend(fontsize=8, loc="upper right")
    top.grid(True, which="both", alpha=0.3)
    gaps = _gaps(curves)
    keys = list(dict.fromkeys(family(n) for n in registry.names() if family(n) in set(gaps.family)))
    keys += [key for key in dict.fromkeys(gaps.family) if key not in keys]  # rows not in the registry, last
    styles = _family_styles(keys)
    for ax, dtype in zip(panels, dtypes):
        eps = np.finfo(dtype).eps
        part = gaps[gaps.dtype == dtype]
        for key in keys:
            group = part[part.family == key]
            if group.empty:
                continue
            # per run the largest gap so far, then the group's largest at each iteration: one readable line
            running = group.assign(gap=group.groupby("implementation", sort=False).gap.cummax())
            envelope = running.groupby("iteration").gap.max()
            count = group.groupby(["implementation", "device"]).ngroups
            worst = envelope.max()
            every = max(1, len(envelope) // 10)
            ax.plot(envelope.index, np.maximum(envelope.to_numpy() / eps, GAP_FLOOR_EPS), markersize=5,
                    linewidth=1.3, markevery=(keys.index(key) % every, every), **styles[key],
                    label=f"{family_words(key)}: {count} run{'s' if count > 1 else ''}, "
                          + ("identical to numpy" if worst == 0 else f"up to {eps_words(worst, dtype)}"))
        ax.axhline(1, color="grey", linewidth=0.8, linestyle=":")
        ax.set_yscale("log")
        ax.set_xlabel("iteration (update number)")
        ax.set_ylabel(f"gap to numpy, in eps of {dtype}")
        ax.set_title(f"{dtype}: largest |loss - numpy's| / numpy's up to each iteration\n"
                     f"(eps = {eps:.3g}; dotted: 1 eps; identical drawn at {GAP_FLOOR_EPS:g})", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_lines()[:-1]:
            ax.legend(fontsize=7, loc="best")
    return fig


def loss_curves(results_dir):
    """loss_curves.png: every run's loss on a log scale, and its relative gap to numpy below."""
    results_dir = Path(results_dir)
    return save(loss_curves_figure(pd.read_csv(results_dir / "loss_curves.csv")), results_dir / "loss_curves.png")


def _interval_ms(table):
    """(low, high) of each row's noise interval in ms: median_low_s/median_high_s, else min_s/max_s (older tables)."""
    low, high = table.min_s.to_numpy(float), table.max_s.to_numpy(float)
    if {"median_low_s", "median_high_s"} <= set(table.columns):
        given = table.median_low_s.notna().to_numpy() & table.median_high_s.notna().to_numpy()
        low = np.where(given, table.median_low_s.to_numpy(float), low)
        high = np.where(given, table.median_high_s.to_numpy(float), high)
    return 1e3 * low, 1e3 * high


def _ms_words(ms):
    return f"{ms / 1e3:.3g} s" if ms >= 1e3 else f"{ms:.3g} ms"


def _is_solve(row):
    """The closed-form least-squares row (iterations 0): timed once per solve, no updates."""
    return int(row.iterations) == 0


def timings_figure(table):
    """The Figure of timings.png from timings.csv's rows: median bars with noise whiskers, first calls, log x.

    Each row holds two things: the median of the timed repeats (bar, upper half, label at its end) and the
    first call (diamond on a thin line, lower half, label beside it). Rows timed only by their warm-up say so.
    """
    fig, ax = plt.subplots(figsize=(12, 0.6 * len(table) + 2.2))
    ax.set_xscale("log")  # before any limit or bar: a limit set on a linear axis would pin the left edge at 0
    labels = [f"ols: closed-form least squares, one solve [{r.device}, {r.dtype}]" if _is_solve(r) else _label(r)
              for r in table.itertuples()]
    median_ms, first_ms = 1e3 * table.median_s.to_numpy(float), 1e3 * table.first_call_s.to_numpy(float)
    low_ms, high_ms = _interval_ms(table)
    warm_only = table.repeats.to_numpy() == 0
    solve = np.array([_is_solve(r) for r in table.itertuples()])
    colours = np.where(solve, "tab:gray", np.where(table.dtype == "float64", "tab:blue", "tab:orange"))
    y = np.arange(len(table))
    bar_y, first_y = y - 0.17, y + 0.22
    left = np.minimum(np.minimum(low_ms, first_ms), median_ms).min() / 3
    bars = ax.barh(bar_y, median_ms, height=0.42, xerr=[median_ms - low_ms, high_ms - median_ms], color=colours,
                   alpha=0.85, capsize=3)
    for yi in np.flatnonzero(warm_only):  # the bar is the warm-up itself: hatched, as it is no timed repeat
        bars.patches[yi].set(hatch="//", edgecolor="white", linewidth=0)
    ax.hlines(first_y, left, first_ms, color="black", linewidth=0.6, alpha=0.5)
    ax.scatter(first_ms, first_y, marker="D", s=22, color="black", zorder=3, label="first call (tracing, compiling)")
    ends = np.maximum(high_ms, median_ms)
    for yi in range(len(table)):
        shown = _ms_words(median_ms[yi])
        repeats = int(table.repeats.iloc[yi])
        words = (f"warm-up only: {shown}" if warm_only[yi] else
                 f"one solve: median {shown} of {repeats}" if solve[yi] else
                 f"median {shown} of {repeats} timed run{'s' if repeats > 1 else ''}")
        ax.text(ends[yi] * 1.12, bar_y[yi], words, va="center", fontsize=7, gid="bar label")
        ax.text(first_ms[yi] * 1.12, first_y[yi], f"first call {_ms_words(first_ms[yi])}", va="center", fontsize=6.5,
                color="dimgray", gid="first-call label")
    ax.set_xlim(left, np.maximum(ends, first_ms).max() * 15)  # room for the last label right of its bar
    ax.set_ylim(len(table) - 0.5, -0.5)  # top-down in table order, each row one unit tall
    ax.set_yticks(y, labels, fontsize=8)
    iterations = int(table.iterations.max())
    ax.set_xlabel(f"wall-clock time of a whole run of {iterations} updates, ms (log scale)")
    ax.set_title("Median of the timed runs (bar; whisker: its noise interval) and the first call (diamond)\n"
                 "blue: float64, orange: float32, grey: the closed-form solve; hatched: warm-up only, no timed repeat",
                 fontsize=10)
    handles = [Patch(color="tab:blue", alpha=0.85, label="median of timed runs, float64"),
               Patch(color="tab:orange", alpha=0.85, label="median of timed runs, float32"),
               ax.collections[-1]]
    if warm_only.any():
        handles.append(Patch(facecolor="tab:blue", edgecolor="white", hatch="//", label="warm-up only (no timed repeat)"))
    ax.legend(handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.9 / (0.6 * len(table) + 2.2)),
              ncol=2)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    return fig


def timings(results_dir):
    """timings.png: steady-state median per implementation (bars) with noise whiskers and first calls, log scale."""
    results_dir = Path(results_dir)
    return save(timings_figure(pd.read_csv(results_dir / "timings.csv")), results_dir / "timings.png")


def fitted_line_figure(weights, X, y):
    """The Figure of fit.png from weights.csv's rows and the one-feature data X (n, 1), y (n, 1).

    The runs whose lines coincide on the plot (within a thousandth of the data's height) share one line,
    labelled with how many of the runs give it; `ols` and `true` are drawn apart.
    """
    fig, ax = plt.subplots(figsize=(9, 6))
    ax.scatter(X[:, 0], y[:, 0], s=14, alpha=0.5, color="tab:blue", label="data")
    grid = np.linspace(X[:, 0].min(), X[:, 0].max(), 50)
    parameters = [p for p in weights.parameter.unique() if p != "bias"]
    lines, references = [], {}
    for (impl, device, dtype), g in weights.groupby(["implementation", "device", "dtype"], sort=False):
        values = dict(zip(g.parameter, g.value))
        w, b = values[parameters[0]], values["bias"]
        if impl in ("ols", "true"):  # the tables' two reference rows, not implementations
            references[impl] = (w, b)
        elif np.isfinite(w) and np.isfinite(b):
            lines.append((impl, w, b))
    height = max(float(np.ptp(y)), 1e-12)
    groups = []  # [(w, b, [names], [(w, b)])]: a line joins the first group it coincides with
    for impl, w, b in lines:
        for group in groups:
            if np.max(np.abs((w - group[0]) * grid + (b - group[1]))) <= 1e-3 * height:
                group[2].append(impl)
                group[3].append((w, b))
                break
        else:
            groups.append((w, b, [impl], [(w, b)]))
    if "ols" in references:
        w, b = references["ols"]
        ax.plot(grid, w * grid + b, color="black", linewidth=5, alpha=0.3,
                label=f"least squares (closed form): y = {w:.4f} x + {b:.4f}")
    if "true" in references:
        w, b = references["true"]
        ax.plot(grid, w * grid + b, color="tab:red", linewidth=1.5, linestyle="--",
                label=f"the generator's line: y = {w:.4g} x + {b:.4g}")
    for k, (w, b, names, members) in enumerate(groups):
        who = (f"all {len(lines)} runs" if len(groups) == 1 else
               f"{len(names)} of {len(lines)} runs ({', '.join(dict.fromkeys(names))})")
        spread = np.ptp(np.array(members), axis=0).max()  # the largest difference of W or b within the group
        if len(members) > 1:
            who += f" (W and b within {spread:.1g} of each other)" if spread else " (identical W and b)"
        ax.plot(grid, w * grid + b, color=COLOURS[(k + 1) % len(COLOURS)], linewidth=1.5,
                linestyle=("-", "-.", ":")[k % 3], label=f"gradient descent, {who}: y = {w:.4f} x + {b:.4f}")
    ax.set_xlabel(parameters[0])
    ax.set_ylabel("target")
    ax.set_title(f"The learned line over the data: all {len(lines)} runs of gradient descent give "
                 + ("one line" if len(groups) == 1 else f"{len(groups)} lines"), fontsize=10)
    legend_outside(ax, fontsize=8, ncol=1)
    return fig


def fitted_line(results_dir, X, y):
    """fit.png for one-feature data: the points, the line the runs learn, least squares and the generator's line."""
    results_dir = Path(results_dir)
    return save(fitted_line_figure(pd.read_csv(results_dir / "weights.csv"), X, y), results_dir / "fit.png")


def headline_points(timings, equivalence):
    """One row per implementation (float64 where it ran, else its first dtype): where the headline figure puts it."""
    runs = timings[(timings.iterations > 0) & (timings.per_iteration_us > 0) & (timings.first_call_s > 0)].copy()
    runs["order"] = (runs.dtype != "float64").astype(int)
    runs = runs.sort_values("order", kind="stable").drop_duplicates("implementation").sort_index()
    runs = runs.reset_index(drop=True)
    gaps = {(r.implementation, r.device, r.dtype): r.max_rel_loss_diff for r in equivalence.itertuples()}
    agreement = []
    for r in runs.itertuples():
        key = (r.implementation, r.device, r.dtype)
        agreement.append("reference" if r.implementation == registry.REFERENCE else
                         eps_words(gaps[key], r.dtype) if key in gaps else "")
    runs["agreement"] = agreement
    runs["title"] = [registry.label(n) + ("" if d == "float64" else f" ({d})")
                     for n, d in zip(runs.implementation, runs.dtype)]
    runs["framework"] = [family(n)[0] for n in runs.implementation]
    return runs


_DIRECTIONS = [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1),
               (2, 1), (-2, 1), (2, -1), (-2, -1), (1, 2), (-1, 2), (1, -2), (-1, -2)]


def place_labels(ax, xs, ys, texts, fontsize=8):
    """Write each point's text where its box overlaps no other label, no point and stays inside the axes.

    Tries spots around the point at growing distances (a grey leader line joins the far ones); the
    Figure must be laid out already (offsets are in points, so a later identical layout keeps them).
    """
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    dot = 5.0 * fig.dpi / 72  # about half a marker, in pixels
    taken = []
    for x, y in zip(xs, ys):
        px, py = ax.transData.transform((x, y))
        taken.append(Bbox.from_extents(px - dot, py - dot, px + dot, py + dot))
    placed = []
    for x, y, text in zip(xs, ys, texts):
        chosen = None
        for radius in (6, 14, 26, 40, 58, 80, 105):
            for dx, dy in _DIRECTIONS:
                norm = np.hypot(dx, dy)
                ox, oy = radius * dx / norm, radius * dy / norm
                label = ax.text(x, y, text, fontsize=fontsize, gid="headline label",
                                transform=ax.transData + ScaledTranslation(ox / 72, oy / 72, fig.dpi_scale_trans),
                                ha="left" if dx > 0 else "right" if dx < 0 else "center",
                                va="bottom" if dy > 0 else "top" if dy < 0 else "center")
                box = label.get_window_extent(renderer)
                inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
                if inside and not any(box.overlaps(t) for t in taken):
                    chosen = (label, box, radius, (ox, oy))
                    break
                label.remove()
            if chosen:
                break
        if chosen is None:  # nowhere free: the nearest spot (the figure's test then fails and says so)
            label = ax.text(x, y, text, fontsize=fontsize, gid="headline label", va="center", transform=ax.transData
                            + ScaledTranslation(6 / 72, 0, fig.dpi_scale_trans))
            chosen = (label, label.get_window_extent(renderer), 6, (6, 0))
        label, box, radius, (ox, oy) = chosen
        if radius > 6:  # a leader line from the point toward its far label
            ax.annotate("", (x, y), xytext=(ox, oy), textcoords="offset points",
                        arrowprops=dict(arrowstyle="-", color="grey", lw=0.6, shrinkA=0, shrinkB=4))
        taken.append(box)
        placed.append(label)
    return placed


def headline_figure(timings, equivalence):
    """The Figure of headline.png: per way of training, time to the first result against time per update, log-log."""
    points = headline_points(timings, equivalence)
    fig, ax = plt.subplots(figsize=(11, 7))
    if points.empty:  # nothing timed (every row failed): say so rather than draw empty axes without a word
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no implementation was timed in this run", ha="center", va="center", transform=ax.transAxes)
        return fig
    x, y = points.per_iteration_us.to_numpy(float), points.first_call_s.to_numpy(float)
    frameworks = list(dict.fromkeys(points.framework))
    for k, framework in enumerate(frameworks):
        mine = (points.framework == framework).to_numpy()
        ax.scatter(x[mine], y[mine], s=45, marker=MARKERS[k % len(MARKERS)], color=COLOURS[k % len(COLOURS)],
                   zorder=3, label=FRAMEWORK_WORDS.get(framework, framework))
    ax.set_xscale("log")
    ax.set_yscale("log")
    # room around the points for their labels: a decade and a half on each side in x, a decade in y
    ax.set_xlim(x.min() / 10 ** 1.2, x.max() * 10 ** 1.5)
    ax.set_ylim(y.min() / 10 ** 0.7, y.max() * 10 ** 0.7)
    ax.grid(True, which="major", alpha=0.3)
    dtypes = sorted(set(points.dtype))
    n, iterations = int(points.n_samples.iloc[0]), int(points.iterations.max())
    ax.set_xlabel("time per update, steady (microseconds, log scale)")
    ax.set_ylabel(f"time to the first result: the first call of a {iterations}-update run,\n"
                  "tracing and compiling included (seconds, log scale)")
    ax.set_title(f"Ways of training the lesson's regression (n = {n}, {', '.join(dtypes)}): lower left is better\n"
                 "each point is one implementation; in brackets, the largest gap of its loss curve to numpy's "
                 "(eps: the dtype's machine epsilon)",
                 fontsize=10)
    legend_outside(ax, fontsize=8, ncol=len(frameworks), title="framework", title_fontsize=8)
    fig.tight_layout()
    fig.set_layout_engine(None)
    place_labels(ax, x, y, [f"{t} ({a})" if a else t for t, a in zip(points.title, points.agreement)])
    return fig


def headline(results_dir):
    """headline.png, the README's front-page picture, from timings.csv and equivalence.csv."""
    results_dir = Path(results_dir)
    return save(headline_figure(pd.read_csv(results_dir / "timings.csv"), pd.read_csv(results_dir / "equivalence.csv")),
                results_dir / "headline.png")
