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
from handrolled.gram import block_rows_for, row_ranges

from comparisons.core import registry

from comparisons.running import stability
from comparisons.inputs.data import initial_parameters, make_synthetic
from comparisons.running.cores import parts_for, sufficient_statistics, threaded_map
from comparisons.running.implementations import gram_stages, make_trainer
from comparisons.core.results import from_run
from comparisons.output.prose import join
from comparisons.running.timing import overlap, time_interleaved
from comparisons.output.findings import Finding

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
    title: str = ""  # a reader's words for it (it has no registry row to take a title from)


FORMULATIONS = (
    Formulation("numpy:broadcast", "the same descent with X W as an elementwise multiply and X^T R as an einsum "
                "reduction, buffers reused (handrolled/broadcast.py)", "numpy", (1,), descend_broadcast,
                title="numpy, by hand, broadcast form"),
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
# the fewest whole-vector operations any numpy step at m = 1 makes: one to form R from x and y, one to reduce R against x
MIN_VECTOR_OPERATIONS = 2


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
    # default: the run's first dtype only (float32 under --dtype both); --full sweeps every dtype. Calls of 0.03 s:
    # a framework's overhead per call (under a millisecond) stays a few percent of one, and the sweep stays short
    return (100, 10_000, TARGET_N), (1, 32), config.dtypes[:1], names, 0.03, 3


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


def choose_iterations(name, x_bytes, bandwidth, target_s, low=8, high=2000, predicted_s=None):
    """Iterations so one call takes about target_s: target / seconds per iteration, clamped to [low, high].

    The seconds per iteration are `predicted_s` when the row's own earlier points gave one (predicted_step_s), else
    the registry's overhead per step plus 1.5 floors (a row far from its floor at large n would run far too long).
    """
    estimate = predicted_s or registry.step_cost_s(name) + floor_per_iteration(x_bytes, bandwidth) * 1.5
    return int(min(high, max(low, round(target_s / estimate))))


def predicted_step_s(history, n):
    """A row's seconds per iteration at n from its own earlier, smaller points [(n, seconds), ...]: the line through
    the last two, never below the last one's time; None with fewer than two points."""
    if len(history) < 2:
        return None
    (n1, t1), (n2, t2) = history[-2:]
    slope = max(0.0, (t2 - t1) / (n2 - n1))
    return t2 + slope * (n - n2)


def stable_lr(X, y):
    """The largest stable step 2 / lambda_max of the Hessian 2 G, with G = [X, 1]^T [X, 1] / n from the Gram pass.

    The same number as stability.analyse(X).max_stable_lr, whose product of the augmented [X, 1]
    with itself costs far more at n = 10^6 than the pass's blocks.
    """
    eigenvalues = np.linalg.eigvalsh(2 * sufficient_statistics(np.asarray(X, np.float64), y).G)  # ascending
    return stability.Stability(float(eigenvalues[0]), float(eigenvalues[-1])).max_stable_lr


def cast_probe(X, y):
    """A callable doing only the Gram pass's cast, as the pass does it: its rows split into the pass's ranges, run in
    threads (comparisons.running.cores.parts_for), each range cast block by block into a float64 buffer of its own
    (with one feature, x and y; with several, X)."""
    n, m = X.shape
    rows = min(n, block_rows_for(m))
    buffers = {}  # range start -> its float64 buffer, made once

    def cast_range(a, b):
        if a not in buffers:
            buffers[a] = np.empty((2, rows) if m == 1 else (rows, m), ACCUMULATE)
        buffer = buffers[a]
        for start in range(a, b, rows):
            k = min(rows, b - start)
            if m == 1:
                buffer[0, :k], buffer[1, :k] = X[start:start + k, 0], y[start:start + k, 0]
            else:
                buffer[:k] = X[start:start + k]

    starts, stops = zip(*row_ranges(n, rows, parts_for(m)))

    def cast():
        threaded_map(cast_range, starts, stops)
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


def _point(ctx, names, n, m, dtype, target_s, repeats, probes, work, bandwidth_guess, history):
    """Every row of one (n, m, dtype) point, timed in interleaved rounds with the floor probes and kernels.

    history maps (label, device, m, dtype) to the row's earlier [(n, seconds per iteration)], for its iteration
    counts (predicted_step_s)."""
    config = ctx.config
    data = make_synthetic(n, m, config.noise, config.seed)
    W0, b0 = initial_parameters(m, config.seed)
    lr = 0.5 * stable_lr(data.X, data.y)  # safely stable for every m: runs never stop early
    X, y = data.X.astype(dtype), data.y.astype(dtype)
    calls, rows = dict(probes), {}
    for label, device, kind, what in _entries(names, ctx.devices_for, m, n, config.full):
        gram = kind == "registry" and what.route == "gram"
        iterations = GRAM_ITERATIONS if gram else choose_iterations(
            label, X.nbytes, bandwidth_guess, target_s, predicted_s=predicted_step_s(history.get((label, device, m, dtype), []), n))
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
        calls[("cast",)] = cast_probe(X, y)
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
                       cast_s=cast_s, cached_pass_s=cached_s if row["framework"] == "numpy" else np.nan)
        out.append(row)
    return out


