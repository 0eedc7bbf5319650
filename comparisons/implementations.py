"""Adapters: every implementation behind one call, make_trainer(name, ...)(W0, b0) -> RunResult.

numpy, Keras and GradientTape return their own result types; here they become one RunResult,
the same divergence rule is applied to all, and the GradientTape gradient check is enforced.
TensorFlow is imported only when a TensorFlow implementation is asked for.
"""
import dataclasses
from dataclasses import dataclass, field

import numpy as np

import handrolled

from .registry import IMPLEMENTATIONS, REGISTRY, is_tensorflow, split_name  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class GradientCheck:
    """One row of gradient_check.csv."""

    iteration: int
    method: str  # "analytic_vs_autodiff" or "finite_difference"
    max_abs_diff: float
    max_rel_diff: float


@dataclass(frozen=True)
class RunResult:
    """One implementation's run on one device in one dtype."""

    implementation: str
    device: str
    dtype: str
    weights: np.ndarray  # (m, 1)
    bias: float
    loss_curve: np.ndarray  # (k + 1,) with k = iterations, or the iteration of divergence
    diverged_at: int | None
    grad_abs_diff: np.ndarray | None = None  # (k,) per-step max |autodiff - analytic| (gradient_tape only)
    grad_rel_diff: np.ndarray | None = None  # (k,) the same, relative to the size of the summed terms
    finite_difference: tuple = field(default=())  # GradientCheck rows at the start and the end
    jit_compile: bool | None = None  # whether XLA compiled it (TensorFlow only)
    mode: str | None = None  # how gradient_tape ran its loop: xla, graph, blocked or eager
    updates_per_call: int | None = None  # updates one call performed; Keras runs all N even past divergence
    timing: object = None  # timing.Timing measured inside the run itself (multi-worker: by the chief), else None
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


def _truncate_at_divergence(losses):
    """(curve up to and including the first divergent point, that point or None)."""
    point = handrolled.divergence_point(losses)
    return (losses, None) if point is None else (losses[:point + 1], point)


def make_trainer(name, X, y, lr, iterations, device="cpu", batches=None, replicas=2, workers=2):
    """A callable (W0, b0[, rate]) -> RunResult for implementation `name` on `device`.

    `rate` (default `lr`) lets one trainer serve several learning rates without tracing or
    compiling again: TensorFlow gets the rate as an input, Keras as its optimizer's variable.

    X (n, m) and y (n, 1) are already in the run's dtype. `batches` (a list of index arrays,
    one per update) switches to mini-batch descent in the given sample order.

    Distributed variants: `device` is the --device spec (cpu, auto, gpu) choosing the replicas'
    devices; `replicas` is R of the mirrored ones, `workers` W of the multi-worker one. The
    multi-worker trainer times itself (see make_multi_worker_trainer): it has `measures_itself`.
    """
    if name not in IMPLEMENTATIONS:
        raise ValueError(f"unknown implementation {name!r}; known: {', '.join(IMPLEMENTATIONS)}")
    if batches is not None and REGISTRY[name].full_batch_only:
        raise ValueError(f"{name} trains full batch only")
    base, variant = split_name(name)
    dtype = str(X.dtype)
    lr = float(lr)  # Keras' SGD rejects an integer learning rate

    if name == "numpy:gram":
        def train(W0, b0, rate=lr):
            stats = handrolled.sufficient_statistics(X, y)  # the one pass, inside every (timed) call
            r = handrolled.descend_gram(stats, W0, b0, float(rate), iterations)
            return RunResult(name, "cpu", dtype, r.weights, float(r.bias), r.loss_curve, r.diverged_at,
                             loss_bound=_gram_loss_bound(stats, r.weights, r.bias, r.loss_curve))
        train.stages = (lambda: handrolled.sufficient_statistics(X, y),
                        lambda stats, W0, b0: handrolled.descend_gram(stats, W0, b0, lr, iterations).loss_curve)
        return train

    if base == "numpy":
        def train(W0, b0, rate=lr):
            r = handrolled.descend(X, y, W0, b0, float(rate), iterations, batches=batches)
            return RunResult(name, "cpu", dtype, r.weights, float(r.bias), r.loss_curve, r.diverged_at)
        return train

    if name == "gradient_tape:multi_worker":
        return make_multi_worker_trainer(X, y, lr, iterations, workers)

    if base == "keras":
        keras_train = _keras_trainer(name, X, y, lr, iterations, device, batches, replicas)

        def train(W0, b0, rate=lr):
            r = keras_train(W0, b0, lr=float(rate))
            curve, diverged_at = _truncate_at_divergence(r.loss_curve)
            return RunResult(name, r.device, dtype, r.weights, float(r.bias), curve, diverged_at,
                             jit_compile=r.jit_compile, updates_per_call=iterations)
        return train

    if variant == "mirrored":
        from tf_models.distributed import make_mirrored_tape_trainer

        tape_train = make_mirrored_tape_trainer(X, y, lr, iterations, replicas=replicas, device_spec=device,
                                                divergence_factor=handrolled.DIVERGENCE_FACTOR)
    elif variant == "gram":
        from tf_models.gram import make_gram_tape_trainer

        tape_train = make_gram_tape_trainer(X, y, lr, iterations, device=device,
                                            divergence_factor=handrolled.DIVERGENCE_FACTOR)
    else:
        from tf_models.gradient_tape import make_tape_trainer

        tape_train = make_tape_trainer(X, y, lr, iterations, mode=variant or "auto", device=device,
                                       divergence_factor=handrolled.DIVERGENCE_FACTOR)

    def train(W0, b0, rate=lr):
        r = tape_train(W0, b0, lr=float(rate))
        bound = (_gram_loss_bound(handrolled.GramStatistics(r.G, r.c, r.s, r.n), r.weights, r.bias, r.loss_curve)
                 if variant == "gram" else None)
        return _tape_run_result(name, dtype, r, loss_bound=bound)
    if variant == "gram":  # the same traced functions, timed apart (no second trace or compilation)
        train.stages = (lambda: tuple(t.numpy() for t in tape_train.one_pass()),
                        lambda stats, W0, b0: tape_train.iterate(*stats, W0, b0).loss_curve)
    return train


