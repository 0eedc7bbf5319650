"""The study end to end: data, single run, experiments, tables, figures, report, atomic publish.

Everything is written into a staging folder beside --out (made by the driver: comparisons.output.out_folder)
and renamed into place only when the whole run succeeded, so a failed or interrupted run leaves the
previous results untouched.
"""
import datetime
import sys
import time
import traceback

from tqdm import tqdm

from comparisons.processes import cluster
from comparisons.output.out_folder import publish
from comparisons.output import environment as env_info
from comparisons import experiments as experiment_registry
from comparisons.inputs.data import initial_parameters, make_synthetic
from comparisons.inputs.standardize import scales_differ_widely, standardize
from comparisons.core.numeric_range import check_carries
from comparisons.report import implementations_page
from comparisons.core.errors import UsageError, nothing_to_run
from comparisons.running.devices import prepare_environment, set_up as set_up_devices
from comparisons.running import keras_jax_child, stability
from comparisons.core import strict_json
from comparisons.running.study import plan, preflight_message, run_single, start_processes


LONG_ANALYSIS_SIDE = 2000  # the stability analysis says what it computes above this matrix side


def load_data(config):
    """The Dataset to study, the Dataset to train on, its to-raw mapping, and whether scales differ widely."""
    if config.data:
        from comparisons.inputs.csv_data import load_csv

        dataset = load_csv(config.data, config.target, config.feature_columns)
    else:
        dataset = make_synthetic(config.n_samples, config.features, config.noise, config.seed)
    if config.batch_size is not None and config.batch_size > dataset.n:
        raise UsageError(f"--batch-size {config.batch_size} is larger than the {dataset.n} samples; use 1..{dataset.n}")
    check_carries(dataset, config.dtypes, standardize=config.standardize)  # X^T X and the loss stay finite
    widely = not config.standardize and scales_differ_widely(dataset.X)  # the hint is moot once standardised
    if config.standardize:
        trained, to_raw = standardize(dataset, center_target=config.center_target)
    else:
        trained, to_raw = dataset, (lambda W, b: (W, b))
    return dataset, trained, to_raw, widely


class Progress:
    """A tqdm bar over the runs and experiments, on stderr; the text names what runs now."""

    def __init__(self, total):
        self.bar = tqdm(total=total, unit="run", file=sys.stderr, dynamic_ncols=True,
                        bar_format="{desc:<44.44} {bar} {n_fmt}/{total_fmt} [{elapsed}<{remaining}]")
        self.started = 0

    def start(self, text):
        """A new item begins: the one before it is done."""
        if self.started:
            self.bar.update(1)
        self.started += 1
        self.note(text)

    def note(self, text):
        self.bar.set_description_str(text, refresh=True)

    def close(self):
        if self.started:
            self.bar.update(1)
        self.bar.close()  # finishes the bar's line, so a message after it starts on a line of its own


def run_experiments(config, devices, staging, progress, data=None, initial=None):
    """Run each selected experiment, write its table; a failing one is reported and the rest go on.

    `data` and `initial` are the single run's trained Dataset and start, for the experiments that
    study the data itself (lr_sweep, variants); None lets them use the lesson's generator.
    """
    status = {}
    for name in config.experiments:
        module = experiment_registry.load(name)
        progress.start(f"experiment {name}")
        ctx = experiment_registry.ExperimentContext(config=config, out_dir=staging, devices=devices,
                                                    progress=progress.note, data=data, initial=initial)
        began = time.perf_counter()
        try:
            table = module.run(ctx)
            table.to_csv(staging / f"{name}.csv", index=False, float_format="%.17g")
            status[name] = {"status": "ok", "seconds": round(time.perf_counter() - began, 2)}
        except (KeyboardInterrupt, UsageError):
            raise
        except Exception as exc:  # an experiment's failure is reported, the rest of the study goes on
            if config.debug:
                raise
            status[name] = {"status": f"failed: {type(exc).__name__}: {exc}",
                            "seconds": round(time.perf_counter() - began, 2),
                            "traceback": traceback.format_exc(limit=5)}
            tqdm.write(f"warning: experiment {name} failed ({type(exc).__name__}: {exc}); the study goes on",
                       file=sys.stderr)
    return status


