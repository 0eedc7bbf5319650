"""Distributed: time per step against replicas and workers, the all-reduce's cost, and a model for 1 to 1024 workers.

Measured (kind "measured"): the GradientTape loop of tf_models/distributed.py under
MirroredStrategy over 1, 2 and 4 logical CPUs of one child process, and under
MultiWorkerMirroredStrategy over 1 and 2 worker processes on loopback, at several n (m = 32,
float32); one SUM all-reduce of m + 1 numbers (latency) and of a large vector (bandwidth) between
two workers; the Gram route's one pass and one O(m^2) iteration in numpy. Logical CPUs and
loopback workers share the same cores: they prove the mechanics and measure the synchronisation
cost, not a speed-up.

Stated (kind "stated"): a datacenter interconnect's latency and bandwidth, with their source.

Model (kind "model", comparisons/experiments/projection.py): time per step and per run of N iterations on
K = 1..1024 workers, by the per-step all-reduce route and by the Gram route, once with the
loopback figures and once with the datacenter ones, and the best worker count at each n.
"""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

import handrolled
from tf_models.distributed_bench import mirrored_key

from comparisons.experiments import projection
from comparisons.core import registry
from comparisons.processes.cluster import ClusterError, run_job
from comparisons.processes.isolated import Failure, python_module, run_child
from comparisons.output.prose import md_table
from comparisons.running.timing import time_calls
from comparisons.output.findings import Finding, joined

NAME = "distributed"
M = 32  # features
DTYPE = "float32"  # the steps' dtype (the usual training dtype); the Gram statistics travel in float64
GRAM_DTYPE = "float64"  # G, c, s accumulated and sent in float64: the Gram loss cancels digits (see the gram experiment)
ITERATIONS = 1000  # the lesson's N, for the per-run comparison of the two routes
WORKER_COUNTS = tuple(2 ** k for k in range(11))  # 1, 2, 4, ..., 1024
PROJECTED_N = (100, 10_000, 1_000_000, 100_000_000)
DATACENTER = projection.Network(
    name="datacenter", latency_s=0.6e-6, bandwidth=200e9 / 8,
    source="NVIDIA ConnectX-6 adapter user manual (docs.nvidia.com/networking/display/ConnectX6EN/Introduction): "
           "up to 200 Gb/s per port, sub-600 ns latency; hardware figures, so a best case: a collective library's "
           "software adds microseconds per message")


def plan(config):
    """Sizes, replica and worker counts, all-reduce sizes and per-call target for a run."""
    if config.full:
        return {"sizes": (100, 10_000, 100_000, 1_000_000), "replicas": (1, 2, 4), "workers": (1, 2),
                "large": 2 ** 22, "target_s": 0.2, "repeats": 3, "gram_rows": 400_000}
    # quick: one child for 1 and 2 replicas, one 2-worker cluster (every other process start costs ~5 s of CPU)
    return {"sizes": (100, 100_000), "replicas": (1, 2), "workers": (2,),
            "large": 2 ** 20, "target_s": 0.05, "repeats": 1, "gram_rows": 100_000}


# ------------------------------------------------------------------------------- measurements

def measure_gram(rows, m=M, iterations=200, seed=0):
    """(seconds per Gram entry of the one pass, seconds per O(m^2) iteration), numpy float64, best of 2 after a warm-up.

    Timed on the study's own route: handrolled.sufficient_statistics (the pass, block by block, its rows in one
    range: the model gives each device its own share, not the study's split over this machine's cores) and
    handrolled.descend_gram (the iterations, loss recorded each step).
    """
    rng = np.random.default_rng(seed)
    X, y = rng.standard_normal((rows, m)), rng.standard_normal((rows, 1))
    stats, one_pass = time_calls(lambda: handrolled.sufficient_statistics(X, y), 2)  # the warm-up's statistics
    W0 = np.zeros((m, 1))
    _, loop = time_calls(lambda: handrolled.descend_gram(stats, W0, 0.0, 1e-3, iterations), 2)
    return one_pass.min_s / (rows * (m + 1) * (m + 2) / 2), loop.min_s / iterations


def mirrored_groups(replica_counts):
    """{split: [replica counts]}: every count in one process split into the largest.

    Each device set gets its own MirroredStrategy with its own collective keys
    (tf_models.distributed.mirrored_strategy); without that, a second strategy with another group
    size failed here ("joining a group with size 2, but that group has size 4").
    """
    return {max(replica_counts): sorted(replica_counts)}