def run(ctx):
    """Time every implementation per iteration over n, m and dtype, each point's floors measured in its own rounds."""
    config = ctx.config
    sizes, features, dtypes, names, target_s, repeats = plan(config)
    probes, work = floor_probes(QUICK_PROBE_BYTES if config.quick else PROBE_BYTES,
                                QUICK_GEMM_N if config.quick else GEMM_N, config.seed)
    bandwidth_guess = planning_bandwidth(probes, work)
    rows, history = [], {}
    for m in features:
        for n in sizes:
            for dtype in dtypes:
                point = _point(ctx, names, n, m, dtype, target_s, repeats, probes, work, bandwidth_guess, history)
                for row in point:
                    history.setdefault((row["implementation"], row["device"], m, dtype), []).append(
                        (n, row["per_iteration_s"]))
                rows += point
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


# the one line drawn where the floors coincide: black as the two-pass floor, dash-dot as the one-pass floor, and
# so in a style of its own in the legend
COINCIDING_FLOORS = dict(color="black", ls="-.", lw=2)


def figure(table):
    """The Figure: per-iteration time against n (log-log), the bandwidth floors, one panel per (m, dtype).

    Each implementation keeps its colour of every figure (figures.colour) and its registry title, in one
    legend for all panels. A Gram route gets two lines of its colour: its iterations after the pass (solid
    squares) and its whole call, pass included, over its GRAM_ITERATIONS iterations (dotted), the
    per-iteration price to set beside a streaming line for 1000 iterations. Where the two floors coincide
    (m = 1: X and y have the same bytes) one line is drawn, in a style of its own, and its label says so.
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
            ax.loglog(floor.n_samples, floor.floor_per_iteration_s, **COINCIDING_FLOORS, gid="floor", label="_")
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
        handles += [Line2D([], [], **COINCIDING_FLOORS,
                           label="both floors, where they coincide (m = 1: 2 X.nbytes = (X + y).nbytes) / bandwidth")]
    ncol = 3 if cols > 1 else 2
    # handles long enough to show each floor's dash pattern
    fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=7.5, frameon=False, handlelength=4.5)
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


def title(name):
    """A reader's words for a row of scaling.csv: its registry title, or a scaling-only formulation's title."""
    return next((f.title for f in FORMULATIONS if f.name == name and f.title), None) or registry.label(name)


def _who(name, device, devices):
    """*title*, with its device only when the run used more than one."""
    return f"*{title(name)}*" + (f" ({device})" if len(devices) > 1 else "")


def _x(ratio):
    """A ratio in words: 18x, 1.8x, 0.0091x (two figures, what a ratio of two medians carries)."""
    return f"{float(f'{ratio:.2g}'):g}x"


def numpy_forms(table):
    """Per (m, dtype) at the target n: each numpy streaming row's ratio to the two-pass floor, best first."""
    table = complete(table)
    n = _target_n(table)
    rows = table[(table.n_samples == n) & (table.framework == "numpy") & (table.route == "streaming")]
    return rows.sort_values(["n_features", "dtype", "ratio_to_floor"])