def _keras_trainer(name, X, y, lr, iterations, device, batches, replicas):
    """The tf_models Keras trainer behind a keras[:variant] name."""
    variant = split_name(name)[1]
    if variant == "mirrored":
        from tf_models.distributed import make_mirrored_keras_trainer

        return make_mirrored_keras_trainer(X, y, lr, iterations, replicas=replicas, device_spec=device)
    from tf_models.keras_model import make_keras_trainer

    return make_keras_trainer(X, y, lr, iterations, feed=variant or "dataset", device=device, batches=batches)


def _tape_run_result(name, dtype, r, loss_bound=None):
    """A RunResult from a tape-style result, enforcing the per-step analytic-vs-autodiff tolerance."""
    from tf_models.gradient_tape import GRADIENT_TOLERANCE, GradientMismatchError

    finite = r.grad_rel_diff[np.isfinite(r.grad_rel_diff)]  # a diverged last step may overflow
    worst = float(finite.max()) if finite.size else 0.0
    if worst > GRADIENT_TOLERANCE[dtype]:
        raise GradientMismatchError(
            f"{name} on {r.device} ({dtype}): autodiff and analytic gradients differ by "
            f"{worst:.3g} (relative), above the {GRADIENT_TOLERANCE[dtype]:g} tolerance")
    return RunResult(name, r.device, dtype, r.weights, float(r.bias), r.loss_curve, r.diverged_at,
                     grad_abs_diff=r.grad_abs_diff, grad_rel_diff=r.grad_rel_diff, jit_compile=r.jit_compile,
                     mode=r.mode, timing=getattr(r, "timing", None), loss_bound=loss_bound)


def gram_stages(trainer):
    """A Gram route's trainer's two stages, to time apart: (one_pass() -> statistics, iterate(statistics, W0, b0) -> loss curve).

    Both return only once their result is on the host; they are the trainer's own (already traced) stages.
    """
    try:
        return trainer.stages
    except AttributeError:
        raise ValueError("not the trainer of a Gram route (numpy:gram, gradient_tape:gram)") from None


def _gram_loss_bound(stats, W, b, loss_curve):
    """The rounding bound of a Gram run's last loss point (converging: its smallest loss, the worst cancellation), or None."""
    theta = np.append(np.ravel(W), b).reshape(-1, 1)
    loss = float(loss_curve[-1])
    if not (np.all(np.isfinite(theta)) and np.isfinite(loss)) or loss == 0:
        return None
    return handrolled.loss_rounding_bound(stats, theta, loss)


