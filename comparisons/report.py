"""report.md and the figures, rebuilt from the tables in a results folder (no training).

    python -m comparisons.report results/
"""
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from . import experiments as experiment_registry
from . import figures

from .tolerances import EQUIVALENCE as TOLERANCE  # relative loss agreement with numpy, per dtype


def _md_table(frame, float_format="{:.6g}"):
    """A DataFrame as a markdown table."""
    def cell(value):
        if isinstance(value, (float, np.floating)):
            return float_format.format(value)
        return str(value)
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def _setup_section(d, study, env, config):
    versions = env.get("versions", {})
    tf = env.get("tensorflow") or {}
    lines = [
        "## Set-up",
        f"- data: {study['data_source']}",
        f"- model: y_hat = X W + b with {study['n_features']} feature(s) ({', '.join(study['feature_names'])}), "
        f"target `{study['target']}`; loss mean((y - y_hat)^2); full batch unless a batch size is given "
        f"(batch size: {study['batch_size'] or 'n, full batch'})",
        f"- learning rate {config['lr']}, {config['iterations']} iterations, dtypes {', '.join(config['dtypes'])}, "
        f"seed {config['seed']}; standardized features: {'yes (weights below are in raw units)' if study['standardized'] else 'no'}"
        + ("; target centred (the bias below is in raw units too)" if config.get("center_target") else ""),
        f"- initial parameters (shared by every implementation): W0 = {np.round(study['initial_weights'], 6).tolist()}, "
        f"b0 = {study['initial_bias']:.6f}",
        f"- Hessian 2/n [X,1]^T [X,1] of the trained features: lambda_min = {study['lambda_min']:.4g}, "
        f"lambda_max = {study['lambda_max']:.4g}, so the largest stable step is 2/lambda_max = {study['max_stable_lr']:.4g}",
        f"- devices TensorFlow saw: {', '.join(tf.get('physical_devices', [])) or 'TensorFlow not loaded'}; "
        f"GPUs: {', '.join(tf.get('gpus', [])) or 'none'}",
        f"- machine: {env.get('cpu_model')}, {env.get('cpu_cores_usable')} usable cores, {env.get('platform')}; "
        f"BLAS: {env.get('blas', {}).get('name')} {env.get('blas', {}).get('version', '')}",
        f"- versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"- numerics: {env.get('numerics')}; XLA (jit_compile) per implementation: {env.get('xla_jit_compile')}",
        f"- run started {env.get('started_at')}, took {env.get('wall_clock_s')} s; commit {env.get('git_commit')}; "
        f"command: `{' '.join(env.get('command_line', []))}`",
    ]
    if study.get("preflight"):
        lines.append(f"- **pre-flight:** {study['preflight']}")
    for skip in study.get("skipped", []):
        lines.append(f"- not run: `{skip['implementation']}` {skip['reason']}")
    return "\n".join(lines)


def _convergence_sentence(wide, parameters, ols, iterations, batch_size):
    """How close the finished runs came to ols (its parameters, in `parameters` order), and ols to the truth."""
    finished = wide[wide.status == "ok"]
    if finished.empty:
        return "No run finished, so none can be compared with `ols`."
    # each parameter against its own size; a parameter near 0 against 1e-6 of the largest, not against 0
    floor = np.maximum(np.abs(ols), 1e-6 * np.abs(ols).max())
    relative = pd.Series((np.abs(finished[parameters].to_numpy() - ols) / floor).max(axis=1), index=finished.index)
    worst = relative.groupby(finished.dtype).max().to_dict()
    parts = [f"{dtype} {gap:.2g}" for dtype, gap in sorted(worst.items())]
    # float32 carries ~6e-8 relative per operation: 1e-4 is as close as it can be expected to get
    reached = all(gap <= (1e-4 if dtype == "float32" else 1e-5) for dtype, gap in worst.items())
    text = (f"After {iterations} iterations the finished runs differ from `ols` by at most {', '.join(parts)} "
            "(relative to each parameter's size): ")
    if reached:
        text += "descent has converged to the least-squares fit."
    elif batch_size:
        text += (f"mini-batch descent with a fixed step (batches of {batch_size}) does not settle at the least-squares "
                 "fit; it wanders around it, closer the smaller the step.")
    else:
        text += ("full-batch descent has not yet reached the least-squares fit; more iterations, or a step nearer "
                 "the fastest fixed one, 2/(lambda_min + lambda_max) with the Hessian above, would close the gap.")
    true = wide[wide.implementation == "true"]
    if len(true):
        text += (f" `ols` itself is {float(true['max |diff to ols|'].iloc[0]):.3g} from `true`: with noise in y, the "
                 "best fit to this sample is not the generator's line, and no amount of descent changes that.")
    return text


