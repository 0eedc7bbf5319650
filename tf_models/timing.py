"""The one timing harness: a warm-up call, then timed repeats; median, min and max.

The callables timed here return numpy arrays, so a timer stops only once the result is on the
host. Data generation and imports happen before, outside the timed region. It lives in tf_models
(standard library only) because a multi-worker chief times its own calls with it inside the
worker process; the study imports it as comparisons.timing.
"""
import math
import statistics
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of one warm-up call and of each timed repeat."""

    first_call_s: float  # includes tracing and compilation for TensorFlow
    repeat_s: tuple  # the timed calls after the warm-up

    @property
    def repeats(self):
        return len(self.repeat_s)

    @property
    def _timed(self):
        # with no repeat (too slow for the budget) the warm-up call is the only measurement
        return self.repeat_s or (self.first_call_s,)

    @property
    def median_s(self):
        return statistics.median(self._timed)

    @property
    def min_s(self):
        return min(self._timed)

    @property
    def max_s(self):
        return max(self._timed)


def time_calls(fn, repeats, budget_s=float("inf"), pace=None):
    """Call fn() once as warm-up, then up to `repeats` more times, timing each call.

    A slow callable gets fewer repeats: only as many as fit in `budget_s` seconds at the
    warm-up's pace. When not even one fits, none is made (Timing.repeats == 0) and the
    warm-up call is the measurement. pace(first_call_s) -> seconds, if given, is the pace
    planned with instead (processes that must make the same number of calls agree on one).
    Returns (warm-up result, Timing).
    """
    start = time.perf_counter()
    result = fn()
    first = time.perf_counter() - start
    planned_pace = first if pace is None else pace(first)
    planned = repeats if math.isinf(budget_s) else min(repeats, int(budget_s // max(planned_pace, 1e-9)))
    times = []
    for _ in range(planned):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return result, Timing(first_call_s=first, repeat_s=tuple(times))