MULTI_WORKER_TIMEOUT_S = float("inf")  # no limit on a run's length: the launcher's watchdog ends a stalled one (cluster.StallWatch)
COLLECTIVE_TIMEOUT_S = 60.0  # a peer that does not join a job, or a cluster that stalls, fails the run after this long


def make_multi_worker_trainer(X, y, lr, iterations, workers=2, timeout_s=MULTI_WORKER_TIMEOUT_S):
    """gradient_tape:multi_worker: (W0, b0, rate=lr, repeats=0, budget_s=None) -> RunResult with .timing.

    Each call runs on `workers` processes on loopback (comparisons.cluster: started for the call, or
    the study's shared session started once for all its multi-worker runs), which time a warm-up
    call and up to `repeats` more inside the chief (within budget_s at the warm-up's pace, as
    timing.time_calls does), so RunResult.timing has the meaning of every other timing row.
    """
    from types import SimpleNamespace

    from .cluster import run_job, train_job
    from .scratch import owned_dir
    from .timing import Timing

    dtype = str(X.dtype)

    def train(W0, b0, rate=lr, repeats=0, budget_s=None):
        with owned_dir("multi-worker-data-") as tmp:  # owner-tagged: a later run removes it if this one is killed
            job = train_job(X, y, W0, b0, float(rate), iterations, tmp, repeats=repeats, budget_s=budget_s,
                            collective_timeout_s=COLLECTIVE_TIMEOUT_S, divergence_factor=handrolled.DIVERGENCE_FACTOR)
            out = run_job(job, workers, timeout_s=timeout_s)
        r = SimpleNamespace(
            weights=np.asarray(out["weights"], dtype), bias=np.dtype(dtype).type(out["bias"]),
            loss_curve=np.asarray(out["loss_curve"], dtype), diverged_at=out["diverged_at"],
            grad_abs_diff=np.asarray(out["grad_abs_diff"], dtype), grad_rel_diff=np.asarray(out["grad_rel_diff"], dtype),
            device=out["device"], jit_compile=False, mode="multi_worker",
            timing=Timing(first_call_s=out["first_call_s"], repeat_s=tuple(out["repeat_s"])))
        return _tape_run_result("gradient_tape:multi_worker", dtype, r)

    train.measures_itself = True
    return train


def stop_at_divergence(result, X, y, lr, W0, b0, batches=None, replicas=2):
    """A Keras result whose run went past its divergence point, given the parameters at that point.

    fit(steps_per_execution=N) cannot stop between steps, so a diverged Keras run ends with the
    parameters of all N updates (often inf or NaN). The parameters numpy and gradient_tape stop
    with, those after `diverged_at` updates, come from a second Keras run of exactly that many
    updates from the same start, outside any timed call. Other results are returned unchanged.
    """
    k = result.diverged_at
    if split_name(result.implementation)[0] != "keras" or k is None or k >= result.updates_done:
        return result
    if k == 0:
        weights, bias = np.asarray(W0, X.dtype).reshape(-1, 1), float(b0)
    else:
        # a mirrored run's label names its replicas ('cpu:0+cpu:1'): their kind is the device spec again
        device = result.device.split(":")[0] if "+" in result.device else result.device
        short = _keras_trainer(result.implementation, X, y, float(lr), k, device,
                               None if batches is None else batches[:k], replicas)(W0, b0)
        weights, bias = short.weights, float(short.bias)
    return dataclasses.replace(result, weights=weights, bias=bias)


def finite_difference_checks(X, y, W0, b0, result):
    """Finite-difference rows for a run: the autodiff gradient at the start and at the end.

    Raises GradientMismatchError when the two disagree beyond the rounding error of the differences.
    """
    from tf_models.gradient_tape import GradientMismatchError, finite_difference_check

    rows = []
    points = {0: (W0, b0), len(result.loss_curve) - 1: (result.weights, result.bias)}  # one row if it stopped at 0
    for iteration, (W, b) in points.items():
        if np.all(np.isfinite(W)) and np.isfinite(b):
            abs_diff, rel_diff, within = finite_difference_check(X, y, W, b)
            if not within:
                raise GradientMismatchError(
                    f"{result.implementation} on {result.device} ({result.dtype}): autodiff and central "
                    f"differences differ by {abs_diff:.3g} at iteration {iteration}, beyond their rounding error")
            rows.append(GradientCheck(iteration, "finite_difference", abs_diff, rel_diff))
    return tuple(rows)