def _weights_section(weights, runs, iterations, batch_size=None):
    wide = weights.pivot_table(index=["implementation", "device", "dtype"], columns="parameter", values="value",
                               sort=False).reset_index()
    parameters = [c for c in wide.columns if c not in ("implementation", "device", "dtype")]
    parameters = [p for p in parameters if p != "bias"] + ["bias"]
    wide = wide[["implementation", "device", "dtype", *parameters]]
    ols = wide[wide.implementation == "ols"][parameters].to_numpy()[0]
    wide["max |diff to ols|"] = np.abs(wide[parameters].to_numpy() - ols).max(axis=1)
    status = runs.set_index(["implementation", "device", "dtype"]).status
    wide["status"] = [status.get((r.implementation, r.device, r.dtype), "reference")
                      for r in wide.itertuples()]
    text = ["## Learned weights, the truth and least squares",
            "Final parameters of every run in the units of the input columns, beside the closed-form "
            "least-squares solution (`ols`) and, for synthetic data, the generator's parameters (`true`).",
            "", _md_table(wide), "", _convergence_sentence(wide, parameters, ols, iterations, batch_size)]
    diverged = runs[runs.status != "ok"]
    if len(diverged):
        text += ["", "Runs that diverged were stopped at the iteration k named in `status`; their weights are the "
                 "parameters after k updates, the ones whose loss crossed the divergence line, and mean nothing as a "
                 "fit."]
        if diverged.implementation.str.startswith("keras").any():
            text[-1] += (" Keras cannot stop inside one `fit` call, so its timed runs do all the updates and its "
                         "weights come from a second, untimed run of exactly k updates from the same start.")
    return "\n".join(text)


def _equivalence_section(equivalence, grads):
    eq = equivalence.copy()
    eq["tolerance"] = eq.dtype.map(TOLERANCE)
    eq["within"] = np.where(eq.max_rel_loss_diff <= eq.tolerance, "yes", "NO")
    worst = eq.groupby("dtype").max_rel_loss_diff.max().to_dict() if len(eq) else {}
    text = ["## Equivalence with the hand-rolled run",
            "Each run against `numpy` in the same dtype: the largest relative difference over every point of "
            "the loss curve, and the largest absolute difference of the final weights and bias.",
            "", _md_table(eq) if len(eq) else "_only one implementation ran_", ""]
    if worst:
        outside = eq[eq.within != "yes"]
        text.append("Largest relative loss difference, in units of the dtype's rounding (machine epsilon): " + ", ".join(
            f"{k}: {v:.3g} = {v / np.finfo(k).eps:.3g} eps" for k, v in worst.items()) + ". "
            + ("Every run is within its tolerance" if outside.empty else
               f"**{len(outside)} run(s) are outside their tolerance**: " + ", ".join(
                   f"`{r.implementation}` [{r.device}, {r.dtype}]" for r in outside.itertuples()))
            + (". A few eps over a whole loss curve is the rounding of one summation order against another: "
               "the implementations do the same arithmetic." if all(v <= 100 * np.finfo(k).eps for k, v in worst.items())
               else "."))
    text += ["", "## Gradient check",
             "`gradient_tape` computes the loss under `tf.GradientTape` and, at every step, also the analytic "
             "gradients -2/n X^T R and -2/n sum(R) from the same residuals. `max_rel_diff` divides the difference "
             "by a bound on the size of the terms the gradient sums, 2/n max|r| max(max_j sum_i |x_ij|, n), so it "
             "stays meaningful as the gradient itself goes to zero. A difference above the dtype's tolerance stops the run "
             "with an error. The finite-difference rows compare autodiff with central differences in float64 at "
             "the start and the end; they must agree within 100x the differences' own rounding error, or the run stops too."]
    if len(grads):
        summary = grads.groupby(["implementation", "device", "dtype", "method"], sort=False).agg(
            checks=("iteration", "size"), max_abs_diff=("max_abs_diff", "max"),
            max_rel_diff=("max_rel_diff", "max")).reset_index()
        text += ["", _md_table(summary)]
        per_step = summary[summary.method == "analytic_vs_autodiff"].groupby("dtype").max_rel_diff.max()
        if len(per_step):
            text += ["", "Largest per-step relative difference: " + ", ".join(
                f"{dtype}: {v:.3g} = {v / np.finfo(dtype).eps:.2g} eps" for dtype, v in per_step.items())
                + ": autodiff and the lesson's formulas differ only by rounding."
                if all(v <= 100 * np.finfo(dtype).eps for dtype, v in per_step.items()) else
                "Largest per-step relative difference: " + ", ".join(f"{d}: {v:.3g}" for d, v in per_step.items()) + "."]
    else:
        text += ["", "_no gradient_tape run in this study_"]
    return "\n".join(text)


