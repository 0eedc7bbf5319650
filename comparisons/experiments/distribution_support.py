"""The distributed support matrix: every way a TensorFlow user would try to run this model distributed, and what it gives.

Each configuration (strategy x API x feed x steps_per_execution x rows divisible by the replicas
or not x dtype) runs in a child process (tf_models/distribution_probe.py), grouped so one
TensorFlow start-up serves a strategy's whole list; a crash or hang is recorded as `fails`, never
fatal. Its final parameters and loss curve are compared with the numpy run on the same rows:
`same` within comparisons/tolerances.EQUIVALENCE, `differs` with the size of the gap, or
`fails` with the exception's class and first line.
"""
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

import handrolled
from tf_models.distribution_probe import APIS, FEEDS, ProbeConfig

from comparisons.inputs.data import initial_parameters, make_synthetic
from comparisons.processes.isolated import Failure, python_module, run_child, run_resumable
from comparisons.processes.scratch import owned_dir
from comparisons.processes.cluster import ClusterError, run_cluster
from comparisons.output.prose import md_table
from comparisons.core.tolerances import EQUIVALENCE
from comparisons.output.findings import Finding

NAME = "distribution_support"
REPLICAS = 2  # the matrix splits rows over two replicas (two logical CPUs, or two worker processes)
DIVISIBLE_N, INDIVISIBLE_N = 100, 101  # the lesson's 100 rows, and one more so the shards differ by a row
STRATEGIES = ("mirrored", "multi_worker")
# Quick: one TensorFlow start-up (MirroredStrategy) and the configurations that carry the findings:
# the sharded tape loop with uneven shards, the whole arrays on every replica, Keras' working feed,
# its multi-step loop and its uneven batch. --full runs the whole matrix under both strategies.
QUICK = {"mirrored": (
    ("tape", "distributed", "N", INDIVISIBLE_N, "float64"), ("tape", "numpy", "N", DIVISIBLE_N, "float64"),
    ("keras", "dataset", 1, DIVISIBLE_N, "float64"), ("keras", "dataset", 10, DIVISIBLE_N, "float64"),
    ("keras", "dataset", 1, INDIVISIBLE_N, "float64"), ("keras", "numpy", 1, INDIVISIBLE_N, "float64"),
)}


def plan(config):
    """(iterations, {strategy: [probe config dicts]}, seconds allowed per configuration) for a run."""
    iterations = 20  # enough for any algorithmic difference to show; Keras' numpy feed costs ~1 s a step
    if config.full:
        combos = [(api, feed, spe, n, dtype) for api in APIS for feed in FEEDS for spe in (1, 10, "N")
                  for n in (DIVISIBLE_N, INDIVISIBLE_N) for dtype in ("float32", "float64")]
        per_strategy = {strategy: combos for strategy in STRATEGIES}
    else:
        per_strategy = QUICK
    groups = {strategy: [dict(api=api, feed=feed, steps_per_execution=iterations if spe == "N" else spe, n=n,
                              dtype=dtype, iterations=iterations) for api, feed, spe, n, dtype in combos]
              for strategy, combos in per_strategy.items()}
    # seconds per configuration: Keras' numpy feed pays its per-epoch cost on every step, so a loaded machine needs room, twice over
    return iterations, groups, (180.0 if config.full else 40.0)


def probe_key(fields):
    """The key the probe files a configuration's outcome under (ProbeConfig.key)."""
    return ProbeConfig(**fields).key


def relative_gap(values, reference):
    """max |values - reference| / max |reference| (NaN when a value is not finite)."""
    values, reference = np.asarray(values, np.float64), np.asarray(reference, np.float64)
    if not np.all(np.isfinite(values)):
        return math.nan
    return float(np.max(np.abs(values - reference)) / max(np.max(np.abs(reference)), np.finfo(np.float64).tiny))


def curve_gap(curve, reference):
    """max over points of |loss - numpy loss| / numpy loss, over the points both have."""
    curve, reference = np.asarray(curve, np.float64), np.asarray(reference, np.float64)[:len(curve)]
    if not np.all(np.isfinite(curve)):
        return math.nan
    return float(np.max(np.abs(curve - reference) / np.maximum(np.abs(reference), np.finfo(np.float64).tiny)))


