"""One quantity, one measurement: every per-update time that two parts of the study measured for the same thing.

The same (implementation, device, dtype, n, m, batch size) is timed by the single run (timings.csv)
and again by experiments: scaling (its n = the study's n), variants (its full batch), lr_sweep (the
study's data at every rate) and distributed (the tape loop under a strategy, at its n and m). Each
table is read into one form (measurements): a per-update time with an interval (the median's
confidence interval where the table has one, else its fastest and slowest call, else the one value
it gives) and what the timed call did (updates per call, rows gathered per step, first call
included, median or fastest call). pairs() sets every two measurements of one key side by side:
they agree when their intervals overlap; when they do not, a difference in the work that predicts
which side is slower (more updates per call spread a fixed cost per call thinner; a gather per step,
a first call's tracing or a median instead of a fastest call cost more) makes the pair "differs in
work"; otherwise it "disagrees" (the two measured one thing differently: a slow minute, a busy
machine). same_loop_pairs() judges, by the same rule, two rows of timings.csv that ran one loop under two
names. The report's "One quantity, one number" shows check()'s rows; `python -m comparisons.output.consistency
FOLDER` prints them.
"""
import itertools
import json
import math
import statistics
import sys
from pathlib import Path

import pandas as pd

from comparisons.core import registry
from comparisons.running.timing import median_interval, overlap

MEASUREMENT_COLUMNS = ["source", "implementation", "device", "dtype", "n_samples", "n_features", "batch_size",
                       "updates_per_call", "per_update_s", "low_s", "high_s", "interval", "statistic",
                       "first_call_included", "gathers_rows"]
KEY = ["implementation", "device", "dtype", "n_samples", "n_features", "batch_size"]
SIDE = ["source", "updates_per_call", "per_update_s", "low_s", "high_s", "interval"]
PAIR_COLUMNS = KEY + [f"{c}_{s}" for s in "ab" for c in SIDE] + ["agree", "verdict", "differences"]
TABLES = ("timings.csv", "scaling.csv", "variants.csv", "lr_sweep.csv", "distributed.csv", "matmul.csv",
          "lesson_claims.csv")
STRATEGY_KIND = {"mirrored": "replicas", "multi_worker": "workers"}  # distributed.csv's strategy -> registry field


def _row(source, implementation, device, dtype, n, m, batch, updates, per_update, low, high, interval,
         statistic="median", first_call=False, gathers=False):
    return dict(zip(MEASUREMENT_COLUMNS, (source, implementation, device, str(dtype), int(n), int(m), int(batch),
                                          int(updates), float(per_update), float(low), float(high), interval,
                                          statistic, bool(first_call), bool(gathers))))


def _present(table, column):
    return column in table and table[column].notna().all()


def from_timings(table, batch_size=None):
    """The single run's rows (timings.csv), the closed-form solve left out: per update = median / iterations."""
    rows = []
    with_interval = _present(table, "median_low_s")
    for r in table[table.iterations > 0].itertuples():
        k = r.iterations
        low, high = (r.median_low_s, r.median_high_s) if with_interval else (r.min_s, r.max_s)
        interval = "one call" if r.repeats == 0 else "median interval" if with_interval else "min-max"
        rows.append(_row("timings", r.implementation, r.device, r.dtype, r.n_samples, r.n_features,
                         batch_size or r.n_samples, k, r.median_s / k, low / k, high / k, interval,
                         first_call=r.repeats == 0, gathers=batch_size is not None))
    return rows


def from_scaling(table):
    """scaling.csv: every call after a separate warm-up; a Gram route's whole call (its pass included) per update."""
    rows = []
    for r in table.itertuples():
        k = r.iterations
        rows.append(_row("scaling", r.implementation, r.device, r.dtype, r.n_samples, r.n_features, r.n_samples, k,
                         r.median_s / k, r.min_s / k, r.max_s / k, "one call" if r.repeats == 0 else "min-max"))
    return rows


def from_variants(table, n_features):
    """variants.csv (the study's data, float64): one row per implementation and batch size; rows gathered every step."""
    rows = []
    for (name, batch), group in table.groupby(["implementation", "batch_size"], sort=False):
        r = group.iloc[0]
        k = int(r.updates_per_call) if "updates_per_call" in group else int(group.steps.max())
        if _present(group, "median_low_s"):
            low, high, interval = r.median_low_s, r.median_high_s, "median interval"
        else:  # an older table: the median alone
            low = high = r.median_s
            interval = "median only"
        rows.append(_row("variants", name, "cpu", r["dtype"], r.n_samples, n_features, batch, k, r.median_s / k, low / k,
                         high / k, "one call" if r.repeats == 0 else interval, first_call=r.repeats == 0, gathers=True))
    return rows


