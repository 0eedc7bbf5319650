"""The lesson's single run, done by every implementation on every device in every dtype.

Compute only: returns a StudyOutput of plain results; tables.py writes them, figures.py and
report.py draw from the tables.
"""
import dataclasses
from dataclasses import dataclass, field

import numpy as np

import handrolled

from .data import order_seed
from .implementations import finite_difference_checks, make_trainer, stop_at_divergence
from .registry import get as implementation, is_tensorflow, split_name
from .timing import time_calls

@dataclass(frozen=True)
class StudyOutput:
    """Everything the single run produced, in memory."""

    dataset: object  # data.Dataset as given (raw units)
    trained: object  # the Dataset actually trained on (z-scored under --standardize)
    to_raw: object  # callable (W, b) -> (W, b) in raw units
    initial: tuple  # (W0 (m, 1), b0) in the trained space
    runs: list  # RunResult per (implementation, device, dtype)
    timings: dict  # (implementation, device, dtype) -> Timing
    stability: object  # stability.Stability of the trained features
    preflight: str | None  # the warning when --lr is above the largest stable step
    skipped: list = field(default_factory=list)  # (implementation, reason)
    ols: tuple = ()  # (W, b) float64, raw units


def plan(config, devices):
    """The (implementation, device, dtype) triples to run, and the implementations skipped with why."""
    triples, skipped = [], []
    for name in config.only:
        if config.batch_size is not None and implementation(name).full_batch_only:
            skipped.append((name, "trains full batch only; not run with --batch-size"))
            continue
        dtypes = config.dtypes
        if len(dtypes) > 1 and implementation(name).one_dtype_when_both:
            skipped.append((name, f"in {', '.join(dtypes[:-1])} (it runs in {dtypes[-1]}): its cost is per-step "
                                  f"machinery, the same in either dtype; --dtype {dtypes[0]} runs it there"))
            dtypes = dtypes[-1:]
        for dtype in dtypes:
            # a distributed variant runs once per dtype: --device picks its replicas' kind (tf_models.distributed)
            runs_on = [config.device] if implementation(name).distributed else devices if is_tensorflow(name) else ["cpu"]
            for device in runs_on:
                triples.append((name, device, dtype))
    return triples, skipped


def preflight_message(analysis, lr, scales_differ):
    """One line when lr is above 2 / lambda_max (full batch diverges there), else None."""
    if lr <= analysis.max_stable_lr:
        return None
    hint = "; the features' scales differ widely, try --standardize" if scales_differ else ""
    return (f"warning: --lr {lr:g} is above the largest stable step 2/lambda_max = {analysis.max_stable_lr:.4g} "
            f"for this data, so full-batch descent will diverge{hint}; running anyway to show it")


def run_single(config, dataset, trained, to_raw, initial, devices, analysis, preflight=None, progress=None):
    """Train every planned implementation, time it, and gather the results.

    `analysis` is stability.analyse of the trained features and `preflight` its warning, both
    computed by the caller before training so the warning can be shown first.
    """
    triples, skipped = plan(config, devices)
    batches = None
    if config.batch_size is not None:
        steps = config.iterations
        order = handrolled.sample_order(trained.n, handrolled.epochs_needed(trained.n, config.batch_size, steps),
                                        order_seed(config.seed))
        batches = handrolled.batch_indices(order, config.batch_size, steps)
    W0, b0 = initial
    runs, timings = [], {}
    for name, device, dtype in triples:
        if progress:
            progress(f"{name} on {device}, {dtype}")
        X, y = trained.X.astype(dtype), trained.y.astype(dtype)
        trainer = make_trainer(name, X, y, config.lr, config.iterations, device=device, batches=batches,
                               replicas=config.replicas, workers=config.workers)
        if getattr(trainer, "measures_itself", False):  # multi-worker: timed inside the chief, same rule
            result = trainer(W0, b0, repeats=config.repeats, budget_s=config.time_budget_s)
            timing = result.timing
        else:
            result, timing = time_calls(lambda: trainer(W0, b0), config.repeats, config.time_budget_s)
        # untimed: a diverged Keras run's parameters at its divergence point, and the finite differences
        result = stop_at_divergence(result, X, y, config.lr, W0, b0, batches=batches, replicas=config.replicas)
        if split_name(name)[0] == "gradient_tape":
            result = dataclasses.replace(result, finite_difference=finite_difference_checks(X, y, W0, b0, result))
        runs.append(result)
        timings[(name, result.device, dtype)] = timing
    return StudyOutput(
        dataset=dataset, trained=trained, to_raw=to_raw, initial=initial, runs=runs, timings=timings,
        stability=analysis, preflight=preflight, skipped=skipped,
        ols=handrolled.ols(dataset.X, dataset.y),
    )


def final_parameters_raw(output, run):
    """A run's final (W (m, 1), b) in the units of the input columns."""
    return output.to_raw(np.asarray(run.weights, np.float64), float(run.bias))
