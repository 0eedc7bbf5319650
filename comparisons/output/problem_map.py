"""Which way to train is fastest for a problem of n samples and N updates, read from the measured tables alone.

The cost model is the tables' break-even model (comparisons.running.timing.break_even_updates): a cold
run of k updates costs its start, start = first_call_s - iterations * per_update (tracing, compiling and,
for a Gram route, its pass over X; never below 0, and 0 when the first call is within the timed calls' noise
interval, as numpy's and an eager loop's are), then k * per_update. Each way is priced where it was
measured: at the single run's n (timings.csv, which wins where both tables have a row) and at the
scaling runs' n (scaling.csv). Between two measured n the price of k updates is interpolated on
log-log axes, and only from ways measured at both; a cell beyond the smallest or largest measured n
gets no answer. Only ways whose loss curve agrees with numpy's (equivalence.csv: the dtype's
tolerance, plus its rounding bound for a Gram route) take part, and numpy itself.
"""
import numpy as np
import pandas as pd

from comparisons.core import registry
from comparisons.core.tolerances import judged

MEASURED, INTERPOLATED, BEYOND = "measured", "interpolated", "beyond the measured sizes"
COLUMNS = ["n_samples", "updates", "status", "fastest", "device", "seconds", "runner_up", "runner_up_seconds", "tie",
           "dtype", "n_features", "n_low", "n_high"]


def agreeing(equivalence, dtype):
    """The implementations whose loss curve agrees with numpy's in `dtype` (numpy included), as a set of names."""
    eq = judged(equivalence[equivalence.dtype == dtype])  # the report's one rule: tolerance, plus a Gram route's bound
    return set(eq.implementation[eq.within == "yes"]) | {registry.REFERENCE}


def _spread(table):
    """Each row's noise interval as factors of its median (low/median, high/median): median_low_s/median_high_s,
    else min_s/max_s, else none (1, 1)."""
    median = table.median_s.to_numpy(float) if "median_s" in table else np.ones(len(table))
    low, high = np.full(len(table), np.nan), np.full(len(table), np.nan)
    for low_column, high_column in (("median_low_s", "median_high_s"), ("min_s", "max_s")):
        if {low_column, high_column} <= set(table.columns):
            low = np.where(np.isnan(low), table[low_column].to_numpy(float), low)
            high = np.where(np.isnan(high), table[high_column].to_numpy(float), high)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(low / median, nan=1.0), np.nan_to_num(high / median, nan=1.0)


def prices(timings, scaling, dtype, n_features):
    """One row per (implementation, device, n) measured in `dtype` at m = n_features: start_s, per_update_s (and its
    noise interval per_update_low_s, per_update_high_s, the median's interval scaled alike), source."""
    rows = []
    if timings is not None and len(timings):
        t = timings[(timings.dtype == dtype) & (timings.n_features == n_features) & (timings.iterations > 0)]
        for r, low, high in zip(t.itertuples(), *_spread(t)):
            rows.append((r.implementation, r.device, int(r.n_samples), r.first_call_s, r.per_iteration_us * 1e-6,
                         low, high, int(r.iterations), "timings.csv"))
    if scaling is not None and len(scaling):
        s = scaling[(scaling.dtype == dtype) & (scaling.n_features == n_features)]
        if "status" in s:
            s = s[s.status == "ok"]
        for r, low, high in zip(s.itertuples(), *_spread(s)):
            rows.append((r.implementation, r.device, int(r.n_samples), r.first_call_s, r.per_iteration_s,
                         low, high, int(r.iterations), "scaling.csv"))
    table = pd.DataFrame(rows, columns=["implementation", "device", "n_samples", "first_call_s", "per_update_s",
                                        "low", "high", "iterations", "source"])
    table["per_update_low_s"] = table.per_update_s * np.minimum(table.low, 1.0)
    table["per_update_high_s"] = table.per_update_s * np.maximum(table.high, 1.0)
    table = table.drop(columns=["low", "high"])
    table = table[np.isfinite(table.first_call_s.astype(float)) & np.isfinite(table.per_update_s.astype(float))
                  & (table.per_update_s > 0)]
    table = table.drop_duplicates(["implementation", "device", "n_samples"], keep="first")  # timings.csv first
    # a first call inside the noise of a warm call (its interval's top) had nothing to start: numpy, an eager loop
    table["start_s"] = np.maximum(table.first_call_s - table.iterations * table.per_update_high_s, 0.0)
    return table.reset_index(drop=True)


def route_of(name):
    """The registry's route of `name` ('streaming' for a row the registry does not know, such as a scaling formulation)."""
    impl = registry.REGISTRY.get(name)
    return impl.route if impl else "streaming"


def _sizes(timings, scaling, n_features):
    """The sample counts measured at m = n_features in either table."""
    return {int(n) for t in (timings, scaling) if t is not None and len(t)
            for n in t[(t.n_features == n_features) & (t.get("iterations", 1) != 0)].n_samples}


def default_features(timings, scaling):
    """The single run's m when the tables price it at two or more n, else the m measured at the most n (the smallest on a tie)."""
    own = int(timings.n_features.iloc[0]) if timings is not None and len(timings) else None
    if own is not None and len(_sizes(timings, scaling, own)) >= 2:
        return own
    candidates = {int(m) for t in (timings, scaling) if t is not None and len(t) for m in t.n_features}
    if not candidates:
        return 1
    return max(sorted(candidates), key=lambda m: len(_sizes(timings, scaling, m)))


