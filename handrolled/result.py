"""The one result every training loop of the study returns: numpy's here, and TensorFlow's and JAX's too.

tf_models and jax_models import this module alone from handrolled (it needs numpy only), so every loop
hands back the same frozen type and the study reads one set of fields.
"""
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DescentResult:
    """What a run of gradient descent returns; arrays keep the input dtype.

    numpy's loops (descent.py, gram.py, broadcast.py) fill the first five fields; the others keep
    their default unless a TensorFlow (tf_models) or JAX (jax_models) loop sets them.
    """

    weights: np.ndarray  # (m, 1), the parameters after the last update made
    bias: np.generic  # scalar of the run's dtype
    loss_curve: np.ndarray  # (k + 1,): point i is the loss before update i, the last the final parameters'
    diverged_at: int | None = None  # iteration whose loss showed divergence; None: none, or a loop that never stops
    trajectory: np.ndarray | None = None  # (k + 1, m + 1): [W^T, b] before update i, when asked for (descend)
    device: str | None = None  # TF, JAX: label of the device it ran on; a distributed run joins them by '+'
    jit_compile: bool | None = None  # TF, JAX: whether XLA compiled the loop
    grad_abs_diff: np.ndarray | None = None  # (k,) TF tape and JAX loops: per step, max |autodiff - analytic| over W, b
    # (k,) the same loops: grad_abs_diff over a bound on the summed terms, 2/n max|r| max(sum_i |x_ij|, n)
    # (a distributed run: the sum of its replicas' bounds; the Gram tape: 2 max(|G||theta| + |c|))
    grad_rel_diff: np.ndarray | None = None
    mode: str | None = None  # TF, JAX: how the loop ran ("xla", "graph", "gram", "mirrored", "jit", "keras", ...)
    statistics: tuple | None = None  # TF's Gram tape: (G (m + 1, m + 1), c (m + 1, 1), s, n) it iterated on

    @property
    def status(self):
        """'ok' or 'diverged at iteration k'."""
        return "ok" if self.diverged_at is None else f"diverged at iteration {self.diverged_at}"
