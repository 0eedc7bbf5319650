"""Write the results contract's tables (CSV), TensorBoard runs and JSON from a StudyOutput."""

import socket
import time

import numpy as np
import pandas as pd

from comparisons.core import strict_json
from comparisons.core.registry import REFERENCE
from comparisons.core.tolerances import judged
from comparisons.running.study import SOLVE, final_parameters_raw
from comparisons.running.timing import break_even_updates, ratio_interval

TABLE_COLUMNS = {
    "weights.csv": ["implementation", "device", "dtype", "parameter", "value"],
    "loss_curves.csv": ["implementation", "device", "dtype", "iteration", "loss"],
    "gradient_check.csv": ["implementation", "device", "dtype", "iteration", "method", "max_abs_diff", "max_rel_diff"],
    "timings.csv": ["implementation", "device", "dtype", "n_samples", "n_features", "iterations", "repeats",
                    "first_call_s", "median_s", "min_s", "max_s", "per_iteration_us", "speedup_vs_numpy",
                    # the median's distribution-free confidence interval (timing.median_interval) and its coverage,
                    # the speedup's interval from both rows' intervals, and the updates after which a cold run of
                    # this row (its first call included) beats numpy's cold run (timing.break_even_updates)
                    "median_low_s", "median_high_s", "interval_coverage", "speedup_low", "speedup_high",
                    "break_even_updates"],
    # loss_bound (Gram routes only): the relative rounding bound of the Gram-form loss at the last point, which the
    # measured max_rel_loss_diff may reach on top of the dtype's tolerance (see handrolled/gram.py)
    # allowed: the largest max_rel_loss_diff that counts as agreement, the dtype's tolerance plus loss_bound
    # (core.tolerances.judged, the one rule the report and the problem map also read)
    "equivalence.csv": ["implementation", "device", "dtype", "reference", "max_rel_loss_diff", "max_abs_weight_diff",
                        "loss_bound", "allowed"],
    "runs.csv": ["implementation", "device", "dtype", "status", "iterations_run", "final_loss", "jit_compile", "mode"],
}


def weights_table(output):
    """weights.csv: every run's final parameters in raw units, plus the ols and true references."""
    names = list(output.dataset.feature_names) + ["bias"]
    rows = []

    def add(implementation, device, dtype, W, b):
        for parameter, value in zip(names, list(np.asarray(W, np.float64).ravel()) + [float(b)]):
            rows.append((implementation, device, dtype, parameter, value))

    for run in output.runs:
        add(run.implementation, run.device, run.dtype, *final_parameters_raw(output, run))
    add("ols", "cpu", "float64", *output.ols)
    if output.dataset.true_weights is not None:
        add("true", "none", "float64", output.dataset.true_weights, output.dataset.true_bias)
    return pd.DataFrame(rows, columns=TABLE_COLUMNS["weights.csv"])


def loss_curves_table(output):
    """loss_curves.csv: point i is the loss before update i; the last point the final parameters."""
    frames = [pd.DataFrame({"implementation": r.implementation, "device": r.device, "dtype": r.dtype,
                            "iteration": np.arange(len(r.loss_curve)), "loss": np.asarray(r.loss_curve, np.float64)})
              for r in output.runs]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=TABLE_COLUMNS["loss_curves.csv"])


def gradient_check_table(output):
    """gradient_check.csv: analytic vs autodiff every iteration, finite differences at start and end."""
    rows = [(r.implementation, r.device, r.dtype, c.iteration, c.method, c.max_abs_diff, c.max_rel_diff)
            for r in output.runs for c in r.gradient_checks]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS["gradient_check.csv"])


def timings_table(output):
    """timings.csv: warm-up and steady times, per update, the speedup over numpy, their intervals, break-even."""
    reference_runs = {r.dtype: r for r in output.runs if r.implementation == REFERENCE}
    rows = []

    def row(key, updates, reference=None, same_work=False):
        t = output.timings[key]
        low, high, coverage = t.interval
        speedup = speedup_low = speedup_high = break_even = np.nan
        if reference is not None and same_work:
            ref = output.timings[(REFERENCE, reference.device, reference.dtype)]
            speedup = ref.median_s / t.median_s
            speedup_low, speedup_high = ratio_interval(ref.interval[:2], (low, high))
            if updates:
                break_even = break_even_updates(t.first_call_s, t.median_s, ref.first_call_s, ref.median_s, updates)
        rows.append((*key, output.trained.n, output.trained.m, updates, t.repeats, t.first_call_s, t.median_s, t.min_s,
                     t.max_s, 1e6 * t.median_s / updates if updates else np.nan, speedup, low, high, coverage,
                     speedup_low, speedup_high, break_even))

    for run in output.runs:
        # `iterations` is what one timed call did: a diverged run that stops itself stopped early, Keras always
        # does all N. The speedup is the ratio of medians, so it is left empty when the two did different numbers
        # of updates (fixed costs make a per-update ratio mislead)
        reference = reference_runs.get(run.dtype)
        row((run.implementation, run.device, run.dtype), run.updates_done, reference,
            reference is not None and reference.updates_done == run.updates_done)
    if SOLVE in output.timings:  # the closed-form solve: no updates, the same answer as a converged run
        row(SOLVE, 0, reference_runs.get(SOLVE[2]), reference_runs.get(SOLVE[2]) is not None)
    return pd.DataFrame(rows, columns=TABLE_COLUMNS["timings.csv"])


def _absolute_gaps(a, b):
    """|a - b| elementwise, with equal values (the same inf, or NaN on both sides) counting as no gap."""
    with np.errstate(all="ignore"):
        gaps = np.abs(a - b)
    return np.where((a == b) | (np.isnan(a) & np.isnan(b)), 0.0, gaps)


