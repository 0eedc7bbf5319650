"""The study's one configuration: every knob of a run, with the lesson's values as defaults."""
from dataclasses import asdict, dataclass, field, replace

from comparisons.core import strict_json
from comparisons.core.registry import names

# The experiments, in the one order the study runs them and the report ranks their findings (when more than fit):
# what the study is for first, then the rest (matmul before lesson_claims, which reads its table).
EXPERIMENTS = ("distribution_support", "distributed", "scaling", "gram", "lr_sweep", "matmul", "lesson_claims", "variants")


@dataclass(frozen=True)
class StudyConfig:
    """One run of the study. Saved as config.json beside the results it produced."""

    out: str = "results"  # folder the results land in (written beside it, renamed into place)
    seed: int = 0  # one seed for data, initial parameters and sample order
    n_samples: int = 100  # the lesson's 100 points
    features: int = 1  # the lesson's single feature x
    noise: float = 0.5  # the lesson's noise: y = 4 + 3x + 0.5 * N(0, 1)
    iterations: int = 1000  # the lesson's 1000 updates
    lr: float = 0.05  # the lesson's learning rate
    dtypes: tuple = ("float32", "float64")  # --dtype both
    device: str = "auto"  # auto = the CPU, plus the GPU when TensorFlow sees one
    repeats: int = 5  # timed calls after one warm-up
    only: tuple = names()  # which implementations run (every row of registry.py)
    data: str | None = None  # a CSV file instead of the generator
    target: str | None = None  # the CSV column to predict
    feature_columns: tuple | None = None  # CSV columns used as features (default: all other numeric)
    standardize: bool = False  # train on z-scored features, report weights in raw units
    center_target: bool = False  # with standardize: also train on y - mean(y) (bias mapped back)
    batch_size: int | None = None  # None = full batch; 1..n = mini-batch / SGD with a seeded order
    replicas: int = 2  # mirrored variants: the smallest number of replicas that exercises the all-reduce (any machine has the cores for two logical CPUs)
    workers: int = 2  # gradient_tape:multi_worker: the smallest cluster with a real cross-process all-reduce
    experiments: tuple = EXPERIMENTS  # studies beyond the single run
    full: bool = False  # the large versions of the experiments
    quick: bool = False  # a small, fast run
    debug: bool = False  # show tracebacks
    time_budget_s: float = 6.0  # timed repeats of one run stop at about this many seconds (0 repeats: the warm-up is the time)
    command_line: tuple = field(default_factory=tuple)  # argv, recorded for environment.json

    def with_changes(self, **changes):
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_json(self):
        """The configuration as pretty JSON text."""
        return strict_json.dumps(asdict(self), indent=2, sort_keys=True)
