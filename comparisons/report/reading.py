"""Reading a results folder: its tables, and what its runs show (timed rows, ties, break-evens, gaps to least squares).

The Findings (facts.py) and the report's sections (document.py) both read the tables through these.
"""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from comparisons import experiments as experiment_registry
from comparisons.core.config import EXPERIMENTS
from comparisons.core.registry import REFERENCE, REGISTRY
from comparisons.running.timing import break_even_updates, overlap, ratio_interval

KEY = ["implementation", "device", "dtype"]


# --- reading a results folder ----------------------------------------------------------------------

def load(results_dir):
    """The single run's tables and JSON files of a results folder, as a dict."""
    d = Path(results_dir)
    out = {name: json.loads((d / f"{name}.json").read_text()) for name in ("study", "environment", "config")}
    for name in ("weights", "runs", "equivalence", "gradient_check", "timings"):
        out[name] = pd.read_csv(d / f"{name}.csv")
    out["data"] = pd.read_csv(d / "data.csv") if (d / "data.csv").exists() else None  # small runs only
    status_file = d / "experiments.json"
    out["experiments"] = json.loads(status_file.read_text()) if status_file.exists() else {}
    out["folder"] = d
    return out


def experiment_tables(results_dir, status):
    """(name -> (module, table)) of the experiments that ran and left a table; (name -> why) of the others."""
    done, missing = {}, {}
    for name, info in status.items():
        table_file = Path(results_dir) / f"{name}.csv"
        if info.get("status") != "ok":
            missing[name] = info.get("status") or "no status recorded"
        elif name not in EXPERIMENTS:
            missing[name] = "not an experiment this version knows"
        elif not table_file.exists():
            missing[name] = f"ok, but {table_file.name} is missing"
        else:
            done[name] = (experiment_registry.load(name), pd.read_csv(table_file))
    return done, missing


# --- what the runs show: the single run's findings -----------------------------------------------------

def ols_gaps(weights, runs):
    """Per dtype, the largest gap of a finished run to `ols`, relative to each parameter's size."""
    wide = weights.pivot_table(index=KEY, columns="parameter", values="value", sort=False)
    ols = wide.xs("ols", level="implementation").iloc[0]
    # each parameter against its own size; a parameter near 0 against 1e-6 of the largest, not against 0
    floor = np.maximum(np.abs(ols), 1e-6 * np.abs(ols).max())
    finished = runs[runs.status == "ok"].set_index(KEY).index
    rows = wide[wide.index.isin(finished)]
    gap = (np.abs(rows - ols) / floor).max(axis=1)
    return gap.groupby(level="dtype").max().to_dict()


def fit_errors(data, n_features):
    """Least squares on [X, 1] from data.csv: (parameters, standard errors), or None when there is no data.

    Standard errors are the square roots of the diagonal of sigma^2 (A^T A)^-1, A = [X, 1], with
    sigma^2 = RSS / (n - m - 1): the spread of the fitted parameters that the noise in y alone gives.
    """
    if data is None or len(data) <= n_features + 1:
        return None
    A = np.column_stack([data.iloc[:, :n_features].to_numpy(float), np.ones(len(data))])  # (n, m + 1)
    y = data.iloc[:, -1].to_numpy(float)  # (n,)
    theta, *_ = np.linalg.lstsq(A, y, rcond=None)
    rss = float(np.sum((y - A @ theta) ** 2))
    sigma2 = rss / (len(data) - n_features - 1)
    return theta, np.sqrt(sigma2 * np.diag(np.linalg.inv(A.T @ A)))


