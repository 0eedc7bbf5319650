"""The one result type of every TensorFlow trainer: Keras fit, the GradientTape loops, the Gram tape, tf.distribute."""
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TFResult:
    """A TensorFlow (or Keras) run: parameters, loss curve and, for the tape loops, the per-step gradient check."""

    weights: np.ndarray  # (m, 1)
    bias: np.generic
    loss_curve: np.ndarray  # (k + 1,): loss before update i; the last point is the final parameters
    device: str  # label of the device the variables live on; a distributed run joins every replica by '+'
    jit_compile: bool  # whether XLA compiled the loop (passed explicitly to Keras)
    diverged_at: int | None = None  # the update whose loss showed divergence, when the loop stops itself (tape loops)
    # (k,): max |autodiff - analytic| over W and b, per step, and the same over a bound on the summed terms
    # (2/n max|r| max(sum_i |x_ij|, n); a distributed run: the sum of its replicas' bounds; the Gram tape:
    # 2 max(|G||theta| + |c|)); None when no check ran (Keras)
    grad_abs_diff: np.ndarray | None = None
    grad_rel_diff: np.ndarray | None = None
    mode: str | None = None  # how the loop ran: "xla", "graph", "blocked", "eager", "gram", "mirrored", "multi_worker" or a Keras feed
    statistics: tuple | None = None  # the Gram tape: (G (m + 1, m + 1), c (m + 1, 1), s, n) it iterated on, in its dtype
