"""Scaling: steady per-iteration time as n grows, against this machine's memory-bandwidth roofline.

One full-batch iteration computes X W and X^T r, so unless the two are fused it reads X twice:
`2 * X.nbytes / bandwidth` is the two-pass floor per iteration. Fused, one pass suffices (each row
gives its residual and its share of X^T r at once): `(X.nbytes + y.nbytes) / bandwidth`, the
one-pass floor. The bandwidth is measured here, as the best of a large contiguous reduction and a
BLAS matrix-vector product over an array far larger than the caches. Each point's ratio to each
floor shows where an implementation is overhead-bound (small n: fixed per-step cost dominates) and
where it becomes bandwidth-bound (ratio near 1).

The Gram routes (`numpy:gram`, `gradient_tape:gram`) read X once in all, for G, c and s, and never
again: their two stages are timed apart (the pass, and the iterations on G, c, s, whose cost per
iteration should not depend on n), and their whole call, pass included, for GRAM_ITERATIONS.
"""
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .. import registry, stability
from ..data import initial_parameters, make_synthetic
from ..implementations import gram_stages, make_trainer
from ..timing import time_calls

NAME = "scaling"
PASSES = 2  # reads of X per iteration without fusion: X W and X^T r
BANDWIDTH_BOUND = 2.0  # a point within this factor of the floor counts as bandwidth-bound
GRAM_ITERATIONS = 1000  # the lesson's count: Gram routes run exactly this many, so their timed call is the real one


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
        quick = ("numpy", "gradient_tape", "numpy:gram", "gradient_tape:gram")
        return (100, 100_000), (32,), (config.dtypes[0],), [n for n in names if n in quick], 0.03, 2
    if config.full:
        return (100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000), (1, 32), config.dtypes, names, 0.3, 3
    # default: the run's first dtype only (float32 under --dtype both); --full sweeps every dtype
    return (100, 10_000, 1_000_000), (1, 32), config.dtypes[:1], names, 0.04, 3


def floor_per_iteration(x_bytes, bandwidth, passes=PASSES):
    """The roofline floor: seconds to read X `passes` times at `bandwidth` bytes/s."""
    return passes * x_bytes / bandwidth


def one_pass_floor(x_bytes, y_bytes, bandwidth):
    """The fused floor: seconds to read X and y once at `bandwidth` bytes/s."""
    return (x_bytes + y_bytes) / bandwidth


def is_gram(name):
    """Whether `name` is a Gram route (one pass, then iterations on G, c, s)."""
    return registry.get(name).variant == "gram"


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
                                     for device in (ctx.devices if registry.get(name).framework == "tensorflow" else ("cpu",))]:
                    if n > (max_n(name, config.full) or math.inf):
                        continue
                    gram = is_gram(name)
                    iterations = GRAM_ITERATIONS if gram else choose_iterations(name, X.nbytes, bandwidth, target_s)
                    if ctx.progress:
                        ctx.progress(f"scaling {name} n={n} m={m} {dtype} x{iterations}")
                    trainer = make_trainer(name, X, y, float(lr), iterations, device=device)
                    began = time.perf_counter()
                    trainer(W0, b0)  # tracing and compiling happen here, outside the steady timing below
                    compile_s = time.perf_counter() - began
                    # time_calls' own warm-up is now a steady call, so its budget plans repeats from a steady pace;
                    # a Gram call is one pass plus microseconds per iteration, so it always gets its repeats
                    budget = math.inf if gram else repeats * 2 * target_s
                    result, timing = time_calls(lambda: trainer(W0, b0), repeats, budget_s=budget)
                    row = {
                        "implementation": name, "device": result.device, "dtype": dtype, "n_samples": n, "n_features": m,
                        "iterations": iterations, "repeats": timing.repeats, "lr": lr,
                        "first_call_s": compile_s, "median_s": timing.median_s, "min_s": timing.min_s,
                        "max_s": timing.max_s, "per_iteration_s": timing.median_s / iterations, "x_bytes": X.nbytes,
                        "y_bytes": y.nbytes, "bandwidth_gbs": bandwidth / 1e9, "bandwidth_sum_gbs": bw["sum"] / 1e9,
                        "bandwidth_gemv_gbs": bw["gemv"] / 1e9, "floor_per_iteration_s": floor,
                        "one_pass_floor_s": one_pass_floor(X.nbytes, y.nbytes, bandwidth),
                        "one_pass_s": np.nan, "status": result.status, "jit_compile": result.jit_compile,
                        "mode": result.mode,
                    }
                    if gram:  # the stages apart: the pass, then the iterations on the statistics alone
                        one_pass, iterate = gram_stages(trainer)
                        stats, pass_timing = time_calls(one_pass, repeats)
                        _, iterate_timing = time_calls(lambda: iterate(stats, W0, b0), repeats)
                        row.update(one_pass_s=pass_timing.median_s, per_iteration_s=iterate_timing.median_s / iterations)
                    rows.append(row)
            del data
    return with_ratios(pd.DataFrame(rows))


