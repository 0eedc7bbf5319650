"""Thin builders, one module per framework: each turns a TrainerSpec into train(W0, b0, rate=lr) -> RunResult.

A registry row names its builder as "comparisons.running.adapters.<module>:<function>"; the module is
imported only when that row runs, so a framework loads only when one of its rows is asked for.
A builder may attach, as attributes of the callable it returns:
- autodiff_gradient(W, b) -> [dL/dW; dL/db] (m + 1,) in float64: its framework's autodiff gradient,
  which the study checks against central differences (rows that check the gradient);
- stages: (one_pass() -> statistics, iterate(statistics, W0, b0) -> loss curve) (Gram routes);
- spec: the TrainerSpec it was built from (set by implementations.make_trainer).
"""
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
