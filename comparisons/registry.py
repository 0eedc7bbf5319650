"""Every implementation of the study, declared once: its name and what the rest of the study needs to know.

Adding a variant touches this table (and the adapter in implementations.py that builds it); the
command line, the run plan, the experiments and the report read their lists from here.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Implementation:
    """One implementation of the regression and how the study treats it."""

    name: str  # "base" or "base:variant", stable: tables, reports and tests use it
    summary: str  # one line for --help and the report
    tensorflow: bool  # runs in TensorFlow (so on TensorFlow's devices, and imports it)
    full_batch_only: bool  # cannot follow a --batch-size sample order
    distributed: bool = False  # runs over several replicas or worker processes (tf.distribute)
    step_cost_s: float = 1e-4  # rough fixed cost of one update at small n, for planning iteration counts only
    default: bool = True  # part of the default run (False: only when named with --only)
    one_dtype_when_both: bool = False  # with --dtype both, run the last dtype only (a slow idiom costs the same in each)
    in_worker_processes: bool = False  # TensorFlow runs only in the processes it starts: the driver need not load it

    @property
    def base(self):
        """'keras:numpy_input' -> 'keras'."""
        return self.name.partition(":")[0]

    @property
    def variant(self):
        """'keras:numpy_input' -> 'numpy_input'; '' for a base implementation."""
        return self.name.partition(":")[2]


REGISTRY = {impl.name: impl for impl in (
    Implementation("numpy", "hand-rolled batch gradient descent (handrolled/)", False, False, step_cost_s=1e-5),
    Implementation("keras", "Dense(1) + SGD + mse, fit on a repeated tf.data batch with steps_per_execution",
                   True, False, step_cost_s=3e-4),
    Implementation("keras:numpy_input", "the idiomatic model.fit(X, y, batch_size=n, epochs=N, shuffle=False)",
                   True, True, step_cost_s=3e-2, one_dtype_when_both=True),
    Implementation("gradient_tape", "whole loop in one tf.function, autodiff checked against the analytic gradient "
                   "every step; XLA while X is small", True, True, step_cost_s=3e-5),
    Implementation("gradient_tape:xla", "the same loop, always compiled by XLA", True, True, step_cost_s=3e-5),
    Implementation("gradient_tape:graph", "the same loop in one tf.function, never XLA", True, True, step_cost_s=1e-4),
    Implementation("gradient_tape:eager", "the same step in a plain Python loop, eager TensorFlow", True, True,
                   step_cost_s=2.5e-3),
    # one pass over X for G, c, s (costs about one streaming step at large n), then O(m^2) steps
    Implementation("numpy:gram", "one float64-summed pass for G, c, s, then the N iterations on them (handrolled/gram.py)",
                   False, True, step_cost_s=5e-6),
    Implementation("gradient_tape:gram", "one pass for G, c, s, then the loss in Gram form under tf.GradientTape, "
                   "autodiff checked against 2 (G theta - c) every step; XLA loop", True, True, step_cost_s=2e-6),
    Implementation("gradient_tape:mirrored", "the tape loop under MirroredStrategy over --replicas devices (GPUs when "
                   "at least 2 are seen, else logical CPUs), each holding its shard of rows, one SUM all-reduce per step",
                   True, True, distributed=True, step_cost_s=4e-4),
    Implementation("keras:mirrored", "Dense(1) + SGD + mse fit under MirroredStrategy: repeated tf.data batch, "
                   "steps_per_execution=1, rows padded to equal shards with zero sample weight",
                   True, True, distributed=True, step_cost_s=8e-3),
    Implementation("gradient_tape:multi_worker", "the tape loop under MultiWorkerMirroredStrategy over --workers "
                   "processes on loopback (TF_CONFIG), one packed all-reduce per step", True, True, distributed=True,
                   step_cost_s=4e-3, in_worker_processes=True),
)}

IMPLEMENTATIONS = tuple(REGISTRY)  # every name, in the order tables and figures list them
DEFAULT_IMPLEMENTATIONS = tuple(name for name, impl in REGISTRY.items() if impl.default)


def get(name):
    """The Implementation called `name` (ValueError naming the known ones otherwise)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown implementation {name!r}; known: {', '.join(REGISTRY)}") from None


def split_name(name):
    """'keras:numpy_input' -> ('keras', 'numpy_input'); 'numpy' -> ('numpy', '')."""
    base, _, variant = name.partition(":")
    return base, variant


def is_tensorflow(name):
    """Whether an implementation runs in TensorFlow (and so on TensorFlow's devices)."""
    return get(name).tensorflow


def needs_tensorflow_here(name):
    """Whether an implementation runs TensorFlow in the study's own process (not only in workers it starts)."""
    impl = get(name)
    return impl.tensorflow and not impl.in_worker_processes


def step_cost_s(name, fallback=1e-4):
    """The rough fixed cost per update of `name`, for planning how many iterations to time."""
    impl = REGISTRY.get(name)
    return impl.step_cost_s if impl else fallback


def swept(only):
    """The single-process implementations among `only`, in registry order (all defaults if none): what experiments sweep."""
    names = [name for name, impl in REGISTRY.items() if name in only and not impl.distributed]
    return names or [name for name in DEFAULT_IMPLEMENTATIONS if not REGISTRY[name].distributed]


def slow_iterations(name, budget_s=0.5, fewest=25):
    """Iterations a slow implementation gets in a sweep (about budget_s of fixed cost), or None if it is not slow."""
    cost = step_cost_s(name)
    return max(fewest, round(budget_s / cost)) if cost >= 1e-3 else None