def with_ratios(table):
    """Add each point's ratio to both floors, the pass's ratio to the one-pass floor, and the time of 1000 iterations.

    time_1000_s: a streaming run's steady per-iteration time x 1000; a Gram route's whole call (pass
    included) scaled to 1000 iterations, which is the call itself as it runs GRAM_ITERATIONS.
    """
    gram = table.implementation.map(is_gram)
    return table.assign(
        ratio_to_floor=table.per_iteration_s / table.floor_per_iteration_s,
        ratio_to_one_pass_floor=table.per_iteration_s / table.one_pass_floor_s,
        pass_ratio_to_one_pass_floor=table.one_pass_s / table.one_pass_floor_s,
        time_1000_s=np.where(gram, table.median_s / table.iterations, table.per_iteration_s) * 1000,
    )


def gram_crossover(table):
    """Per Gram route, device, m and dtype: the smallest measured n from which it beats its streaming base at every
    larger measured n, for 1000 iterations (pass included), or None; with the times at the largest n."""
    rows = []
    for (name, device, m, dtype), part in table[table.implementation.map(is_gram)].groupby(
            ["implementation", "device", "n_features", "dtype"]):
        base = registry.get(name).base
        streaming = table[(table.implementation == base) & (table.device == device) & (table.n_features == m)
                          & (table.dtype == dtype)].set_index("n_samples").time_1000_s
        both = part.set_index("n_samples").time_1000_s.to_frame("gram").join(streaming.rename("streaming"), how="inner")
        if both.empty:
            continue
        both = both.sort_index()
        wins = (both.gram < both.streaming).to_numpy()
        from_n = next((int(both.index[k]) for k in range(len(wins)) if wins[k:].all()), None)
        largest = both.iloc[-1]
        rows.append({"implementation": name, "streaming": base, "device": device, "n_features": m, "dtype": dtype,
                     "beats_streaming_from_n": from_n, "smallest_n": int(both.index[0]),
                     "largest_n": int(both.index[-1]), "gram_1000_s": largest.gram,
                     "streaming_1000_s": largest.streaming})
    table = pd.DataFrame(rows)
    return table.astype({"beats_streaming_from_n": "Int64"}) if len(table) else table  # None: <NA>, not a float


def figure(table):
    """The Figure: per-iteration time against n (log-log), both floors, one panel per (m, dtype).

    A Gram route gets two lines of one colour: its iterations after the pass (solid squares), and its
    whole call, pass included, over its GRAM_ITERATIONS iterations (dotted), the per-iteration price
    to set beside a streaming line for 1000 iterations.
    """
    from ..figures import legend_outside, plt

    panels = sorted(table.groupby(["n_features", "dtype"]).groups)
    cols = min(2, len(panels))
    rows_n = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(7.5 * cols, 6.8 * rows_n), squeeze=False)
    for ax, (m, dtype) in zip(axes.flat, panels):
        part = table[(table.n_features == m) & (table.dtype == dtype)]
        for k, ((name, device), rows) in enumerate(part.groupby(["implementation", "device"])):
            rows = rows.sort_values("n_samples")
            color = f"C{k}"
            if is_gram(name):
                ax.loglog(rows.n_samples, rows.per_iteration_s, "-s", ms=4, color=color,
                          label=f"{name} [{device}], per iteration after its pass")
                ax.loglog(rows.n_samples, rows.time_1000_s / 1000, ":", marker=".", color=color,
                          label=f"{name} [{device}], (pass + 1000 iterations) / 1000")
            else:
                ax.loglog(rows.n_samples, rows.per_iteration_s, "-o", ms=4, color=color, label=f"{name} [{device}]")
        floor = part.drop_duplicates("n_samples").sort_values("n_samples")
        gbs = floor.bandwidth_gbs.iloc[0]
        ax.loglog(floor.n_samples, floor.floor_per_iteration_s, "k--", lw=2,
                  label=f"two-pass floor: 2 x X.nbytes / {gbs:.1f} GB/s")
        ax.loglog(floor.n_samples, floor.one_pass_floor_s, "-.", color="grey", lw=2,
                  label=f"one-pass floor: (X + y).nbytes / {gbs:.1f} GB/s")
        ax.set(xlabel="n (samples)", ylabel="time per iteration (s, median)", title=f"m = {m}, {dtype}")
        ax.grid(True, which="both", alpha=0.3)
        legend_outside(ax, fontsize=6.5)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle("Per-iteration time against the memory-bandwidth roofline (CPU)")
    return fig


