"""Scaling: steady per-iteration time as n grows, against floors measured in the same rounds as the rows.

One full-batch iteration computes X W and X^T r, so unless the two are fused it reads X twice:
`2 * X.nbytes / bandwidth` is the two-pass floor per iteration. Fused, one pass suffices (each row
gives its residual and its share of X^T r at once): `(X.nbytes + y.nbytes) / bandwidth`, the
one-pass floor. The Gram routes (route "gram" in the registry) read X once in all, for G, c and s:
their pass's floor is `max(2 n (m + 1)^2 / GEMM rate, (X + y).nbytes / bandwidth)`, the arithmetic
of [X, 1]^T [X, 1] at the machine's GEMM rate or one read of the data, whichever is slower.

The bandwidth and the GEMM rate are not measured once at the start: at every (n, m, dtype) point
their probes (a contiguous sum and a BLAS matrix-vector product over an array far larger than the
caches; a square float64 matrix product) are timed in the same interleaved rounds as the rows they
judge (comparisons.running.timing.time_interleaved), so a slow minute moves a row and its floor alike.
Each point's ratio to each floor shows where an implementation is overhead-bound (small n: fixed
per-step cost dominates) and where it becomes bandwidth-bound (ratio near 1).

A Gram route's two stages are timed apart in the same rounds (the pass, and the iterations on G, c,
s, whose cost per iteration should not depend on n), beside its whole call, pass included, for
GRAM_ITERATIONS. Beside numpy's pass, the same pass over data kept in cache (cached_pass_probe)
separates its arithmetic from its reading of X; a short run (SHORT_RUN iterations, pass included)
is set against streaming. With one feature, numpy's products and one whole-vector operation are
timed alone too (KERNELS), beside a scaling-only formulation of the descent with broadcasts (FORMULATIONS).
"""
import functools
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from handrolled.broadcast import descend_broadcast
from handrolled.gram import block_rows_for, sufficient_statistics

from comparisons.core import registry

from comparisons.running import stability
from comparisons.inputs.data import initial_parameters, make_synthetic
from comparisons.running.implementations import gram_stages, make_trainer
from comparisons.core.results import from_run
from comparisons.running.timing import time_interleaved

NAME = "scaling"
PASSES = 2  # reads of X per iteration without fusion: X W and X^T r
BANDWIDTH_BOUND = 2.0  # a point within this factor of the floor counts as bandwidth-bound
GRAM_ITERATIONS = 1000  # the lesson's count: Gram routes run exactly this many, so their timed call is the real one
TARGET_N = 1_000_000  # the size issue 21's targets are judged at
STREAMING_TARGET = 1.5  # a streaming row's target: within this factor of its floor
GRAM_PASS_TARGET = 2.0  # the Gram pass's target: within this factor of its floor
SHORT_RUN = 50  # iterations of the short run on which a Gram route's pass is judged against streaming
SHORT_RUN_TARGET = 10.0  # numpy:gram's target for SHORT_RUN iterations, pass included: this many times faster
CACHE_PROBE_BYTES = 4 * 2**20  # the cached-pass probe's float64 X and y: far below the L3 cache, above the L2
PROBE_BYTES = 256 * 2**20  # the bandwidth probes' array: far larger than the L2 caches
QUICK_PROBE_BYTES = 64 * 2**20
GEMM_N = 1024  # the GEMM probe: (GEMM_N, GEMM_N) float64 squared, the rate square matrices reach
QUICK_GEMM_N = 512
ACCUMULATE = np.float64  # the dtype a Gram pass sums in, so the GEMM rate that bounds it


@dataclass(frozen=True)
class Formulation:
    """A scaling-only formulation of a registry row's computation: timed here beside the rows, never a trainer."""

    name: str  # its label in scaling.csv
    summary: str  # what it changes, for the report
    framework: str  # the library it uses, as in the registry
    features: tuple  # the feature counts it is measured at (what it is meant for)
    descend: object  # descend(X, y, W0, b0, lr, iterations) -> a DescentResult


FORMULATIONS = (
    Formulation("numpy:broadcast", "the same descent with X W as an elementwise multiply and X^T R as an einsum "
                "reduction, buffers reused (handrolled/broadcast.py)", "numpy", (1,), descend_broadcast),
)

# numpy's products at m = 1, timed alone beside the rows: name -> (X (n, 1), W (1, 1), R (n, 1)) -> callable
KERNELS = {
    "X @ W": lambda X, W, R: lambda: X @ W,  # matmul: (n, 1) @ (1, 1), the lesson's form
    "X * w": lambda X, W, R: lambda: X * W[0, 0],  # the same numbers as an elementwise multiply
    "X.T @ R": lambda X, W, R: lambda: X.T @ R,  # matmul: (1, n) @ (n, 1), a dot product
    "einsum X^T R": lambda X, W, R: lambda: np.einsum("ij,ik->jk", X, R),  # the same sum in numpy's own loop
    # one whole-vector operation into a reused buffer, as each of the numpy step's vector operations runs
    "X * w into R": lambda X, W, R: functools.partial(np.multiply, X, W[0, 0], out=np.empty_like(R)),
}
VECTOR_OPERATIONS = 6  # of handrolled.descend's full-batch step at m = 1: X w, + b, y -, R^T R, X^T R, sum


def kernel_column(name):
    """The scaling.csv column holding kernel `name`'s median time: 'X @ W' -> 'kernel_X_at_W_s'."""
    word = {"@": "at", "*": "times", "^": "", ".": "_"}
    return "kernel_" + "_".join("".join(word.get(ch, ch) for ch in part) for part in name.split()) + "_s"


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
    if config.quick:  # one m, and per (framework, route) only its cheapest row per step (the first of equals)
        return (100, 100_000), (32,), (config.dtypes[0],), cheapest_per_route(names), 0.03, 2
    if config.full:
        return (100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000), (1, 32), config.dtypes, names, 0.3, 3
    # default: the run's first dtype only (float32 under --dtype both); --full sweeps every dtype
    return (100, 10_000, TARGET_N), (1, 32), config.dtypes[:1], names, 0.04, 3


