"""The study's one configuration: every knob of a run, with the lesson's values as defaults, declared once.

Each setting the command line offers carries its Option in its field's metadata (flag, help, how its text is
read, its value under --quick): run_all.py builds its parser from these fields and nothing else lists them.
Standard library only, so that --help and usage errors answer before numpy, pandas or a framework loads.
"""
import argparse
import re
from dataclasses import MISSING, asdict, dataclass, field, fields, replace

from comparisons.core import strict_json
from comparisons.core.registry import names

# The experiments, in the one order the study runs them and the report ranks their findings (when more than fit):
# what the study is for first, then the rest (matmul before lesson_claims, which reads its table).
EXPERIMENTS = ("distribution_support", "distributed", "scaling", "gram", "lr_sweep", "matmul", "lesson_claims", "variants")
DTYPE_CHOICES = {"float32": ("float32",), "float64": ("float64",), "both": ("float32", "float64")}


# ---- how a setting's text is read: each raises argparse.ArgumentTypeError with what was wrong -------------------

def whole_number(text):
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


def int_at_least(minimum):
    """A reader of whole numbers >= minimum."""
    def parse(text):
        try:
            value = whole_number(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text} must be at least {minimum}")
        return value
    return parse


def seed_number(text):
    """A seed: a whole number from 0 to 2**32 - 1."""
    value = int_at_least(0)(text)
    if value >= 2**32:
        raise argparse.ArgumentTypeError(f"{text} is too large: seeds go from 0 to {2**32 - 1}")
    return value


def _number(text):
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def positive_float(text):
    """A finite number > 0."""
    value = _number(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a positive finite number")
    return value


def non_negative_float(text):
    """A finite number >= 0."""
    value = _number(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number >= 0")
    return value


def dtypes_of(text):
    """'float32', 'float64' or 'both' -> the tuple of dtypes to run."""
    if text not in DTYPE_CHOICES:
        raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {', '.join(map(repr, DTYPE_CHOICES))})")
    return DTYPE_CHOICES[text]


def device_spec(text):
    """auto, cpu, gpu or gpu:K (case and spaces ignored)."""
    device = text.strip().lower()
    if not re.fullmatch(r"auto|cpu|gpu(:\d+)?", device):
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; use auto, cpu, gpu or gpu:K")
    return device


def _names(text, known, what):
    chosen = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [n for n in chosen if n not in known]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"unknown {what} {', '.join(unknown) or repr(text)}; choose from {', '.join(known)}")
    return chosen


def implementation_names(text):
    """NAME[,NAME] of the registry's implementations (read when parsed, so a row registered at run time counts)."""
    return _names(text, names(), "implementation")


def experiment_names(text):
    """all, none, or NAME[,NAME] of EXPERIMENTS."""
    text = text.strip()
    return EXPERIMENTS if text == "all" else () if text == "none" else _names(text, EXPERIMENTS, "experiment")


def column_names(text):
    """A,B,C -> ('A', 'B', 'C')."""
    return tuple(c.strip() for c in text.split(","))


@dataclass(frozen=True)
class Option:
    """How a setting appears on the command line: its flag (from the field's name unless given) and help."""

    help: object  # the text, or a callable giving it when the parser is built (a list that may grow at run time)
    parse: object = None  # text -> value (raises argparse.ArgumentTypeError); None: a switch (store_true)
    text: str | None = None  # the default as written on the command line, when the value is not itself text
    metavar: str | None = None
    flag: str | None = None  # default: --field-name
    quick: object = None  # the value under --quick when not given (None: the default whatever --quick says)


def setting(default, help, parse=None, factory=None, **option):
    """A StudyConfig field offered on the command line (its default made by factory() when given)."""
    metadata = {"option": Option(help, parse, **option)}
    return field(default_factory=factory, metadata=metadata) if factory else field(default=default, metadata=metadata)


def options():
    """(field, Option) for every setting on the command line, in StudyConfig's order."""
    return [(f, f.metadata["option"]) for f in fields(StudyConfig) if "option" in f.metadata]


def flag_of(f):
    """The command-line flag of field f."""
    return f.metadata["option"].flag or "--" + f.name.replace("_", "-")


