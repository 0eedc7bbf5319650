"""The lesson's single run, done by every implementation on every device in every dtype.

Compute only: returns a StudyOutput of plain results; tables.py writes them, figures.py and
report.py draw from the tables.
"""
from dataclasses import dataclass, field

import numpy as np

import handrolled

from comparisons.inputs.data import order_seed
from comparisons.running import implementations
from comparisons.running.implementations import make_trainer, with_checks
from comparisons.core.registry import get as implementation
from comparisons.running.timing import time_interleaved

SOLVE = ("ols", "cpu", "float64")  # the timings key of the closed-form least-squares solve, timed beside the runs

@dataclass(frozen=True)
class StudyOutput:
    """Everything the single run produced, in memory."""

    dataset: object  # data.Dataset as given (raw units)
    trained: object  # the Dataset actually trained on (z-scored under --standardize)
    to_raw: object  # callable (W, b) -> (W, b) in raw units
    initial: tuple  # (W0 (m, 1), b0) in the trained space
    runs: list  # RunResult per (implementation, device, dtype)
    timings: dict  # (implementation, device, dtype) -> Timing; SOLVE: the closed-form solve
    stability: object  # stability.Stability of the trained features
    preflight: str | None  # the warning when --lr is above the largest stable step
    skipped: list = field(default_factory=list)  # (implementation, reason)
    ols: tuple = ()  # (W, b) float64, raw units


@dataclass(frozen=True)
class Plan:
    """Which implementations run in which dtypes, and which are skipped with why; made once per run, before devices."""

    rows: tuple  # (Implementation, dtypes) in --only's order
    skipped: tuple  # (implementation name, reason)
    device: str = "auto"  # the --device spec, which a distributed row is run on

    @property
    def implementations(self):
        """The registry rows that run."""
        return tuple(impl for impl, _ in self.rows)

    def triples(self, devices):
        """The (implementation, device, dtype) triples to run, given each framework's device labels.

        `devices` maps a framework to its labels (devices.Machine.devices), or is one list for every framework.
        A distributed row runs once per dtype on the --device spec (it picks its replicas' kind), numpy on the CPU.
        """
        out = []
        for impl, dtypes in self.rows:
            seen = devices.get(impl.framework, ["cpu"]) if isinstance(devices, dict) else devices
            runs_on = [self.device] if impl.distributed else ["cpu"] if impl.framework == "numpy" else seen
            out += [(impl.name, device, dtype) for dtype in dtypes for device in runs_on]
        return out


def plan(config):
    """The run's Plan: each of --only's implementations with the dtypes it runs in, or the reason it is skipped."""
    rows, skipped = [], []
    for name in config.only:
        impl = implementation(name)
        if config.batch_size is not None and not impl.minibatch:
            skipped.append((name, "trains full batch only; not run with --batch-size"))
            continue
        dtypes = config.dtypes
        if len(dtypes) > 1 and impl.one_dtype_enough:
            skipped.append((name, f"in {', '.join(dtypes[:-1])} (it runs in {dtypes[-1]}): its cost is per-step "
                                  f"machinery, the same in either dtype; --dtype {dtypes[0]} runs it there"))
            dtypes = dtypes[-1:]
        rows.append((impl, tuple(dtypes)))
    return Plan(tuple(rows), tuple(skipped), device=config.device)


def start_processes(config, plan):
    """Start ahead the processes the plan's own-process rows run in (each row's starter); a wait() for each.

    The caller opens the blocks that keep them (comparisons.processes.cluster.shared_sessions,
    keras_jax_child.shared_child) and calls every wait() before anything is timed.
    """
    waits = [implementations.start_processes(impl, workers=config.workers) for impl in plan.implementations
             if impl.own_process]
    return [wait for wait in waits if wait is not None]


def preflight_message(analysis, lr, scales_differ):
    """One line when lr is above 2 / lambda_max (full batch diverges there), else None."""
    if lr <= analysis.max_stable_lr:
        return None
    hint = "; the features' scales differ widely, try --standardize" if scales_differ else ""
    return (f"warning: --lr {lr:g} is above the largest stable step 2/lambda_max = {analysis.max_stable_lr:.4g} "
            f"for this data, so full-batch descent will diverge{hint}; running anyway to show it")


def run_single(config, dataset, trained, to_raw, initial, triples, analysis, preflight=None, progress=None, skipped=()):
    """Train every planned (implementation, device, dtype) triple, time it, and gather the results.

    `analysis` is stability.analyse of the trained features and `preflight` its warning, both
    computed by the caller before training so the warning can be shown first; `skipped` are the
    plan's (implementation, reason) pairs, kept in the output for the report.
    """
    batches = None
    if config.batch_size is not None:
        steps = config.iterations
        order = handrolled.sample_order(trained.n, handrolled.epochs_needed(trained.n, config.batch_size, steps),
                                        order_seed(config.seed))
        batches = handrolled.batch_indices(order, config.batch_size, steps)
    W0, b0 = initial
    trainers, timings, results = {}, {}, {}
    for key in triples:
        name, device, dtype = key
        X, y = trained.X.astype(dtype), trained.y.astype(dtype)
        trainers[key] = make_trainer(name, X, y, config.lr, config.iterations, device=device, batches=batches,
                                     replicas=config.replicas, workers=config.workers)
        if trainers[key].spec.implementation.own_process:  # timed where it runs, by the same rule (not interleaved)
            if progress:
                progress(f"{name} on {device}, {dtype}")
            results[key] = trainers[key](W0, b0, repeats=config.repeats, budget_s=config.time_budget_s)
            timings[key] = results[key].timing
    # every other run: a warm-up each, then interleaved rounds, so a slow minute of the machine hits them all alike
    calls = {key: (lambda t=t: t(W0, b0)) for key, t in trainers.items() if key not in results}
    X64, y64 = trained.X.astype("float64"), trained.y.astype("float64")
    calls[SOLVE] = lambda: handrolled.ols(X64, y64)
    announce = progress and (lambda key: key != SOLVE and progress(f"{key[0]} on {key[1]}, {key[2]}"))
    warm, interleaved = time_interleaved(calls, config.repeats, config.time_budget_s, seed=config.seed,
                                         on_warm_up=announce or None)
    results.update({key: r for key, r in warm.items() if key != SOLVE})
    timings.update(interleaved)
    runs = []
    for key in triples:
        # untimed: a run that cannot stop itself cut back to its divergence point, and the finite differences
        result = with_checks(trainers[key], W0, b0, results[key])
        runs.append(result)
        if result.device != key[1]:  # the run's label names where it really ran (replicas, workers)
            timings[result.implementation, result.device, result.dtype] = timings.pop(key)
    return StudyOutput(
        dataset=dataset, trained=trained, to_raw=to_raw, initial=initial, runs=runs, timings=timings,
        stability=analysis, preflight=preflight, skipped=list(skipped),
        ols=handrolled.ols(dataset.X, dataset.y),
    )


def final_parameters_raw(output, run):
    """A run's final (W (m, 1), b) in the units of the input columns."""
    return output.to_raw(np.asarray(run.weights, np.float64), float(run.bias))
