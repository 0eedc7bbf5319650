"""The timing harness: one warm-up, then repeats within a budget; statistics over the timed calls."""
import time

import pytest

from comparisons.timing import Timing, time_calls


def counting(sleep_s=0.0):
    calls = []

    def fn():
        calls.append(1)
        time.sleep(sleep_s)
        return len(calls)

    return fn, calls


def test_warm_up_then_repeats_and_first_result_returned():
    fn, calls = counting()
    result, timing = time_calls(fn, repeats=4)
    assert result == 1  # the warm-up call's result
    assert len(calls) == 5 and timing.repeats == 4


def test_slow_call_is_not_repeated_past_the_budget():
    fn, calls = counting(0.05)
    _, timing = time_calls(fn, repeats=5, budget_s=0.01)
    assert len(calls) == 1 and timing.repeats == 0
    assert timing.median_s == timing.min_s == timing.max_s == timing.first_call_s


def test_budget_limits_the_number_of_repeats():
    fn, calls = counting(0.02)
    _, timing = time_calls(fn, repeats=50, budget_s=0.1)
    assert 1 <= timing.repeats <= 5  # budget / warm-up time, at most


def test_statistics():
    t = Timing(first_call_s=9.0, repeat_s=(3.0, 1.0, 2.0))
    assert (t.median_s, t.min_s, t.max_s, t.repeats) == (2.0, 1.0, 3.0, 3)
    assert Timing(1.0, (4.0, 2.0)).median_s == pytest.approx(3.0)