@dataclass(frozen=True)
class StudyConfig:
    """One run of the study. Saved as config.json beside the results it produced."""

    out: str = setting("results", "results folder; written beside it and renamed into place on success", str)
    seed: int = setting(0, "seed for data, initial parameters and sample order", seed_number)
    # the lesson: 100 points of one feature x, y = 4 + 3x + 0.5 * N(0, 1)
    n_samples: int = setting(100, "synthetic data: number of samples n", int_at_least(2))
    features: int = setting(1, "synthetic data: number of features m", int_at_least(1))
    noise: float = setting(0.5, "synthetic data: standard deviation of the noise on y", non_negative_float)
    # --quick: fewer updates (the one-epoch-per-update Keras idiom pays Keras' per-epoch cost on each)
    iterations: int = setting(1000, "gradient-descent updates N", int_at_least(1), quick=100)  # the lesson's 1000
    lr: float = setting(0.05, "learning rate", positive_float)  # the lesson's
    dtypes: tuple = setting(DTYPE_CHOICES["both"], "floating-point type of the runs", dtypes_of, text="both",
                            flag="--dtype", metavar="{" + ",".join(DTYPE_CHOICES) + "}")
    device: str = setting("auto", "auto (the CPU, plus the GPUs each framework detects), cpu, gpu or gpu:K", device_spec)
    repeats: int = setting(5, "timed calls after one warm-up", int_at_least(1), quick=2)
    only: tuple = setting(None, lambda: "run only these implementations (default: all): " + ", ".join(names()),
                          implementation_names, factory=names, metavar="NAME[,NAME]")
    data: str | None = setting(None, "train on a CSV file instead of synthetic data (needs --target)", str,
                               metavar="FILE.csv")
    target: str | None = setting(None, "the CSV column to predict", str, metavar="COL")
    feature_columns: tuple | None = setting(None, "CSV feature columns (default: every other numeric column)",
                                            column_names, flag="--columns", metavar="A,B,C")
    standardize: bool = setting(False, "train on z-scored features; weights are still reported in raw units")
    center_target: bool = setting(False, "with --standardize: also train on y - mean(y); the bias is still reported "
                                         "in raw units")
    batch_size: int | None = setting(None, "mini-batch size (1 = stochastic); samples follow a seeded permutation "
                                           "shared by the rows that follow mini-batches", int_at_least(1))
    # the smallest number of replicas that exercises the all-reduce (any machine has the cores for two logical CPUs)
    replicas: int = setting(2, "mirrored and sharded variants: replicas (GPUs when enough are seen, else logical CPUs)",
                            int_at_least(1))
    # the smallest cluster with a real cross-process all-reduce
    workers: int = setting(2, "multi-worker variants: worker processes on loopback", int_at_least(1))
    experiments: tuple = setting(EXPERIMENTS, "studies beyond the single run: all, none or some of "
                                 + ", ".join(EXPERIMENTS), experiment_names, text="all", metavar="NAME[,NAME]|all|none")
    full: bool = setting(False, "the large versions of the experiments (n up to 10^7; minutes)")
    quick: bool = setting(False, "a small, fast run (fewer iterations and repeats, quick experiments)")
    debug: bool = setting(False, "show tracebacks")
    # timed repeats of one run stop at about this many seconds; not an option. Low enough that the calls of seconds
    # (eager loops, distributed fits) get one repeat, not five; a warm-up past three budgets is the only
    # measurement (running.timing.WARM_UP_BUDGETS)
    time_budget_s: float = field(default=3.0, metadata={"quick": 2.0})
    command_line: tuple = field(default_factory=tuple)  # argv, recorded for environment.json

    def with_changes(self, **changes):
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_json(self):
        """The configuration as pretty JSON text."""
        return strict_json.dumps(asdict(self), indent=2, sort_keys=True)


def default_value(f, quick=False):
    """Field f's value when the command line does not set it: its default, or its value under --quick if it has one."""
    option = f.metadata.get("option")
    value = option.quick if option else f.metadata.get("quick")
    if quick and value is not None:
        return value
    return f.default_factory() if f.default is MISSING else f.default
