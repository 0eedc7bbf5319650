"""Scaling: steady per-iteration time as n grows, against this machine's memory-bandwidth roofline.

One full-batch iteration computes X W and X^T r, so unless the two are fused it reads X twice:
`2 * X.nbytes / bandwidth` is the floor per iteration. The bandwidth is measured here, as the
best of a large contiguous reduction and a BLAS matrix-vector product over an array far larger
than the caches. Each point's ratio to the floor shows where an implementation is overhead-bound
(small n: fixed per-step cost dominates) and where it becomes bandwidth-bound (ratio near 1).
"""
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .. import registry, stability
from ..data import initial_parameters, make_synthetic
from ..implementations import is_tensorflow, make_trainer
from ..timing import time_calls

NAME = "scaling"
PASSES = 2  # reads of X per iteration without fusion: X W and X^T r
BANDWIDTH_BOUND = 2.0  # a point within this factor of the floor counts as bandwidth-bound


def max_n(name, full):
    """The largest n a slow variant runs at (its fixed cost per step makes bigger runs long and pointless), or None."""
    cost = registry.step_cost_s(name)
    if cost >= 1e-2:  # Python and Keras machinery per step: keras:numpy_input
        return 10_000 if full else 100
    if cost >= 1e-3:  # eager dispatch per op: gradient_tape:eager
        return 1_000_000 if full else 10_000
    return None


def plan(config):
    """(sample sizes, feature counts, dtypes, implementations, seconds per timed call, repeats) for a run."""
    names = registry.swept(config.only)
    if config.quick:
        return (100, 100_000), (32,), (config.dtypes[0],), [n for n in names if n in ("numpy", "gradient_tape")], 0.03, 2
    if config.full:
        return (100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000), (1, 32), config.dtypes, names, 0.3, 3
    return (100, 10_000, 1_000_000), (1, 32), config.dtypes, names, 0.04, 3


def floor_per_iteration(x_bytes, bandwidth, passes=PASSES):
    """The roofline floor: seconds to read X `passes` times at `bandwidth` bytes/s."""
    return passes * x_bytes / bandwidth


def choose_iterations(name, x_bytes, bandwidth, target_s, low=8, high=2000):
    """Iterations so one call takes about target_s: target / (overhead + floor), clamped to [low, high]."""
    estimate = registry.step_cost_s(name) + floor_per_iteration(x_bytes, bandwidth) * 1.5
    return int(min(high, max(low, round(target_s / estimate))))


