"""Run the study: every implementation on the same data from the same start, then write results/.

    python run_all.py                 # the lesson's settings, both dtypes, every device, all experiments
    python run_all.py --quick         # a small, fast run
    python run_all.py --help          # every option

This file only orchestrates; the work lives in comparisons/.
"""
import argparse
import re
import shutil
import signal
import sys

# light imports only (no numpy, pandas or TensorFlow): --help and usage errors must answer at once
from comparisons.output import out_folder
from comparisons.core import registry
from comparisons.processes import scratch
from comparisons.core.config import EXPERIMENTS, StudyConfig
from comparisons.core.errors import UsageError
from comparisons.core.limits import check_fits

QUICK_ITERATIONS = 100  # --quick: fewer updates (the one-epoch-per-update Keras idiom pays Keras' per-epoch cost on each)
QUICK_REPEATS = 2
QUICK_TIME_BUDGET_S = 2.0


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a positive finite number")
    return value


def _whole_number(text):
    """int(text), also for an exact integer in scientific notation ('1e6', '2.5e3'); ValueError otherwise."""
    try:
        return int(text)
    except ValueError:
        pass
    mantissa, e, exponent = text.strip().lower().partition("e")
    if not e or not exponent.lstrip("+-").isdigit() or abs(int(exponent)) > 30:
        raise ValueError(text)
    whole, _, fraction = mantissa.lstrip("+-").partition(".")
    if not (whole + fraction).isdigit():
        raise ValueError(text)
    digits, shift = int(whole + fraction), int(exponent) - len(fraction)  # value = digits * 10**shift
    if shift < 0 and digits % 10 ** -shift:
        raise ValueError(text)  # not whole: 1.5e0
    value = digits * 10 ** shift if shift >= 0 else digits // 10 ** -shift
    return -value if mantissa.startswith("-") else value


def _int_at_least(minimum):
    def parse(text):
        try:
            value = _whole_number(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text} must be at least {minimum}")
        return value
    return parse


def _seed(text):
    value = _int_at_least(0)(text)
    if value >= 2**32:
        raise argparse.ArgumentTypeError(f"{text} is too large: seeds go from 0 to {2**32 - 1}")
    return value


def _non_negative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number >= 0")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one `error:` line and exit 2."""

    def error(self, message):
        raise UsageError(f"{message} (see --help)")