def plot(table, out_dir):
    """scaling.png from the table alone."""
    from ..figures import save  # matplotlib with the Agg backend, loaded only to draw

    return [save(figure(table), Path(out_dir) / f"{NAME}.png")]


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


def _gram_paragraph(table):
    """Markdown on the Gram routes: flat iterations, the pass, the 1000-iteration race and where it turns, from the table."""
    gram = table[table.implementation.map(is_gram)]
    if gram.empty:
        return []
    lines = ["", "### The Gram route: one pass, then iterations that never read X", "",
             "`numpy:gram` and `gradient_tape:gram` sum G = [X,1]^T [X,1] / n, c = [X,1]^T y / n and s = y^T y / n "
             "in one pass over the rows, in float64 whatever the run's dtype (each entry is a sum of n products; "
             "summed in float64 and rounded once it is the closest value the run's dtype holds, at the price of "
             "float64 arithmetic in the pass), then run their iterations on G, c and s alone. Their timed calls "
             "include the pass. The pass and the iterations were also timed apart:", "",
             "| implementation | m | dtype | per iteration after the pass (us), over n | one pass at the largest n (ms) "
             "| its ratio to the one-pass floor |", "|---|---|---|---|---|---|"]
    for (name, device, m, dtype), rows in gram.groupby(["implementation", "device", "n_features", "dtype"]):
        rows = rows.sort_values("n_samples")
        last = rows.iloc[-1]
        lines.append(f"| {name} [{device}] | {m} | {dtype} | " + ", ".join(
            f"{r.per_iteration_s * 1e6:.3g} (n = {r.n_samples:,})" for r in rows.itertuples())
            + f" | {last.one_pass_s * 1e3:.3g} | {last.pass_ratio_to_one_pass_floor:.3g} |")
    crossover = gram_crossover(table)
    if len(crossover):
        lines += ["", "1000 iterations, pass included, against the streaming implementation at the largest n "
                  "(streaming: its steady per-iteration time x 1000), and the measured n from which the Gram route is "
                  "faster at every larger size measured:", "",
                  "| Gram route | streaming | m | dtype | Gram, 1000 iterations (s) | streaming, 1000 iterations (s) | "
                  "streaming / Gram | Gram faster from n = |", "|---|---|---|---|---|---|---|---|"]
        for r in crossover.itertuples():
            where = ("not within the sizes measured" if pd.isna(r.beats_streaming_from_n) else
                     f"{r.beats_streaming_from_n:,}" + (" (the smallest measured)"
                                                         if r.beats_streaming_from_n == r.smallest_n else ""))
            lines.append(f"| {r.implementation} [{r.device}] | {r.streaming} | {r.n_features} | {r.dtype} | "
                         f"{r.gram_1000_s:.3g} | {r.streaming_1000_s:.3g} | {r.streaming_1000_s / r.gram_1000_s:.3g} | "
                         f"{where} |")
    widest = gram[gram.n_samples == gram.n_samples.max()].sort_values("n_features").iloc[-1]
    bound_by = ("not bandwidth-bound: arithmetic (or, at small n, fixed cost) sets its pace"
                if widest.pass_ratio_to_one_pass_floor > BANDWIDTH_BOUND else f"within {BANDWIDTH_BOUND:g}x: bandwidth-bound")
    lines += ["", "The pass costs n (m + 1)^2 multiply-adds for G against 2 n m per streaming iteration, about "
              "(m + 1) / 2 streaming iterations' arithmetic; at m = " + f"{widest.n_features}, n = "
              f"{widest.n_samples:,} ({widest['dtype']}) it ran at {widest.pass_ratio_to_one_pass_floor:.3g}x the "
              f"one-pass floor ({bound_by}). The Gram route wins whenever the iterations outnumber "
              "that and n is large enough for its fixed cost per call not to matter. Its price is precision in the "
              "loss, not in the weights: see the `gram` experiment."]
    return lines