def cheapest_per_route(names):
    """Of `names`, in their order, the first with the smallest step_cost_s of each (framework, route)."""
    best = {}
    for name in names:
        impl = registry.get(name)
        key = (impl.framework, impl.route)
        if key not in best or impl.step_cost_s < registry.get(best[key]).step_cost_s:
            best[key] = name
    return [name for name in names if name in best.values()]


def floor_per_iteration(x_bytes, bandwidth, passes=PASSES):
    """The roofline floor: seconds to read X `passes` times at `bandwidth` bytes/s."""
    return passes * x_bytes / bandwidth


def one_pass_floor(x_bytes, y_bytes, bandwidth):
    """The fused floor: seconds to read X and y once at `bandwidth` bytes/s."""
    return (x_bytes + y_bytes) / bandwidth


def gram_flops(n, m):
    """Floating-point operations of [X, 1]^T [X, 1] as a general matrix product: 2 n (m + 1)^2."""
    return 2.0 * n * (m + 1) ** 2


def gram_pass_floor(n, m, x_bytes, y_bytes, bandwidth, gemm_rate):
    """The Gram pass's floor (s): its flops at the square-matrix GEMM rate, or one read of X and y, whichever is slower."""
    return max(gram_flops(n, m) / gemm_rate, one_pass_floor(x_bytes, y_bytes, bandwidth))


def is_gram(name):
    """Whether `name` is a Gram route of the registry (one pass, then iterations on G, c, s)."""
    return name in registry.names() and registry.get(name).route == "gram"


def choose_iterations(name, x_bytes, bandwidth, target_s, low=8, high=2000):
    """Iterations so one call takes about target_s: target / (overhead + floor), clamped to [low, high]."""
    estimate = registry.step_cost_s(name) + floor_per_iteration(x_bytes, bandwidth) * 1.5
    return int(min(high, max(low, round(target_s / estimate))))


def stable_lr(X, y):
    """The largest stable step 2 / lambda_max of the Hessian 2 G, with G = [X, 1]^T [X, 1] / n from the Gram pass.

    The same number as stability.analyse(X).max_stable_lr, whose product of the augmented [X, 1]
    with itself costs far more at n = 10^6 than the pass's blocks.
    """
    eigenvalues = np.linalg.eigvalsh(2 * sufficient_statistics(np.asarray(X, np.float64), y).G)  # ascending
    return stability.Stability(float(eigenvalues[0]), float(eigenvalues[-1])).max_stable_lr


def cast_probe(X):
    """A callable doing only the Gram pass's cast: X block by block into one reused float64 buffer, as the pass does."""
    n, m = X.shape
    rows = min(n, block_rows_for(m))
    buffer = np.empty((rows, m), ACCUMULATE)

    def cast():
        for start in range(0, n, rows):
            k = min(rows, n - start)
            buffer[:k] = X[start:start + k]
    return cast


