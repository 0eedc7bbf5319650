"""Figures of the single run, drawn from the tables alone (so they can be redrawn without training)."""
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.collections import PatchCollection  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402
from matplotlib.transforms import Bbox, ScaledTranslation  # noqa: E402

from comparisons.core import registry  # noqa: E402
from comparisons.output import problem_map as pmap  # noqa: E402

MARKERS = "os^vD<>xP*"
COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
           "tab:olive", "tab:cyan", "tab:gray")
DISTRIBUTED_WORDS = {"replicas": "mirrored replicas", "workers": "worker processes"}
# one colour per implementation in every figure: the registry's rows take these in table order (tab10 without
# its grey, then darker and lighter hues); grey and black stay free for references, floors and guides
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
           "#000080", "#008080", "#e6a800", "#c2185b", "#6b8e23", "#00bfff", "#8b0000", "#4b0082", "#b8860b")
GAP_FLOOR_EPS = 1e-2  # an exact match (gap 0) is drawn here, in eps, on the log axis


def save(fig, path):
    """Lay out, write as PNG and close a figure; returns the path. Every figure of the study goes through here.

    Each figure is built by a function returning its Figure unsaved (`*_figure(table)` here, `figure(table)`
    in an experiment module), so tests can inspect its artists; the saving wrapper only calls save().
    """
    if fig.get_layout_engine() is None:  # a figure laid out by its builder (rect kept for a figure legend) stays so
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


def colour(name):
    """The colour of implementation `name` in every figure: PALETTE in registry order, the rows the sweeps take first
    (they share the most panels, so get tab10's clearest hues); a name the registry lacks gets a colour left over."""
    names = sorted(registry.REGISTRY, key=lambda n: (not registry.REGISTRY[n].sweeps, list(registry.REGISTRY).index(n)))
    if name in names:
        return PALETTE[names.index(name) % len(PALETTE)]
    spare = max(1, len(PALETTE) - len(names))  # stable across figures and runs: from the name's letters
    return PALETTE[(len(names) + sum(map(ord, name)) % spare) % len(PALETTE)]


def title(name):
    """The words a figure shows for an implementation: its registry title ('numpy:gram' -> 'numpy, Gram route')."""
    return registry.label(name)


def time_words(seconds):
    """A duration as the tables write it, three significant figures in its unit: '2.83 us', '637 ms', '34.5 s'."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if abs(seconds) >= scale or unit == "ns":
            return f"{seconds / scale:.3g} {unit}"


def family(name):
    """(framework, route, distributed) of an implementation, from the registry's fields: runs that share it coincide."""
    impl = registry.REGISTRY.get(name)
    return (impl.framework, impl.route, impl.distributed) if impl else (name, "streaming", "")


def family_words(key, names=()):
    """('tensorflow', 'gram', '') -> 'TensorFlow, Gram route'; a family of one implementation (`names`) -> its title."""
    if _sole_titled(names):
        return title(_sole_titled(names))
    framework, route, distributed = key
    words = [registry.framework_name(framework)]
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
    return "identical" if units == 0 else f"{units:.3g} eps"  # the tables' rounding: one number per quantity


NEUTRALS = ("black", "dimgray", "darkgray", "saddlebrown", "slategray")  # families of several ways: no way's colour


def _sole_titled(names):
    """The one implementation among `names` when there is exactly one and the registry gives it a title, else None."""
    names = set(names)
    name = next(iter(names)) if len(names) == 1 else None
    return name if name in registry.REGISTRY and registry.REGISTRY[name].title else None


