"""The timing harness: one warm-up, then repeats within a budget; statistics over the timed calls.

The harness reads time.perf_counter; here it reads a fake clock that only the timed function moves, so
every duration is exact and the tests do not depend on how busy the machine is.
"""
import pytest

from tf_models import timing  # the harness itself (comparisons.timing re-exports it)
from comparisons.timing import Timing, time_calls


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


def counting(clock, durations):
    """A function whose k-th call takes durations[k] seconds (the last one repeats), and the list of its calls."""
    calls = []

    def fn():
        clock.now += durations[min(len(calls), len(durations) - 1)]
        calls.append(1)
        return len(calls)

    return fn, calls


def test_warm_up_then_repeats_and_first_result_returned(clock):
    fn, calls = counting(clock, [0.5, 0.125, 0.375, 0.25, 0.625])
    result, t = time_calls(fn, repeats=4)
    assert result == 1  # the warm-up call's result
    assert len(calls) == 5 and t.repeats == 4
    assert t.first_call_s == 0.5 and t.repeat_s == (0.125, 0.375, 0.25, 0.625)
    assert (t.median_s, t.min_s, t.max_s) == (0.3125, 0.125, 0.625)


def test_slow_call_is_not_repeated_past_the_budget(clock):
    fn, calls = counting(clock, [0.5])
    _, t = time_calls(fn, repeats=5, budget_s=0.25)
    assert len(calls) == 1 and t.repeats == 0
    assert t.median_s == t.min_s == t.max_s == t.first_call_s == 0.5


@pytest.mark.parametrize("warm_up_s, expected", [(0.25, 4), (0.375, 2), (0.5, 2), (1.0, 1), (1.125, 0), (0.0625, 7)])
def test_budget_limits_the_number_of_repeats(clock, warm_up_s, expected):
    """As many repeats as fit in the budget at the warm-up's pace (floor of budget / warm-up), at most `repeats`."""
    fn, calls = counting(clock, [warm_up_s, 0.125])
    _, t = time_calls(fn, repeats=7, budget_s=1.0)
    assert t.repeats == expected and len(calls) == expected + 1


def test_statistics():
    t = Timing(first_call_s=9.0, repeat_s=(3.0, 1.0, 2.0))
    assert (t.median_s, t.min_s, t.max_s, t.repeats) == (2.0, 1.0, 3.0, 3)
    assert Timing(1.0, (4.0, 2.0)).median_s == pytest.approx(3.0)


@pytest.mark.parametrize("own_warm_up_s", [0.25, 0.5, 1.125])
def test_an_agreed_pace_plans_the_same_calls_whatever_the_own_warm_up(clock, own_warm_up_s):
    """Multi-worker processes plan with the workers' mean warm-up: each makes floor(1.0 / 0.5) = 2 repeats."""
    fn, calls = counting(clock, [own_warm_up_s, 0.125])
    seen = []
    _, t = time_calls(fn, repeats=7, budget_s=1.0, pace=lambda first: seen.append(first) or 0.5)
    assert seen == [own_warm_up_s] and t.repeats == 2 and len(calls) == 3
    assert t.first_call_s == own_warm_up_s  # the measurement stays this process's own
