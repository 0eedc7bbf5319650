"""The one result type of every JAX trainer (the jitted loop, its Python-loop twin, the sharded loop, Keras on JAX)."""
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class JaxResult:
    """A JAX (or Keras-on-JAX) run: parameters, loss curve and the per-step gradient check."""

    weights: np.ndarray  # (m, 1)
    bias: np.generic
    loss_curve: np.ndarray  # (k + 1,): loss before update i; the last point is the final parameters
    device: str  # label of the device (or '+'-joined devices) the parameters actually lived on
    jit_compile: bool  # whether XLA compiled the step (jax.jit)
    diverged_at: int | None = None  # the update whose loss showed divergence, when the loop stops itself
    grad_abs_diff: np.ndarray | None = None  # (k,): max |autodiff - analytic| over W and b, per step (None: no check ran)
    grad_rel_diff: np.ndarray | None = None  # (k,): the same over a bound on the summed terms, 2/n max|r| max(sum_i |x_ij|, n)
    mode: str | None = None  # how the loop ran: "jit", "python_loop", "op_by_op", "sharded" or "keras"


def truncated_fields(W, b, losses, abs_diffs, rel_diffs, steps, diverged, iterations, dtype):
    """JaxResult's fields weights .. grad_rel_diff from a loop's host arrays, cut at the point it stopped.

    losses has iterations + 1 slots, the diffs `iterations` (at least 1); `steps` is the number of
    updates made. A run that diverged at update k keeps k + 1 losses and k + 1 diffs (the
    divergent step was checked too); a finished run N + 1 losses and N diffs.
    """
    np_dtype = np.dtype(dtype)
    steps, diverged = int(steps), bool(diverged)
    end = steps + 1
    cut = min(end, iterations)
    return dict(weights=np.asarray(W, np_dtype).reshape(-1, 1), bias=np_dtype.type(np.asarray(b).reshape(())),
                loss_curve=np.asarray(losses, np_dtype)[:end], diverged_at=steps if diverged else None,
                grad_abs_diff=np.asarray(abs_diffs, np_dtype)[:cut], grad_rel_diff=np.asarray(rel_diffs, np_dtype)[:cut])
