"""Figures of the single run, drawn from the tables alone (so they can be redrawn without training)."""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

MARKERS = "os^vD<>xP*"


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


def loss_curves_figure(curves):
    """The Figure of loss_curves.png from loss_curves.csv's rows: losses above, gaps to numpy below."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 8), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    groups = list(curves.groupby(["implementation", "device", "dtype"], sort=False))
    for k, ((impl, device, dtype), g) in enumerate(groups):
        style = "-" if dtype == "float64" else "--"
        every = max(1, len(g) // 12)
        top.plot(g.iteration, g.loss, style, marker=MARKERS[k % len(MARKERS)], markevery=(k % every, every),
                 markersize=5, linewidth=1.2, alpha=0.85, label=f"{impl} [{device}, {dtype}]")
        reference = curves[(curves.implementation == "numpy") & (curves.dtype == dtype)]
        if impl != "numpy" and len(reference):
            merged = g.merge(reference[["iteration", "loss"]], on="iteration", suffixes=("", "_numpy"))
            gap = np.abs(merged.loss - merged.loss_numpy) / np.abs(merged.loss_numpy)
            envelope = np.maximum.accumulate(np.nan_to_num(gap, nan=np.inf))  # largest gap so far: readable
            bottom.plot(merged.iteration, np.maximum(envelope, 1e-18), style, marker=MARKERS[k % len(MARKERS)],
                        markevery=(k % every, every), markersize=4, linewidth=1, label=f"{impl} [{device}, {dtype}]")
    top.set_yscale("log")
    top.set_ylabel("MSE loss (log scale)")
    top.set_title("Loss before each update (solid: float64, dashed: float32)")
    top.legend(fontsize=7, ncol=2)
    top.grid(True, which="both", alpha=0.3)
    bottom.set_yscale("log")
    bottom.set_xlabel("iteration (update number)")
    bottom.set_ylabel("largest relative gap so far")
    bottom.set_title("max over earlier points of |loss - numpy loss| / numpy loss, same dtype (0 drawn at 1e-18);\n"
                     "dotted: float64 epsilon, dash-dot: float32 epsilon", fontsize=9)
    bottom.axhline(np.finfo(np.float64).eps, color="grey", linewidth=0.8, linestyle=":")
    bottom.axhline(np.finfo(np.float32).eps, color="grey", linewidth=0.8, linestyle="-.")
    bottom.grid(True, which="both", alpha=0.3)
    return fig


def loss_curves(results_dir):
    """loss_curves.png: every run's loss on a log scale, and its relative gap to numpy below."""
    results_dir = Path(results_dir)
    return save(loss_curves_figure(pd.read_csv(results_dir / "loss_curves.csv")), results_dir / "loss_curves.png")


def timings_figure(table):
    """The Figure of timings.png from timings.csv's rows: median bars, min-max whiskers, first-call ticks, log x."""
    fig, ax = plt.subplots(figsize=(11, 0.45 * len(table) + 1.8))  # wide enough for the last label inside
    ax.set_xscale("log")  # before any limit or bar: a limit set on a linear axis would pin the left edge at 0
    labels = [_label(r) for r in table.itertuples()]
    median_ms, low_ms, high_ms = 1e3 * table.median_s, 1e3 * table.min_s, 1e3 * table.max_s
    first_ms = 1e3 * table.first_call_s
    colors = ["tab:blue" if d == "float64" else "tab:orange" for d in table.dtype]
    y = np.arange(len(table))
    ax.barh(y, median_ms, xerr=[median_ms - low_ms, high_ms - median_ms], color=colors, alpha=0.8, capsize=3)
    ax.scatter(first_ms, y, marker="|", s=200, color="black", label="first call (incl. compile)")
    ends = np.maximum(high_ms, first_ms)  # where each row's drawing ends: its label goes just past it
    for yi, (m, r, x) in enumerate(zip(median_ms, table.repeats, ends)):
        shown = f"{m / 1e3:.3g} s" if m >= 1e3 else f"{m:.3g} ms"
        ax.text(x * 1.15, yi, f"median {shown} (n={r})", va="center", fontsize=7)
    # every bar, whisker and tick inside: half a decade below the smallest value, room for the labels right
    left = np.minimum(low_ms, first_ms).min() / 3
    ax.set_xlim(left, ends.max() * 12)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"wall-clock time of a whole run of {int(table.iterations.max())} iterations, ms (log scale)")
    ax.set_title("Median of timed runs (bar), min-max (whiskers), first call (|)\n"
                 "blue: float64, orange: float32; n = timed repeats", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    return fig


def timings(results_dir):
    """timings.png: steady-state median per implementation (bars) with min-max whiskers, log scale."""
    results_dir = Path(results_dir)
    return save(timings_figure(pd.read_csv(results_dir / "timings.csv")), results_dir / "timings.png")


def fitted_line_figure(weights, X, y):
    """The Figure of fit.png from weights.csv's rows and the one-feature data X (n, 1), y (n, 1)."""
    fig, ax = plt.subplots(figsize=(11, 5))
    ax.scatter(X[:, 0], y[:, 0], s=14, alpha=0.5, label="data")
    grid = np.linspace(X[:, 0].min(), X[:, 0].max(), 50)
    parameters = [p for p in weights.parameter.unique() if p != "bias"]
    for k, ((impl, device, dtype), g) in enumerate(weights.groupby(["implementation", "device", "dtype"], sort=False)):
        values = dict(zip(g.parameter, g.value))
        w, b = values[parameters[0]], values["bias"]
        if not (np.isfinite(w) and np.isfinite(b)):
            continue
        style = {"ols": dict(color="black", linewidth=2.5, alpha=0.6),
                 "true": dict(color="grey", linewidth=1.5, linestyle="--")}.get(
            impl, dict(linewidth=1, marker=MARKERS[k % len(MARKERS)], markevery=(k, 10), markersize=4))
        ax.plot(grid, w * grid + b, label=f"{impl} [{device}, {dtype}]: y = {w:.4f} x + {b:.4f}", **style)
    ax.set_xlabel(parameters[0])
    ax.set_ylabel("target")
    ax.set_title("The learned lines over the data\n(black: least squares, grey dashed: the generator)", fontsize=10)
    legend_outside(ax, below=False, fontsize=6)  # two dozen lines that coincide: the legend beside the data
    return fig


def fitted_line(results_dir, X, y):
    """fit.png for one-feature data: the points and the lines learned by each implementation."""
    results_dir = Path(results_dir)
    return save(fitted_line_figure(pd.read_csv(results_dir / "weights.csv"), X, y), results_dir / "fit.png")