def _mirrored(plan_):
    """{(replicas, n): outcome dict or Failure}, one child process per group of mirrored_groups."""
    found = {}
    for split, counts in mirrored_groups(plan_["replicas"]).items():
        keys = [mirrored_key(r, n) for r in counts for n in plan_["sizes"]]

        def write_job(path, remaining, split=split):
            path.write_text(json.dumps({"split": split, "configs": remaining, "m": M, "dtype": DTYPE,
                                        "target_s": plan_["target_s"], "repeats": plan_["repeats"]}))
        results = run_child(python_module("tf_models.distributed_bench"), keys, write_job, timeout_s=120.0)
        found.update({(r, n): results[mirrored_key(r, n)] for r in counts for n in plan_["sizes"]})
    return found


def _cluster(plan_, workers):
    """The chief's result of the benchmark task on `workers` loopback workers, or a one-line error string."""
    job = {"task": "benchmark" if workers > 1 else "time_steps", "sizes": list(plan_["sizes"]), "m": M,
           "dtype": DTYPE, "target_s": plan_["target_s"], "repeats": plan_["repeats"], "collective_timeout_s": 60,
           "allreduce": [{"numbers": M + 1, "rounds": 200}, {"numbers": plan_["large"], "rounds": 3}]}
    try:
        return run_job(job, workers=workers, timeout_s=240.0)
    except ClusterError as exc:
        return str(exc)


def _step_row(strategy, replicas, workers, n, outcome):
    row = {"kind": "measured", "what": "step", "strategy": strategy, "replicas": replicas, "workers": workers,
           "n_samples": n, "n_features": M, "dtype": DTYPE}
    if isinstance(outcome, (Failure, str)):
        reason = outcome if isinstance(outcome, str) else f"{outcome.reason}: {outcome.last_stderr}"
        return {**row, "note": f"failed: {reason}"}
    return {**row, "seconds_per_step": outcome["seconds_per_step"], "first_call_s": outcome["first_call_s"],
            "iterations": outcome["iterations"]}


def network_from_allreduce(small, large, workers):
    """Loopback latency and bandwidth from two all-reduce times (ring model: 2(K-1) alpha + 2(K-1)/K B / beta).

    small and large are (bytes, seconds); the latency comes from the small one alone, the
    bandwidth from the difference, so the latency is not counted twice.
    """
    rounds = 2 * (workers - 1)
    latency = small[1] / rounds
    extra = max(large[1] - small[1], 1e-12)
    bandwidth = 2 * (workers - 1) / workers * (large[0] - small[0]) / extra
    return latency, bandwidth


def compute_rates(steps, gram_product_s, gram_iteration_s):
    """projection.Compute from the one-replica steps: overhead at the smallest n, cost per value from the slope."""
    one = steps[(steps.strategy == "mirrored") & (steps.replicas == 1)].dropna(subset=["seconds_per_step"])
    one = one.sort_values("n_samples")
    if len(one) < 2:
        raise RuntimeError("the model needs one-replica step times at two sizes and the run measured "
                           f"{len(one)}; see the failed rows of the mirrored measurements")
    small, big = one.iloc[0], one.iloc[-1]
    slope = (big.seconds_per_step - small.seconds_per_step) / ((big.n_samples - small.n_samples) * (M + 1))
    return projection.Compute(step_overhead_s=float(small.seconds_per_step), value_s=max(float(slope), 1e-15),
                              gram_product_s=gram_product_s, gram_iteration_s=gram_iteration_s)


def projection_rows(compute, networks, sizes=PROJECTED_N, worker_counts=WORKER_COUNTS, iterations=ITERATIONS):
    """Model rows: per-step and Gram routes on each network, each n and K, with the best K at that n."""
    step_bytes, gram_bytes = np.dtype(DTYPE).itemsize, np.dtype(GRAM_DTYPE).itemsize
    rows = []
    for network in networks:
        for n in sizes:
            best_step = projection.step_best_workers(n, M, step_bytes, compute, network, max(worker_counts))
            best_gram = projection.gram_best_workers(n, M, gram_bytes, compute, network, max(worker_counts))
            for k in worker_counts:
                step = projection.step_s(k, n, M, step_bytes, compute, network)
                common = {"kind": "model", "what": "projection", "network": network.name, "workers": k,
                          "n_samples": n, "n_features": M, "iterations": iterations}
                rows.append({**common, "route": "per_step", "dtype": DTYPE, "seconds_per_step": step,
                             "seconds_per_run": iterations * step, "best_workers": best_step,
                             "numbers": projection.gradient_payload(M),
                             "bytes": projection.gradient_payload(M) * step_bytes})
                rows.append({**common, "route": "gram", "dtype": GRAM_DTYPE,
                             "seconds_per_run": projection.gram_route_s(k, n, M, iterations, gram_bytes, compute, network),
                             "best_workers": best_gram, "numbers": projection.gram_payload(M),
                             "bytes": projection.gram_payload(M) * gram_bytes})
    return rows