def from_lr_sweep(table, n_samples, n_features):
    """lr_sweep.csv: one call per rate; the calls after each trainer's first that ran every update, as samples.

    The rate does not change the work of an update, so the calls at different rates of one
    implementation and dtype are repeats of one measurement: their median and its interval.
    """
    rows = []
    for (name, dtype), group in table.groupby(["implementation", "dtype"], sort=False):
        # a table without the first_call column: the trainer's first call is its first row
        first = group.first_call.astype(bool) if "first_call" in group else pd.Series(
            [True] + [False] * (len(group) - 1), index=group.index)
        steady = group[~first & (group.diverged_at == -1)]
        for k, calls in steady.groupby("iterations"):
            samples = (calls.seconds / k).tolist()
            low, high, _ = median_interval(samples)
            rows.append(_row("lr_sweep", name, "cpu", dtype, n_samples, n_features, n_samples, k,
                             statistics.median(samples), low, high, "median interval"))
    return rows


def _tape_loop(kind):
    """The registry row the distributed experiment's tape loop is timed as, for a kind of distribution, or None.

    That experiment times TensorFlow's distributed tape loop: the one TensorFlow row distributed
    this way that checks its gradient (Keras' rows do not); None when no single row fits.
    """
    found = [i.name for i in map(registry.get, registry.names())
             if i.framework == "tensorflow" and i.distributed == kind and i.checks_gradient]
    return found[0] if len(found) == 1 else None


def from_distributed(table):
    """distributed.csv's step rows: the fastest call over (iterations + 1) loss evaluations, per update here."""
    rows = []
    steps = table[(table.kind == "measured") & (table.what == "step")] if "what" in table else table.iloc[:0]
    for r in steps.dropna(subset=["seconds_per_step"]).itertuples():
        name = _tape_loop(STRATEGY_KIND.get(r.strategy))
        if name is None:
            continue
        replicas, workers = int(r.replicas), int(r.workers)
        device = "+".join(f"worker{w}/cpu:{c}" if workers > 1 else f"cpu:{c}"
                          for w in range(workers) for c in range(replicas))  # the labels the study's runs carry
        k = int(r.iterations)
        per_update = r.seconds_per_step * (k + 1) / k
        rows.append(_row("distributed", name, device, r.dtype, r.n_samples, r.n_features, r.n_samples, k, per_update,
                         per_update, per_update, "fastest call", statistic="min"))
    return rows


def measurements(tables, study=None):
    """Every per-update time in the given tables ({file name: DataFrame}), in one form (MEASUREMENT_COLUMNS).

    `study` (study.json) gives the single run's n, m and batch size; without it they come from timings.csv.
    """
    study = study or {}
    timings = tables.get("timings.csv")
    n = study.get("n_samples", None if timings is None or timings.empty else int(timings.n_samples.iloc[0]))
    m = study.get("n_features", None if timings is None or timings.empty else int(timings.n_features.iloc[0]))
    rows = []
    if timings is not None:
        rows += from_timings(timings, study.get("batch_size"))
    if "scaling.csv" in tables:
        rows += from_scaling(tables["scaling.csv"])
    if "variants.csv" in tables and m is not None:
        rows += from_variants(tables["variants.csv"], m)
    if "lr_sweep.csv" in tables and n is not None:
        rows += from_lr_sweep(tables["lr_sweep.csv"], n, m)
    if "distributed.csv" in tables:
        rows += from_distributed(tables["distributed.csv"])
    return pd.DataFrame(rows, columns=MEASUREMENT_COLUMNS)


def work_differences(a, b):
    """[(what differs in the work, the side it makes slower: "a" or "b")] between two measurements of one key."""
    found = []
    if a.updates_per_call != b.updates_per_call:
        fewer = "a" if a.updates_per_call < b.updates_per_call else "b"
        found.append((f"{a.updates_per_call} vs {b.updates_per_call} updates per call", fewer))
    if a.gathers_rows != b.gathers_rows:
        found.append((f"{(a if a.gathers_rows else b).source} gathers rows every step",
                      "a" if a.gathers_rows else "b"))
    if a.first_call_included != b.first_call_included:
        found.append((f"{(a if a.first_call_included else b).source} times a first call",
                      "a" if a.first_call_included else "b"))
    if a.statistic != b.statistic:
        found.append((f"{(a if a.statistic == 'min' else b).source} gives a fastest call",
                      "b" if a.statistic == "min" else "a"))
    return found


def compare(a, b):
    """(agree, verdict, differences) of two measurements: see the module's docstring."""
    agree = overlap((a.low_s, a.high_s), (b.low_s, b.high_s))  # the report's tie rule
    differences = work_differences(a, b)
    text = "; ".join(what for what, _ in differences)
    if agree:
        return True, "agree", text
    slower = "a" if a.low_s > b.high_s else "b"
    explained = any(side == slower for _, side in differences)
    return False, "differs in work" if explained else "disagree", text