def _numerics_note(env):
    """Under which numerical settings the timings were taken (they are the equivalence settings)."""
    numerics = env.get("numerics") or {}
    if not numerics:
        return "No TensorFlow run, so no TensorFlow numerics settings apply."
    return (f"TensorFlow ran with op determinism {'on' if numerics.get('op_determinism') else 'off'} and TF32 "
            f"{'on' if numerics.get('tf32_enabled') else 'off'}, the settings the equivalence needs; on a GPU "
            "determinism can pick slower kernels, on the CPU it changes little for this model.")


def _timings_section(timings, runs, env, config):
    t = timings.copy()
    t["median_ms"] = 1e3 * t.median_s
    t["first_call_ms"] = 1e3 * t.first_call_s
    shown = t[["implementation", "device", "dtype", "iterations", "repeats", "first_call_ms", "median_ms",
               "per_iteration_us", "speedup_vs_numpy"]]
    text = ["## Timings",
            "One warm-up call (its time, `first_call`, includes tracing and XLA compilation), then timed calls of a "
            "whole training run; each timer stops once the results are numpy arrays on the host. Slow variants get "
            "fewer timed repeats (the `repeats` column says how many): timed calls stop after about "
            f"{config.get('time_budget_s', '?')} s, and a run slower than that is not repeated at all (`repeats` 0: its "
            "times are the warm-up call's, compilation included, which for those variants is a small share). `speedup_vs_numpy` is numpy's median over "
            "this median in the same dtype, above 1 faster than numpy; it is left empty (nan) where a diverged run "
            "stopped early and the two did different numbers of updates (`iterations`). " + _numerics_note(env), "", _md_table(shown, "{:.4g}"), "",
            "![timings](timings.png)", "", "**Reading the timings.**"]
    jit = runs.set_index(["implementation", "device", "dtype"]).jit_compile.to_dict()
    modes = runs.set_index(["implementation", "device", "dtype"])["mode"].to_dict() if "mode" in runs else {}
    med = {(r.implementation, r.device, r.dtype): r for r in t.itertuples()}
    for device, dtype in sorted(set(zip(t.device, t.dtype))):
        ref = med.get(("numpy", "cpu", dtype))
        if ref is None:
            continue
        stopped = runs[(runs.dtype == dtype) & runs.device.isin([device, "cpu"]) & (runs.status != "ok")]
        if len(stopped):
            text.append(f"- {device}, {dtype}: some runs diverged, so these times cover different numbers of updates, "
                        "mostly fixed costs; they are not read as speeds here.")
            continue
        line = [f"- {device}, {dtype}: numpy takes {ref.per_iteration_us:.1f} us per update at this size."]
        idiom = med.get(("keras:numpy_input", device, dtype))
        if idiom is not None:
            line.append(f"The idiomatic `model.fit(X, y, epochs=N)` costs {idiom.per_iteration_us / 1e3:.1f} ms per "
                        f"epoch ({idiom.per_iteration_us / ref.per_iteration_us:.0f}x numpy's time per update): every epoch re-enters Keras' Python "
                        "loop (callbacks, a new iterator over the numpy arrays, metric resets, logs copied to the "
                        "host), and at this size that overhead is all there is.")
        fast = med.get(("keras", device, dtype))
        if fast is not None:
            line.append(f"The same `Dense(1)` fed a repeated `tf.data` batch, all steps in one `steps_per_execution` "
                        f"call, does the whole fit in {fast.median_ms:.0f} ms ({fast.per_iteration_us:.0f} us per "
                        f"update, fit's fixed cost included) after a {fast.first_call_ms:.0f} ms first call.")
        for variant, what in (("", "The default GradientTape loop"), (":xla", "The loop always compiled by XLA"),
                              (":graph", "The loop as a plain graph (no XLA, no blocks)")):
            row = med.get((f"gradient_tape{variant}", device, dtype))
            if row is not None:
                compiled = "XLA" if jit.get((row.implementation, row.device, row.dtype)) else "no XLA"
                how = modes.get((row.implementation, row.device, row.dtype))
                how = compiled if not isinstance(how, str) else {"xla": "XLA", "graph": "a graph, no XLA",
                                                                  "blocked": "a graph taking X in blocks"}.get(how, how)
                line.append(f"{what}{f' ({how})' if not variant else ''} runs {row.per_iteration_us:.2f} us per update, "
                            f"{row.speedup_vs_numpy:.2g}x numpy's speed, its per-step gradient check included; "
                            f"tracing{' and compiling' if compiled == 'XLA' else ''} cost {row.first_call_ms:.0f} ms once.")
        if med.get(("gradient_tape:graph", device, dtype)) is not None:
            line.append("Without XLA every small op of a step (matrix products, subtractions, reductions, the "
                        "check) is dispatched as its own kernel; XLA fuses them into a few.")
        eager = med.get(("gradient_tape:eager", device, dtype))
        if eager is not None:
            line.append(f"Eager, one Python iteration per step, it takes {eager.per_iteration_us:.0f} us per update.")
        text.append(" ".join(line))
    text.extend(_distributed_timing_lines(t, med))
    gpus = (env.get("tensorflow") or {}).get("gpus") or []
    cells = int((t.n_samples * t.n_features).max())
    small = cells < 100_000  # n * m: below this a step is microseconds of work, less than a kernel launch
    if gpus:
        text.append(f"- GPU ({', '.join(gpus)}): compare the gpu rows with the cpu rows above"
                    + ("; with X this small a step is microseconds of work against kernel-launch latency, so the GPU "
                       "cannot win." if small else "."))
    else:
        text.append("- No GPU was detected, so every TensorFlow run is on the CPU."
                    + (f" With X of {cells:,} numbers a GPU could not help anyway: an update is a few flops per entry, "
                       "less work than the launch latency of a GPU kernel; it pays off only when X is large (see the "
                       "scaling experiment)." if small else ""))
    return "\n".join(text)


