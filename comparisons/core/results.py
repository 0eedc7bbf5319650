"""The one result type every trainer returns, the loop results it is made from, and the rules applied to every run.

A loop returns one of two frozen loop results: numpy's handrolled.DescentResult, or loop_result.LoopResult,
the top-level module tf_models and jax_models share (neither may import this package or a framework's
package). from_run reads either into the one RunResult, which adds what the study measures around a run
(its name, dtype, timing, checks).
"""
from dataclasses import dataclass, field

import numpy as np

from handrolled import DescentResult, divergence_point  # numpy's loop result; the study's one divergence rule
from loop_result import LoopResult  # the TensorFlow and JAX loops' result

from comparisons.core.tolerances import GRADIENT


class GradientMismatchError(RuntimeError):
    """Autodiff and the analytic gradients (or central differences) disagree beyond the dtype's tolerance."""


@dataclass(frozen=True)
class GradientCheck:
    """One row of gradient_check.csv."""

    iteration: int
    method: str  # "analytic_vs_autodiff" or "finite_difference"
    max_abs_diff: float
    max_rel_diff: float


@dataclass(frozen=True)
class RunResult:
    """One implementation's run on one device in one dtype: what the tables, figures and report read."""

    implementation: str
    device: str
    dtype: str
    weights: np.ndarray  # (m, 1)
    bias: float
    loss_curve: np.ndarray  # (k + 1,) with k = iterations, or the iteration of divergence
    diverged_at: int | None
    grad_abs_diff: np.ndarray | None = None  # (k,) per-step max |autodiff - analytic| (gradient-checking runs only)
    grad_rel_diff: np.ndarray | None = None  # (k,) the same, relative to the size of the summed terms
    finite_difference: tuple = field(default=())  # GradientCheck rows at the start and the end
    jit_compile: bool | None = None  # whether XLA compiled it (compiled frameworks only)
    mode: str | None = None  # how the loop ran, when an implementation has several ways: xla, graph, blocked, ...
    updates_per_call: int | None = None  # updates one call performed when it does all N even past divergence
    timing: object = None  # timing.Timing measured where it ran (implementations that time themselves), else None
    loss_bound: float | None = None  # Gram routes: relative rounding bound of the final Gram-form loss

    @property
    def status(self):
        """'ok' or 'diverged at iteration k'."""
        return "ok" if self.diverged_at is None else f"diverged at iteration {self.diverged_at}"

    @property
    def updates_done(self):
        """How many parameter updates one (timed) call of this run performed."""
        return len(self.loss_curve) - 1 if self.updates_per_call is None else self.updates_per_call

    @property
    def gradient_checks(self):
        """Every gradient-check row: analytic vs autodiff per iteration, then the finite-difference ones."""
        per_step = () if self.grad_abs_diff is None else tuple(
            GradientCheck(i, "analytic_vs_autodiff", float(a), float(r))
            for i, (a, r) in enumerate(zip(self.grad_abs_diff, self.grad_rel_diff)))
        return per_step + tuple(self.finite_difference)


def truncate_at_divergence(losses):
    """(curve up to and including the first divergent point, that point or None)."""
    point = divergence_point(losses)
    return (losses, None) if point is None else (losses[:point + 1], point)


LOOP_RESULTS = (DescentResult, LoopResult)  # the loop result types from_run reads


def from_run(name, dtype, run, device=None, **extra):
    """A RunResult from a loop's DescentResult (numpy) or LoopResult (TensorFlow, JAX), checked.

    `device` names where it ran when the loop does not say (a DescentResult has no device: "cpu"). A run
    that does not stop itself (no diverged_at) is cut at the study's divergence point; a per-step
    gradient check beyond the dtype's tolerance raises.
    """
    if not isinstance(run, LOOP_RESULTS):
        raise TypeError(f"{name}: a loop returns handrolled.DescentResult or loop_result.LoopResult, "
                        f"not {type(run).__name__}")
    optional = lambda key: getattr(run, key, None)  # LoopResult's fields past diverged_at; a DescentResult has none
    np_dtype = np.dtype(dtype)
    as_array = lambda values: None if values is None else np.asarray(values, np_dtype)
    curve, diverged_at = as_array(run.loss_curve), run.diverged_at
    if diverged_at is None:
        curve, diverged_at = truncate_at_divergence(curve)
    result = RunResult(name, device or optional("device") or "cpu", dtype, as_array(run.weights).reshape(-1, 1),
                       float(run.bias), curve, diverged_at, grad_abs_diff=as_array(optional("grad_abs_diff")),
                       grad_rel_diff=as_array(optional("grad_rel_diff")), jit_compile=optional("jit_compile"),
                       mode=optional("mode"), **extra)
    check_gradient_tolerance(result)
    return result


def check_gradient_tolerance(result):
    """Raise GradientMismatchError when a run's per-step autodiff-vs-analytic gap exceeds its dtype's tolerance."""
    if result.grad_rel_diff is None:
        return
    rel = np.asarray(result.grad_rel_diff, np.float64)
    finite = rel[np.isfinite(rel)]  # a diverged last step may overflow
    worst = float(finite.max()) if finite.size else 0.0
    if worst > GRADIENT[result.dtype]:
        raise GradientMismatchError(
            f"{result.implementation} on {result.device} ({result.dtype}): autodiff and analytic gradients differ by "
            f"{worst:.3g} (relative), above the {GRADIENT[result.dtype]:g} tolerance")