def cached_pass_probe(n, m, seed=0):
    """(callable, rows per call): the Gram pass on one float64 X (rows, m) and y kept in cache, called until about n
    rows are summed. Its time is the pass's arithmetic and per-block work without reading X from memory."""
    rows = min(n, max(block_rows_for(m), CACHE_PROBE_BYTES // (8 * (m + 1))))
    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((rows, m)), rng.standard_normal((rows, 1))
    calls = max(1, round(n / rows))

    def cached():
        for _ in range(calls):
            sufficient_statistics(X, y)
    return cached, calls * rows


def floor_probes(n_bytes, gemm_n, seed=0):
    """The floor probes, timed in every round beside the rows: ({key: callable}, {key: bytes or flops per call}).

    bandwidth:sum (a contiguous float64 sum, one thread) and bandwidth:gemv (a BLAS matrix-vector
    product, every core) over n_bytes; gemm: a square (gemm_n, gemm_n) float64 product.
    """
    rng = np.random.default_rng(seed)
    a = rng.random(n_bytes // 8)  # float64, far larger than the L2 caches
    A, ones = a.reshape(-1, 32), np.ones(32)  # (n_bytes / 256, 32), C-contiguous
    S = rng.standard_normal((gemm_n, gemm_n))
    calls = {"bandwidth:sum": a.sum, "bandwidth:gemv": lambda: A @ ones, "gemm": lambda: S @ S}
    return calls, {"bandwidth:sum": a.nbytes, "bandwidth:gemv": a.nbytes, "gemm": 2.0 * gemm_n ** 3}


def probe_rates(timings, work):
    """{bandwidth_sum, bandwidth_gemv, bandwidth (the better), gemm}: bytes/s or flop/s from the probes' medians."""
    rate = {key: work[key] / timings[key].median_s for key in work}
    return {"bandwidth_sum": rate["bandwidth:sum"], "bandwidth_gemv": rate["bandwidth:gemv"],
            "bandwidth": max(rate["bandwidth:sum"], rate["bandwidth:gemv"]), "gemm": rate["gemm"]}


def planning_bandwidth(calls, work):
    """Bytes/s from one untimed call of each bandwidth probe: only to choose iteration counts before timing."""
    rates = []
    for key in ("bandwidth:sum", "bandwidth:gemv"):
        calls[key]()  # the first touch of its pages, outside the measurement
        start = time.perf_counter()
        calls[key]()
        rates.append(work[key] / (time.perf_counter() - start))
    return max(rates)


def transition_n(rows, bound=BANDWIDTH_BOUND):
    """Smallest n from which every larger point is within `bound` x the floor, or None."""
    rows = rows.sort_values("n_samples")
    within = (rows.ratio_to_floor <= bound).to_numpy()
    for k in range(len(within)):
        if within[k:].all():
            return int(rows.n_samples.iloc[k])
    return None


def _entries(names, devices_for, m, n, full):
    """(label, device, kind, what) for each row timed at this point: registry rows, then the formulations for m.

    devices_for(framework) gives the device labels of that framework's rows (ExperimentContext.devices_for).
    """
    out = []
    for name in names:
        if n > (max_n(name, full) or math.inf):
            continue
        impl = registry.get(name)
        for device in devices_for(impl.framework):
            out.append((name, device, "registry", impl))
    if registry.REFERENCE in names:  # the formulations are numpy's, judged beside the reference row
        out += [(f.name, "cpu", "formulation", f) for f in FORMULATIONS if m in f.features]
    return out


def _point(ctx, names, n, m, dtype, target_s, repeats, probes, work, bandwidth_guess):
    """Every row of one (n, m, dtype) point, timed in interleaved rounds with the floor probes and kernels."""
    config = ctx.config
    data = make_synthetic(n, m, config.noise, config.seed)
    W0, b0 = initial_parameters(m, config.seed)
    lr = 0.5 * stable_lr(data.X, data.y)  # safely stable for every m: runs never stop early
    X, y = data.X.astype(dtype), data.y.astype(dtype)
    calls, rows = dict(probes), {}
    for label, device, kind, what in _entries(names, ctx.devices_for, m, n, config.full):
        gram = kind == "registry" and what.route == "gram"
        iterations = GRAM_ITERATIONS if gram else choose_iterations(label, X.nbytes, bandwidth_guess, target_s)
        if ctx.progress:
            ctx.progress(f"scaling {label} n={n} m={m} {dtype} x{iterations}")
        if kind == "registry":
            trainer = make_trainer(label, X, y, float(lr), iterations, device=device)
            calls[(label, device, "call")] = lambda trainer=trainer: trainer(W0, b0)
            framework, route = what.framework, what.route
        else:
            calls[(label, device, "call")] = lambda f=what, k=iterations: from_run(
                f.name, dtype, f.descend(X, y, W0, b0, float(lr), k), device="cpu")
            framework, route = what.framework, "streaming"
        if gram:  # the stages apart: the pass, then the iterations on the statistics alone
            one_pass, iterate = gram_stages(trainer)
            stats = one_pass()  # untimed: the statistics the timed iterations start from
            calls[(label, device, "pass")] = one_pass
            calls[(label, device, "iterate")] = lambda iterate=iterate, stats=stats: iterate(stats, W0, b0)
        rows[(label, device)] = {"implementation": label, "device": device, "framework": framework, "route": route,
                                 "dtype": dtype, "n_samples": n, "n_features": m, "iterations": iterations, "lr": lr}
    if X.dtype != ACCUMULATE and any(row["route"] == "gram" for row in rows.values()):
        calls[("cast",)] = cast_probe(X)
    if any(row["route"] == "gram" and row["framework"] == "numpy" for row in rows.values()):
        calls[("cached pass",)], cached_rows = cached_pass_probe(n, m, config.seed)
    if m == 1 and registry.REFERENCE in names:
        W, R = np.asarray(W0, dtype).reshape(1, 1), y - X * np.asarray(W0, dtype).reshape(1, 1)
        calls.update({("kernel", name): make(X, W, R) for name, make in KERNELS.items()})
    results, timings = time_interleaved(calls, repeats, seed=config.seed)
    rate = probe_rates(timings, work)
    kernels = {kernel_column(key[1]): t.median_s for key, t in timings.items() if key[0] == "kernel"}
    cast_s = timings[("cast",)].median_s if ("cast",) in timings else np.nan
    # scaled from the rows the probe summed to n rows
    cached_s = timings[("cached pass",)].median_s * n / cached_rows if ("cached pass",) in timings else np.nan
    out = []
    for (label, device), row in rows.items():
        result, timing = results[(label, device, "call")], timings[(label, device, "call")]
        low, high, coverage = timing.interval
        row.update({
            "repeats": timing.repeats, "first_call_s": timing.first_call_s, "median_s": timing.median_s,
            "min_s": timing.min_s, "max_s": timing.max_s, "median_low_s": low, "median_high_s": high,
            "interval_coverage": coverage, "per_iteration_s": timing.median_s / row["iterations"],
            "x_bytes": X.nbytes, "y_bytes": y.nbytes, "bandwidth_gbs": rate["bandwidth"] / 1e9,
            "bandwidth_sum_gbs": rate["bandwidth_sum"] / 1e9, "bandwidth_gemv_gbs": rate["bandwidth_gemv"] / 1e9,
            "gemm_gflops": rate["gemm"] / 1e9,
            "floor_per_iteration_s": floor_per_iteration(X.nbytes, rate["bandwidth"]),
            "one_pass_floor_s": one_pass_floor(X.nbytes, y.nbytes, rate["bandwidth"]),
            "gram_pass_floor_s": np.nan, "cast_s": np.nan, "cached_pass_s": np.nan, "one_pass_s": np.nan,
            "status": result.status,
            "jit_compile": result.jit_compile, "mode": result.mode, **kernels,
        })
        if row["route"] == "gram":
            row.update(one_pass_s=timings[(label, device, "pass")].median_s,
                       per_iteration_s=timings[(label, device, "iterate")].median_s / row["iterations"],
                       gram_pass_floor_s=gram_pass_floor(n, m, X.nbytes, y.nbytes, rate["bandwidth"], rate["gemm"]),
                       cast_s=cast_s, cached_pass_s=cached_s if framework == "numpy" else np.nan)
        out.append(row)
    return out


def run(ctx):
    """Time every implementation per iteration over n, m and dtype, each point's floors measured in its own rounds."""
    config = ctx.config
    sizes, features, dtypes, names, target_s, repeats = plan(config)
    probes, work = floor_probes(QUICK_PROBE_BYTES if config.quick else PROBE_BYTES,
                                QUICK_GEMM_N if config.quick else GEMM_N, config.seed)
    bandwidth_guess = planning_bandwidth(probes, work)
    rows = []
    for m in features:
        for n in sizes:
            for dtype in dtypes:
                rows += _point(ctx, names, n, m, dtype, target_s, repeats, probes, work, bandwidth_guess)
    return with_ratios(pd.DataFrame(rows))


def with_ratios(table):
    """Add each point's ratio to both floors, the Gram pass's ratios and rate, and the time of 1000 iterations.

    time_1000_s: a streaming run's steady per-iteration time x 1000; a Gram route's whole call (pass
    included) scaled to 1000 iterations, which is the call itself as it runs GRAM_ITERATIONS.
    time_short_s: SHORT_RUN iterations, a Gram route's pass included (its pass + SHORT_RUN x its
    per-iteration time after the pass).
    """
    gram = (table.route == "gram").to_numpy()
    flops = gram_flops(table.n_samples.astype(float), table.n_features.astype(float))
    return table.assign(
        ratio_to_floor=table.per_iteration_s / table.floor_per_iteration_s,
        ratio_to_one_pass_floor=table.per_iteration_s / table.one_pass_floor_s,
        pass_ratio_to_one_pass_floor=table.one_pass_s / table.one_pass_floor_s,
        pass_ratio_to_floor=table.one_pass_s / table.gram_pass_floor_s,
        pass_gflops=flops / table.one_pass_s / 1e9,
        time_1000_s=np.where(gram, table.median_s / table.iterations, table.per_iteration_s) * 1000,
        time_short_s=np.where(gram, table.one_pass_s, 0.0) + SHORT_RUN * table.per_iteration_s,
    )


def complete(table):
    """The table with every column this version writes: an older scaling.csv (a committed run) gets `route` and
    `framework` from the registry and NaN for the floors it did not measure, then its ratios again."""
    if {"route", "framework", "gemm_gflops", "gram_pass_floor_s", "median_low_s", "median_high_s", "cached_pass_s",
            "time_short_s"} <= set(table):
        return table
    formulations = {f.name: ("streaming", f.framework) for f in FORMULATIONS}
    known = set(registry.names())

    def capability(name):
        if name in formulations:
            return formulations[name]
        return (registry.get(name).route, registry.get(name).framework) if name in known else ("streaming", "")

    table = table.copy()
    found = [capability(name) for name in table.implementation]
    table["route"] = table.get("route", pd.Series([r for r, _ in found], index=table.index))
    table["framework"] = table.get("framework", pd.Series([f for _, f in found], index=table.index))
    for column in ("gemm_gflops", "gram_pass_floor_s", "median_low_s", "median_high_s", "cached_pass_s"):
        if column not in table:
            table[column] = np.nan
    return with_ratios(table)


def gram_crossover(table):
    """Per Gram route, device, m and dtype: the smallest measured n from which it beats the fastest streaming row of
    its framework (fastest at the largest n) at every larger measured n, for 1000 iterations (pass included), or
    None; with the times at the largest n."""
    table = complete(table)
    rows = []
    for (name, device, m, dtype), part in table[table.route == "gram"].groupby(
            ["implementation", "device", "n_features", "dtype"]):
        framework = part.framework.iloc[0]
        same = table[(table.route == "streaming") & (table.framework == framework) & (table.device == device)
                     & (table.n_features == m) & (table.dtype == dtype)]
        if same.empty:
            continue
        widest = same[same.n_samples == same.n_samples.max()]
        base = widest.loc[widest.time_1000_s.idxmin(), "implementation"]
        streaming = same[same.implementation == base].set_index("n_samples").time_1000_s
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
                     "streaming_1000_s": largest.streaming,
                     "gram_short_s": part[part.n_samples == both.index[-1]].time_short_s.iloc[0],
                     "gram_pass_s": part[part.n_samples == both.index[-1]].one_pass_s.iloc[0],
                     "streaming_short_s": same[(same.implementation == base)
                                               & (same.n_samples == both.index[-1])].time_short_s.iloc[0]})
    table = pd.DataFrame(rows)
    return table.astype({"beats_streaming_from_n": "Int64"}) if len(table) else table  # None: <NA>, not a float


def figure(table):
    """The Figure: per-iteration time against n (log-log), the bandwidth floors, one panel per (m, dtype).

    Each implementation keeps its colour of every figure (figures.colour) and its registry title, in one
    legend for all panels. A Gram route gets two lines of its colour: its iterations after the pass (solid
    squares) and its whole call, pass included, over its GRAM_ITERATIONS iterations (dotted), the
    per-iteration price to set beside a streaming line for 1000 iterations. Where the two floors coincide
    (m = 1: X and y have the same bytes) one line is drawn and its label says so.
    """
    from matplotlib.lines import Line2D

    from comparisons.output.figures import colour, plt, title

    def words(name):  # a scaling-only formulation is its registry row's title and its variant
        if name in registry.REGISTRY:
            return title(name)
        base, _, variant = name.partition(":")
        return f"{title(base)}, {variant} form (timed here only)"

    panels = sorted(table.groupby(["n_features", "dtype"]).groups)
    cols = min(2, len(panels))
    rows_n = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(max(7.5 * cols, 9.5), 5.6 * rows_n + 1.6), squeeze=False)
    order = list(registry.REGISTRY)
    names = sorted(dict.fromkeys(table.implementation), key=lambda n: (order.index(n) if n in order else len(order), n))
    floors_words = set()
    for ax, (m, dtype) in zip(axes.flat, panels):
        part = table[(table.n_features == m) & (table.dtype == dtype)]
        for (name, device), rows in sorted(part.groupby(["implementation", "device"]), key=lambda g: names.index(g[0][0])):
            rows = rows.sort_values("n_samples")
            where = "" if device == "cpu" else f" [{device}]"
            if is_gram(name):
                ax.loglog(rows.n_samples, rows.per_iteration_s, "-s", ms=4, color=colour(name), gid=name,
                          label=words(name) + where)
                ax.loglog(rows.n_samples, rows.time_1000_s / 1000, ":", marker=".", color=colour(name),
                          gid=f"{name} whole call", label="_")
            else:
                ax.loglog(rows.n_samples, rows.per_iteration_s, "-o", ms=3.5, color=colour(name), gid=name,
                          label=words(name) + where)
        floor = part.drop_duplicates("n_samples").sort_values("n_samples")
        if np.allclose(floor.floor_per_iteration_s, floor.one_pass_floor_s, rtol=1e-9):
            ax.loglog(floor.n_samples, floor.floor_per_iteration_s, "k--", lw=2, gid="floor", label="_")
            floors_words.add("one")
        else:
            ax.loglog(floor.n_samples, floor.floor_per_iteration_s, "k--", lw=2, gid="floor", label="_")
            ax.loglog(floor.n_samples, floor.one_pass_floor_s, "-.", color="grey", lw=2, gid="one-pass floor",
                      label="_")
            floors_words.add("two")
        ax.set(xlabel="n (samples)", ylabel="time per update (s, median; log)", title=f"m = {m} features, {dtype}")
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    handles = [Line2D([], [], color=colour(n), marker="s" if is_gram(n) else "o", ms=4, label=words(n))
               for n in names]
    handles += [Line2D([], [], color="dimgray", ls=":", marker=".",
                       label=f"Gram route's whole call (pass + {GRAM_ITERATIONS} updates) / {GRAM_ITERATIONS}")]
    if "two" in floors_words:
        handles += [Line2D([], [], color="black", ls="--", lw=2, label="two-pass floor: 2 X.nbytes / bandwidth"),
                    Line2D([], [], color="grey", ls="-.", lw=2, label="one-pass floor: (X + y).nbytes / bandwidth")]
    if "one" in floors_words:
        handles += [Line2D([], [], color="black", ls="--", lw=2,
                           label="floor where both coincide (m = 1: 2 X.nbytes = (X + y).nbytes) / bandwidth")]
    ncol = 3 if cols > 1 else 2
    fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=7.5, frameon=False)
    fig.suptitle("Time per update against the memory-bandwidth floor\n(CPU; the bandwidth measured at each point; "
                 "one colour per way, as in every figure)", fontsize=10)
    fig.tight_layout(rect=(0, (0.3 + 0.16 * math.ceil(len(handles) / ncol)) / (5.6 * rows_n + 1.6), 1, 1))
    return fig