def _distributed_timing_lines(t, med):
    """One bullet per dtype for the runs over several replicas or workers (device labels joined by '+')."""
    lines = []
    for dtype in sorted(set(t.dtype)):
        rows = [r for r in t.itertuples() if r.dtype == dtype and "+" in r.device]
        if not rows:
            continue
        single = med.get(("gradient_tape", "cpu", dtype))
        parts = []
        for r in rows:
            part = f"`{r.implementation}` over `{r.device}` {r.per_iteration_us:.0f} us per update"
            if single is not None and single.per_iteration_us > 0:
                part += f" ({r.per_iteration_us / single.per_iteration_us:.0f}x the single-device `gradient_tape`)"
            parts.append(part)
        logical = any(r.device.startswith("cpu:") for r in rows)
        lines.append(f"- Distributed, {dtype}: " + "; ".join(parts) + ". Each step ends in an all-reduce that every "
                     "replica waits for" + ("; the `cpu:k` replicas are logical devices on the same cores, so these "
                                            "times are the cost of synchronising, not a speed-up" if logical else "")
                     + ". Multi-worker times are taken inside worker 0 around the whole loop, like every other row; "
                     "starting the processes is not included.")
    return lines


def _experiments_section(results_dir):
    status_file = results_dir / "experiments.json"
    status = json.loads(status_file.read_text()) if status_file.exists() else {}
    parts = []
    for name, info in status.items():
        table_file = results_dir / f"{name}.csv"
        if info.get("status") != "ok" or not table_file.exists():
            parts.append(f"## Experiment `{name}`\n\n**Failed:** {info.get('status')}")
            continue
        module = experiment_registry.load(name)
        table = pd.read_csv(table_file)
        module.plot(table, results_dir)
        parts.append(module.report_section(table) + f"\n\n_({info.get('seconds')} s)_")
    return "\n\n".join(parts)


