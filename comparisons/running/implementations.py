"""Every implementation behind one call: make_trainer(name, ...)(W0, b0[, rate]) -> RunResult.

The registry row says how to build the trainer (its builder, in comparisons/running/adapters/) and what it
can do; here the capabilities are checked and the study's rules applied the same way to every row.
A framework is imported only when one of its rows is built.
"""
import dataclasses
import importlib

import numpy as np

from comparisons.running import finite_difference
from comparisons.running.adapters import Trainer, TrainerSpec
from comparisons.core.registry import get
from comparisons.core.results import GradientCheck, GradientMismatchError, RunResult  # noqa: F401 (re-exported)


def resolve(target):
    """A registry row's builder or starter: the callable itself, or 'module:function' imported only now."""
    if callable(target):
        return target
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)


def build(spec):
    """The trainer of `spec`'s registry row (its builder), unchecked: make_trainer checks it."""
    return resolve(spec.implementation.builder)(spec)


def start_processes(impl, **settings):
    """Start `impl`'s processes ahead (its starter) and return their wait(); None when it has no starter."""
    return None if impl.starter is None else resolve(impl.starter)(**settings)


def make_trainer(name, X, y, lr, iterations, device="cpu", batches=None, replicas=2, workers=2):
    """A Trainer, called as (W0, b0[, rate]) -> RunResult, for implementation `name` on `device`.

    `rate` (default `lr`) lets one trainer serve several learning rates without tracing or
    compiling again (the compiled frameworks take it as an input). X (n, m) and y (n, 1) are already
    in the run's dtype. `batches` (a list of index arrays, one per update) switches to mini-batch
    descent in the given sample order. Distributed rows: `device` is the --device spec choosing the
    replicas' devices, `replicas` R and `workers` W. A row in its `own_process` takes
    (W0, b0, rate, repeats=, budget_s=) and returns its Timing in RunResult.timing.
    """
    impl = get(name)
    if batches is not None and not impl.minibatch:
        raise ValueError(f"{name} trains full batch only")
    spec = TrainerSpec(impl, X, y, float(lr), iterations, device=device, batches=batches, replicas=replicas,
                       workers=workers)  # float(lr): Keras' SGD rejects an integer learning rate
    trainer = build(spec)
    if not isinstance(trainer, Trainer):
        raise TypeError(f"{name}'s builder returned {type(trainer).__name__}, not a Trainer (comparisons.running.adapters)")
    if impl.checks_gradient and trainer.autodiff_gradient is None:
        raise TypeError(f"{name} checks the gradient (registry) but its builder gave no autodiff_gradient")
    if impl.route == "gram" and trainer.stages is None:
        raise TypeError(f"{name} is a Gram route (registry) but its builder gave no stages")
    return trainer


def stop_at_divergence(result, trainer, W0, b0):
    """A result whose run went past its divergence point, given the parameters at that point.

    A row that cannot stop itself (Keras' fit with steps_per_execution=N) ends with the parameters of
    all N updates (often inf or NaN). The parameters every other run stops with, those after
    `diverged_at` updates, come from a second run of exactly that many updates from the same start,
    outside any timed call. Other results are returned unchanged.
    """
    spec = trainer.spec
    k = result.diverged_at
    if spec.implementation.stops_at_divergence or k is None or k >= result.updates_done:
        return result
    if k == 0:
        weights, bias = np.asarray(W0, spec.X.dtype).reshape(-1, 1), float(b0)
    else:
        short = spec.with_changes(iterations=k, batches=None if spec.batches is None else spec.batches[:k])
        r = build(short)(W0, b0)
        weights, bias = r.weights, float(r.bias)
    return dataclasses.replace(result, weights=weights, bias=bias)


def finite_difference_checks(trainer, W0, b0, result):
    """Finite-difference rows for a gradient-checking run: its autodiff gradient at the start and at the end.

    Raises GradientMismatchError when the two disagree beyond the rounding error of the differences.
    """
    spec = trainer.spec
    rows = []
    points = {0: (W0, b0), len(result.loss_curve) - 1: (result.weights, result.bias)}  # one row if it stopped at 0
    for iteration, (W, b) in points.items():
        if np.all(np.isfinite(W)) and np.isfinite(b):
            abs_diff, rel_diff, within = finite_difference.check(trainer.autodiff_gradient(W, b), spec.X, spec.y, W, b)
            if not within:
                raise GradientMismatchError(
                    f"{result.implementation} on {result.device} ({result.dtype}): autodiff and central "
                    f"differences differ by {abs_diff:.3g} at iteration {iteration}, beyond their rounding error")
            rows.append(GradientCheck(iteration, "finite_difference", abs_diff, rel_diff))
    return tuple(rows)


def with_checks(trainer, W0, b0, result):
    """The result after the study's untimed steps: cut back to its divergence point, finite differences added."""
    result = stop_at_divergence(result, trainer, W0, b0)
    if trainer.spec.implementation.checks_gradient:
        result = dataclasses.replace(result, finite_difference=finite_difference_checks(trainer, W0, b0, result))
    return result


def gram_stages(trainer):
    """A Gram route's two stages, to time apart: (one_pass() -> statistics, iterate(statistics, W0, b0) -> loss curve).

    Both return only once their result is on the host; they are the trainer's own (already traced) stages.
    """
    if trainer.stages is None:
        raise ValueError(f"{trainer.spec.name} is not a Gram route (route='gram' in the registry)")
    return trainer.stages