def report_section(table):
    """Markdown: bandwidth, both floors, the ratios at the largest n, where each becomes bandwidth-bound, the Gram route."""
    t = table.iloc[0]
    n_max = int(table.n_samples.max())
    lines = ["## Scaling against the memory roofline", "", f"![per-iteration time against n]({NAME}.png)", "",
             "A roofline is the least time the hardware allows for a piece of work; here, the time to read the "
             "data from memory at the bandwidth measured in this run, which no step that reads X can beat. "
             f"Measured memory read bandwidth: **{t.bandwidth_gbs:.1f} GB/s** (best of a contiguous sum, "
             f"{t.bandwidth_sum_gbs:.1f} GB/s, and a BLAS matrix-vector product, {t.bandwidth_gemv_gbs:.1f} GB/s). "
             "The data come from the lesson's generator at each size (never from a `--data` file, whose size is fixed). "
             "A full-batch iteration as written reads X twice (X W, then X^T r): the two-pass floor, "
             "2 x X.nbytes / bandwidth. Fused, one pass would do (each row gives its residual and its share of "
             "X^T r at once): the one-pass floor, (X + y).nbytes / bandwidth, about half. "
             f"Iteration counts were chosen per point so each timed call lasts a fraction of a second "
             f"(the Gram routes always run {GRAM_ITERATIONS}). The machine may be shared with other work: "
             "compare implementations measured side by side, not single numbers across runs.", ""]
    big = table[table.n_samples == n_max].sort_values(["n_features", "dtype", "ratio_to_floor"])
    lines += [f"At n = {n_max:,} (time per iteration and its ratio to each floor; for a Gram route the iterations "
              "after its pass, which never read X):", "",
              "| m | dtype | implementation | iterations | per iteration (ms) | two-pass floor (ms) | ratio | "
              "one-pass floor (ms) | ratio | 1000 iterations (s) |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r.n_features} | {r.dtype} | {r.implementation} | {r.iterations} | {r.per_iteration_s * 1e3:.3g} | "
              f"{r.floor_per_iteration_s * 1e3:.3g} | {r.ratio_to_floor:.3g} | {r.one_pass_floor_s * 1e3:.3g} | "
              f"{r.ratio_to_one_pass_floor:.3g} | {r.time_1000_s:.3g} |" for r in big.itertuples()]
    target = table[(table.n_samples == 1_000_000) & (table.n_features == 32) & (table.dtype == "float32")
                   & table.implementation.isin(["numpy", "gradient_tape"])]
    if not target.empty:
        lines += ["", ("The study's target at n = 1,000,000, m = 32, float32: a time per update within 1.5x of the two-pass "
                        "floor (the time to read X twice from memory at the bandwidth measured in this run, which no "
                        "streaming step can beat by much). ") + "; ".join(
            f"`{r.implementation}` is at {r.ratio_to_floor:.2f}x the floor ({'target met' if r.ratio_to_floor <= 1.5 else 'target missed'}; "
            f"{r.ratio_to_one_pass_floor:.2f}x the one-pass floor)" for r in target.itertuples()) + "."]
    streaming = table[~table.implementation.map(is_gram)]
    lines += ["", f"Where each streaming implementation leaves the overhead-bound regime (smallest n from which every "
              f"point is within {BANDWIDTH_BOUND:g}x the two-pass floor; the per-iteration time at the smallest n is "
              "the fixed overhead):", "",
              "| implementation | m | dtype | overhead per iteration at n = " + f"{int(table.n_samples.min())} (us) | bandwidth-bound from n = |",
              "|---|---|---|---|---|"]
    for (name, device, m, dtype), rows in streaming.groupby(["implementation", "device", "n_features", "dtype"]):
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
    lines += _gram_paragraph(table)
    return "\n".join(lines)


def findings(table):
    """Two sentences: whether reading the data once (the Gram route) pays at the largest n, with the times; where it turns."""
    crossover = gram_crossover(table)
    if crossover.empty:
        return []
    # the headline case: the largest m, float32 when measured, numpy's pair first
    m = crossover.n_features.max()
    case = crossover[crossover.n_features == m]
    case = case[case.dtype == ("float32" if (case.dtype == "float32").any() else case.dtype.iloc[0])]
    gains = case.streaming_1000_s / case.gram_1000_s
    parts = [f"*{registry.label(r.streaming)}* {r.streaming_1000_s:.3g} s against *{registry.label(r.implementation)}* "
             f"{r.gram_1000_s:.3g} s" for r in case.itertuples()]
    first = case.iloc[0]
    faster = (f"{gains.min():.3g}x to {gains.max():.3g}x faster" if len(case) > 1 else f"{gains.iloc[0]:.3g}x faster")
    answer = (f"On large data, reading it once pays: at n = {first.largest_n:,}, m = {m}, the Gram route runs 1000 "
              f"iterations {faster} than streaming"
              if (gains > 1).all() else
              f"At n = {first.largest_n:,}, m = {m}, the Gram route's 1000 iterations are not always faster than streaming")
    where = [f"*{registry.label(r.implementation)}* from n = {r.beats_streaming_from_n:,}" if not pd.isna(r.beats_streaming_from_n)
             else f"*{registry.label(r.implementation)}* not within n = {r.largest_n:,}" for r in case.itertuples()]
    return [answer + f" ({first['dtype']}, its one pass included): " + "; ".join(parts) + ".",
            "The Gram route reads X once for its sufficient statistics (G = [X, 1]^T [X, 1], c = [X, 1]^T y and "
            "s = y^T y, all the loss and its gradient need), then takes each step in O(m^2); streaming reads all of X "
            "at every step. Measured, the Gram route beats streaming for 1000 iterations " + ", ".join(where)
            + f" (sizes measured from n = {first.smallest_n:,})."]