def measure_bandwidth(n_bytes=256 * 2 ** 20, repeats=5):
    """Memory read bandwidth (bytes/s): the best of a contiguous sum and a BLAS matrix-vector product over n_bytes."""
    a = np.random.default_rng(0).random(n_bytes // 8)  # float64, far larger than any cache
    A = a.reshape(-1, 32)  # (n_bytes / 256, 32), C-contiguous
    ones = np.ones(32)

    def best(fn):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    return {"sum": a.nbytes / best(a.sum), "gemv": a.nbytes / best(lambda: A @ ones), "bytes": a.nbytes}


def transition_n(rows, bound=BANDWIDTH_BOUND):
    """Smallest n from which every larger point is within `bound` x the floor, or None."""
    rows = rows.sort_values("n_samples")
    within = (rows.ratio_to_floor <= bound).to_numpy()
    for k in range(len(within)):
        if within[k:].all():
            return int(rows.n_samples.iloc[k])
    return None


def run(ctx):
    """Time every implementation per iteration over n, m and dtype; add the bandwidth floor and each ratio to it."""
    config = ctx.config
    sizes, features, dtypes, names, target_s, repeats = plan(config)
    if ctx.progress:
        ctx.progress("scaling: measuring memory bandwidth")
    bw = measure_bandwidth(64 * 2 ** 20 if config.quick else 256 * 2 ** 20)
    bandwidth = max(bw["sum"], bw["gemv"])
    rows = []
    for m in features:
        for n in sizes:
            data = make_synthetic(n, m, config.noise, config.seed)
            W0, b0 = initial_parameters(m, config.seed)
            lr = 0.5 * stability.analyse(data.X).max_stable_lr  # safely stable for every m: runs never stop early
            for dtype in dtypes:
                X, y = data.X.astype(dtype), data.y.astype(dtype)
                floor = floor_per_iteration(X.nbytes, bandwidth)
                for name, device in [(name, device) for name in names
                                     for device in (ctx.devices if is_tensorflow(name) else ("cpu",))]:
                    if n > (max_n(name, config.full) or math.inf):
                        continue
                    iterations = choose_iterations(name, X.nbytes, bandwidth, target_s)
                    if ctx.progress:
                        ctx.progress(f"scaling {name} n={n} m={m} {dtype} x{iterations}")
                    trainer = make_trainer(name, X, y, float(lr), iterations, device=device)
                    began = time.perf_counter()
                    trainer(W0, b0)  # tracing and compiling happen here, outside the steady timing below
                    compile_s = time.perf_counter() - began
                    # time_calls' own warm-up is now a steady call, so its budget plans repeats from a steady pace
                    result, timing = time_calls(lambda: trainer(W0, b0), repeats, budget_s=repeats * 2 * target_s)
                    per_iteration = timing.median_s / iterations
                    rows.append({
                        "implementation": name, "device": result.device, "dtype": dtype, "n_samples": n, "n_features": m,
                        "iterations": iterations, "repeats": timing.repeats, "lr": lr,
                        "first_call_s": compile_s, "median_s": timing.median_s, "min_s": timing.min_s,
                        "max_s": timing.max_s, "per_iteration_s": per_iteration, "x_bytes": X.nbytes,
                        "bandwidth_gbs": bandwidth / 1e9, "bandwidth_sum_gbs": bw["sum"] / 1e9,
                        "bandwidth_gemv_gbs": bw["gemv"] / 1e9, "floor_per_iteration_s": floor,
                        "ratio_to_floor": per_iteration / floor, "status": result.status,
                        "jit_compile": result.jit_compile, "mode": result.mode,
                    })
            del data
    return pd.DataFrame(rows)


def plot(table, out_dir):
    """Per-iteration time against n (log-log) with the two-pass floor, one panel per (m, dtype): scaling.png."""
    from ..figures import plt, save  # matplotlib with the Agg backend, loaded only to draw

    panels = sorted(table.groupby(["n_features", "dtype"]).groups)
    cols = min(2, len(panels))
    rows_n = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(6.5 * cols, 4.6 * rows_n), squeeze=False)
    for ax, (m, dtype) in zip(axes.flat, panels):
        part = table[(table.n_features == m) & (table.dtype == dtype)]
        for (name, device), rows in part.groupby(["implementation", "device"]):
            rows = rows.sort_values("n_samples")
            ax.loglog(rows.n_samples, rows.per_iteration_s, "-o", ms=4, label=f"{name} [{device}]")
        floor = part.drop_duplicates("n_samples").sort_values("n_samples")
        ax.loglog(floor.n_samples, floor.floor_per_iteration_s, "k--", lw=2,
                  label=f"floor: 2 x X.nbytes / {floor.bandwidth_gbs.iloc[0]:.1f} GB/s")
        ax.set(xlabel="n (samples)", ylabel="time per iteration (s, median)", title=f"m = {m}, {dtype}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle("Per-iteration time against the memory-bandwidth roofline (CPU)")
    return [save(fig, Path(out_dir) / f"{NAME}.png")]


def _blocked_comparison(table):
    """One sentence: the blocked default against the plain graph at the largest n, from the table."""
    n_max = table.n_samples.max()
    big = table[(table.n_samples == n_max) & table.implementation.isin(["gradient_tape", "gradient_tape:graph"])]
    if "mode" not in big or not (big["mode"] == "blocked").any():
        return ""
    parts = []
    for (m, dtype), rows in big.groupby(["n_features", "dtype"]):
        rows = rows.set_index("implementation")
        by_name = rows.per_iteration_s
        if {"gradient_tape", "gradient_tape:graph"} <= set(by_name.index) and rows["mode"]["gradient_tape"] == "blocked":
            parts.append(f"m = {m}, {dtype}: {1e3 * by_name['gradient_tape']:.3g} ms against "
                         f"{1e3 * by_name['gradient_tape:graph']:.3g} ms")
    return (f"At n = {int(n_max):,}, blocked against whole per iteration: " + "; ".join(parts) + ".") if parts else ""


def report_section(table):
    """Markdown: bandwidth, the ratios at the largest n, and where each implementation becomes bandwidth-bound."""
    t = table.iloc[0]
    n_max = int(table.n_samples.max())
    lines = ["## Scaling against the memory roofline", "", f"![per-iteration time against n]({NAME}.png)", "",
             f"Measured memory read bandwidth: **{t.bandwidth_gbs:.1f} GB/s** (best of a contiguous sum, "
             f"{t.bandwidth_sum_gbs:.1f} GB/s, and a BLAS matrix-vector product, {t.bandwidth_gemv_gbs:.1f} GB/s). "
             "The data come from the lesson's generator at each size (never from a `--data` file, whose size is fixed). "
             "A full-batch iteration reads X at least twice (X W, then X^T r), so its floor is 2 x X.nbytes / bandwidth. "
             f"Iteration counts were chosen per point so each timed call lasts a fraction of a second.", ""]
    big = table[table.n_samples == n_max].sort_values(["n_features", "dtype", "ratio_to_floor"])
    lines += [f"At n = {n_max:,} (time per iteration and ratio to the floor):", "",
              "| m | dtype | implementation | iterations | per iteration (ms) | floor (ms) | ratio |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {r.n_features} | {r.dtype} | {r.implementation} | {r.iterations} | {r.per_iteration_s * 1e3:.3g} | "
              f"{r.floor_per_iteration_s * 1e3:.3g} | {r.ratio_to_floor:.2f} |" for r in big.itertuples()]
    target = table[(table.n_samples == 1_000_000) & (table.n_features == 32) & (table.dtype == "float32")
                   & table.implementation.isin(["numpy", "gradient_tape"])]
    if not target.empty:
        lines += ["", "Target (n = 1,000,000, m = 32, float32, within 1.5x of the two-pass floor): " + "; ".join(
            f"`{r.implementation}` {r.ratio_to_floor:.2f}x ({'met' if r.ratio_to_floor <= 1.5 else 'missed'})"
            for r in target.itertuples()) + "."]
    lines += ["", f"Where each leaves the overhead-bound regime (smallest n from which every point is within "
              f"{BANDWIDTH_BOUND:g}x the floor; the per-iteration time at the smallest n is the fixed overhead):", "",
              "| implementation | m | dtype | overhead per iteration at n = " + f"{int(table.n_samples.min())} (us) | bandwidth-bound from n = |",
              "|---|---|---|---|---|"]
    for (name, device, m, dtype), rows in table.groupby(["implementation", "device", "n_features", "dtype"]):
        small = rows.loc[rows.n_samples.idxmin()]
        start = transition_n(rows)
        lines.append(f"| {name} [{device}] | {m} | {dtype} | {small.per_iteration_s * 1e6:.1f} | "
                     f"{f'{start:,}' if start else f'not within {n_max:,}'} |")
    lines += ["", "With m = 1 the floor counts only X, but every iteration also streams n-long vectors (y, X W, the "
              "residuals and their squares) that together move several times X's bytes, so m = 1 cannot approach it; "
              "with m = 32, X dominates the traffic and the floor is the honest bound. At least 8 iterations per call "
              "keep the extra first/final loss passes over X to a small share of the time."]
    lines += ["", "`gradient_tape` also checks autodiff against the analytic gradient every step, and X^T R for the "
              "check reads X a third time: taken whole, a step reads X three times, 1.5x the two-pass floor "
              "(`gradient_tape:graph`). Its default compiles with XLA only while X is small (`mode` column): XLA's "
              "CPU code for these skinny products spends about twice the CPU time of the Eigen kernels the plain graph "
              "calls (both use every core), so it loses once X streams from memory (compare `gradient_tape:xla` and "
              "`gradient_tape:graph`). For large X the default runs `blocked`: each step goes through X in blocks of "
              "about 4 MiB, every block's share of the loss under its own tape, so a block comes from memory once and "
              "is read twice more from cache, and the check costs little more than the two passes it replaces. "
              + _blocked_comparison(table) + " "
              "`keras:numpy_input` and `gradient_tape:eager` pay milliseconds of Python and dispatch per step, so "
              "they ran only up to the sizes listed and stay overhead-bound."]
    return "\n".join(lines)
