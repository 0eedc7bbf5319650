"""Thin builders, one module per framework: each turns a TrainerSpec into a Trainer.

A registry row names its builder as "comparisons.running.adapters.<module>:<function>"; the module is
imported only when that row runs, so a framework loads only when one of its rows is asked for.
A builder returns a Trainer: the train call and the optional parts the row's capabilities require.
"""
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np


@dataclass(frozen=True)
class TrainerSpec:
    """Everything a builder needs: the row, the data in the run's dtype, and the run's settings."""

    implementation: object  # registry.Implementation
    X: np.ndarray = field(repr=False)  # (n, m) in the run's dtype
    y: np.ndarray = field(repr=False)  # (n, 1) in the run's dtype
    lr: float
    iterations: int
    device: str = "cpu"  # a device label (cpu, gpu:0) or, for distributed rows, the --device spec
    batches: list | None = field(default=None, repr=False)  # index arrays, one per update (mini-batch), or None
    replicas: int = 2  # distributed="replicas": R
    workers: int = 2  # distributed="workers": W

    @property
    def name(self):
        """The implementation's name."""
        return self.implementation.name

    @property
    def dtype(self):
        """The run's dtype as a string."""
        return str(self.X.dtype)

    def with_changes(self, **changes):
        """A copy with some fields changed."""
        return replace(self, **changes)


@dataclass(frozen=True)
class Trainer:
    """What a builder returns: the training call, and the optional parts some rows' capabilities require.

    Call it as train: trainer(W0, b0, rate=spec.lr) -> RunResult (a row in its own process also takes
    repeats= and budget_s= and returns its Timing in RunResult.timing).
    """

    spec: TrainerSpec  # what it was built from
    train: Callable  # (W0, b0, rate=spec.lr) -> RunResult
    # (W, b) -> [dL/dW; dL/db] (m + 1,) float64, its framework's autodiff gradient, which the study checks
    # against central differences: required when the row checks_gradient
    autodiff_gradient: Callable | None = None
    # (one_pass() -> statistics, iterate(statistics, W0, b0) -> loss curve), its own traced stages, timed
    # apart by the scaling experiment: required when the row's route is "gram"
    stages: tuple | None = None

    def __call__(self, W0, b0, *args, **kwargs):
        """One run from (W0, b0): the train callable's RunResult."""
        return self.train(W0, b0, *args, **kwargs)