def run(ctx):
    """Measure steps and all-reduces in children, the Gram route in numpy, then project; the long table."""
    config = ctx.config
    plan_ = plan(config)
    say = ctx.progress or (lambda text: None)
    say("distributed: MirroredStrategy steps (logical CPUs)")
    mirrored = _mirrored(plan_)
    rows = [_step_row("mirrored", r, 1, n, outcome) for (r, n), outcome in mirrored.items()]
    allreduce = []
    for workers in plan_["workers"]:
        say(f"distributed: MultiWorkerMirroredStrategy, {workers} workers")
        result = _cluster(plan_, workers)
        by_n = {s["n"]: s for s in result.get("steps", [])} if isinstance(result, dict) else {}
        rows += [_step_row("multi_worker", 1, workers, n, by_n.get(n, result if isinstance(result, str) else
                                                                      "no result for this n"))
                 for n in plan_["sizes"]]
        if isinstance(result, dict):
            allreduce += result.get("allreduce", [])
    for a in allreduce:
        rows.append({"kind": "measured", "what": "allreduce", "strategy": "multi_worker", "workers": a["workers"],
                     "numbers": a["numbers"], "bytes": a["bytes"], "seconds": a["seconds"], "iterations": a["rounds"],
                     "first_call_s": a["first_call_s"], "dtype": DTYPE})
    say("distributed: Gram route in numpy")
    gram_product_s, gram_iteration_s = measure_gram(plan_["gram_rows"])
    rows += [{"kind": "measured", "what": "gram_pass", "n_samples": plan_["gram_rows"], "n_features": M,
              "dtype": GRAM_DTYPE, "seconds": gram_product_s * plan_["gram_rows"] * (M + 1) * (M + 2) / 2,
              "note": "numpy [X, 1]^T [X, 1], [X, 1]^T y, y^T y"},
             {"kind": "measured", "what": "gram_iteration", "n_features": M, "dtype": GRAM_DTYPE,
              "seconds": gram_iteration_s, "note": "numpy: G theta, the Gram-form loss and the update"}]
    table = pd.DataFrame(rows)
    networks = [DATACENTER]
    reduce_rows = table[table.what == "allreduce"].sort_values("bytes")
    if len(reduce_rows) >= 2:
        small, large = reduce_rows.iloc[0], reduce_rows.iloc[-1]
        latency, bandwidth = network_from_allreduce((small.bytes, small.seconds), (large.bytes, large.seconds),
                                                    int(small.workers))
        networks.insert(0, projection.Network("loopback", latency, bandwidth,
                                              f"measured here: all-reduces of {int(small.numbers)} and "
                                              f"{int(large.numbers)} numbers between {int(small.workers)} workers"))
    compute = compute_rates(table[table.what == "step"], gram_product_s, gram_iteration_s)
    inputs = [{"kind": "measured" if net.name == "loopback" else "stated", "what": "network", "network": net.name,
               "latency_s": net.latency_s, "bandwidth_bytes_s": net.bandwidth, "note": net.source} for net in networks]
    inputs.append({"kind": "measured", "what": "compute", "seconds": compute.step_overhead_s,
                   "value_s": compute.value_s, "note": "one-replica steps: overhead at the smallest n (seconds), "
                                                        "seconds per value of [X, 1] from the slope to the largest"})
    model = pd.DataFrame(inputs + projection_rows(compute, networks))
    model.to_csv(Path(ctx.out_dir) / f"{NAME}_projection.csv", index=False)
    return pd.concat([table, model], ignore_index=True)


# ------------------------------------------------------------------------------- figure and report

COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")  # the model's n
# one meaning per line style in all three panels, and the network as the marker
STYLE = {"measured": "-", "allreduce": ":", "per_step": "--", "gram": "-."}
NETWORK_MARKER = {"loopback": "s", "datacenter": ""}
ROUTE_WORDS = {"per_step": "per-step route", "gram": "Gram route"}
GRAM_BAND, GRAM_ALPHA = 6, 0.35  # the Gram route's pale band: wide enough that a dashed line inside it shows


def _setting(row):
    return (f"{int(row.replicas)} replica{'s' if row.replicas > 1 else ''}" if row.strategy == "mirrored"
            else f"{int(row.workers)} worker{'s' if row.workers > 1 else ''}")


def _model_line(ax, part, column, network, route, color, n, scale=1.0):
    """One model curve: its route as the line style (the Gram route a pale band), its network as the marker
    (hollow squares: loopback); values times `scale` (1e3: ms)."""
    marker = NETWORK_MARKER.get(network, "o")
    label = f"model, {ROUTE_WORDS[route]} ({network}): n = {_power(n)}"
    if route == "gram":  # under the dashed line: where the two routes coincide, the dash shows inside the band
        ax.loglog(part.workers, part[column] * scale, "-", color=color, lw=GRAM_BAND, alpha=GRAM_ALPHA,
                  solid_capstyle="butt", label=label, zorder=1)
    else:
        ax.loglog(part.workers, part[column] * scale, STYLE[route], color=color, marker=marker or None, mfc="none",
                  ms=4, label=label, zorder=2)


def figure(table):
    """The Figure: measured steps (left), the per-step model (middle), whole runs by both routes (right).

    Line styles mean the same in every panel: solid = measured step, dotted = measured all-reduce,
    dashed = the model's per-step route, a pale band = the model's Gram route (so a dashed line that
    coincides with it shows inside it); hollow squares = loopback figures. The model's colour is its n,
    one key for both model panels; a measured step has its implementation's colour of every figure.
    Per-step times in ms, as the tables give them; whole runs in s.
    """
    from matplotlib.lines import Line2D

    from comparisons.output.figures import colour, legend_outside, plt

    fig, (ax_m, ax_s, ax_r) = plt.subplots(1, 3, figsize=(17, 6.4))
    steps = table[(table.kind == "measured") & (table.what == "step")].dropna(subset=["seconds_per_step"])
    for (strategy, replicas, workers), rows in steps.groupby(["strategy", "replicas", "workers"]):
        rows = rows.sort_values("n_samples")
        # the measured loop is the registry's tape loop of that kind of distribution: its colour of every figure
        kind = "replicas" if strategy == "mirrored" else "workers"
        name = next((n for n, i in registry.REGISTRY.items() if i.distributed == kind and i.framework == "tensorflow"
                     and i.checks_gradient), "")
        ax_m.loglog(rows.n_samples, rows.seconds_per_step * 1e3, STYLE["measured"],
                    marker={1: "o", 2: "s", 4: "D"}.get(int(max(replicas, workers)), "^"), color=colour(name),
                    label=f"measured: {strategy}, {_setting(rows.iloc[0])}")
    latency = table[(table.what == "allreduce")].sort_values("bytes")
    if not latency.empty:
        small = latency.iloc[0]
        ax_m.axhline(small.seconds * 1e3, color="black", lw=1.2, ls=STYLE["allreduce"],
                     label=f"measured: one all-reduce of {int(small.numbers)} numbers, {int(small.workers)} workers")
    ax_m.set(xlabel="n (rows)", ylabel="ms per step (best of repeats; log)",
             title=f"MEASURED on this machine (m = {M}, {DTYPE})\nlogical CPUs and loopback workers share one machine's cores")
    model = table[(table.kind == "model") & (table.what == "projection")]
    sizes = sorted(model.n_samples.unique())
    colours = {n: COLORS[k % len(COLORS)] for k, n in enumerate(sizes)}
    for (network, route), rows in model.groupby(["network", "route"]):
        for n in sizes:
            part = rows[rows.n_samples == n].sort_values("workers")
            if route == "per_step":
                _model_line(ax_s, part, "seconds_per_step", network, route, colours[n], n, scale=1e3)
                best = int(part.best_workers.iloc[0])  # any K, not only the grid's: the model gives its time
                ax_s.loglog([best], [projection_at(table, network, route, n, best)["seconds_per_step"] * 1e3], "*",
                            color=colours[n], ms=11, label="_best K")
            if network == "datacenter":
                _model_line(ax_r, part, "seconds_per_run", network, route, colours[n], n)
    ax_s.set(xlabel="workers K", ylabel="ms per step (log)",
             title="MODEL: per-step all-reduce route\nhollow squares: loopback figures, plain: datacenter; * = best K")
    ax_r.set(xlabel="workers K", ylabel=f"seconds for {ITERATIONS} iterations (log)",
             title=f"MODEL, datacenter figures: a run of {ITERATIONS} iterations\nper-step route (dashed) vs Gram "
                   "route (pale band)")
    for ax in (ax_m, ax_s, ax_r):
        ax.grid(True, which="both", alpha=0.3)
    legend_outside(ax_m, fontsize=7)
    key = [Line2D([], [], color=colours[n], lw=3, label=f"n = {_power(n)}") for n in sizes]
    key += [Line2D([], [], color="dimgray", ls=STYLE["per_step"], label="model, per-step route"),
            Line2D([], [], color="dimgray", lw=GRAM_BAND, alpha=GRAM_ALPHA, label="model, Gram route"),
            Line2D([], [], color="dimgray", ls=STYLE["per_step"], marker="s", mfc="none", ms=4,
                   label="loopback figures (hollow squares)"),
            Line2D([], [], color="dimgray", ls="", marker="*", ms=9, label="best K")]
    fig.legend(handles=key, loc="lower center", bbox_to_anchor=(0.67, 0.0), ncol=4, fontsize=7, title="both models",
               title_fontsize=7)
    fig.suptitle("Line styles mean the same in every panel: solid = measured step, dotted = measured all-reduce, "
                 "dashed = model, per-step route, pale band = model, Gram route", fontsize=9)
    fig.tight_layout(rect=(0, 0.13, 1, 1))  # the models' key below them, outside every axes
    return fig