def plot(table, out_dir):
    """scaling.png from the table alone; and problem_map.png when out_dir holds the single run's timings and equivalence."""
    from comparisons.output import figures  # matplotlib with the Agg backend, loaded only to draw

    drawn = [figures.save(figure(table), Path(out_dir) / f"{NAME}.png")]
    return drawn + [p for p in [figures.problem_map(out_dir, table)] if p is not None]


def _target_n(table):
    """The n the targets are judged at: TARGET_N when measured, else the largest n of the run."""
    return TARGET_N if (table.n_samples == TARGET_N).any() else int(table.n_samples.max())


def _met(ratio, target):
    return f"{ratio:.2f}x, {'met' if ratio <= target else 'missed'}"


def numpy_forms(table):
    """Per (m, dtype) at the target n: each numpy streaming row's ratio to the two-pass floor, best first."""
    table = complete(table)
    n = _target_n(table)
    rows = table[(table.n_samples == n) & (table.framework == "numpy") & (table.route == "streaming")]
    return rows.sort_values(["n_features", "dtype", "ratio_to_floor"])


def _numpy_lines(table):
    """The numpy formulations against the two-pass floor, and the m = 1 kernels that explain the gap."""
    n = _target_n(table)
    forms = numpy_forms(table)
    if forms.empty:
        return []
    lines = ["", f"**numpy's formulations** at n = {n:,} against the two-pass floor (target: the best within "
             f"{STREAMING_TARGET:g}x):", ""]
    for (m, dtype), rows in forms.groupby(["n_features", "dtype"]):
        best = rows.iloc[0]
        lines.append(f"- m = {m}, {dtype}: " + "; ".join(
            f"`{r.implementation}` {r.per_iteration_s * 1e3:.3g} ms per iteration ({r.ratio_to_floor:.2f}x)"
            for r in rows.itertuples()) + f". Best: `{best.implementation}`, {_met(best.ratio_to_floor, STREAMING_TARGET)}.")
    formulations = [f for f in FORMULATIONS if (table.implementation == f.name).any()]
    lines += [f"- `{f.name}` (measured at m = {', '.join(map(str, f.features))} only): {f.summary}." for f in formulations]
    if (forms[forms.n_features == 1].groupby("dtype").ratio_to_floor.min() > STREAMING_TARGET).any():
        lines.append(f"- At m = 1 the best form misses: numpy runs a step as whole-array operations, each a pass over "
                     f"an n-long vector as large as X ({VECTOR_OPERATIONS} in `numpy`'s step: the product, + b, y -, "
                     "R^T R for the loss, X^T R, the sum), where the floor counts two reads of X.")
    vector = kernel_column("X * w into R")
    point = table[(table.n_samples == n) & (table.n_features == 1)]
    if vector in point:
        for r in point.drop_duplicates("dtype").itertuples():
            one = getattr(r, vector)
            if math.isfinite(one):
                lines.append(f"- One such operation into a reused buffer (`X * w into R`) at n = {n:,}, m = 1, "
                             f"{r.dtype}, in the same rounds: {one * 1e3:.3g} ms, {one / r.floor_per_iteration_s:.2f} "
                             f"of the two-pass floor; {VECTOR_OPERATIONS} of them: "
                             f"{VECTOR_OPERATIONS * one / r.floor_per_iteration_s:.2f}x the floor.")
    columns = {name: kernel_column(name) for name in KERNELS}
    if not point.empty and all(c in point for c in columns.values()):
        for dtype, rows in point.groupby("dtype"):
            k = {name: rows[c].iloc[0] * 1e3 for name, c in columns.items()}
            if not all(math.isfinite(v) for v in k.values()):
                continue
            lines.append(
                f"- The products alone at n = {n:,}, m = 1, {dtype}, in the same rounds: `X @ W` {k['X @ W']:.3g} ms "
                f"against `X * w` {k['X * w']:.3g} ms ({k['X @ W'] / k['X * w']:.3g}x), `X.T @ R` {k['X.T @ R']:.3g} ms "
                f"against `einsum X^T R` {k['einsum X^T R']:.3g} ms ({k['X.T @ R'] / k['einsum X^T R']:.3g}x). "
                "numpy's matmul sends a product whose right operand has one column to its BLAS matrix-vector routine "
                "(gemv): with one feature that is n dot products of length one, where an elementwise multiply streams "
                "X once; `X.T @ R` goes to the same routine as one dot product of length n, the einsum to numpy's "
                "own loop.")
    return lines