def _wins_from(faster, slower):
    """The smallest n from which `faster` (a Series over n) is below `slower` at every larger n both measured, or None."""
    both = faster.to_frame("a").join(slower.rename("b"), how="inner").sort_index()
    wins = (both.a < both.b).to_numpy()
    return next((int(both.index[k]) for k in range(len(wins)) if wins[k:].all()), None)


def gram_against_reference(table):
    """Per Gram route, device, m and dtype: from which measured n its 1000 iterations (pass included) beat the
    reference's streaming loop at every larger n, and both times at the largest n."""
    table = complete(table)
    out = []
    for (name, device, m, dtype), part in table[table.route == "gram"].groupby(
            ["implementation", "device", "n_features", "dtype"]):
        ref = table[(table.implementation == registry.REFERENCE) & (table.n_features == m) & (table.dtype == dtype)]
        if ref.empty:
            continue
        gram, base = part.set_index("n_samples").time_1000_s, ref.set_index("n_samples").time_1000_s
        common = sorted(set(gram.index) & set(base.index))
        if not common:
            continue
        out.append({"implementation": name, "device": device, "n_features": m, "dtype": dtype,
                    "from_n": _wins_from(gram, base), "smallest_n": common[0], "largest_n": common[-1],
                    "gram_1000_s": gram[common[-1]], "reference_1000_s": base[common[-1]]})
    return pd.DataFrame(out)


def loops_beating_reference(table):
    """{(implementation, device): [(n, m, dtype), ...]}: where another framework's streaming loop beat the reference's
    per iteration beyond the noise (its interval's slow end below the reference's fast end); None without intervals."""
    table = complete(table)
    table = table[table.status == "ok"] if "status" in table else table
    low, high = ("median_low_s", "median_high_s") if table.median_low_s.notna().any() else ("min_s", "max_s")
    if not {low, high} <= set(table):
        return None  # no spread measured: no noise to judge beyond
    framework = registry.get(registry.REFERENCE).framework
    wins = {}
    for (n, m, dtype), point in table[table.route == "streaming"].groupby(["n_samples", "n_features", "dtype"]):
        ref = point[point.implementation == registry.REFERENCE]
        if ref.empty:
            continue
        fastest = (ref[low] / ref.iterations).min()
        for r in point[point.framework != framework].itertuples():
            if getattr(r, high) / r.iterations < fastest:
                wins.setdefault((r.implementation, r.device), []).append((int(n), int(m), dtype))
    return wins


def _points(points, dtypes):
    """'100x1 and 10,000x32' (n x m), each with its dtype when the run had more than one."""
    return join(f"{n:,}x{m}" + (f" ({dtype})" if len(dtypes) > 1 else "") for n, m, dtype in sorted(points))


def _pass_in_iterations(table, dtype):
    """' Its pass took the time of 4.4 (m = 32) iterations of *numpy, by hand* at n = ...': the slowest Gram pass
    per m at the largest n, counted in the reference's streaming iterations."""
    n = int(table.n_samples.max())
    at = table[(table.n_samples == n) & (table.dtype == dtype)]
    ref = at[at.implementation == registry.REFERENCE].set_index("n_features").per_iteration_s
    passes = at[(at.route == "gram") & at.one_pass_s.notna()].groupby("n_features").one_pass_s.max()
    counts = [(m, passes[m] / ref[m]) for m in passes.index if m in ref.index]
    if not counts:
        return ""
    return (" Its pass took the time of " + join(f"{k:.2g} (m = {m})" for m, k in counts) + " iterations of "
            f"*{title(registry.REFERENCE)}* at n = {n:,}: any longer run favours it.")