def build_parser():
    """The study's command line (the results contract's options)."""
    defaults = StudyConfig()
    p = _Parser(prog="run_all.py", description=(
        "Linear regression by gradient descent, hand-rolled in numpy and in TensorFlow/Keras, trained on the "
        "same data from the same start and compared: weights, loss curves, gradients, time. Writes the "
        "results contract (CSV tables, figures, report.md, tensorboard/) to --out."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", default=defaults.out, help="results folder; written beside it and renamed into place on success")
    p.add_argument("--seed", type=_seed, default=defaults.seed, help="seed for data, initial parameters and sample order")
    p.add_argument("--n-samples", type=_int_at_least(2), default=defaults.n_samples, help="synthetic data: number of samples n")
    p.add_argument("--features", type=_int_at_least(1), default=defaults.features, help="synthetic data: number of features m")
    p.add_argument("--noise", type=_non_negative_float, default=defaults.noise, help="synthetic data: standard deviation of the noise on y")
    p.add_argument("--iterations", type=_int_at_least(1), default=None,
                   help=f"gradient-descent updates N (default {defaults.iterations}; {QUICK_ITERATIONS} with --quick)")
    p.add_argument("--lr", type=_positive_float, default=defaults.lr, help="learning rate")
    p.add_argument("--dtype", choices=["float32", "float64", "both"], default="both", help="floating-point type of the runs")
    p.add_argument("--device", default=defaults.device, help="auto (CPU, plus GPUs TensorFlow detects), cpu, gpu or gpu:K")
    p.add_argument("--repeats", type=_int_at_least(1), default=None,
                   help=f"timed calls after one warm-up (default {defaults.repeats}; {QUICK_REPEATS} with --quick)")
    p.add_argument("--only", default=None, metavar="NAME[,NAME]",
                   help="run only these implementations: " + ", ".join(registry.names()))
    p.add_argument("--data", default=None, metavar="FILE.csv", help="train on a CSV file instead of synthetic data (needs --target)")
    p.add_argument("--target", default=None, metavar="COL", help="the CSV column to predict")
    p.add_argument("--columns", default=None, metavar="A,B,C", help="CSV feature columns (default: every other numeric column)")
    p.add_argument("--standardize", action="store_true", help="train on z-scored features; weights are still reported in raw units")
    p.add_argument("--center-target", action="store_true",
                   help="with --standardize: also train on y - mean(y); the bias is still reported in raw units")
    p.add_argument("--batch-size", type=_int_at_least(1), default=None,
                   help="mini-batch size (1 = stochastic); samples follow a seeded permutation shared by numpy and keras")
    p.add_argument("--replicas", type=_int_at_least(1), default=defaults.replicas,
                   help="mirrored variants: replicas (GPUs when enough are seen, else logical CPUs)")
    p.add_argument("--workers", type=_int_at_least(1), default=defaults.workers,
                   help="gradient_tape:multi_worker: worker processes on loopback")
    p.add_argument("--experiments", default="all", metavar="NAME[,NAME]|all|none",
                   help="studies beyond the single run: " + ", ".join(EXPERIMENTS))
    p.add_argument("--full", action="store_true", help="the large versions of the experiments (n up to 10^7; minutes)")
    p.add_argument("--quick", action="store_true", help="a small, fast run (fewer iterations and repeats, quick experiments)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _names(text, known, what):
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise UsageError(f"unknown {what} {', '.join(unknown) or repr(text)}; choose from {', '.join(known)}")
    return names


def config_from_args(args, argv):
    """Validate the parsed arguments into a StudyConfig (UsageError on bad input)."""
    if (args.data is None) != (args.target is None):
        raise UsageError("--data and --target go together: give the CSV file and the column to predict")
    if args.columns and not args.data:
        raise UsageError("--columns selects CSV columns; it needs --data FILE.csv --target COL")
    if args.center_target and not args.standardize:
        raise UsageError("--center-target goes with --standardize (it centres the target of the z-scored training data)")
    if args.quick and args.full:
        raise UsageError("--quick and --full contradict each other; choose one")
    device = args.device.strip().lower()
    if not re.fullmatch(r"auto|cpu|gpu(:\d+)?", device):
        raise UsageError(f"unknown device {args.device!r}; use auto, cpu, gpu or gpu:K")
    experiments = args.experiments.strip()
    experiments = (EXPERIMENTS if experiments == "all" else () if experiments == "none"
                   else _names(experiments, EXPERIMENTS, "experiment"))
    only = _names(args.only, registry.names(), "implementation") if args.only else registry.names()
    _check_batch_size(args.batch_size, None if args.data else args.n_samples, only)
    iterations = args.iterations or (QUICK_ITERATIONS if args.quick else StudyConfig.iterations)
    check_fits(None if args.data else args.n_samples, args.features, iterations)  # before any array exists
    return StudyConfig(
        out=args.out, seed=args.seed, n_samples=args.n_samples, features=args.features, noise=args.noise,
        iterations=iterations,
        lr=args.lr, dtypes=("float32", "float64") if args.dtype == "both" else (args.dtype,),
        device=device,
        repeats=args.repeats or (QUICK_REPEATS if args.quick else StudyConfig.repeats),
        only=only,
        data=args.data, target=args.target,
        feature_columns=tuple(c.strip() for c in args.columns.split(",")) if args.columns else None,
        standardize=args.standardize, center_target=args.center_target, batch_size=args.batch_size, experiments=experiments,
        replicas=args.replicas, workers=args.workers,
        full=args.full, quick=args.quick, debug=args.debug,
        time_budget_s=QUICK_TIME_BUDGET_S if args.quick else StudyConfig.time_budget_s,
        command_line=tuple(argv),
    )


def _check_batch_size(batch_size, n_samples, only):
    """The --batch-size errors that need no data loaded: more than the n synthetic samples, or nothing left to run.

    A CSV file's row count is known only once it is read, so comparisons.pipeline checks that case.
    """
    if batch_size is None:
        return
    if n_samples is not None and batch_size > n_samples:
        raise UsageError(f"--batch-size {batch_size} is larger than the {n_samples} samples; use 1..{n_samples}")
    if not any(registry.get(name).minibatch for name in only):
        raise UsageError(f"nothing to run: {', '.join(only)} train{'s' * (len(only) == 1)} full batch only and "
                         "cannot follow --batch-size; choose other implementations with --only or drop --batch-size")


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