def truth_in_errors(weights, data):
    """Each parameter's |ols - true| in standard errors of the fit, ordered as weights.csv names them, or None."""
    wide = weights.pivot_table(index="implementation", columns="parameter", values="value", sort=False)
    if "true" not in wide.index or data is None:
        return None
    parameters = [c for c in wide.columns if c != "bias"] + ["bias"]
    fitted = fit_errors(data, len(parameters) - 1)
    if fitted is None:
        return None
    _, errors = fitted
    gaps = np.abs(wide.loc["ols", parameters].to_numpy(float) - wide.loc["true", parameters].to_numpy(float))
    return dict(zip(parameters, gaps / errors)), dict(zip(parameters, errors))


def timed(timings):
    """timings.csv with its noise-interval and break-even columns, derived as timing.py defines them if absent.

    A table written before those columns existed gets [min_s, max_s] as each median's interval (what
    median_interval gives for 5 repeats, and never narrower for fewer) and the speedup interval and
    break-even from it, so old and new tables read the same way.
    """
    t = timings.copy()
    if "median_low_s" not in t:
        t["median_low_s"], t["median_high_s"] = t.min_s, t.max_s
    if "speedup_low" not in t or "break_even_updates" not in t:
        refs = t[(t.implementation == REFERENCE) & (t.iterations > 0)].drop_duplicates("dtype").set_index("dtype")
        lows, highs, breaks = [], [], []
        for r in t.itertuples():
            ref = refs.loc[r.dtype] if r.dtype in refs.index else None
            if ref is None or pd.isna(r.speedup_vs_numpy):
                lows.append(np.nan), highs.append(np.nan), breaks.append(np.nan)
                continue
            low, high = ratio_interval((ref.median_low_s, ref.median_high_s), (r.median_low_s, r.median_high_s))
            lows.append(low), highs.append(high)
            breaks.append(break_even_updates(r.first_call_s, r.median_s, ref.first_call_s, ref.median_s, r.iterations)
                          if r.iterations > 0 else np.nan)
        t["speedup_low"], t["speedup_high"], t["break_even_updates"] = lows, highs, breaks
    return t


def descent_rows(timings):
    """The rows that trained (iterations > 0), not the closed-form solve's."""
    return timings[timings.iterations > 0]


def ties_with_reference(row, reference):
    """Whether a row's median interval overlaps its reference's: a tie, never ranked."""
    return overlap((row.median_low_s, row.median_high_s), (reference.median_low_s, reference.median_high_s))


def headline_dtype(timings):
    """The one dtype of the findings and the 'which to use when' table: the one with most rows, float64 on a tie."""
    counts = timings.groupby("dtype").size()
    if counts.empty:
        return "float64"
    return sorted(counts[counts == counts.max()].index)[-1]


def lesson_loop(name):
    """Whether a row runs the lesson's loop on one device (streaming, not distributed): the rows the speed answers compare."""
    impl = REGISTRY.get(name)
    return impl is not None and impl.route == "streaming" and not impl.distributed


def per_update(row, low="median_low_s", high="median_high_s"):
    """A row's (low, high) noise interval in seconds per update."""
    return getattr(row, low) / row.iterations, getattr(row, high) / row.iterations


def faster_beyond_noise(row, reference):
    """Whether a row is faster per update than its reference with their intervals apart (same updates per call)."""
    return (row.iterations == reference.iterations and not ties_with_reference(row, reference)
            and row.median_s < reference.median_s)


def break_even_interval(row, reference):
    """(low, high) updates from which a cold run of `row` beats a cold run of `reference`, as their intervals allow.

    The model of timing.break_even_updates (the first call's extra once, then the steady cost per
    update), with the per-update costs taken at the ends of their intervals; the first calls are one
    sample each. inf: not faster even at the favourable end.
    """
    extra = (row.first_call_s - row.median_s) - (reference.first_call_s - reference.median_s)
    (low, high), (ref_low, ref_high) = per_update(row), per_update(reference)
    if extra <= 0:
        return 0.0, 0.0
    soonest = extra / (ref_high - low) if ref_high > low else math.inf
    latest = extra / (ref_low - high) if ref_low > high else math.inf
    return soonest, latest