def _relative_gaps(a, b):
    """|a - b| / |b| elementwise, as _absolute_gaps (a curve that overflowed alike is no difference)."""
    with np.errstate(all="ignore"):
        return _absolute_gaps(a, b) / np.fmax(np.abs(b), np.finfo(np.float64).tiny)  # fmax: a NaN b is no divisor


def equivalence_table(output):
    """equivalence.csv: each run against numpy in the same dtype, over the points both reached."""
    reference = {r.dtype: r for r in output.runs if r.implementation == REFERENCE}
    rows = []
    for run in output.runs:
        ref = reference.get(run.dtype)
        if ref is None or run is ref:
            continue
        k = min(len(ref.loss_curve), len(run.loss_curve))
        a, b = np.asarray(run.loss_curve[:k], np.float64), np.asarray(ref.loss_curve[:k], np.float64)
        theta = np.append(np.ravel(run.weights), run.bias).astype(np.float64)
        theta_ref = np.append(np.ravel(ref.weights), ref.bias).astype(np.float64)
        # every run, diverged or not, ends with the parameters after the same number of updates
        rows.append((run.implementation, run.device, run.dtype, REFERENCE, float(np.max(_relative_gaps(a, b))),
                     float(np.max(_absolute_gaps(theta, theta_ref))),
                     np.nan if run.loss_bound is None else run.loss_bound))
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS["equivalence.csv"][:-1])
    return table.assign(allowed=judged(table).allowed)


def runs_table(output):
    """runs.csv: each run's status (ok or diverged at iteration k), length and final loss."""
    rows = [(r.implementation, r.device, r.dtype, r.status, len(r.loss_curve) - 1, float(r.loss_curve[-1]),
             r.jit_compile, r.mode) for r in output.runs]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS["runs.csv"])


def write_tensorboard(output, out_dir):
    """One TensorBoard run per implementation/device/dtype with the loss as a scalar per iteration.

    Written with TensorBoard's own protocol buffers and record framing rather than tf.summary, so
    that a numpy-only run never loads TensorFlow; the loss is stored as a float64 scalar tensor
    under the scalars plugin, which is what `tensorboard --logdir` reads.
    """
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
    from tensorboard.plugins.scalar import metadata
    from tensorboard.summary.writer.record_writer import RecordWriter  # the TFRecord framing, without TensorFlow

    def scalar(loss):  # the float64 scalar TensorProto that tensor_util.make_tensor_proto(loss) builds, directly
        return tensor_pb2.TensorProto(dtype=types_pb2.DT_DOUBLE, tensor_shape=tensor_shape_pb2.TensorShapeProto(),
                                      double_val=[loss])

    scalar_metadata = metadata.create_summary_metadata(display_name="loss", description="")
    now = time.time()
    for run in output.runs:
        device = run.device.replace(":", "").replace("/", "-")  # 'worker0/cpu:0+...': one folder, not nested ones
        name = f"{run.implementation.replace(':', '_')}_{device}_{run.dtype}"
        folder = out_dir / "tensorboard" / name
        folder.mkdir(parents=True, exist_ok=True)
        events = [event_pb2.Event(wall_time=now, file_version="brain.Event:2")]
        for step, loss in enumerate(np.asarray(run.loss_curve, np.float64).tolist()):
            value = summary_pb2.Summary.Value(tag="loss", metadata=scalar_metadata, tensor=scalar(loss))
            events.append(event_pb2.Event(wall_time=now, step=step, summary=summary_pb2.Summary(value=[value])))
        with open(folder / f"events.out.tfevents.{int(now)}.{socket.gethostname()}", "wb") as handle:
            writer = RecordWriter(handle)
            for event in events:
                writer.write(event.SerializeToString())


def write_all(output, config, environment, out_dir):
    """Write every table of the results contract, config.json, environment.json and tensorboard/."""
    tables = {
        "weights.csv": weights_table(output),
        "loss_curves.csv": loss_curves_table(output),
        "gradient_check.csv": gradient_check_table(output),
        "timings.csv": timings_table(output),
        "equivalence.csv": equivalence_table(output),
        "runs.csv": runs_table(output),
    }
    for file_name, table in tables.items():
        table.to_csv(out_dir / file_name, index=False, float_format="%.17g")
    study = {
        "data_source": output.dataset.source, "n_samples": output.dataset.n, "n_features": output.dataset.m,
        "feature_names": list(output.dataset.feature_names), "target": output.dataset.target_name,
        "standardized": config.standardize, "batch_size": config.batch_size,
        "initial_weights": np.ravel(output.initial[0]).tolist(), "initial_bias": float(output.initial[1]),
        "lambda_min": output.stability.lambda_min, "lambda_max": output.stability.lambda_max,
        "max_stable_lr": output.stability.max_stable_lr, "preflight": output.preflight,
        "skipped": [{"implementation": n, "reason": why} for n, why in output.skipped],
    }
    (out_dir / "study.json").write_text(strict_json.dumps(study, indent=2))
    (out_dir / "config.json").write_text(config.to_json())
    (out_dir / "environment.json").write_text(strict_json.dumps(environment, indent=2, default=str))
    if output.dataset.n * output.dataset.m <= 1_000_000:  # the data itself, for the fit figure
        data = pd.DataFrame(output.dataset.X, columns=list(output.dataset.feature_names))
        data[output.dataset.target_name] = output.dataset.y[:, 0]
        data.to_csv(out_dir / "data.csv", index=False, float_format="%.17g")
    write_tensorboard(output, out_dir)
    return tables
