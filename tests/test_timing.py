"""The timing harness (comparisons/running/timing.py): intervals of the median, ties, round-robin order, budget, break-even.

The harness reads time.perf_counter; here it reads a fake clock that only the timed functions move, so
every duration is exact and nothing depends on how fast or busy the machine is. Every expected value is
computed by hand or by an independent brute force, never by the harness.
"""
import itertools
import math
from fractions import Fraction

import pytest

from comparisons.running import timing
from comparisons.running.timing import (Timing, break_even_updates, median_interval, overlap, planned_repeats, ratio_interval,
                                round_orders, tie_groups, tie_ranks, time_calls, time_interleaved)
from tf_models.distributed_bench import call_seconds


class FakeClock:
    """perf_counter() for the harness: time passes only when a timed call says so."""

    def __init__(self):
        self.now = 64.0  # durations below are binary fractions, so every difference is exact

    def perf_counter(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(timing, "time", fake)  # the harness's `time` module, for its perf_counter only
    return fake


def counting(clock, durations, log=None, key=None):
    """A function whose k-th call takes durations[k] seconds (the last one repeats), and the list of its calls."""
    calls = []

    def fn():
        clock.now += durations[min(len(calls), len(durations) - 1)]
        calls.append(1)
        if log is not None:
            log.append(key)
        return len(calls)

    return fn, calls


# --- the interval of the median -------------------------------------------------------------------------------------

def brute_force_coverage(k, j):
    """P(x_(j) <= median <= x_(k+1-j)) by enumerating which of k samples fall below the median (each with p = 1/2)."""
    inside = sum(1 for below in itertools.product((0, 1), repeat=k) if j <= sum(below) <= k - j)
    return Fraction(inside, 2 ** k)


@pytest.mark.parametrize("k", range(1, 13))
def test_coverage_matches_a_brute_force_enumeration(k):
    for j in range(1, (k + 1) // 2 + 1):
        assert timing._coverage(k, j) == pytest.approx(float(brute_force_coverage(k, j)), abs=1e-15)


@pytest.mark.parametrize("k", range(1, 13))
def test_interval_is_the_narrowest_one_at_nominal_coverage(k):
    """The order statistics returned are the innermost pair whose brute-force coverage is >= 90 %, else [min, max]."""
    x = [float(10 * i) for i in range(1, k + 1)]  # sorted, distinct
    eligible = [j for j in range(1, (k + 1) // 2 + 1) if j < k + 1 - j or k == 1]
    good = [j for j in eligible if brute_force_coverage(k, j) >= Fraction(9, 10)]
    j = max(good) if good else 1
    low, high, coverage = median_interval(list(reversed(x)))  # order of the input does not matter
    assert (low, high) == (x[j - 1], x[k - j])
    assert coverage == pytest.approx(float(brute_force_coverage(k, j)) if k > 1 else 0.0, abs=1e-15)


def test_five_timings_give_min_and_max_at_one_minus_two_in_32():
    assert median_interval([0.5, 0.125, 0.375, 0.25, 0.625]) == (0.125, 0.625, 1 - 2 / 32)


def test_nine_and_ten_timings_by_hand():
    """k = 9: P(Bin(9, 1/2) <= 1) = 10/512, so [x_(2), x_(8)] covers 1 - 20/512; j = 3 would cover only
    1 - 2 * 46/512 = 0.820 < 0.9. k = 10: P(Bin <= 1) = 11/1024, [x_(2), x_(9)] covers 1 - 22/1024; j = 3:
    1 - 2 * 56/1024 = 0.891 < 0.9."""
    nine = [9.0, 1.0, 8.0, 2.0, 7.0, 3.0, 6.0, 4.0, 5.0]
    assert median_interval(nine) == (2.0, 8.0, 1 - 20 / 512)
    ten = [float(v) for v in range(10, 0, -1)]
    assert median_interval(ten) == (2.0, 9.0, 1 - 22 / 1024)


def test_few_timings_keep_min_max_with_their_smaller_coverage():
    assert median_interval([3.0]) == (3.0, 3.0, 0.0)
    assert median_interval([2.0, 1.0]) == (1.0, 2.0, 0.5)
    assert median_interval([1.0, 3.0, 2.0, 4.0]) == (1.0, 4.0, 1 - 2 / 16)
    with pytest.raises(ValueError):
        median_interval([])


def test_timing_statistics_and_the_warm_up_as_sole_measurement():
    t = Timing(first_call_s=9.0, repeat_s=(3.0, 1.0, 2.0))
    assert (t.median_s, t.min_s, t.max_s, t.repeats) == (2.0, 1.0, 3.0, 3)
    assert t.interval == (1.0, 3.0, 0.75)
    assert Timing(1.0, (4.0, 2.0)).median_s == pytest.approx(3.0)
    lone = Timing(first_call_s=5.0, repeat_s=())
    assert (lone.median_s, lone.min_s, lone.max_s, lone.interval) == (5.0, 5.0, 5.0, (5.0, 5.0, 0.0))


# --- ties -----------------------------------------------------------------------------------------------------------

def test_overlap_is_a_tie_including_touching_ends():
    assert overlap((1.0, 2.0), (1.5, 3.0)) and overlap((1.5, 3.0), (1.0, 2.0))
    assert overlap((1.0, 2.0), (2.0, 3.0))  # one shared point
    assert overlap((1.0, 4.0), (2.0, 3.0))  # one inside the other
    assert not overlap((1.0, 2.0), (2.5, 3.0)) and not overlap((2.5, 3.0), (1.0, 2.0))


def test_tie_groups_separate_rows_only_across_a_gap_no_interval_crosses():
    rows = {"slow": (9.0, 10.0), "a": (1.0, 2.0), "b": (1.5, 3.0), "c": (2.9, 4.0), "d": (5.0, 6.0), "e": (6.0, 7.0)}
    # a-b and b-c overlap, a and c do not: one group through the chain; d and e touch: a tie
    assert tie_groups(rows) == [["a", "b", "c"], ["d", "e"], ["slow"]]
    assert tie_groups({}) == []
    assert tie_groups({"x": (1.0, 1.0), "y": (1.0, 1.0)}) == [["x", "y"]]
    assert tie_ranks(rows) == {"a": 1, "b": 1, "c": 1, "d": 2, "e": 2, "slow": 3}


def test_tie_groups_never_rank_two_overlapping_rows():
    """Brute force over a grid of intervals: rows in different groups never overlap; rows in a group are chained."""
    grid = [(lo, lo + w) for lo in range(0, 8, 2) for w in (1, 3)]
    for chosen in itertools.combinations(range(len(grid)), 4):
        rows = {k: tuple(map(float, grid[k])) for k in chosen}
        groups = tie_groups(rows)
        assert sorted(k for g in groups for k in g) == sorted(rows)
        for g, h in itertools.combinations(range(len(groups)), 2):
            assert not any(overlap(rows[a], rows[b]) for a in groups[g] for b in groups[h])
            assert max(rows[a][1] for a in groups[g]) < min(rows[b][0] for b in groups[h])  # fastest group first
        for group in groups:  # connected: each member after the first overlaps one before it
            assert all(any(overlap(rows[group[i]], rows[p]) for p in group[:i]) for i in range(1, len(group)))


def test_ratio_interval_takes_the_widest_corners():
    assert ratio_interval((2.0, 4.0), (1.0, 2.0)) == (1.0, 4.0)
    assert ratio_interval((3.0, 3.0), (1.5, 1.5)) == (2.0, 2.0)
    assert ratio_interval((1.0, 2.0), (0.0, 0.5)) == (2.0, math.inf)  # a zero time: the speedup is unbounded above


# --- budget and round-robin order -------------------------------------------------------------------------------------

def test_warm_up_then_repeats_and_first_result_returned(clock):
    fn, calls = counting(clock, [0.5, 0.125, 0.375, 0.25, 0.625])
    result, t = time_calls(fn, repeats=4)
    assert result == 1  # the warm-up call's result
    assert len(calls) == 5 and t.repeats == 4
    assert t.first_call_s == 0.5 and t.repeat_s == (0.125, 0.375, 0.25, 0.625)
    assert (t.median_s, t.min_s, t.max_s) == (0.3125, 0.125, 0.625)


@pytest.mark.parametrize("pace_s, planned, timed", [(0.25, 4, 4), (0.375, 2, 2), (0.5, 2, 2), (1.0, 1, 1), (1.125, 0, 1),
                                                    (3.0, 0, 1), (3.125, 0, 0), (0.0625, 7, 7)])
def test_budget_limits_the_number_of_repeats(clock, pace_s, planned, timed):
    """As many repeats as fit in the budget at the pace (floor of budget / pace), at most `repeats`; one all the same
    after a warm-up within three budgets (WARM_UP_BUDGETS), none after a longer one."""
    assert timing.WARM_UP_BUDGETS == 3
    assert planned_repeats(7, 1.0, pace_s) == planned
    fn, calls = counting(clock, [pace_s])  # every call as slow as the warm-up
    _, t = time_calls(fn, repeats=7, budget_s=1.0)
    assert t.repeats == timed and len(calls) == timed + 1


@pytest.mark.parametrize("durations, expected", [
    ([0.75, 0.125], 5),  # a warm-up that is mostly tracing: planned 1, then 8 at the steady pace, at most 5
    ([1.125, 0.125], 5),  # a warm-up past the budget (tracing): one timed call all the same, then the steady pace
    ([3.5, 0.125], 0),  # a warm-up past three budgets: never timed, whatever its steady pace would be
    ([0.25, 0.5], 2),  # steady calls slower than the warm-up: planned 4, then 2 at the slowest timed call's pace
    ([0.25, 0.125, 0.5], 2),  # one slow timed call re-plans the rest at its pace: 1.0 // 0.5
])
def test_repeats_are_replanned_from_the_timed_calls(clock, durations, expected):
    fn, calls = counting(clock, durations)
    _, t = time_calls(fn, repeats=5, budget_s=1.0)
    assert t.repeats == expected and len(calls) == expected + 1
    assert timing.calls_owed(5, 1.0, durations[0], t.repeat_s) == 0  # nothing more owed when it stopped


def test_no_budget_makes_every_repeat():
    assert planned_repeats(5, math.inf, 100.0) == planned_repeats(5, None, 100.0) == 5
    assert planned_repeats(0, 1.0, 0.001) == 0


def test_round_orders_first_as_given_then_seeded_permutations():
    keys = ["a", "b", "c", "d"]
    orders = round_orders(keys, 6, seed=3)
    assert len(orders) == 6 and orders[0] == keys
    assert all(sorted(order) == sorted(keys) for order in orders)
    assert any(order != keys for order in orders[1:])  # the order changes between rounds
    assert round_orders(keys, 6, seed=3) == orders  # seeded: the same plan twice
    assert round_orders(keys, 0) == []


def test_interleaved_rounds_with_a_budget(clock):
    """Warm-ups first in the given order; then rounds: round 0 as given, each later round a permutation of the keys
    still owed a call; each key timed exactly its planned number of times; a slow key fewer, one over budget none."""
    log = []
    durations = {"fast": [0.125], "other": [0.0625], "slow": [0.375], "compiled": [0.75, 0.0625], "over": [3.5, 0.125]}
    fns = {key: counting(clock, d, log, key) for key, d in durations.items()}
    results, timings = time_interleaved({k: fn for k, (fn, _) in fns.items()}, repeats=5, budget_s=1.0, seed=1)
    # floor(1.0 / pace), at most 5; "compiled" is planned from its steady calls once it has one
    planned = {"fast": 5, "other": 5, "slow": 2, "compiled": 5, "over": 0}
    assert log[:5] == list(durations)  # the warm-ups, in the given order
    assert results == {key: 1 for key in durations}  # each warm-up's result
    rounds, rest = [], log[5:]
    for r in range(max(planned.values())):
        owed = [k for k in durations if planned[k] > r]
        rounds.append(rest[:len(owed)])
        rest = rest[len(owed):]
        assert sorted(rounds[-1]) == sorted(owed)  # a permutation of the keys still owed a call
    assert rest == [] and rounds[0] == ["fast", "other", "slow", "compiled"]
    assert any(rnd != [k for k in rounds[0] if k in rnd] for rnd in rounds[1:])  # the order changes
    for key, (_, calls) in fns.items():
        assert len(calls) == planned[key] + 1 and timings[key].repeats == planned[key]
    assert timings["slow"].repeat_s == (0.375, 0.375) and timings["slow"].first_call_s == 0.375
    assert timings["compiled"].repeat_s == (0.0625,) * 5 and timings["compiled"].first_call_s == 0.75
    over = timings["over"]
    assert over.repeat_s == () and over.median_s == over.first_call_s == 3.5 and over.interval == (3.5, 3.5, 0.0)


def test_warm_up_callback_names_each_key_before_its_warm_up(clock):
    seen, log = [], []
    fns = {key: counting(clock, [0.125], log, key)[0] for key in ("x", "y")}
    time_interleaved(fns, repeats=1, on_warm_up=lambda key: seen.append((key, len(log))))
    assert seen == [("x", 0), ("y", 1)]


def test_the_workers_raw_loop_makes_a_warm_up_and_exactly_the_calls_asked(monkeypatch):
    """tf_models.distributed_bench.call_seconds, the multi-worker chief's loop: no planning, no statistics, just seconds."""
    import tf_models.distributed_bench as bench

    fake = FakeClock()
    monkeypatch.setattr(bench, "time", fake)
    fn, calls = counting(fake, [0.5, 0.125, 0.25])
    assert call_seconds(fn, 3) == (1, 0.5, [0.125, 0.25, 0.25]) and len(calls) == 4
    fn, calls = counting(fake, [0.5])
    assert call_seconds(fn, 0) == (1, 0.5, []) and len(calls) == 1


# --- break-even -------------------------------------------------------------------------------------------------------

def brute_force_break_even(first, median, ref_first, ref_median, iterations, horizon=20_000):
    """The smallest integer k from which on (up to `horizon`) the route's cold run is never slower, or inf.

    Exact arithmetic on the cost model of the docstring, scanned from the horizon down.
    """
    def cost(f, m, k):
        return Fraction(f) - Fraction(m) + Fraction(m) * k / iterations

    found = math.inf
    for k in range(horizon, -1, -1):
        if cost(first, median, k) > cost(ref_first, ref_median, k):
            break
        found = k
    return found


# (first, median, reference first, reference median) over 1000 updates, binary fractions; reference overhead 0.25 s,
# reference 0.5 ms per update
CASES = {
    "faster, starts later": ((2.25, 0.25, 0.75, 0.5), 7000.0),  # (2.0 - 0.25) / (0.0005 - 0.00025)
    "faster, starts earlier": ((0.3125, 0.25, 0.75, 0.5), 0.0),
    "faster, starts together": ((0.5, 0.25, 0.75, 0.5), 0.0),
    "slower, starts later": ((2.0, 1.0, 0.75, 0.5), math.inf),
    "slower, starts earlier": ((1.0, 1.0, 0.75, 0.5), math.inf),  # wins runs under 500 updates, then never again
    "as fast, starts earlier": ((0.5, 0.5, 0.75, 0.5), 0.0),
    "as fast, starts together": ((0.75, 0.5, 0.75, 0.5), 0.0),
    "as fast, starts later": ((1.0, 0.5, 0.75, 0.5), math.inf),
}


@pytest.mark.parametrize("case", CASES)
def test_break_even_by_hand_and_by_brute_force(case):
    args, expected = CASES[case]
    assert break_even_updates(*args, 1000) == pytest.approx(expected)
    assert brute_force_break_even(*args, 1000) == pytest.approx(math.ceil(expected) if math.isfinite(expected)
                                                                else expected)


# --- the multi-worker launcher plans the chief's calls by the same rule ------------------------------------------------

@pytest.mark.parametrize("warm_up_s, steady_s, expected_jobs, expected_repeats", [
    (0.75, [0.125], [0, 1, 4], 5),  # tracing-heavy warm-up: 1 call planned, then the rest at the steady pace
    (0.25, [0.25], [0, 4], 4),  # steady as the warm-up: 4 calls fit in 1.0 s, one job
    (1.5, [0.125], [0, 1, 4], 5),  # warm-up past the budget, within three: one call all the same, then the steady pace
    (3.5, [0.125], [0], 0),  # warm-up past three budgets: the first job is the measurement
    (0.25, [0.5], [0, 4], 4),  # calls slower than planned: no further job (the batch was already owed)
])
def test_multi_worker_launcher_plans_jobs_by_calls_owed(monkeypatch, warm_up_s, steady_s, expected_jobs,
                                                        expected_repeats):
    """No processes: a fake cluster answers each job with a warm-up and exactly job["repeats"] timed calls."""
    from types import SimpleNamespace

    import numpy as np

    from comparisons.processes import cluster
    from comparisons.running.adapters import tf_trainers

    asked = []

    def run_job(job, workers, timeout_s):
        asked.append(job["repeats"])
        return {"weights": [[1.0]], "bias": 0.0, "loss_curve": [2.0, 1.0], "diverged_at": None, "grad_abs_diff": [0.0],
                "grad_rel_diff": [0.0], "device": "w", "first_call_s": warm_up_s,
                "repeat_s": [steady_s[0]] * job["repeats"]}  # the chief's JSON (tf_models.multi_worker)

    monkeypatch.setattr(cluster, "run_job", run_job)
    monkeypatch.setattr(cluster, "train_job", lambda *args, repeats, **kw: {"repeats": repeats})
    monkeypatch.setattr(tf_trainers, "_autodiff_gradient", lambda spec: None)
    spec = SimpleNamespace(X=np.ones((4, 1)), y=np.ones((4, 1)), dtype="float64", name="gradient_tape:multi_worker",
                           iterations=1, lr=0.1, workers=2)
    r = tf_trainers.multi_worker_tape(spec)(np.zeros((1, 1)), 0.0, repeats=5, budget_s=1.0)
    assert asked == expected_jobs
    assert r.timing.first_call_s == warm_up_s and r.timing.repeats == expected_repeats
