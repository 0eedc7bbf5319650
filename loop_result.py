"""LoopResult: what a TensorFlow (tf_models) or JAX (jax_models) training loop returns.

A module of its own, beside the packages, so that both framework packages can return one type
without importing comparisons or each other's package (or handrolled, which keeps its own
DescentResult). It imports numpy only, and nothing of the study; comparisons' from_run reads it.
"""
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LoopResult:
    """A framework loop's run: parameters, loss curve, and what the loop says of itself; arrays in the run's dtype."""

    weights: np.ndarray  # (m, 1), the parameters after the last update made
    bias: np.generic  # scalar of the run's dtype
    loss_curve: np.ndarray  # (k + 1,): point i is the loss before update i, the last the final parameters'
    diverged_at: int | None = None  # the update whose loss showed divergence, when the loop stops itself (tape, JAX)
    device: str | None = None  # label of the device it ran on; a distributed run joins its replicas' labels by '+'
    jit_compile: bool | None = None  # whether XLA compiled the loop (passed explicitly to Keras)
    # (k,) tape and JAX loops: per step, max |autodiff - analytic| over W and b; None: no check ran (Keras)
    grad_abs_diff: np.ndarray | None = None
    # (k,) the same loops: grad_abs_diff over a bound on the summed terms, 2/n max|r| max(sum_i |x_ij|, n)
    # (a distributed run: the sum of its replicas' bounds; the Gram tape: 2 max(|G||theta| + |c|))
    grad_rel_diff: np.ndarray | None = None
    mode: str | None = None  # how the loop ran: "xla", "graph", "gram", "mirrored", "jit", "keras", a Keras feed, ...
    statistics: tuple | None = None  # TF's Gram tape: (G (m + 1, m + 1), c (m + 1, 1), s, n) it iterated on

    @property
    def status(self):
        """'ok' or 'diverged at iteration k'."""
        return "ok" if self.diverged_at is None else f"diverged at iteration {self.diverged_at}"