def _answer_lines(table, devices, dtypes):
    """The section's answer: when the Gram route or another framework's loop beats streaming numpy, and where
    streaming rows reach their floor."""
    ref = f"*{title(registry.REFERENCE)}*"
    lines = []
    against = gram_against_reference(table)
    if len(against):
        said = {}  # words on where it wins -> the routes they hold for, so equal routes share one clause
        for (name, device), rows in against.groupby(["implementation", "device"], sort=False):
            by_n = {}
            for r in rows.itertuples():
                by_n.setdefault(None if pd.isna(r.from_n) else int(r.from_n), []).append(
                    f"{r.n_features}" + (f" ({r.dtype})" if len(dtypes) > 1 else ""))
            words = "; ".join((f"from n = {n:,}" + (" (the smallest measured)" if n == rows.smallest_n.min() else "")
                               if n is not None else f"at no n up to {rows.largest_n.max():,}")
                              + f" at m = {join(ms)}" for n, ms in by_n.items())
            said.setdefault(words, []).append(_who(name, device, devices))
        m = against.n_features.max()
        case = against[against.n_features == m]
        dtype = "float64" if (case.dtype == "float64").any() else case.dtype.iloc[0]
        case = case[case.dtype == dtype]
        case = case[case.largest_n == case.largest_n.max()]
        lines.append(
            f"- **The Gram route** ran 1000 iterations, its one pass over X included, faster than {ref}: "
            + "; ".join(f"{join(who)} {words}" for words, who in said.items())
            + f"; at n = {case.largest_n.max():,}, m = {m}, {dtype}, "
            + _span(case.reference_1000_s / case.gram_1000_s, ".3g") + "x faster." + _pass_in_iterations(table, dtype)
            + " The price is digits of its loss (see *The Gram route's price in precision*).")
    wins = loops_beating_reference(table)
    others = table[(table.route == "streaming") & (table.framework != registry.get(registry.REFERENCE).framework)]
    if len(others) and wins is not None:
        where = {}  # the sizes -> the loops that won at exactly those
        for (name, device), p in wins.items():
            where.setdefault(_points(p, dtypes), []).append(_who(name, device, devices))
        lines.append(f"- **A framework's streaming loop** beat {ref} per iteration beyond the noise"
                     + (f", in {dtypes[0]}," if len(dtypes) == 1 else "") + " only at n x m = "
                     + "; ".join(f"{sizes} ({join(who)})" for sizes, who in where.items()) + "."
                     if wins else
                     f"- **No framework's streaming loop** beat {ref} per iteration beyond the noise at any size "
                     f"measured (up to n = {int(table.n_samples.max()):,}, in {join(dtypes)}).")
    streaming = table[table.route == "streaming"]
    reached = {}
    total = 0
    for (name, device, m, dtype), rows in streaming.groupby(["implementation", "device", "n_features", "dtype"]):
        total += 1
        start = transition_n(rows)
        if start:
            reached.setdefault(start, []).append(f"{_who(name, device, devices)} (m = {m}"
                                                 + (f", {dtype}" if len(dtypes) > 1 else "") + ")")
    if total:
        within = f"within {BANDWIDTH_BOUND:g}x of the floor"
        lines.append(("- **Memory-bound** (" + within + " at every larger n) only: "
                      + "; ".join(f"from n = {n:,}, {join(who)}" for n, who in sorted(reached.items())) + "."
                      if reached else
                      f"- **No streaming way** was {within} at the largest n it ran at."))
    return lines


def _times_table(table, devices, dtypes):
    """At the largest n: each row's time per iteration and its ratio to the two-pass floor, one column per (m, dtype)."""
    n = int(table.n_samples.max())
    big = table[table.n_samples == n]
    keys = sorted(big.groupby(["n_features", "dtype"]).groups)
    head = [f"m = {m}" + (f", {dtype}" if len(dtypes) > 1 else "") for m, dtype in keys]
    floors = big.drop_duplicates(["n_features", "dtype"]).set_index(["n_features", "dtype"]).floor_per_iteration_s
    rows = [["floor: X read twice"] + [f"{floors[k] * 1e3:.3g}" for k in keys]]
    per = big.assign(shown=np.where(big.route == "gram", big.time_1000_s / 1000, big.per_iteration_s))
    order = per[per.n_features == keys[-1][0]].groupby(["implementation", "device"]).shown.min()
    named = sorted(per.groupby(["implementation", "device"]).groups,
                   key=lambda k: (order.get(k, np.inf), k))
    for name, device in named:
        mine = per[(per.implementation == name) & (per.device == device)].set_index(["n_features", "dtype"])
        rows.append([title(name) + (f" ({device})" if len(devices) > 1 else "")]
                    + [f"{mine.shown[k] * 1e3:.3g} ({_x(mine.shown[k] / floors[k])})" if k in mine.index else "-"
                       for k in keys])
    return (["| way of training | " + " | ".join(head) + " |", "|---" * (len(keys) + 1) + "|"]
            + ["| " + " | ".join(r) + " |" for r in rows])