def _power(n):
    """100 -> '10^2' (the projected sizes are powers of ten)."""
    exponent = math.log10(n)
    return f"10^{exponent:.0f}" if exponent == round(exponent) else f"{n:,}"


def plot(table, out_dir):
    """distributed.png from the table alone."""
    from comparisons.output.figures import save

    return [save(figure(table), Path(out_dir) / f"{NAME}.png")]


def _network(table, name):
    rows = table[(table.what == "network") & (table.network == name)]
    return None if rows.empty else rows.iloc[0]


def _ms(seconds):
    return "" if pd.isna(seconds) else f"{seconds * 1e3:.3g}"


def _steps_table(steps):
    """Markdown rows: ms per step, n down, each strategy and replica/worker count across."""
    steps = steps.assign(setting=[f"{r.strategy}, {_setting(r)}" for r in steps.itertuples()])
    settings = list(dict.fromkeys(steps.sort_values(["strategy", "replicas", "workers"]).setting))
    cells = steps.assign(ms=["failed" if pd.isna(s) else _ms(s) for s in steps.seconds_per_step]).pivot_table(
        index="n_samples", columns="setting", values="ms", aggfunc="first").reindex(columns=settings).fillna("")
    cells = cells.rename(columns=lambda s: f"{s} (ms/step)")
    lines = [md_table(cells.reset_index().assign(n_samples=lambda t: t.n_samples.map(lambda n: f"{int(n):,}"))
                      .rename(columns={"n_samples": "n"}))]
    failed = steps[steps.seconds_per_step.isna()] if "note" in steps else steps.iloc[:0]
    lines += [f"\nFailed: {r.setting} at n = {int(r.n_samples):,}: {r.note}" for r in failed.itertuples()]
    return lines


def _model_table(table):
    """Markdown rows: per network and n, the best K of each route and what a whole run costs at it."""
    model = table[(table.kind == "model") & (table.what == "projection")]
    rows = []
    for (network, n), part in model.groupby(["network", "n_samples"], sort=False):
        step, gram = part[part.route == "per_step"], part[part.route == "gram"]
        one = step[step.workers == 1].iloc[0]
        best_k, gram_k = int(step.best_workers.iloc[0]), int(gram.best_workers.iloc[0])
        at_best = projection_at(table, network, "per_step", n, best_k)
        gram_best = projection_at(table, network, "gram", n, gram_k)
        rows.append({"network": network, "n": f"{int(n):,}", "per-step route: best K": _capped(best_k),
                     "ms/step at K = 1": _ms(one.seconds_per_step), "ms/step at best K": _ms(at_best["seconds_per_step"]),
                     "Gram route: best K": _capped(gram_k),
                     f"Gram route, {ITERATIONS} iterations at its best K (s)": f"{gram_best['seconds_per_run']:.3g}"})
    lines = [md_table(pd.DataFrame(rows))]
    lines += ["", f"{ITERATIONS} iterations of the per-step route take {ITERATIONS} x its ms/step; a best K of "
              f"{max(WORKER_COUNTS)}+ still gains at the end of the range."]
    return lines