def judge(outcome, reference, dtype):
    """(outcome, max_rel_diff, detail) of one probe outcome against numpy's DescentResult on the same rows."""
    if isinstance(outcome, Failure):
        detail = outcome.reason + (f": {outcome.last_stderr}" if outcome.last_stderr else "")
        return "fails", math.nan, detail
    if outcome["error_class"]:
        return "fails", math.nan, f"{outcome['error_class']}: {outcome['error_line']}"
    theta_np = np.append(reference.weights.ravel(), reference.bias)
    weight_gap = relative_gap(outcome["weights"], theta_np)
    loss_gap = curve_gap(outcome["loss_curve"], reference.loss_curve) if outcome["loss_curve"] else 0.0
    gap = max(weight_gap, loss_gap) if not (math.isnan(weight_gap) or math.isnan(loss_gap)) else math.nan
    compared = "weights and loss curve" if outcome["loss_curve"] else "weights (Keras logs no per-step loss here)"
    if math.isnan(gap):
        return "differs", gap, "non-finite parameters or loss"
    if gap <= EQUIVALENCE[dtype]:
        return "same", gap, f"{compared} within {EQUIVALENCE[dtype]:g}"
    detail = f"weights off by {weight_gap:.3g} relative"
    return "differs", gap, detail + (f", loss curve by {loss_gap:.3g}" if outcome["loss_curve"] else "")


def _job(data, W0, b0, lr, configs):
    """The probe's job dict (the same for a MirroredStrategy child and for every worker of a cluster)."""
    return {"X": data.X.tolist(), "y": data.y.ravel().tolist(), "W0": W0.ravel().tolist(), "b0": b0, "lr": lr,
            "replicas": REPLICAS, "configs": configs}


def _cluster_attempt(job_of, timeout_s, scratch, startup_s=60.0):
    """attempt(remaining) for run_resumable: one loopback cluster runs the support_probe task over them."""

    def attempt(remaining):
        progress = Path(scratch) / f"progress-{len(list(Path(scratch).iterdir()))}.jsonl"  # a new file per attempt
        job = {**job_of(remaining), "task": "support_probe", "progress": str(progress),
               "collective_timeout_s": timeout_s}
        try:
            run_cluster(job, workers=REPLICAS, timeout_s=startup_s + timeout_s * len(remaining))
            reason, last = None, ""
        except ClusterError as exc:
            reason, last = "the cluster failed", str(exc)
        records = [json.loads(line) for line in progress.read_text().splitlines()] if progress.exists() else []
        return records, reason, last
    return attempt


def _run_group(strategy, configs, data, W0, b0, lr, timeout_s):
    """{key: outcome dict or Failure} for one strategy's configurations, in as few processes as it takes."""
    by_key = {probe_key(c): c for c in configs}
    job_of = lambda keys: _job(data, W0, b0, lr, [by_key[k] for k in keys])  # noqa: E731
    if strategy == "mirrored":
        return run_child(python_module("tf_models.distribution_probe"), list(by_key),
                         lambda path, keys: path.write_text(json.dumps(job_of(keys))), timeout_s)
    with owned_dir("support-") as scratch:  # owner-tagged: a later run removes it if this one is killed
        return run_resumable(list(by_key), _cluster_attempt(job_of, timeout_s, scratch))


def devices_label(strategy):
    """The replicas of a strategy's configurations, named as in the results contract."""
    if strategy == "mirrored":
        return "+".join(f"cpu:{i}" for i in range(REPLICAS))
    return "+".join(f"worker{i}/cpu:0" for i in range(REPLICAS))


def run(ctx):
    """Try every configuration of the plan in isolated children and compare each with numpy; the matrix."""
    config = ctx.config
    iterations, groups, timeout_s = plan(config)
    data = make_synthetic(INDIVISIBLE_N, 1, config.noise, config.seed)  # the lesson's data, one row more
    W0, b0 = initial_parameters(1, config.seed)
    lr = config.lr
    references = {}
    rows = []
    for strategy, configs in groups.items():
        if ctx.progress:
            ctx.progress(f"distribution_support: {strategy}, {len(configs)} configurations")
        outcomes = _run_group(strategy, configs, data, W0, b0, lr, timeout_s)
        for fields in configs:
            n, dtype = fields["n"], fields["dtype"]
            if (n, dtype) not in references:
                X, y = data.X[:n].astype(dtype), data.y[:n].astype(dtype)
                references[n, dtype] = handrolled.descend(X, y, W0.astype(dtype), b0, lr, iterations)
            outcome = outcomes[probe_key(fields)]
            verdict, gap, detail = judge(outcome, references[n, dtype], dtype)
            ran = isinstance(outcome, dict) and not outcome["error_class"]
            rows.append({
                "strategy": strategy, "devices": devices_label(strategy), "api": fields["api"], "feed": fields["feed"],
                "steps_per_execution": fields["steps_per_execution"], "n_samples": n,
                "rows_divisible": n % REPLICAS == 0, "dtype": dtype, "iterations": iterations, "outcome": verdict,
                "max_rel_diff": gap, "detail": detail,
                "seconds_per_step": outcome["seconds_per_step"] if ran else math.nan,
                "first_run_s": outcome["first_run_s"] if isinstance(outcome, dict) else math.nan,
            })
    return pd.DataFrame(rows)