def _family_styles(keys, members=None):
    """One (colour, marker, linestyle) per family, the same in every panel; no two families share one.

    A family of one titled implementation (members: key -> its implementations) takes that way's colour of
    every figure; a family of several takes a neutral colour, so it is never mistaken for one of them.
    """
    members = members or {}
    styles, neutral = {}, 0
    for k, key in enumerate(keys):
        sole = _sole_titled(members.get(key, ()))
        if sole:
            shade = colour(sole)
        else:
            shade, neutral = NEUTRALS[neutral % len(NEUTRALS)], neutral + 1
        styles[key] = dict(color=shade, marker=MARKERS[k % len(MARKERS)],
                           linestyle=("-", "--", "-.", ":")[k // len(MARKERS) % 4])
    return styles


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
        shade = ("0.45", "0.75", "0.6")[k % 3]  # grey: no way's colour, as the band holds many ways
        others = [g for (impl, _, d), g in runs if d == dtype and impl != registry.REFERENCE]
        for j, g in enumerate(others):  # a thick pale band under the reference's line, narrower per dtype: both show
            top.plot(g.iteration, g.loss, "-", color=shade, linewidth=10 - 4 * (k % 2), alpha=0.5,
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
    styles = _family_styles(keys, {key: set(g) for key, g in gaps.groupby("family").implementation})
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
                    label=f"{family_words(key, group.implementation)}: {count} run{'s' if count > 1 else ''}, "
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


def _interval_s(table):
    """(low, high) of each row's noise interval in s: median_low_s/median_high_s, else min_s/max_s (older tables)."""
    low, high = table.min_s.to_numpy(float), table.max_s.to_numpy(float)
    if {"median_low_s", "median_high_s"} <= set(table.columns):
        given = table.median_low_s.notna().to_numpy() & table.median_high_s.notna().to_numpy()
        low = np.where(given, table.median_low_s.to_numpy(float), low)
        high = np.where(given, table.median_high_s.to_numpy(float), high)
    return low, high


def _is_solve(row):
    """The closed-form least-squares row (iterations 0): timed once per solve, no updates."""
    return int(row.iterations) == 0


def timing_rows(table):
    """The rows of timings.png: one per (implementation, device) in table order, labelled with its title."""
    runs = table[table.iterations > 0]
    keys = list(dict.fromkeys(zip(runs.implementation, runs.device)))
    return [(name, device, title(name) + ("" if device == "cpu" else f" ({device})")) for name, device in keys]


def timings_figure(table):
    """The Figure of timings.png from timings.csv's rows: cost per update (left) and the first call (right), log x.

    One row per implementation in its registry title and colour; in each row float64 above (solid) and
    float32 below (pale). Left: the median time per update of the timed runs (bar) with its noise interval
    (whisker), a warm-up-only row hatched. Right: the first call, a whole run with tracing and compiling
    (diamond), and the closed-form solve (no updates) as a vertical line.
    """
    rows = timing_rows(table)
    dtypes = sorted(set(table.dtype), key=lambda d: np.finfo(d).eps)  # float64 first
    height = 0.5 * len(rows) + 2.4
    fig, (ax, ax_f) = plt.subplots(1, 2, figsize=(13, height), sharey=True, gridspec_kw={"width_ratios": [1.25, 1]})
    for a in (ax, ax_f):
        a.set_xscale("log")  # before any limit or bar: a limit set on a linear axis would pin the left edge at 0
    runs = table[table.iterations > 0].reset_index(drop=True)
    iterations = runs.iterations.to_numpy(float)
    per_us = 1e6 * runs.median_s.to_numpy(float) / iterations
    low, high = _interval_s(runs)
    low_us, high_us = 1e6 * low / iterations, 1e6 * high / iterations
    first_s = runs.first_call_s.to_numpy(float)
    row_of = {(name, device): k for k, (name, device, _) in enumerate(rows)}
    y = np.array([row_of[key] for key in zip(runs.implementation, runs.device)], dtype=float)
    slot = 0.8 / max(1, len(dtypes))  # each dtype its own sub-row: float64 on top
    offset = np.array([dtypes.index(d) for d in runs.dtype]) * slot - 0.4 + slot / 2
    y = y + offset
    colours = [colour(n) for n in runs.implementation]
    pale = (runs.dtype != dtypes[0]).to_numpy()
    warm_only = runs.repeats.to_numpy() == 0
    bars = ax.barh(y, per_us, height=slot * 0.9, xerr=[per_us - low_us, high_us - per_us], color=colours,
                   capsize=2, error_kw=dict(lw=0.8))
    for bar, p, w in zip(bars.patches, pale, warm_only):
        bar.set_alpha(0.45 if p else 0.9)
        if w:  # the bar is the warm-up itself: hatched, as it is no timed repeat
            bar.set(hatch="xx", edgecolor="white", linewidth=0)
    ends = np.maximum(high_us, per_us)
    for k in range(len(runs)):
        repeats = int(runs.repeats.iloc[k])
        words = time_words(per_us[k] * 1e-6) + (" (warm-up only)" if warm_only[k] else
                                                f" ({repeats} timed run{'s' if repeats != 1 else ''})" if repeats < 3
                                                else "")
        ax.annotate(words, (ends[k], y[k]), xytext=(4, 0), textcoords="offset points", va="center", fontsize=6.5,
                    gid="bar label")
    ax.set_xlim(min(low_us.min(), per_us.min()) / 2, ends.max() * 12)
    ax.set_xlabel("time per update, steady: median of the timed runs (log scale)")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: time_words(v * 1e-6)))
    ax.set_title("Cost per update (bar; whisker: its noise interval)", fontsize=10)
    # the first call: a diamond per dtype (hollow: the pale dtype), its value beside it
    ax_f.hlines(y, first_s.min() / 3, first_s, color=colours, linewidth=0.6, alpha=0.5)
    ax_f.scatter(first_s, y, marker="D", s=24, c=colours, edgecolors=colours, zorder=3, gid="first call")
    for point, p in zip(ax_f.collections[-1:], [pale]):
        point.set_facecolors([(1, 1, 1, 1) if q else c for q, c in zip(p, colours)])
    for k in range(len(runs)):
        ax_f.annotate(time_words(first_s[k]), (first_s[k], y[k]), xytext=(6, 0), textcoords="offset points",
                      va="center", fontsize=6.5, color="dimgray", gid="first-call label")
    solve = table[table.iterations == 0]
    left = first_s.min() / 3
    if len(solve):
        solve_s, solve_dtype = float(solve.median_s.iloc[0]), solve.dtype.iloc[0]
        ax_f.axvline(solve_s, color="grey", ls="--", lw=1.2, gid="solve",
                     label=f"closed-form least squares (no updates, {solve_dtype}): one solve, median {time_words(solve_s)}")
        left = min(left, solve_s / 3)
    ax_f.set_xlim(left, first_s.max() * 12)
    ax_f.set_xlabel(f"first call: a whole run of {int(runs.iterations.max())} updates,\n"
                    "tracing and compiling included (log scale)")
    ax_f.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: time_words(v)))
    ax_f.set_title("Time to the first result (diamond)", fontsize=10)
    ax.set_ylim(len(rows) - 0.5, -0.5)  # top-down in table order, each row one unit tall
    ax.set_yticks(np.arange(len(rows)), [words for _, _, words in rows], fontsize=8)
    for tick, (name, _, _) in zip(ax.get_yticklabels(), rows):
        tick.set_color(colour(name))
    for a in (ax, ax_f):
        a.grid(True, axis="x", which="major", alpha=0.3)
        for k in range(1, len(rows)):
            a.axhline(k - 0.5, color="grey", lw=0.3, alpha=0.5)
    n, m = int(runs.n_samples.iloc[0]), int(runs.n_features.iloc[0])
    handles = [Patch(color="grey", alpha=0.9 if d == dtypes[0] else 0.45, label=f"{d}" + (" (upper)" if d == dtypes[0]
                     and len(dtypes) > 1 else " (lower)" if len(dtypes) > 1 else "")) for d in dtypes]
    if warm_only.any():
        handles.append(Patch(facecolor="grey", edgecolor="white", hatch="xx", label="warm-up only, no timed repeat"))
    handles += ax_f.get_legend_handles_labels()[0]
    fig.legend(handles=handles, fontsize=8, loc="lower center", ncol=len(handles), frameon=False)
    fig.suptitle(f"Time of each way of training (n = {n}, m = {m}): one colour per way; "
                 + " above, ".join(f"{d}" for d in dtypes) + (" below (pale)" if len(dtypes) > 1 else ""),
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.45 / height, 0.985, 1))  # the right spine and last tick label inside the canvas
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
    ax.scatter(X[:, 0], y[:, 0], s=14, alpha=0.5, color="tab:gray", label="data")  # grey: no way's colour
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
        ax.plot(grid, w * grid + b, color="black", linewidth=5, alpha=0.25,
                label=f"least squares (closed form): y = {w:.4f} x + {b:.4f}")
    if "true" in references:
        w, b = references["true"]
        ax.plot(grid, w * grid + b, color="dimgray", linewidth=1.4, linestyle="--",
                label=f"the generator's line: y = {w:.4g} x + {b:.4g}")
    for k, (w, b, names, members) in enumerate(groups):
        who = (f"all {len(lines)} runs" if len(groups) == 1 else
               f"{len(names)} of {len(lines)} runs ({', '.join(dict.fromkeys(title(n) for n in names))})")
        spread = np.ptp(np.array(members), axis=0).max()  # the largest difference of W or b within the group
        if len(members) > 1:
            who += f" (W and b within {spread:.1g} of each other)" if spread else " (identical W and b)"
        sole = _sole_titled(names)  # one way alone: its colour of every figure; several: a neutral one
        ax.plot(grid, w * grid + b, color=colour(sole) if sole else ("black", "saddlebrown", "slategray")[k % 3],
                linewidth=1.5,
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


def place_labels(ax, xs, ys, texts, fontsize=8, taken_boxes=(), avoid=()):
    """Write each point's text where its box overlaps no other label, no point and stays inside the axes.

    Tries spots around the point at growing distances (a grey leader line joins the far ones); the
    Figure must be laid out already (offsets are in points, so a later identical layout keeps them).
    """
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    dot = 5.0 * fig.dpi / 72  # about half a marker, in pixels
    taken = list(taken_boxes)
    for x, y in [*zip(xs, ys), *avoid]:  # its own points and others' (avoid: (x, y) in data) stay uncovered
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


def crowded_groups(points, within):
    """Index lists of the points (display pixels, (k, 2)) that chain within `within` pixels of each other, three or more."""
    points = np.asarray(points, dtype=float)
    near = np.hypot(*(points[:, None, :] - points[None, :, :]).transpose(2, 0, 1)) <= within
    seen, groups = set(), []
    for start in range(len(points)):
        if start in seen:
            continue
        group, todo = [], [start]
        while todo:
            k = todo.pop()
            if k in seen:
                continue
            seen.add(k)
            group.append(k)
            todo += [j for j in np.flatnonzero(near[k]) if j not in seen]
        if len(group) >= 3:
            groups.append(sorted(group))
    return groups


def column_labels(ax, xs, ys, texts, fontsize=8, within_pt=20, gap_pt=20):
    """Label each crowded group of points as a column left of the group, top to bottom in the points' order, with leaders.

    A group (three or more points chained within `within_pt` points) gets its labels stacked, right-aligned,
    `gap_pt` left of its leftmost point (else left-aligned right of its rightmost); a column that would leave
    the axes, cover a point or another label is not drawn.
    Returns (indices labelled, their boxes). The Figure must be laid out already.
    """
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    scale = fig.dpi / 72
    pixels = ax.transData.transform(np.column_stack([xs, ys]))
    labelled, boxes = [], []
    for group in crowded_groups(pixels, within_pt * scale):
        group = sorted(group, key=lambda k: -pixels[k, 1])  # top first
        step = 1.5 * fontsize * scale
        middle = pixels[group, 1].mean()
        dot = 5.0 * scale
        for side, edge in (("right", pixels[group, 0].min() - gap_pt * scale),
                           ("left", pixels[group, 0].max() + gap_pt * scale)):
            made = []
            for row, k in enumerate(group):
                spot = ax.transData.inverted().transform((edge, middle + (len(group) / 2 - row - 0.5) * step))
                made.append(ax.text(*spot, texts[k], fontsize=fontsize, ha=side, va="center", gid="headline label"))
            made_boxes = [t.get_window_extent(renderer) for t in made]
            clear = all(frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1
                        and not any(b.x0 - dot < px < b.x1 + dot and b.y0 - dot < py < b.y1 + dot for px, py in pixels)
                        and not any(b.overlaps(o) for o in boxes) for b in made_boxes)
            if clear:
                break
            for t in made:
                t.remove()
        else:
            continue
        for k, t in zip(group, made):
            ax.annotate("", (xs[k], ys[k]), xytext=t.get_position(), textcoords="data",
                        arrowprops=dict(arrowstyle="-", color="grey", lw=0.6, shrinkA=2, shrinkB=4))
        labelled += group
        boxes += made_boxes
    return labelled, boxes


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
    for k, framework in enumerate(frameworks):  # the marker says the framework, the colour the implementation
        mine = (points.framework == framework).to_numpy()
        ax.scatter(x[mine], y[mine], s=45, marker=MARKERS[k % len(MARKERS)], zorder=3,
                   color=[colour(n) for n in points.implementation[mine]], label=registry.framework_name(framework))
    ax.set_xscale("log")
    ax.set_yscale("log")
    # room around the points for their labels (and a column left of a crowded group): decades in x, less in y
    ax.set_xlim(x.min() / 10 ** 2.1, x.max() * 10 ** 1.5)
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
    legend = legend_outside(ax, fontsize=8, ncol=len(frameworks), title="framework (marker; colour: the way, as in "
                            "every figure)", title_fontsize=8)
    for handle in legend.legend_handles:  # the marker alone says the framework: grey, not the first point's colour
        handle.set_color("dimgray")
    fig.tight_layout()
    fig.set_layout_engine(None)
    texts = [f"{t} ({a})" if a else t for t, a in zip(points.title, points.agreement)]
    column, boxes = column_labels(ax, x, y, texts)
    rest = [k for k in range(len(x)) if k not in column]
    place_labels(ax, x[rest], y[rest], [texts[k] for k in rest], taken_boxes=boxes,
                 avoid=[(x[k], y[k]) for k in column])
    return fig


def headline(results_dir):
    """headline.png, the README's front-page picture, from timings.csv and equivalence.csv."""
    results_dir = Path(results_dir)
    return save(headline_figure(pd.read_csv(results_dir / "timings.csv"), pd.read_csv(results_dir / "equivalence.csv")),
                results_dir / "headline.png")


def _edges(values):
    """Cell edges around log-spaced centres (geometric midpoints; the ends half a step out)."""
    logs = np.log10(np.asarray(values, dtype=float))
    if len(logs) == 1:
        return 10.0 ** np.array([logs[0] - 0.5, logs[0] + 0.5])
    middle = (logs[1:] + logs[:-1]) / 2
    return 10.0 ** np.concatenate([[logs[0] - (middle[0] - logs[0])], middle, [logs[-1] + (logs[-1] - middle[-1])]])


def grid_of(table, column, n_values, updates):
    """`column` of a fastest_way_map table as an (n, updates) array in the given orders."""
    return table.pivot_table(index="n_samples", columns="updates", values=column, aggfunc="first").reindex(
        index=n_values, columns=updates).to_numpy()


def problem_map_figure(panels, mark=None):
    """The Figure of problem_map.png: per panel (heading, fastest_way_map table), the fastest way in each (updates, n) cell.

    Each cell takes the colour of its fastest way (the colour it has in every figure); sample counts beyond
    the measured ones are hatched grey and unpriced; dotted lines mark the measured n, between which the
    prices are interpolated. `mark` (n, updates), when given, is the single run's own problem, starred.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(6.8 * len(panels), 6.4), squeeze=False, sharey=True)
    winners = []
    for _, table in panels:
        winners += [w for w in dict.fromkeys(table.fastest) if w]
    winners = sorted(dict.fromkeys(winners), key=lambda w: list(registry.REGISTRY).index(w)
                     if w in registry.REGISTRY else len(registry.REGISTRY))
    for ax, (heading, table) in zip(axes[0], panels):
        n_values, updates = np.sort(table.n_samples.unique()), np.sort(table.updates.unique())
        grid = table.pivot_table(index="n_samples", columns="updates", values="fastest", aggfunc="first").reindex(
            index=n_values, columns=updates)
        codes = np.array([[winners.index(w) if isinstance(w, str) and w else -1 for w in row] for row in grid.values])
        x_edges, y_edges = _edges(updates), _edges(n_values)
        palette = matplotlib.colors.ListedColormap([colour(w) for w in winners] or ["white"])
        shown = np.ma.masked_less(codes, 0)
        ax.pcolormesh(x_edges, y_edges, shown, cmap=palette, vmin=-0.5, vmax=max(len(winners), 1) - 0.5,
                      shading="flat", gid="fastest way")
        ties = grid_of(table, "tie", n_values, updates)
        tie_cells = [Rectangle((x_edges[j], y_edges[i]), x_edges[j + 1] - x_edges[j], y_edges[i + 1] - y_edges[i])
                     for i, j in zip(*np.nonzero(ties == True))]  # noqa: E712 (object array of bools and NaN)
        if tie_cells:  # dotted over the colour: the runner-up is within the noise, the order is not settled
            ax.add_collection(PatchCollection(tie_cells, facecolor="none", edgecolor=(1, 1, 1, 0.8), hatch="...",
                                              linewidth=0, gid="tie"))
        beyond = table[table.status == pmap.BEYOND]
        measured = sorted(table.n_low.dropna().unique())
        for low_n, high_n in ((y_edges[0], measured[0]), (measured[-1], y_edges[-1])) if measured else ():
            rows = beyond[(beyond.n_samples > low_n) & (beyond.n_samples < high_n)] if len(beyond) else beyond
            if len(rows):
                edges = _edges(n_values)
                k0, k1 = np.searchsorted(n_values, rows.n_samples.min()), np.searchsorted(n_values, rows.n_samples.max())
                ax.axhspan(edges[k0], edges[k1 + 1], facecolor="0.93", edgecolor="0.6", hatch="//", lw=0,
                           gid="beyond")
                ax.text(np.sqrt(x_edges[0] * x_edges[-1]), np.sqrt(edges[k0] * edges[k1 + 1]),
                        "beyond the measured sizes: not priced", ha="center", va="center", fontsize=8,
                        bbox=dict(facecolor="white", edgecolor="none", alpha=0.8))
        for n in measured:
            ax.axhline(n, color="black", lw=0.8, ls=":", gid="measured n")
            ax.annotate(f"measured: n = {int(n):,}", (x_edges[-1], n), xytext=(-3, 2), textcoords="offset points",
                        ha="right", va="bottom", fontsize=7,
                        bbox=dict(facecolor="white", edgecolor="none", alpha=0.75, pad=1))
        if mark is not None:
            ax.plot([mark[1]], [mark[0]], "*", color="white", mec="black", ms=14, zorder=4, gid="the lesson",
                    label=f"the single run: n = {int(mark[0]):,}, {int(mark[1]):,} updates")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(x_edges[0], x_edges[-1])
        ax.set_ylim(y_edges[0], y_edges[-1])
        ax.set_xlabel("updates in the run (log scale)")
        ax.set_title(heading, fontsize=10)
    axes[0, 0].set_ylabel("n, samples (log scale)")
    first = panels[0][1]
    dtype, m = first.dtype.iloc[0], int(first.n_features.iloc[0])
    handles = [Patch(color=colour(w), label=title(w)) for w in winners]  # the ways first, then the marks
    if any(t.tie.any() for _, t in panels):
        handles += [Patch(facecolor="0.6", edgecolor="white", hatch="...",
                          label="dotted: a tie with the runner-up (noise intervals overlap)")]
    handles += [Patch(facecolor="0.93", edgecolor="0.6", hatch="//", label="beyond the measured sizes")]
    if mark is not None:
        handles += axes[0, 0].get_legend_handles_labels()[0]
    fig.legend(handles=handles, fontsize=8, loc="lower center", ncol=min(len(handles), 4), frameon=False)
    fig.suptitle(f"The fastest way to train that agrees with numpy, for n samples and a run of N updates ({dtype}, "
                 f"m = {m})\ncold runs, first call included, priced from the measured times; between the measured n "
                 "(dotted lines) interpolated on log-log axes; agreement as checked in the single run", fontsize=10)
    rows_of_legend = math.ceil(len(handles) / 4)
    fig.tight_layout(rect=(0, (0.25 + 0.22 * rows_of_legend) / 6.4, 1, 1))
    return fig


def problem_map(results_dir, scaling=None):
    """problem_map.png from timings.csv, scaling.csv (or the `scaling` table) and equivalence.csv of `results_dir`;
    None when a table is missing or fewer than two sample counts were measured."""
    results_dir = Path(results_dir)
    if scaling is None and (results_dir / "scaling.csv").exists():
        scaling = pd.read_csv(results_dir / "scaling.csv")
    if scaling is None or not all((results_dir / f).exists() for f in ("timings.csv", "equivalence.csv")):
        return None
    timings = pd.read_csv(results_dir / "timings.csv")
    equivalence = pd.read_csv(results_dir / "equivalence.csv")
    panels = [("the lesson's loop (reads X at every update)",
               pmap.fastest_way_map(timings, scaling, equivalence, routes=("streaming",))),
              ("any route, the Gram route included (one pass over X, then updates on G, c, s)",
               pmap.fastest_way_map(timings, scaling, equivalence))]
    if panels[1][1].n_low.nunique() < 2:
        return None
    runs = timings[timings.iterations > 0]
    same_m = len(runs) and int(runs.n_features.iloc[0]) == int(panels[0][1].n_features.iloc[0])
    mark = (float(runs.n_samples.iloc[0]), float(runs.iterations.max())) if same_m else None  # only on its own m
    return save(problem_map_figure(panels, mark), results_dir / "problem_map.png")