def build(results_dir):
    """Draw the figures and write report.md in `results_dir` from its tables."""
    d = Path(results_dir)
    study = json.loads((d / "study.json").read_text())
    env = json.loads((d / "environment.json").read_text())
    config = json.loads((d / "config.json").read_text())
    weights, runs = pd.read_csv(d / "weights.csv"), pd.read_csv(d / "runs.csv")
    equivalence, grads = pd.read_csv(d / "equivalence.csv"), pd.read_csv(d / "gradient_check.csv")
    timings = pd.read_csv(d / "timings.csv")
    figures.loss_curves(d)
    figures.timings(d)
    fit = ""
    if (d / "data.csv").exists() and study["n_features"] == 1:
        data = pd.read_csv(d / "data.csv")
        figures.fitted_line(d, data.iloc[:, :1].to_numpy(), data.iloc[:, -1:].to_numpy())
        fit = "\n\n![the learned lines over the data](fit.png)"
    diverged = runs[runs.status != "ok"]
    status_text = ("Every run finished its iterations." if diverged.empty else
                   "Some runs diverged and were stopped: " + "; ".join(
                       f"`{r.implementation}` [{r.device}, {r.dtype}] {r.status}" for r in diverged.itertuples()) + ".")
    sections = [
        "# Linear regression by gradient descent: hand-rolled numpy vs TensorFlow",
        "The same model, trained by the same "
        + ("full-batch gradient descent" if not study.get("batch_size") else
           f"mini-batch descent (batches of {study['batch_size']}, one shared sample order)")
        + " on the same data from the same starting point, by hand in numpy, as a Keras `Dense(1)` layer, and as a "
        "`tf.GradientTape` loop. "
        "This report is generated from the tables beside it (`python -m comparisons.report <folder>` rebuilds it).",
        _setup_section(d, study, env, config),
        _weights_section(weights, runs, config["iterations"], study.get("batch_size")),
        "## Loss curves\n\n" + status_text + "\n\n![loss curves](loss_curves.png)" + fit,
        _equivalence_section(equivalence, grads),
        _timings_section(timings, runs, env, config),
        _experiments_section(d),
        "## Files\n\n`weights.csv`, `loss_curves.csv`, `gradient_check.csv`, `timings.csv`, `equivalence.csv` "
        "(the results contract), `runs.csv` (status of each run), `study.json` (data and stability), `config.json`, "
        "`environment.json`, one CSV and PNG per experiment, and `tensorboard/` "
        "(`tensorboard --logdir tensorboard` overlays the loss curves).",
    ]
    (d / "report.md").write_text("\n\n".join(s for s in sections if s) + "\n")
    return d / "report.md"


if __name__ == "__main__":
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        print("error: usage: python -m comparisons.report RESULTS_FOLDER (a folder written by run_all.py)",
              file=sys.stderr)
        sys.exit(2)
    try:
        print(build(sys.argv[1]))
    except (FileNotFoundError, KeyError) as exc:  # a folder not written by run_all.py, or by an older version
        print(f"error: {sys.argv[1]} lacks what the report is drawn from ({type(exc).__name__}: {exc}); "
              "point at a folder written by run_all.py, or run the study again", file=sys.stderr)
        sys.exit(2)