def blocked_against_graph(table):
    """At the target n: each row whose loop ran `blocked` beside the rows of its framework that ran `graph`."""
    table = complete(table)
    n = _target_n(table)
    big = table[(table.n_samples == n) & table["mode"].isin(["blocked", "graph"])]
    out = []
    for (framework, device, m, dtype), rows in big.groupby(["framework", "device", "n_features", "dtype"]):
        blocked, graph = rows[rows["mode"] == "blocked"], rows[rows["mode"] == "graph"]
        for b in blocked.itertuples():
            for g in graph.itertuples():
                out.append({"blocked": b.implementation, "graph": g.implementation, "device": device, "n_features": m,
                            "dtype": dtype, "blocked_per_iteration_s": b.per_iteration_s,
                            "graph_per_iteration_s": g.per_iteration_s,
                            "blocked_ratio_to_one_pass_floor": b.ratio_to_one_pass_floor,
                            "graph_ratio_to_one_pass_floor": g.ratio_to_one_pass_floor,
                            "blocked_interval": (b.median_low_s, b.median_high_s),
                            "graph_interval": (g.median_low_s, g.median_high_s)})
    return pd.DataFrame(out)


def _blocked_lines(table):
    """The blocked loop against its one-pass floor and the plain graph, from the table's `mode` column."""
    pairs = blocked_against_graph(table)
    if pairs.empty:
        return []
    from comparisons.running.timing import overlap

    n = _target_n(table)
    lines = ["", f"**The blocked GradientTape loop** (a row whose `mode` is `blocked`: each step goes through X in "
             f"blocks, every block's share of the loss under its own tape) at n = {n:,}, against the one-pass floor "
             f"(target: within {STREAMING_TARGET:g}x) and the same loop unblocked (`mode` `graph`):", ""]
    for r in pairs.itertuples():
        tie = overlap(r.blocked_interval, r.graph_interval)
        lines.append(
            f"- m = {r.n_features}, {r.dtype}: `{r.blocked}` {r.blocked_per_iteration_s * 1e3:.3g} ms per iteration "
            f"({_met(r.blocked_ratio_to_one_pass_floor, STREAMING_TARGET)}), `{r.graph}` "
            f"{r.graph_per_iteration_s * 1e3:.3g} ms ({r.graph_ratio_to_one_pass_floor:.2f}x): blocked / graph = "
            f"{r.blocked_per_iteration_s / r.graph_per_iteration_s:.2f}"
            + (" (a tie: their median intervals overlap)" if tie else "") + ".")
    wide = pairs[pairs.n_features == pairs.n_features.max()]
    if (wide.blocked_ratio_to_one_pass_floor > STREAMING_TARGET).any():
        lines += ["", "So on this run blocking did not make a step's three reads of X cost one trip to memory: the "
                  f"blocked step stayed above {STREAMING_TARGET:g}x the one-pass floor at m = {wide.n_features.max()}, "
                  "at the blocked / graph ratio above."]
    return lines