def run(config, out, staging):
    """Run the whole study and publish it to `out`; returns the exit code."""
    started = datetime.datetime.now(datetime.timezone.utc)
    clock = time.perf_counter()
    dataset, trained, to_raw, widely = load_data(config)
    the_plan = plan(config)  # once: the device set-up and the runs read the same plan
    if not the_plan.rows:
        raise nothing_to_run("; ".join(f"{n} {why}" for n, why in the_plan.skipped))
    # every multi-worker run of the study and its experiments on one set of workers per worker count, and every
    # keras:jax run in one child: their start-ups are paid once, and the blocks end them however left (a usage
    # error of the device set-up too). They start now, before this process imports its frameworks, so their
    # start-ups overlap those imports; every one is waited for before the first timed call
    with cluster.shared_sessions(), keras_jax_child.shared_child():
        prepare_environment(config, the_plan)  # the started processes inherit what the device set-up sets
        waits = start_processes(config, the_plan)
        machine = set_up_devices(config, the_plan)  # imports only the frameworks the plan runs here
        triples = the_plan.triples(machine.devices)
        initial = initial_parameters(trained.m, config.seed)
        side = min(trained.n, trained.m + 1)
        if side > LONG_ANALYSIS_SIDE:  # a dense symmetric eigenproblem of this side: seconds to minutes, said up front
            print(f"note: stability analysis: the eigenvalues of a {side} x {side} matrix (2/n [X,1]^T [X,1]); "
                  "this takes a while", file=sys.stderr, flush=True)
        analysis = stability.analyse(trained.X)
        line = preflight_message(analysis, config.lr, widely)
        if line:
            print(line, file=sys.stderr)

        progress = Progress(len(triples) + len(config.experiments))
        try:
            if waits:
                progress.note("waiting for the processes started ahead")
            for wait in waits:  # idle before anything is timed: nothing shares the CPU with a timed call
                wait()
            output = run_single(config, dataset, trained, to_raw, initial, triples, analysis, preflight=line,
                                progress=progress.start, skipped=the_plan.skipped)
            experiment_status = run_experiments(config, machine.devices, staging, progress, data=trained, initial=initial)
        finally:
            progress.close()
    (staging / "experiments.json").write_text(strict_json.dumps(experiment_status, indent=2))

    from comparisons.report import document as report, front_page  # pandas and matplotlib, only now

    from comparisons.output import tables

    environment = env_info.collect(config, started, tf_report=machine.tf_report, numerics=machine.numerics,
                                   jax_report=machine.jax_report(),
                                   jit={r.implementation: r.jit_compile for r in output.runs if r.jit_compile is not None})
    environment["wall_clock_s"] = round(time.perf_counter() - clock, 2)
    written = tables.write_all(output, config, environment, staging)
    report.build(staging, helper=True)  # nothing is timed any more: a second process shares the figures
    publish(staging, out)
    front_page.sync_readme(out)  # the README's findings block, when `out` is the repository's results/
    implementations_page.sync(out)  # docs/implementations.md from the registry, likewise
    print(summary(written, output), file=sys.stderr)
    print(f"report: {out / 'report.md'}  ({time.perf_counter() - clock:.0f} s)", file=sys.stderr)
    return 0


def summary(tables, output):
    """A short terminal table: status, final loss, steady time and speedup of each run."""
    runs, timings = tables["runs.csv"], tables["timings.csv"]
    merged = runs.merge(timings, on=["implementation", "device", "dtype"])
    wide = max([22] + [len(n) + 2 for n in merged.implementation])  # distributed names and labels are long
    dev = max([8] + [len(d) + 2 for d in merged.device])
    lines = [f"{'implementation':<{wide}}{'device':<{dev}}{'dtype':<9}{'status':<26}{'final loss':>12}{'median ms':>11}{'x numpy':>9}"]
    for row in merged.itertuples():
        lines.append(f"{row.implementation:<{wide}}{row.device:<{dev}}{row.dtype:<9}{row.status:<26}"
                     f"{row.final_loss:>12.6g}{1e3 * row.median_s:>11.2f}{row.speedup_vs_numpy:>9.2f}")
    if output.preflight:
        lines.append(output.preflight)
    return "\n".join(lines)
