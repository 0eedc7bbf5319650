"""The study's timing harness (warm-up, then repeats within a budget): tf_models/timing.py, shared with the multi-worker chief."""
from tf_models.timing import Timing, time_calls

__all__ = ["Timing", "time_calls"]