def _gram_wins(table):
    """How many (network, n) rows of the model have the Gram route's run faster than the per-step route's, each at its best K."""
    model = table[(table.kind == "model") & (table.what == "projection")]
    wins = total = 0
    for (network, n), rows in model.groupby(["network", "n_samples"]):
        step_k = int(rows[rows.route == "per_step"].best_workers.iloc[0])
        gram_k = int(rows[rows.route == "gram"].best_workers.iloc[0])
        total += 1
        wins += (projection_at(table, network, "gram", n, gram_k)["seconds_per_run"]
                 < projection_at(table, network, "per_step", n, step_k)["seconds_per_run"])
    return f"the Gram route's whole run is the faster one in {wins} of the {total} rows above"


def _capped(k):
    return f"{k}+" if k >= max(WORKER_COUNTS) else str(k)


def projection_at(table, network, route, n, workers):
    """The model's step and run times for one network, route, n and worker count (any K, not only the grid's)."""
    inputs = _inputs(table)
    net = inputs["networks"][network]
    compute = inputs["compute"]
    if route == "per_step":
        step = projection.step_s(workers, n, M, np.dtype(DTYPE).itemsize, compute, net)
        return {"seconds_per_step": step, "seconds_per_run": ITERATIONS * step}
    return {"seconds_per_step": math.nan, "seconds_per_run": projection.gram_route_s(
        workers, n, M, ITERATIONS, np.dtype(GRAM_DTYPE).itemsize, compute, net)}


def _inputs(table):
    """The model's inputs as recorded in the table: {"networks": {name: Network}, "compute": Compute}."""
    nets = table[table.what == "network"]
    networks = {r.network: projection.Network(r.network, r.latency_s, r.bandwidth_bytes_s, r.note)
                for r in nets.itertuples()}
    c = table[table.what == "compute"].iloc[0]
    gram_pass = table[table.what == "gram_pass"].iloc[0]
    entries = gram_pass.n_samples * (M + 1) * (M + 2) / 2
    compute = projection.Compute(step_overhead_s=c.seconds, value_s=c.value_s,
                                 gram_product_s=gram_pass.seconds / entries,
                                 gram_iteration_s=table[table.what == "gram_iteration"].seconds.iloc[0])
    return {"networks": networks, "compute": compute}