def pairs(tables, study=None):
    """Every two measurements of one key from different tables, side by side (PAIR_COLUMNS)."""
    found = measurements(tables, study)
    rows = []
    for key, group in found.groupby(KEY, sort=False):
        for a, b in itertools.combinations(group.itertuples(index=False), 2):
            if a.source == b.source:
                continue
            rows.append((*key, *(getattr(a, c) for c in SIDE), *(getattr(b, c) for c in SIDE), *compare(a, b)))
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def same_loop_pairs(timings, runs, batch_size=None):
    """Pairs of timings.csv rows that ran one loop under two names (same framework, `mode` in runs.csv, device, dtype).

    Judged by compare(), the rule pairs() uses; `implementation` reads "a = b". JAX's and TensorFlow's
    "eager" are different loops, so the framework is part of what makes a loop the same.
    """
    if timings is None or runs is None or "mode" not in runs:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    found = pd.DataFrame(from_timings(timings, batch_size), columns=MEASUREMENT_COLUMNS)
    modes = runs.dropna(subset=["mode"]).set_index(["implementation", "device", "dtype"])["mode"].to_dict()
    framework = lambda name: registry.REGISTRY[name].framework if name in registry.REGISTRY else name
    found["loop"] = [(framework(r.implementation), modes.get((r.implementation, r.device, r.dtype)))
                     for r in found.itertuples()]
    found = found[[loop[1] is not None for loop in found.loop]]
    order = {name: i for i, name in enumerate(registry.REGISTRY)}
    rows = []
    for (_, device, dtype), group in found.groupby(["loop", "device", "dtype"], sort=True):
        group = group.iloc[sorted(range(len(group)), key=lambda i: order.get(group.implementation.iloc[i], len(order)))]
        for a, b in zip(group.itertuples(index=False), group.iloc[1:].itertuples(index=False)):
            key = (f"{a.implementation} = {b.implementation}", device, dtype, a.n_samples, a.n_features, a.batch_size)
            rows.append((*key, *(getattr(a, c) for c in SIDE), *(getattr(b, c) for c in SIDE), *compare(a, b)))
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


LOOP_N = 500  # the lesson's triple-loop matrices are 500 x 500
LOOP_LIMIT_S = 120.0  # the lesson's claim: at most two minutes


def loop_estimates(tables):
    """Every estimate of the lesson's triple-loop product at n = 500: [(source, measured n, seconds)].

    matmul.csv times the loop at small n (its largest n, fastest call), lesson_claims.csv at its own
    n; each scales by n^3 to 500. Two estimates of one quantity: the report gives their range and why.
    """
    found = []
    matmul = tables.get("matmul.csv")
    if matmul is not None and "method" in matmul:
        loop = matmul[matmul.method == "python_loop"]
        if len(loop):
            big = loop.loc[loop.n.idxmax()]
            found.append(("matmul", int(big.n), float(big.min_s) * (LOOP_N / big.n) ** 3))
    claims = tables.get("lesson_claims.csv")
    if claims is not None and "measured" in claims:
        for r in claims.itertuples():
            try:
                measured = json.loads(r.measured)
            except (TypeError, ValueError):
                continue
            if isinstance(measured, dict) and {"predicted_500_s", "n"} <= set(measured):
                found.append(("lesson_claims", int(measured["n"]), float(measured["predicted_500_s"])))
    return found


def load(folder):
    """({file name: DataFrame} of the timed tables present in a results folder, its study.json or {})."""
    folder = Path(folder)
    tables = {name: pd.read_csv(folder / name) for name in TABLES if (folder / name).exists()}
    study = json.loads((folder / "study.json").read_text()) if (folder / "study.json").exists() else {}
    return tables, study


def check(folder):
    """pairs() of a results folder, then the rows of timings.csv that ran one loop under two names."""
    tables, study = load(folder)
    found = pairs(tables, study)
    runs_file = Path(folder) / "runs.csv"
    same = same_loop_pairs(tables.get("timings.csv"), pd.read_csv(runs_file) if runs_file.exists() else None,
                           study.get("batch_size"))
    return pd.concat([same, found], ignore_index=True) if len(same) else found


def main(argv=None):
    """Print the pairs of a results folder; exit 2 with one error line when it holds no timings."""
    argv = sys.argv[1:] if argv is None else argv
    folder = Path(argv[0]) if argv else Path("results")
    if not (folder / "timings.csv").exists():
        print(f"error: no timings.csv in {folder}", file=sys.stderr)
        return 2
    table = check(folder)
    with pd.option_context("display.width", 250, "display.max_columns", None, "display.max_colwidth", 90):
        print(table.to_string(index=False) if len(table) else "no quantity is measured twice")
    return 0


if __name__ == "__main__":
    sys.exit(main())
