"""The study's one timing harness: a warm-up call each, then interleaved rounds; medians, noise intervals, ties.

A shared machine has slow minutes. Timed one after another, two implementations would each see a
different minute; timed in rounds (every implementation once per round, in an order that changes
from round to round) a slow minute hits them all alike. Each row gets the median of its timed calls
and a distribution-free confidence interval of that median (from order statistics, see
`median_interval`); two rows whose intervals overlap are a tie and are never ranked (tie_groups,
tie_ranks). How many timed calls a row gets is one rule, calls_owed; processes that time their own
calls (the multi-worker chief) get the count from it and return raw seconds.

The callables timed here return numpy arrays, so a timer stops only once the result is on the
host. Data generation, imports and building the trainers happen before, outside the timed region.
"""
import math
import random
import statistics
import time
from dataclasses import dataclass

CONFIDENCE = 0.90  # nominal coverage of a median's interval; the interval actually used covers at least this when it can
# a warm-up within this many budgets still earns one timed call: a warm-up is tracing and compiling besides the work,
# so it is the measurement only for a call too long to make twice (Keras' fit of one epoch per update, 1000 epochs)
WARM_UP_BUDGETS = 3


def median_interval(times, confidence=CONFIDENCE):
    """(low, high, coverage): a distribution-free confidence interval of the median of `times`.

    For k sorted timings x_(1) <= ... <= x_(k) of a continuous distribution, the true median lies in
    [x_(j), x_(k+1-j)] with probability 1 - 2 P(Binomial(k, 1/2) < j). The narrowest such interval
    with at least `confidence` coverage is returned; when even [min, max] covers less (k <= 4 at
    90 %), that is returned with its own, smaller coverage. One timing: (t, t, 0).
    """
    x = sorted(times)
    k = len(x)
    if k == 0:
        raise ValueError("no timings")
    best = (x[0], x[-1], _coverage(k, 1))
    for j in range(2, k // 2 + 1):
        coverage = _coverage(k, j)
        if coverage < confidence:
            break
        best = (x[j - 1], x[k - j], coverage)
    return best


def _coverage(k, j):
    """P(x_(j) <= median <= x_(k+1-j)) for k samples: 1 - 2 P(Binomial(k, 1/2) <= j - 1)."""
    if k == 1:
        return 0.0
    tail = sum(math.comb(k, i) for i in range(j)) / 2 ** k
    return max(0.0, 1.0 - 2.0 * tail)


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of one warm-up call and of each timed call after it."""

    first_call_s: float  # includes tracing and compilation for the compiled frameworks
    repeat_s: tuple  # the timed calls after the warm-up, in the order they were made

    @property
    def repeats(self):
        """How many timed calls were made after the warm-up."""
        return len(self.repeat_s)

    @property
    def _timed(self):
        # with no repeat (too slow for the budget) the warm-up call is the only measurement
        return self.repeat_s or (self.first_call_s,)

    @property
    def median_s(self):
        """Median of the timed calls (the warm-up's time when none was made)."""
        return statistics.median(self._timed)

    @property
    def min_s(self):
        """Fastest timed call."""
        return min(self._timed)

    @property
    def max_s(self):
        """Slowest timed call."""
        return max(self._timed)

    @property
    def interval(self):
        """(low, high, coverage) of the median: see median_interval."""
        return median_interval(self._timed)


def overlap(a, b):
    """Whether two (low, high) intervals share a point: their rows are a tie."""
    return a[0] <= b[1] and b[0] <= a[1]


def ratio_interval(reference, row):
    """(low, high) of reference / row from two (low, high) intervals of positive times: the widest ratio their corners allow.

    If each interval covers its true median with probability p and q (independent calls), the
    ratio of the true medians lies in this one with probability at least p * q. A row whose low
    end is 0 (a clock too coarse to see it) gives an unbounded high end.
    """
    low = reference[0] / row[1] if row[1] > 0 else math.inf
    high = reference[1] / row[0] if row[0] > 0 else math.inf
    return low, high


def tie_groups(intervals):
    """Rank rows into groups of ties, fastest first: [[key, ...], ...] from {key: (low, high)}.

    Rule: two rows are in one group when their intervals overlap, directly or through a chain of
    overlapping rows (the connected pieces of the union of the intervals). So every interval of a
    group lies wholly below every interval of the next group: no two rows of different ranks
    overlap, i.e. nothing is ranked inside the noise. A chain can make a group wide; within it
    nothing is ranked, and the keys are listed by (low, high) only for a stable order.
    """
    groups, reach = [], -math.inf
    for key, (low, high) in sorted(intervals.items(), key=lambda item: (item[1][0], item[1][1], str(item[0]))):
        if groups and low <= reach:  # overlaps a row already in the current group (reach: its highest high)
            groups[-1].append(key)
            reach = max(reach, high)
        else:
            groups.append([key])
            reach = high
    return groups


def tie_ranks(intervals):
    """{key: rank}, 1 for the fastest group of ties (tie_groups), the same rank for every row of one group."""
    return {key: rank for rank, group in enumerate(tie_groups(intervals), 1) for key in group}


def break_even_updates(first_call_s, median_s, reference_first_call_s, reference_median_s, iterations):
    """Updates from which on a route's cold run (first call included) is never slower than the reference's: 0, a number, or inf.

    Model: a cold run of k updates costs (first_call - median) + median * k / iterations, the
    warm-up's extra (tracing, compiling) once and then the steady cost per update; both routes did
    `iterations` updates per timed call. Cases: faster per update and starting no later: 0 (at
    once); faster and starting later: the k where the two costs meet; as fast per update: 0 if it
    starts no later, else inf; slower per update: inf (even one that starts earlier, and so wins
    short runs, is overtaken for good from some k on).
    """
    overhead, reference_overhead = first_call_s - median_s, reference_first_call_s - reference_median_s
    per_update, reference_per_update = median_s / iterations, reference_median_s / iterations
    if per_update >= reference_per_update:
        return 0.0 if overhead <= reference_overhead and per_update == reference_per_update else math.inf
    return max(0.0, (overhead - reference_overhead) / (reference_per_update - per_update))


def planned_repeats(repeats, budget_s, pace_s):
    """How many timed calls fit: `repeats`, or fewer at `pace_s` seconds each within `budget_s` (0 if none fits; None: no budget)."""
    if budget_s is None or math.isinf(budget_s):
        return repeats
    return min(repeats, int(budget_s // max(pace_s, 1e-9)))


def calls_owed(repeats, budget_s, first_call_s, repeat_s):
    """How many more timed calls a callable is owed now: planned_repeats at its pace, less those made.

    Its pace is its warm-up's until it has a timed call, then its slowest timed call's (the
    warm-up of a compiled route is mostly tracing, and would starve it of repeats). At least one
    timed call is owed unless the warm-up took more than WARM_UP_BUDGETS budgets.
    """
    pace = max(repeat_s) if repeat_s else first_call_s
    planned = planned_repeats(repeats, budget_s, pace)
    if budget_s is not None and first_call_s <= WARM_UP_BUDGETS * budget_s:
        planned = max(planned, min(repeats, 1))
    return max(0, planned - len(repeat_s))


def round_orders(keys, rounds, seed=0):
    """The order each round times `keys` in: round 0 as given, then a fresh seeded shuffle per round."""
    rng = random.Random(seed)
    orders, order = [], list(keys)
    for r in range(rounds):
        if r:
            order = order[:]
            rng.shuffle(order)
        orders.append(order)
    return orders


def time_interleaved(calls, repeats, budget_s=math.inf, seed=0, on_warm_up=None):
    """Time several callables fairly: each makes its warm-up call, then up to `repeats` interleaved rounds.

    `calls` maps a key to a callable of no arguments. Each gets one warm-up call (its result is
    kept), then round after round every key still owed a call is timed once, in an order that changes
    between rounds (round_orders). A slow callable gets fewer calls: as many as fit in `budget_s`
    (planned_repeats) at its pace, which is its warm-up's until it has a timed call and then its
    slowest timed call's (calls_owed), and at least one unless its warm-up alone took more than
    WARM_UP_BUDGETS budgets (then its warm-up is the measurement). So a compiled route, whose warm-up is
    mostly tracing, is planned from its steady calls and gets its repeats. on_warm_up(key), if given, is called before each
    warm-up (progress). Returns ({key: warm-up result}, {key: Timing}).
    """
    results, first = {}, {}
    for key, fn in calls.items():
        if on_warm_up:
            on_warm_up(key)
        start = time.perf_counter()
        results[key] = fn()
        first[key] = time.perf_counter() - start
    times = {key: [] for key in calls}
    for order in round_orders(list(calls), repeats, seed):
        # decided at the round's start: every key in it is timed once
        due = [key for key in order if calls_owed(repeats, budget_s, first[key], times[key])]
        if not due:
            break
        for key in due:
            start = time.perf_counter()
            calls[key]()
            times[key].append(time.perf_counter() - start)
    return results, {key: Timing(first_call_s=first[key], repeat_s=tuple(times[key])) for key in calls}


def time_calls(fn, repeats, budget_s=math.inf):
    """One callable alone: (warm-up result, Timing), as time_interleaved with a single key."""
    results, timings = time_interleaved({0: fn}, repeats, budget_s)
    return results[0], timings[0]