def plot(table, out_dir):
    """The matrix is a table in the report; no figure."""
    return []


FEED_TEXT = {
    "numpy": "the arrays whole (Keras: fit(X, y, batch_size=n, epochs=N))",
    "dataset": "a repeated tf.data batch of all rows",
    "distributed": "each replica its own shard",
}


def _cost(value):
    return "" if pd.isna(value) else f"{value * 1e3:.3g}"


FEED_WORDS = {"numpy": "arrays", "dataset": "dataset", "distributed": "distributed"}  # 'numpy' would read as the numpy row


def _short_detail(detail):
    """An error line without its op trailer and long quoted node names: the reason, not the trace."""
    text = re.sub(r"\s*\[Op:.*$", "", str(detail))
    return re.sub(r"'[^']{25,}'", "'...'", text)


def report_section(table):
    """Markdown: one sentence of method, what each feed means, then the matrix with outcome, gap or error, and cost."""
    counts = table.outcome.value_counts()
    lines = ["## Distributed support matrix", "",
             f"The ways a TensorFlow user would run the model over {REPLICAS} replicas (`mirrored`: MirroredStrategy "
             f"over {REPLICAS} logical CPUs; `multi_worker`: MultiWorkerMirroredStrategy over {REPLICAS} loopback "
             f"workers), {int(table.iterations.iloc[0])} updates each, against numpy on the same rows (n = "
             f"{DIVISIBLE_N} splits evenly, n = {INDIVISIBLE_N} does not). `same`: within the equivalence tolerance; "
             "`fails`: a crash or hang in its child process; ms/step: a warm run, on shared cores (the cost of "
             "synchronising, not a speed-up). Feeds: " + "; ".join(f"`{FEED_WORDS.get(k, k)}`: {v}"
                                                                    for k, v in FEED_TEXT.items()) + ".", "",
             f"Outcomes: {', '.join(f'{counts.get(k, 0)} {k}' for k in ('same', 'differs', 'fails'))}.", ""]
    order = table.sort_values(["strategy", "api", "feed", "steps_per_execution", "n_samples", "dtype"])
    rows = pd.DataFrame({
        "strategy": order.strategy, "API": order.api, "feed": order.feed.map(lambda f: FEED_WORDS.get(f, f)),
        "steps/execution": order.steps_per_execution,
        "n": order.n_samples, "dtype": order.dtype, "outcome": "**" + order.outcome + "**",
        "max rel. diff": ["" if pd.isna(gap) else f"{gap:.2g}" for gap in order.max_rel_diff],
        "detail": order.detail.map(_short_detail), "ms/step": [_cost(cost) for cost in order.seconds_per_step]})
    lines.append(md_table(rows))
    return "\n".join(lines)


FINDINGS = {
    "distribution_support": ("**Of {ways:n} ways to run the model on several devices or processes with TensorFlow's "
                             "distribution strategies, {same:n} gave numpy's numbers**, {differs:n} gave different ones "
                             "and {fails:n} failed."),
    "distribution_support_cheapest": ("The cheapest correct one was {strategy} {api} with the {feed} feed at "
                                      "{step_ms:.3g} ms per step."),
    "distribution_support_cheapest_and_failure": ("The cheapest correct one was {strategy} {api} with the {feed} feed "
                                                  "at {step_ms:.3g} ms per step; the commonest failure was {failure} "
                                                  "({failures:n} configurations)."),
}


def findings(table):
    """Two Findings: how many ways to run distributed gave numpy's numbers (the answer), then the cheapest and the
    commonest failure."""
    counts = table.outcome.value_counts()
    out = [Finding("distribution_support", dict(ways=len(table), same=int(counts.get("same", 0)),
                                                differs=int(counts.get("differs", 0)), fails=int(counts.get("fails", 0))),
                   FINDINGS["distribution_support"])]
    same = table[(table.outcome == "same") & table.seconds_per_step.notna()]
    failing = table[table.outcome == "fails"]
    if not same.empty:
        best = same.loc[same.seconds_per_step.idxmin()]
        facts = dict(strategy=best.strategy, api=best.api, feed=FEED_WORDS.get(best.feed, best.feed),
                     step_ms=float(best.seconds_per_step * 1e3))
        kind = "distribution_support_cheapest"
        if not failing.empty:
            common = failing.detail.str.split(":").str[0].value_counts()
            facts.update(failure=common.index[0], failures=int(common.iloc[0]))
            kind = "distribution_support_cheapest_and_failure"
        out.append(Finding(kind, facts, FINDINGS[kind]))
    return out
