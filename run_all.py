"""Run the study: every implementation on the same data from the same start, then write results/.

    python run_all.py                 # the lesson's settings, both dtypes, every device, all experiments
    python run_all.py --quick         # a small, fast run
    python run_all.py --help          # every option

This file only orchestrates; the work lives in comparisons/.
"""
import argparse
import shutil
import signal
import sys
from dataclasses import fields

# light imports only (no numpy, pandas or TensorFlow): --help and usage errors must answer at once
from comparisons.output import out_folder
from comparisons.core import registry
from comparisons.processes import scratch
from comparisons.core.config import StudyConfig, default_value, flag_of, options
from comparisons.core.errors import UsageError, nothing_to_run
from comparisons.core.limits import check_fits


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one `error:` line and exit 2."""

    def error(self, message):
        raise UsageError(f"{message} (see --help)")


def _default_text(f, option):
    """' (default: ...)' for --help, with the value --quick gives when it gives another; '' when there is none."""
    value = option.text if option.text is not None else default_value(f)
    if value is None or isinstance(value, tuple):
        return ""
    quick = default_value(f, quick=True)
    return f" (default: {value}" + (f"; {quick} with --quick)" if quick != default_value(f) else ")")


def build_parser():
    """The study's command line: one option per StudyConfig setting that has one (comparisons.core.config)."""
    p = _Parser(prog="run_all.py", description=(
        "Linear regression by gradient descent, hand-rolled in numpy, in TensorFlow/Keras and in JAX, trained on the "
        "same data from the same start and compared: weights, loss curves, gradients, time. Writes the "
        "results contract (CSV tables, figures, report.md, tensorboard/) to --out."))
    for f, option in options():
        text = option.help() if callable(option.help) else option.help
        if option.parse is None:  # a switch
            p.add_argument(flag_of(f), dest=f.name, action="store_true", default=argparse.SUPPRESS, help=text)
        else:  # not given: absent from the namespace, so config_from_args knows to take the default (or --quick's)
            p.add_argument(flag_of(f), dest=f.name, type=option.parse, default=argparse.SUPPRESS, metavar=option.metavar,
                           help=text + _default_text(f, option))
    return p


def config_from_args(args, argv):
    """Validate the parsed arguments into a StudyConfig (UsageError on bad input)."""
    given = vars(args)
    quick = given.get("quick", False)
    values = {f.name: given[f.name] if f.name in given else default_value(f, quick)
              for f in fields(StudyConfig) if f.name != "command_line"}
    if (values["data"] is None) != (values["target"] is None):
        raise UsageError("--data and --target go together: give the CSV file and the column to predict")
    if values["feature_columns"] and not values["data"]:
        raise UsageError("--columns selects CSV columns; it needs --data FILE.csv --target COL")
    if values["center_target"] and not values["standardize"]:
        raise UsageError("--center-target goes with --standardize (it centres the target of the z-scored training data)")
    if values["quick"] and values["full"]:
        raise UsageError("--quick and --full contradict each other; choose one")
    n_samples = None if values["data"] else values["n_samples"]  # a CSV file's row count is known once it is read
    _check_batch_size(values["batch_size"], n_samples, values["only"])
    check_fits(n_samples, values["features"], values["iterations"])  # before any array exists
    return StudyConfig(**values, command_line=tuple(argv))


def _check_batch_size(batch_size, n_samples, only):
    """The --batch-size errors that need no data loaded: more than the n synthetic samples, or nothing left to run.

    A CSV file's row count is known only once it is read, so comparisons.pipeline checks that case.
    """
    if batch_size is None:
        return
    if n_samples is not None and batch_size > n_samples:
        raise UsageError(f"--batch-size {batch_size} is larger than the {n_samples} samples; use 1..{n_samples}")
    if not any(registry.get(name).minibatch for name in only):
        raise nothing_to_run(f"{', '.join(only)} train{'s' * (len(only) == 1)} full batch only and cannot follow "
                             "--batch-size")


def check_out_dir(out):
    """The real folder a run may publish --out at (symlinks followed); UsageError if it must not (comparisons.output.out_folder)."""
    return out_folder.check(out)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv=None):
    """Parse, run, write; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    for sig in (signal.SIGTERM, signal.SIGHUP):  # a closed terminal stops a run as Ctrl-C does
        signal.signal(sig, _interrupt)
    staging = None
    try:
        args = build_parser().parse_args(argv)
        config = config_from_args(args, ["run_all.py", *argv])
        target = check_out_dir(config.out)
        out_folder.clean_beside(target)  # what a killed run left: its staging, or previous results set aside
        scratch.remove_stale_scratch()
        staging = out_folder.make_staging(target)
        from comparisons import pipeline  # heavy imports (numpy, pandas; TensorFlow when a run needs it) only now

        return pipeline.run(config, target, staging)
    except UsageError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        reason = str(exc) or "SIGINT"
        print(f"error: interrupted ({reason}); the previous results, if any, are untouched", file=sys.stderr)
        return 130
    except Exception as exc:  # a failure inside the study: one line, unless --debug
        if debug:
            raise
        print(f"error: the study failed: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1
    finally:
        if staging is not None and staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