def report_section(table):
    """Markdown: the measured steps and all-reduces, the model's inputs, its best worker counts, the Gram route."""
    steps = table[(table.kind == "measured") & (table.what == "step")]
    lines = [f"## Distributed: replicas, workers and a model for 1 to {max(WORKER_COUNTS)} workers", "",
             f"![measured steps and the model]({NAME}.png)", "",
             f"**Measured** (m = {M}, {DTYPE}; the study's GradientTape loop, best call over its N + 1 evaluations), "
             "each replica or worker holding n / K rows. They share the cores of one machine: the cost of "
             "synchronising, not a speed-up.", ""]
    lines += _steps_table(steps)
    reduces = table[table.what == "allreduce"].sort_values("bytes")
    loop = _network(table, "loopback")
    if not reduces.empty and loop is not None:
        small, large = reduces.iloc[0], reduces.iloc[-1]
        lines += ["", f"One SUM all-reduce between {int(small.workers)} loopback workers (measured, {DTYPE}): "
                  f"{int(small.numbers)} numbers ({int(small.bytes)} bytes) in {small.seconds * 1e6:.0f} us, "
                  f"{int(large.numbers):,} numbers ({large.bytes / 2**20:.0f} MiB) in {large.seconds * 1e3:.3g} ms: "
                  f"through the ring model, {loop.latency_s * 1e6:.0f} us per message round and "
                  f"{loop.bandwidth_bytes_s / 1e9:.2g} GB/s."]
    else:
        lines += ["", "The all-reduce between workers could not be measured in this run; the model uses the stated "
                  "datacenter figures only."]
    dc = _network(table, "datacenter")
    compute = table[table.what == "compute"].iloc[0]
    gram_it = table[table.what == "gram_iteration"].seconds.iloc[0]
    lines += ["", "**Model, not a measurement** (`kind = model`, comparisons/experiments/projection.py): a step on K "
              f"workers costs the measured one-replica overhead ({compute.seconds * 1e3:.3g} ms), (n / K)(m + 1) values "
              f"at {compute.value_s * 1e9:.3g} ns each, and a ring all-reduce of m + 1 numbers (2 (K - 1) latencies "
              "plus 2 (K - 1) / K of its bytes over the bandwidth). Datacenter figures (stated): "
              f"{dc.latency_s * 1e6:.2g} us, {dc.bandwidth_bytes_s * 8 / 1e9:.0f} Gb/s, from the {dc.note}. Past the "
              "best K a worker adds more latency than it saves compute.", ""]
    lines += _model_table(table)
    lines += ["", f"**The Gram route**: each worker sums G, c and s over its rows, one all-reduce sends them once per "
              f"run ({projection.gram_payload(M)} numbers in {GRAM_DTYPE}, G's upper triangle packed; "
              f"{projection.gram_payload(M, dense=True)} with G dense), and the {ITERATIONS} iterations run locally "
              f"at O(m^2) each ({gram_it * 1e6:.3g} us measured in numpy). Its pass costs (m + 1)(m + 2) / 2 products "
              f"a row against about 2 (m + 1) for a step, which {ITERATIONS} iterations repay: " + _gram_wins(table) + "."]
    return "\n".join(lines)


FINDINGS = {
    "distributed_waiting": ("**Worker processes on one machine measure the cost of waiting for each other, not a "
                            "speed-up:** one all-reduce (every worker sends its gradient and gets back the sum) of "
                            "{numbers:n} numbers between {workers:n} workers took {allreduce_us:.0f} us over loopback."),
    "distributed_ring": ("Read through the ring model (K workers pass pieces of the vector around a ring, 2 (K - 1) "
                         "messages each), that is a bandwidth of {bandwidth_gbs:.2g} GB/s."),
    "distributed_model": ("In the model (not measured) with datacenter figures at n = {n:n}, a step is fastest on "
                          "{step_workers:n} of up to {max_workers:n} workers, {iterations:n} iterations taking "
                          "{step_run:.3g} s, while the Gram route's single all-reduce does them in {gram_run:.3g} s on "
                          "{gram_workers:n} workers."),
}


def findings(table):
    """Two Findings: the answer (workers on one machine only add waiting), then the ring model and the projection."""
    out = []
    loop = _network(table, "loopback")
    reduces = table[table.what == "allreduce"].sort_values("bytes")
    if loop is not None and not reduces.empty:
        small = reduces.iloc[0]
        out.append(Finding("distributed_waiting", dict(numbers=int(small.numbers), workers=int(small.workers),
                                                       allreduce_us=float(small.seconds * 1e6)),
                           FINDINGS["distributed_waiting"]))
    model = table[(table.kind == "model") & (table.what == "projection") & (table.network == "datacenter")]
    if not model.empty:
        sizes = sorted(model.n_samples.unique())
        n = int(1_000_000 if 1_000_000 in sizes else sizes[-1])
        step_k = int(model[(model.route == "per_step") & (model.n_samples == n)].best_workers.iloc[0])
        gram_k = int(model[(model.route == "gram") & (model.n_samples == n)].best_workers.iloc[0])
        facts = dict(n=n, iterations=ITERATIONS, step_workers=step_k, max_workers=max(WORKER_COUNTS),
                     gram_workers=gram_k,
                     step_run=float(projection_at(table, "datacenter", "per_step", n, step_k)["seconds_per_run"]),
                     gram_run=float(projection_at(table, "datacenter", "gram", n, gram_k)["seconds_per_run"]))
        projected = Finding("distributed_model", facts, FINDINGS["distributed_model"])
        if out:  # the measured all-reduce, read through the ring model, before the projection
            projected = joined(Finding("distributed_ring_model", dict(bandwidth_gbs=float(loop.bandwidth_bytes_s / 1e9)),
                                       FINDINGS["distributed_ring"]), projected)
        out.append(projected)
    return out