def _streaming_reason(point, best):
    """Why numpy's fastest streaming form missed its floor target at one point, from the kernels timed beside it."""
    def kernel(name):
        column = kernel_column(name)
        return point[column].iloc[0] if column in point and len(point) else np.nan

    one, matmul, vector = kernel("X * w into R"), kernel("X @ W"), kernel("X * w")
    if best.n_features != 1:  # the step's vector operations outweigh X only when X has one column
        return f"no probe at m = {best.n_features} separates the cause"
    text = f"its step makes {VECTOR_OPERATIONS} passes over n-long vectors, the floor counts 2"
    if math.isfinite(one):
        one_ratio = one / best.floor_per_iteration_s
        text += f"; one, timed alone, took {one_ratio:.2f}x the floor"
        if MIN_VECTOR_OPERATIONS * one_ratio > STREAMING_TARGET:
            text += (f". numpy runs one whole-vector operation at a time, and a step needs at least "
                     f"{MIN_VECTOR_OPERATIONS} (one forms the residuals from x and y, one reduces them against x), so "
                     f"{MIN_VECTOR_OPERATIONS * one_ratio:.2f}x at best: without fused loops the target cannot be met")
    if best.implementation == registry.REFERENCE and math.isfinite(matmul) and math.isfinite(vector):
        text += f"; its `X @ W` (BLAS's matrix-vector routine) took {_x(matmul / vector)} the time of `X * w`"
    return text


def _pass_reason(r):
    """Why a Gram pass missed its target: the share of one read of the data (and of the cast, when timed) in its time,
    then its cached-pass probe when measured, else its rate against the square-GEMM rate."""
    text = f"reading X and y once: {r.one_pass_floor_s / r.one_pass_s:.2f} of its time"
    cast = getattr(r, "cast_s", np.nan)
    if not pd.isna(cast):
        text += f"; converting {'x and y' if r.n_features == 1 else 'X'} to float64: {cast / r.one_pass_s:.2f}"
        # a lower bound of this pass: its conversion as timed, then its flops at the square-GEMM rate, one after the other
        arithmetic = gram_flops(r.n_samples, r.n_features) / (r.gemm_gflops * 1e9)
        if (cast + arithmetic) / r.gram_pass_floor_s > GRAM_PASS_TARGET:
            return text + (f"; that conversion alone, done as the pass does it and timed in the same rounds, took "
                           f"{cast / r.gram_pass_floor_s:.2f}x the floor, and its arithmetic at the square-GEMM rate "
                           f"would add {arithmetic / r.gram_pass_floor_s:.2f}x: a pass that converts, then sums in "
                           "float64, cannot come within the target on this machine")
    rate = f"{r.pass_gflops:.3g} GFLOP/s ({r.pass_gflops / r.gemm_gflops:.2f} of the square-GEMM rate)"
    cached = getattr(r, "cached_pass_s", np.nan)
    if pd.isna(cached):
        return text + f"; the rest is arithmetic, at {rate}"
    ratio = cached / r.gram_pass_floor_s
    if ratio > GRAM_PASS_TARGET:
        return text + f"; on data in cache it still took {ratio:.2f}x the floor: its arithmetic, at {rate}, bounds it"
    return text + f"; on data in cache it took {ratio:.2f}x the floor: the rest is reading X"


def _span(values, fmt):
    """'12.0 to 17.7', or one number when every value prints alike."""
    low, high = format(values.min(), fmt), format(values.max(), fmt)
    return low if low == high else f"{low} to {high}"


def _at(m, dtype, dtypes):
    """'m = 32', with the dtype when the run had more than one."""
    return f"m = {m}" + (f", {dtype}" if len(dtypes) > 1 else "")