def _gram_pass_lines(table):
    """The Gram pass against its floor: the time, the floor's two parts, the rate against the GEMM rate."""
    n = _target_n(table)
    rows = table[(table.route == "gram") & (table.n_samples == n)].sort_values(["n_features", "dtype", "implementation"])
    rows = rows[rows.gram_pass_floor_s.notna()]  # an older table measured no GEMM rate
    if rows.empty:
        return []
    lines = ["", f"**The Gram pass** at n = {n:,} against its floor, max(2 n (m + 1)^2 / the GEMM rate of square "
             "float64 matrices, (X + y).nbytes / the bandwidth), both measured in the same rounds "
             f"(target: within {GRAM_PASS_TARGET:g}x):", "",
             "| implementation | m | dtype | pass (ms) | floor (ms) | ratio | pass GFLOP/s | square GEMM GFLOP/s | "
             "one read of X, y (ms) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows.itertuples():
        lines.append(f"| {r.implementation} [{r.device}] | {r.n_features} | {r.dtype} | {r.one_pass_s * 1e3:.3g} | "
                     f"{r.gram_pass_floor_s * 1e3:.3g} | {_met(r.pass_ratio_to_floor, GRAM_PASS_TARGET)} | "
                     f"{r.pass_gflops:.3g} | {r.gemm_gflops:.3g} | {r.one_pass_floor_s * 1e3:.3g} |")
    cast = rows[rows.cast_s.notna() & (rows.framework == "numpy")] if "cast_s" in rows else rows.iloc[:0]
    if len(cast):  # the probe does what handrolled's pass does to a narrower X
        lines += ["", "numpy's pass over a narrower dtype casts every block to float64 for its float64 sums; the cast "
                  "alone, block by block into one buffer, was timed in the same rounds: " + "; ".join(
                      f"m = {r.n_features}, {r.dtype}: {r.cast_s * 1e3:.3g} ms of `{r.implementation}`'s "
                      f"{r.one_pass_s * 1e3:.3g} ms" for r in cast.itertuples()) + "."]
    cached = rows[rows.cached_pass_s.notna()] if "cached_pass_s" in rows else rows.iloc[:0]
    if len(cached):
        lines += ["", "The same pass over one float64 X and y small enough to stay in cache, called until n rows were "
                  "summed (its arithmetic and per-block work without reading X from memory), timed in the same rounds: "
                  + "; ".join(f"m = {r.n_features}, {r.dtype}: {r.cached_pass_s * 1e3:.3g} ms, "
                              f"{r.cached_pass_s / r.gram_pass_floor_s:.2f}x the floor" for r in cached.itertuples()) + "."]
    missed = rows[rows.pass_ratio_to_floor > GRAM_PASS_TARGET]
    if len(missed):
        lines += ["", "Where it is missed: " + "; ".join(_pass_reason(r) for r in missed.itertuples()) + "."]
    return lines + _short_run_lines(table)


def _pass_reason(r):
    """Why one Gram pass row missed its target, from its rate and, when measured, its cached-pass probe."""
    text = (f"`{r.implementation}` at m = {r.n_features}, {r.dtype} ran at {r.pass_gflops:.3g} GFLOP/s, "
            f"{r.pass_gflops / r.gemm_gflops:.2f} of the square GEMM's {r.gemm_gflops:.3g} GFLOP/s, one read of the "
            f"data being {r.one_pass_floor_s / r.one_pass_s:.2f} of its time")
    cached = getattr(r, "cached_pass_s", np.nan)
    if pd.isna(cached):
        return text + " (its products, (m + 1) x rows by rows x (m + 1), are a skinny shape BLAS runs below its " \
                      "square-matrix rate)"
    if cached / r.gram_pass_floor_s > GRAM_PASS_TARGET:
        return text + (f"; on data in cache the pass still took {cached / r.gram_pass_floor_s:.2f}x the floor, so "
                       "its arithmetic and per-block work (products of a skinny shape, below BLAS's square-matrix rate), "
                       "not memory, bound it")
    return text + (f"; on data in cache it took {cached / r.gram_pass_floor_s:.2f}x the floor, so the rest is the "
                   "reading (and any cast) of X")


def _short_run_lines(table):
    """Each Gram route's SHORT_RUN iterations, pass included, against its framework's fastest streaming row."""
    crossover = gram_crossover(table)
    if crossover.empty or "gram_short_s" not in crossover:
        return []
    lines = ["", f"A short run, {SHORT_RUN} iterations with the pass included, against the fastest streaming row of the "
             f"same framework at n = {int(crossover.largest_n.max()):,} (target: {SHORT_RUN_TARGET:g}x faster):", ""]
    for r in crossover.itertuples():
        gain = r.streaming_short_s / r.gram_short_s
        verdict = "met" if gain >= SHORT_RUN_TARGET else (
            f"missed: {SHORT_RUN_TARGET:g}x needs the whole run within {r.streaming_short_s / SHORT_RUN_TARGET:.3g} s, "
            f"and the pass alone took {r.gram_pass_s:.3g} s")
        lines.append(f"- m = {r.n_features}, {r.dtype}: `{r.implementation}` {r.gram_short_s:.3g} s against "
                     f"`{r.streaming}` {r.streaming_short_s:.3g} s: {gain:.3g}x, {verdict}.")
    return lines


def _gram_paragraph(table):
    """Markdown on the Gram routes: flat iterations, the pass, the 1000-iteration race and where it turns, from the table."""
    gram = table[table.route == "gram"]
    if gram.empty:
        return []
    lines = ["", "### The Gram route: one pass, then iterations that never read X", "",
             "The Gram routes sum G = [X,1]^T [X,1] / n, c = [X,1]^T y / n and s = y^T y / n "
             "in one pass over the rows, in float64 whatever the run's dtype (each entry is a sum of n products; "
             "summed in float64 and rounded once it is the closest value the run's dtype holds, at the price of "
             "float64 arithmetic in the pass), then run their iterations on G, c and s alone. Their timed calls "
             "include the pass. The pass and the iterations were also timed apart, in the same rounds:", "",
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
        lines += ["", "1000 iterations, pass included, against the fastest streaming row of the same framework at the "
                  "largest n (streaming: its steady per-iteration time x 1000), and the measured n from which the Gram "
                  "route is faster at every larger size measured:", "",
                  "| Gram route | streaming | m | dtype | Gram, 1000 iterations (s) | streaming, 1000 iterations (s) | "
                  "streaming / Gram | Gram faster from n = |", "|---|---|---|---|---|---|---|---|"]
        for r in crossover.itertuples():
            where = ("not within the sizes measured" if pd.isna(r.beats_streaming_from_n) else
                     f"{r.beats_streaming_from_n:,}" + (" (the smallest measured)"
                                                         if r.beats_streaming_from_n == r.smallest_n else ""))
            lines.append(f"| {r.implementation} [{r.device}] | {r.streaming} | {r.n_features} | {r.dtype} | "
                         f"{r.gram_1000_s:.3g} | {r.streaming_1000_s:.3g} | {r.streaming_1000_s / r.gram_1000_s:.3g} | "
                         f"{where} |")
    lines += ["", "The pass costs n (m + 1)^2 multiply-adds for G against 2 n m per streaming iteration, about "
              "(m + 1) / 2 streaming iterations' arithmetic. The Gram route wins whenever the iterations outnumber "
              "that and n is large enough for its fixed cost per call not to matter. Its price is precision in the "
              "loss, not in the weights: see the `gram` experiment."]
    return lines


def report_section(table):
    """Markdown: the floors measured per point, the ratios at the largest n, the targets, the regimes, the Gram route."""
    table = complete(table)
    n_max = int(table.n_samples.max())
    n_target = _target_n(table)
    points = table.drop_duplicates(["n_samples", "n_features", "dtype"])
    lines = ["## Scaling against the memory roofline", "", f"![per-iteration time against n]({NAME}.png)", "",
             "A roofline is the least time the hardware allows for a piece of work; here, the time to read the "
             "data from memory at the bandwidth measured in this run, which no step that reads X can beat. " +
             ("The floors were measured in the same interleaved rounds as the rows they judge, at every (n, m, dtype) "
              "point: each round timed every row once and the probes once, " if points.gemm_gflops.notna().any() else
              "The floors of this (older) run were measured once, before the rows: ") +
             "a contiguous sum and a BLAS matrix-vector "
             "product over a large array (the better of the two is the bandwidth) and a square float64 matrix "
             f"product (the GEMM rate). Bandwidth over the {len(points)} points: "
             f"{points.bandwidth_gbs.min():.1f} to {points.bandwidth_gbs.max():.1f} GB/s (sum "
             f"{points.bandwidth_sum_gbs.median():.1f}, matrix-vector product {points.bandwidth_gemv_gbs.median():.1f} "
             "GB/s, medians over the points)"
             + (f"; GEMM rate {points.gemm_gflops.min():.3g} to {points.gemm_gflops.max():.3g} GFLOP/s. "
                if points.gemm_gflops.notna().any() else ". ") +
             "The data come from the lesson's generator at each size (never from a `--data` file, whose size is fixed). "
             "A full-batch iteration as written reads X twice (X W, then X^T r): the two-pass floor, "
             "2 x X.nbytes / bandwidth. Fused, one pass would do (each row gives its residual and its share of "
             "X^T r at once): the one-pass floor, (X + y).nbytes / bandwidth. "
             f"Iteration counts were chosen per point so each timed call lasts a fraction of a second "
             f"(the Gram routes always run {GRAM_ITERATIONS}). The machine may be shared with other work: "
             "compare rows measured side by side, not single numbers across runs.", ""]
    if n_target != TARGET_N:
        lines += [f"This run measured up to n = {n_max:,} only; the targets below are judged there. The default run "
                  f"measures n = {TARGET_N:,} at m = 1 and m = 32.", ""]
    big = table[table.n_samples == n_max].sort_values(["n_features", "dtype", "ratio_to_floor"])
    floors = big.drop_duplicates(["n_features", "dtype"])
    lines += [f"At n = {n_max:,}, time per iteration and its ratio to each floor (for a Gram route the iterations "
              "after its pass, which never read X); the floors per iteration: "
              + "; ".join(f"m = {r.n_features}, {r.dtype}: two-pass {r.floor_per_iteration_s * 1e3:.3g} ms, one-pass "
                          f"{r.one_pass_floor_s * 1e3:.3g} ms" for r in floors.itertuples()) + ".", "",
              "| m | dtype | implementation | per iteration (ms) | x two-pass floor | x one-pass floor | "
              "1000 iterations (s) |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {r.n_features} | {r.dtype} | {r.implementation} | {r.per_iteration_s * 1e3:.3g} | "
              f"{r.ratio_to_floor:.3g} | {r.ratio_to_one_pass_floor:.3g} | {r.time_1000_s:.3g} |"
              for r in big.itertuples()]
    lines += _numpy_lines(table) + _blocked_lines(table) + _gram_pass_lines(table)
    streaming = table[table.route == "streaming"]
    reached, stayed = [], []
    for (name, device, m, dtype), rows in streaming.groupby(["implementation", "device", "n_features", "dtype"]):
        small = rows.loc[rows.n_samples.idxmin()]
        start = transition_n(rows)
        (reached if start else stayed).append(
            f"| {name} [{device}] | {m} | {dtype} | {small.per_iteration_s * 1e6:.1f} | {start:,} |" if start else
            f"`{name}` (m = {m})")
    lines += ["", f"Where a streaming implementation leaves the overhead-bound regime (smallest n from which every "
              f"point is within {BANDWIDTH_BOUND:g}x the two-pass floor; the per-iteration time at the smallest n is "
              "the fixed overhead):", ""]
    if reached:
        lines += ["| implementation | m | dtype | overhead per iteration at n = "
                  + f"{int(table.n_samples.min())} (us) | bandwidth-bound from n = |", "|---|---|---|---|---|", *reached, ""]
    if stayed:
        lines += [f"Overhead-bound up to n = {n_max:,}: " + ", ".join(stayed) + "."]
    lines += ["", "With m = 1 the floor counts only X (and y), but an iteration as numpy writes it also streams n-long "
              "vectors (X W and the residuals, written and read again) that together move several times X's bytes; with m = 32, "
              "X dominates the traffic. At least 8 iterations per call keep the extra first/final loss passes over X "
              "to a small share of the time. Rows that pay milliseconds of Python and dispatch per step ran only up to "
              "the sizes listed and stay overhead-bound."]
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