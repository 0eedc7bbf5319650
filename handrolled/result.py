"""What a hand-rolled run of gradient descent returns (descent.py, gram.py, broadcast.py)."""
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DescentResult:
    """What a run of gradient descent returns; arrays keep the input dtype."""

    weights: np.ndarray  # (m, 1), the parameters after the last update made
    bias: np.generic  # scalar of the run's dtype
    loss_curve: np.ndarray  # (k + 1,): point i is the loss before update i; see `descend`
    diverged_at: int | None  # iteration whose loss showed divergence, or None
    trajectory: np.ndarray | None  # (k + 1, m + 1): [W^T, b] before update i, when asked for

    @property
    def status(self):
        """'ok' or 'diverged at iteration k'."""
        return "ok" if self.diverged_at is None else f"diverged at iteration {self.diverged_at}"