def _target_lines(table, devices, dtypes):
    """Issue 29's targets in one table: numpy's streaming step, the Gram pass and the short run, met or missed, with
    the measured reason where missed."""
    n = _target_n(table)
    ref = registry.REFERENCE
    framework = registry.get(ref).framework
    at = table[table.n_samples == n]
    rows = []
    for (m, dtype), forms in numpy_forms(table).groupby(["n_features", "dtype"]):
        best = forms.iloc[0]
        missed = best.ratio_to_floor > STREAMING_TARGET
        rows.append([f"numpy's fastest streaming form, {_at(m, dtype, dtypes)}: within {STREAMING_TARGET:g}x of the floor",
                     f"{best.ratio_to_floor:.2f}x ({_who(best.implementation, best.device, devices)})",
                     "missed" if missed else "met",
                     _streaming_reason(at[(at.n_features == m) & (at.dtype == dtype)], best) if missed else ""])
    gram = at[(at.route == "gram") & (at.framework == framework)].sort_values(["implementation", "n_features", "dtype"])
    for r in gram[gram.gram_pass_floor_s.notna()].itertuples():
        missed = r.pass_ratio_to_floor > GRAM_PASS_TARGET
        rows.append([f"{_who(r.implementation, r.device, devices)}'s pass, {_at(r.n_features, r.dtype, dtypes)}: within "
                     f"{GRAM_PASS_TARGET:g}x of its floor", f"{r.pass_ratio_to_floor:.3g}x", "missed" if missed else "met",
                     _pass_reason(r) if missed else ""])
    for r in gram[gram.n_features == gram.n_features.max()].itertuples():  # the target's case: the widest X
        base = at[(at.implementation == ref) & (at.n_features == r.n_features) & (at.dtype == r.dtype)]
        if base.empty:
            continue
        gain = base.time_short_s.iloc[0] / r.time_short_s
        rows.append([f"{_who(r.implementation, r.device, devices)}, {SHORT_RUN} iterations with its pass, "
                     f"{_at(r.n_features, r.dtype, dtypes)}: {SHORT_RUN_TARGET:g}x faster than *{title(ref)}*",
                     f"{gain:.3g}x", "met" if gain >= SHORT_RUN_TARGET else "missed",
                     "" if gain >= SHORT_RUN_TARGET else
                     f"{SHORT_RUN_TARGET:g}x needs {base.time_short_s.iloc[0] / SHORT_RUN_TARGET:.3g} s; the pass alone "
                     f"took {r.one_pass_s:.3g} s"])
    if not rows:
        return []
    lines = ["", f"**Targets** at n = {n:,}. A Gram pass's floor is the slower of its arithmetic, "
             "2 n (m + 1)^2 flops at the rate of a square float64 matrix product (the square-GEMM rate), and one read "
             "of X and y:", "", "| target | measured | | why, where missed |", "|---|---|---|---|"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


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


def _blocked_lines(table, devices, dtypes):
    """One sentence per blocked loop: its ratio to the one-pass floor and to the same loop unblocked."""
    pairs = blocked_against_graph(table)
    if pairs.empty:
        return []

    return ["", " ".join(
        f"{_who(r.blocked, r.device, devices)} reads X in blocks at each step; at {_at(r.n_features, r.dtype, dtypes)} "
        f"it took {r.blocked_ratio_to_one_pass_floor:.3g}x its one-pass floor, X and y read once (target "
        f"{STREAMING_TARGET:g}x: {'met' if r.blocked_ratio_to_one_pass_floor <= STREAMING_TARGET else 'missed'}), "
        + ("a tie with" if overlap(r.blocked_interval, r.graph_interval) else
           f"{r.blocked_per_iteration_s / r.graph_per_iteration_s:.2f}x the time of")
        + f" {_who(r.graph, r.device, devices)}." for r in pairs.itertuples())]


def report_section(table):
    """Markdown: the answer (when reading X once, or a framework's loop, beats numpy), each row's time against its
    floor at the largest n, issue 29's targets met or missed with their measured reasons, and pointers."""
    table = complete(table)
    devices, dtypes = sorted(set(table.device)), sorted(set(table.dtype))
    n_max, n_target = int(table.n_samples.max()), _target_n(table)
    points = table.drop_duplicates(["n_samples", "n_features", "dtype"])
    interleaved = points.gemm_gflops.notna().any()
    lines = ["## Scaling against the memory roofline", "", f"![per-iteration time against n]({NAME}.png)", "",
             f"Every way here ran on the {join(d.upper() if d == 'cpu' else d for d in devices)}, in {join(dtypes)}, "
             f"at n = {int(table.n_samples.min()):,} to {n_max:,} samples and m = {join(sorted(set(table.n_features)))} "
             "features. The **floor** of each size is the least time to read X twice, as one iteration does (X W, then "
             "X^T r), at the memory bandwidth measured "
             + ("in the same rounds: " if interleaved else "once before the rows (an older run): ")
             + _span(points.bandwidth_gbs, ".1f") + f" GB/s here. A way within {BANDWIDTH_BOUND:g}x of it is "
             "memory-bound: reading X is most of its time.", ""]
    lines += _answer_lines(table, devices, dtypes)
    if n_target != TARGET_N:
        lines += ["", f"This run measured up to n = {n_max:,} only; the targets below are judged there (the default "
                  f"run measures n = {TARGET_N:,})."]
    gram = table[table.route == "gram"]
    lines += ["", f"At n = {n_max:,}, time per iteration in ms and its ratio to the floor"
              + (f"; a Gram route's is its whole call, pass included, over its {GRAM_ITERATIONS} iterations"
                 if len(gram) else "") + ":", ""] + _times_table(table, devices, dtypes)
    notes = []
    if len(gram):
        notes.append(f"After its pass, a Gram route's iterations took {_span(gram.per_iteration_s * 1e6, '.3g')} us "
                     "each at every n: they never read X, hence its time below the floor.")
    notes += [f"*{f.title}* is timed here only: {f.summary}." for f in FORMULATIONS
              if f.title and (table.implementation == f.name).any()]
    if notes:
        lines += ["", " ".join(notes)]
    lines += _target_lines(table, devices, dtypes) + _blocked_lines(table, devices, dtypes)
    lines += ["", "How the floors, probes and iteration counts are chosen: [docs/method.md](../docs/method.md#scaling). "
              f"Every point with both floors, the probes and each Gram stage: `{NAME}.csv`."]
    return "\n".join(lines)


FINDINGS = {
    "scaling_gram_pays": ("**On large data, reading it once pays:** at n = {n:n}, m = {m:n}, the Gram route runs 1000 "
                          "iterations {gains:x} faster than streaming ({dtype}, its one pass included): {times:l}."),
    "scaling_gram_not_always": ("**At n = {n:n}, m = {m:n}, the Gram route's 1000 iterations are not always faster than "
                                "streaming** ({dtype}, its one pass included): {times:l}."),
    "scaling_where": ("The Gram route reads X once for its sufficient statistics (G = [X, 1]^T [X, 1], c = [X, 1]^T y "
                      "and s = y^T y, all the loss and its gradient need), then takes each step in O(m^2); streaming "
                      "reads all of X at every step. Measured, the Gram route beats streaming for 1000 iterations "
                      "{where:l} (sizes measured from n = {smallest:n})."),
}


def findings(table):
    """Two Findings: whether reading the data once (the Gram route) pays at the largest n, with the times; where it
    turns."""
    crossover = gram_crossover(table)
    if crossover.empty:
        return []
    # the headline case: the largest m, float32 when measured, numpy's pair first
    m = crossover.n_features.max()
    case = crossover[crossover.n_features == m]
    case = case[case.dtype == ("float32" if (case.dtype == "float32").any() else case.dtype.iloc[0])]
    gains = case.streaming_1000_s / case.gram_1000_s
    first = case.iloc[0]
    times = [f"*{title(r.streaming)}* {r.streaming_1000_s:.3g} s against *{title(r.implementation)}* "
             f"{r.gram_1000_s:.3g} s" for r in case.itertuples()]
    kind = "scaling_gram_pays" if (gains > 1).all() else "scaling_gram_not_always"
    where = [f"*{title(r.implementation)}* from n = {r.beats_streaming_from_n:,}" if not pd.isna(r.beats_streaming_from_n)
             else f"*{title(r.implementation)}* not within n = {r.largest_n:,}" for r in case.itertuples()]
    return [Finding(kind, dict(n=int(first.largest_n), m=int(m), dtype=first["dtype"],
                               gains=(float(gains.min()), float(gains.max())), times=times), FINDINGS[kind]),
            Finding("scaling_where", dict(where=where, smallest=int(first.smallest_n)), FINDINGS["scaling_where"])]