def default_dtype(timings, scaling, n_features):
    """The dtype measured at the most sample counts n at m = n_features (float64 on a tie)."""
    counts = {}
    for table in (timings, scaling):
        if table is not None and len(table):
            part = table[table.n_features == n_features]
            for dtype, g in part.groupby("dtype"):
                counts.setdefault(dtype, set()).update(g.n_samples.astype(int))
    if not counts:
        return "float64"
    return max(counts, key=lambda d: (len(counts[d]), d == "float64"))


def fastest_way_map(timings, scaling, equivalence, n_grid=None, updates=None, dtype=None, n_features=None,
                    routes=None):
    """For each (n, updates) of a grid: the fastest cold run that agrees with numpy, its seconds and the runner-up.

    timings, scaling, equivalence: the DataFrames of timings.csv, scaling.csv (None when not run) and
    equivalence.csv. n_grid: sample counts (default: the measured ones, 40 log-spaced between the smallest
    and ten times the largest, so the map shows where the measurements end); updates: run lengths (default
    1 to 10^6, log-spaced); n_features and dtype: default the single run's m (or, when it was measured at one n
    only, the m measured at the most n) and the dtype measured at the most n there;
    routes: the registry routes that take part (default all; ("streaming",) keeps the lesson's loop, which
    reads X at every update, and leaves out the Gram routes, a different algorithm).
    Returns a DataFrame with COLUMNS, one row per cell; `status` says whether the cell's n was measured,
    interpolated between n_low and n_high, or lies beyond the measured sizes (then `fastest` is empty); `tie`
    whether the runner-up, priced per update at the fast end of its noise interval, is as cheap as the fastest
    priced at the slow end of its own (then the order of the two is not settled by the measurements).
    """
    if n_features is None:
        n_features = default_features(timings, scaling)
    dtype = dtype or default_dtype(timings, scaling, n_features)
    table = prices(timings, scaling, dtype, n_features)
    table = table[table.implementation.isin(agreeing(equivalence, dtype))]
    if routes is not None:
        table = table[[route_of(name) in routes for name in table.implementation]]
    measured = np.array(sorted(table.n_samples.unique()), dtype=float)
    if n_grid is None:
        n_grid = (np.unique(np.concatenate([measured, np.logspace(np.log10(measured[0]), np.log10(measured[-1] * 10),
                                                                   40)])) if len(measured) else np.array([]))
    updates = np.logspace(0, 6, 61) if updates is None else np.asarray(updates, dtype=float)
    by_n = {n: g.set_index(["implementation", "device"]) for n, g in table.groupby("n_samples")}
    rows = []
    for n in np.asarray(n_grid, dtype=float):
        exact = [m for m in measured if np.isclose(m, n, rtol=1e-9)]
        if exact:
            low = high = exact[0]
            status = MEASURED
        elif not len(measured) or n < measured[0] or n > measured[-1]:
            rows += [(n, k, BEYOND, "", "", np.nan, "", np.nan, False, dtype, n_features, np.nan, np.nan)
                     for k in updates]
            continue
        else:
            low, high = measured[measured < n].max(), measured[measured > n].min()
            status = INTERPOLATED
        a, b = by_n[int(low)], by_n[int(high)]
        ways = [key for key in a.index if key in b.index]  # priced at both ends (the same row when measured)
        weight = 0.0 if high == low else np.log(n / low) / np.log(high / low)
        def priced(column):  # (ways, updates): seconds of a cold run, per update at `column`
            out = []
            for key in ways:
                at_low = a.loc[key, "start_s"] + updates * a.loc[key, column]
                at_high = b.loc[key, "start_s"] + updates * b.loc[key, column]
                out.append(np.exp((1 - weight) * np.log(at_low) + weight * np.log(at_high)) if weight else at_low)
            return np.array(out)

        costs, cheap, dear = priced("per_update_s"), priced("per_update_low_s"), priced("per_update_high_s")
        order = np.argsort(costs, axis=0, kind="stable")
        for j, k in enumerate(updates):
            first = order[0, j]
            second = order[1, j] if len(ways) > 1 else None
            # a tie: the runner-up at the fast end of its noise interval is as cheap as the winner at its slow end
            tie = second is not None and bool(cheap[second, j] <= dear[first, j])
            rows.append((n, k, status, *ways[first], costs[first, j],
                         ways[second][0] if second is not None else "",
                         costs[second, j] if second is not None else np.nan, tie, dtype, n_features, low, high))
    return pd.DataFrame(rows, columns=COLUMNS)


def wins(table):
    """Where each way is fastest, row by row of the map: one row per run of neighbouring cells of one n won by one way.

    Columns: fastest, n_samples, status, from_updates, to_updates (the grid's run lengths at either end, both
    included), tied (how many of those cells are ties with the runner-up). For prose such as "fastest from
    N updates at n = ..."; cells beyond the measured sizes are left out.
    """
    rows = []
    for n, part in table[table.status != BEYOND].groupby("n_samples", sort=True):
        part = part.sort_values("updates")
        run = (part.fastest != part.fastest.shift()).cumsum()  # a new run wherever the winner changes
        for _, cells in part.groupby(run, sort=False):
            rows.append({"fastest": cells.fastest.iloc[0], "n_samples": n, "status": cells.status.iloc[0],
                         "from_updates": cells.updates.min(), "to_updates": cells.updates.max(),
                         "tied": int(cells.tie.sum())})
    return pd.DataFrame(rows, columns=["fastest", "n_samples", "status", "from_updates", "to_updates", "tied"])
