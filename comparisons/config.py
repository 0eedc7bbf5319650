"""The study's one configuration: every knob of a run, with the lesson's values as defaults."""
import json
from dataclasses import asdict, dataclass, field, replace

IMPLEMENTATIONS = (
    "numpy",                  # hand-rolled batch gradient descent (handrolled/)
    "keras",                  # Dense(1) + SGD + "mse", model.fit on a repeated tf.data batch, steps_per_execution
    "keras:numpy_input",      # the idiomatic model.fit(X, y, batch_size=n, epochs=N, shuffle=False)
    "gradient_tape",          # whole loop in one tf.function, analytic-vs-autodiff check per step; XLA while X is small
    "gradient_tape:xla",      # the same loop, always compiled by XLA
    "gradient_tape:graph",    # the same loop in one tf.function, never XLA
    "gradient_tape:eager",    # the same step in a plain Python loop, eager TensorFlow
)
REFERENCES = ("ols", "true")
EXPERIMENTS = ("scaling", "lr_sweep", "variants", "matmul", "lesson_claims")


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
    only: tuple = IMPLEMENTATIONS  # which implementations run
    data: str | None = None  # a CSV file instead of the generator
    target: str | None = None  # the CSV column to predict
    feature_columns: tuple | None = None  # CSV columns used as features (default: all other numeric)
    standardize: bool = False  # train on z-scored features, report weights in raw units
    center_target: bool = False  # with standardize: also train on y - mean(y) (bias mapped back)
    batch_size: int | None = None  # None = full batch; 1..n = mini-batch / SGD with a seeded order
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
        return json.dumps(asdict(self), indent=2, sort_keys=True)
