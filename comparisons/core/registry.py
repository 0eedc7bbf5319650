"""Every implementation of the study, declared once: what it is, how its trainer is built, what it can do.

The study acts on these fields, never on an implementation's name: the command line, the run plan,
the experiments, the tables, the figures and the report read their lists and their behaviour from
this table. Adding an implementation is one row here and one builder (docs/adding-an-implementation.md).
"""
import importlib
from dataclasses import dataclass

REFERENCE = "numpy"  # every run is compared with this one, in the same dtype
FRAMEWORKS = ("numpy", "tensorflow", "jax")
# a row whose fixed cost per update is at least this is all framework machinery (Python loops, callbacks):
# the dtype does not change it, so with --dtype both it runs once, in the last dtype
MACHINERY_STEP_COST_S = 1e-2


@dataclass(frozen=True)
class Implementation:
    """One implementation of the regression and how the study treats it."""

    name: str  # "base" or "base:variant", stable: tables, reports and tests use it
    summary: str  # one line for --help, the report and the README
    framework: str  # "numpy", "tensorflow" or "jax": which library it imports, so which devices it sees
    builder: object  # "module:function" (or a callable) taking a TrainerSpec, returning train(W0, b0, rate=lr) -> RunResult
    title: str = ""  # a few plain words for readers ("Keras fit"); the name when empty
    minibatch: bool = False  # follows a --batch-size sample order (else full batch only)
    checks_gradient: bool = False  # checks autodiff against the analytic gradient every step (so gets finite differences)
    stops_at_divergence: bool = True  # stops itself at a divergent loss (False: runs all N; the study reruns to the point)
    distributed: str = ""  # "" (one device), "replicas" (one process, several devices) or "workers" (processes)
    own_process: bool = False  # runs in processes it starts (the driver need not import its framework), so its
    # result carries a Timing measured there, by the same rule, not interleaved with the driver's rounds
    route: str = "streaming"  # "streaming" (reads X every step) or "gram" (one pass for G, c, s, then O(m^2) steps)
    python_loop: bool = False  # its updates are dispatched one by one from a Python loop (not one compiled call)
    step_cost_s: float = 1e-4  # rough fixed cost of one update at small n, for planning iteration counts and dtypes
    note: str = ""  # why it costs what it costs, for the report's reading of the timings (no measured numbers)

    @property
    def base(self):
        """'keras:numpy_input' -> 'keras'."""
        return self.name.partition(":")[0]

    @property
    def variant(self):
        """'keras:numpy_input' -> 'numpy_input'; '' for a base implementation."""
        return self.name.partition(":")[2]

    @property
    def label(self):
        """The words a reader sees for it: its title, else its name."""
        return self.title or self.name

    @property
    def sweeps(self):
        """Whether the experiments that sweep implementations over sizes and rates (lr_sweep, scaling) take it.

        They run every row in this process on one device: not a distributed row, nor one in its own process.
        """
        return not (self.distributed or self.own_process)

    @property
    def one_dtype_enough(self):
        """With --dtype both, run the last dtype only: its cost is per-step machinery, the same in either dtype."""
        return self.step_cost_s >= MACHINERY_STEP_COST_S

    @property
    def imports_here(self):
        """Whether the driver's own process imports the framework to run it."""
        return self.framework != "numpy" and not self.own_process

    def build(self, spec):
        """The trainer for `spec` (a TrainerSpec): imports the builder only now, so frameworks load on demand."""
        if callable(self.builder):
            return self.builder(spec)
        module, _, function = self.builder.partition(":")
        return getattr(importlib.import_module(module), function)(spec)


_NUMPY = "comparisons.running.adapters.numpy_trainers"
_TF = "comparisons.running.adapters.tf_trainers"
_JAX = "comparisons.running.adapters.jax_trainers"

REGISTRY = {impl.name: impl for impl in (
    Implementation("numpy", "hand-rolled batch gradient descent (handrolled/)", "numpy", f"{_NUMPY}:descent",
                   title="numpy, by hand", minibatch=True, step_cost_s=1e-5),
    Implementation("keras", "Dense(1) + SGD + mse, fit on a repeated tf.data batch with steps_per_execution",
                   "tensorflow", f"{_TF}:keras_dataset", title="Keras fit", minibatch=True, stops_at_divergence=False,
                   step_cost_s=3e-4, note="all steps run in one `steps_per_execution` call on a repeated `tf.data` "
                   "batch, so fit's Python loop is entered once"),
    Implementation("keras:numpy_input", "the idiomatic model.fit(X, y, batch_size=n, epochs=N, shuffle=False)",
                   "tensorflow", f"{_TF}:keras_numpy_input", title="Keras fit, one epoch per update", stops_at_divergence=False, python_loop=True,
                   step_cost_s=3e-2,
                   note="every epoch re-enters Keras' Python loop (callbacks, a new iterator over the numpy arrays, "
                   "metric resets, logs copied to the host), and at a small size that overhead is all there is"),
    Implementation("gradient_tape", "whole loop in one tf.function, autodiff checked against the analytic gradient "
                   "every step; XLA while X is small", "tensorflow", f"{_TF}:tape_auto", title="GradientTape loop",
                   checks_gradient=True, step_cost_s=3e-5),
    Implementation("gradient_tape:xla", "the same loop, always compiled by XLA", "tensorflow", f"{_TF}:tape_xla",
                   title="GradientTape loop, XLA", checks_gradient=True, step_cost_s=3e-5),
    Implementation("gradient_tape:graph", "the same loop in one tf.function, never XLA", "tensorflow", f"{_TF}:tape_graph",
                   title="GradientTape loop, graph", checks_gradient=True, step_cost_s=1e-4,
                   note="without XLA every small op of a step (matrix products, subtractions, reductions, the "
                   "check) is dispatched as its own kernel; XLA fuses them into a few"),
    Implementation("gradient_tape:eager", "the same step in a plain Python loop, eager TensorFlow", "tensorflow",
                   f"{_TF}:tape_eager", title="GradientTape, eager", checks_gradient=True, python_loop=True, step_cost_s=2.5e-3,
                   note="one Python iteration per step: the cost of dispatching each op from Python"),
    # one pass over X for G, c, s (costs about one streaming step at large n), then O(m^2) steps
    Implementation("numpy:gram", "one float64-summed pass for G, c, s, then the N iterations on them (handrolled/gram.py)",
                   "numpy", f"{_NUMPY}:gram", title="numpy, Gram route", route="gram", step_cost_s=5e-6),
    Implementation("gradient_tape:gram", "one pass for G, c, s, then the loss in Gram form under tf.GradientTape, "
                   "autodiff checked against 2 (G theta - c) every step; XLA loop", "tensorflow", f"{_TF}:gram_tape",
                   title="GradientTape, Gram route", checks_gradient=True, route="gram", step_cost_s=2e-6),
    Implementation("gradient_tape:mirrored", "the tape loop under MirroredStrategy over --replicas devices (GPUs when "
                   "at least 2 are seen, else logical CPUs), each holding its shard of rows, one SUM all-reduce per step",
                   "tensorflow", f"{_TF}:mirrored_tape", title="GradientTape, mirrored replicas", checks_gradient=True,
                   distributed="replicas", step_cost_s=4e-4),
    Implementation("keras:mirrored", "Dense(1) + SGD + mse fit under MirroredStrategy: repeated tf.data batch, "
                   "steps_per_execution=1, rows padded to equal shards with zero sample weight", "tensorflow",
                   f"{_TF}:mirrored_keras", title="Keras fit, mirrored replicas", stops_at_divergence=False,
                   distributed="replicas", step_cost_s=8e-3),
    Implementation("gradient_tape:multi_worker", "the tape loop under MultiWorkerMirroredStrategy over --workers "
                   "processes on loopback (TF_CONFIG), one packed all-reduce per step", "tensorflow",
                   f"{_TF}:multi_worker_tape", title="GradientTape, worker processes", checks_gradient=True,
                   distributed="workers", own_process=True, step_cost_s=4e-3),
    Implementation("jax", "the loss in jax.numpy, jax.value_and_grad, the whole loop in jax.lax under jax.jit; autodiff "
                   "checked against the analytic gradient every step", "jax", f"{_JAX}:jit_loop", title="JAX jit loop",
                   checks_gradient=True, step_cost_s=3e-5),
    Implementation("jax:eager", "the same jitted step called from a Python loop, one dispatch per update", "jax",
                   f"{_JAX}:eager_loop", title="JAX, Python loop", checks_gradient=True, python_loop=True, step_cost_s=3e-4,
                   note="the step is the same compiled code as `jax`'s; each update is one dispatch from Python and "
                   "one transfer of its loss to the host, for the divergence test"),
    Implementation("keras:jax", "the keras row's Dense(1) + SGD + mse fit on the JAX backend (KERAS_BACKEND=jax), in its "
                   "own process", "jax", f"{_JAX}:keras_on_jax", title="Keras fit on JAX", minibatch=True,
                   stops_at_divergence=False, own_process=True, step_cost_s=3e-4,
                   note="its times are taken inside its own process, around fit, as `keras`'s are in this one"),
    Implementation("jax:sharded", "the jax loop with its rows sharded over --replicas devices (jax.sharding; GPUs when "
                   "enough are seen, else the CPU split)", "jax", f"{_JAX}:sharded_loop", title="JAX, sharded rows",
                   checks_gradient=True, distributed="replicas", step_cost_s=1e-4),
)}


def register(impl):
    """Add (or replace) a row at run time: tests and plug-ins; the table above is the study's own list."""
    REGISTRY[impl.name] = impl
    return impl


def names():
    """Every implementation's name in table order (the default run runs them all)."""
    return tuple(REGISTRY)


def get(name):
    """The Implementation called `name` (ValueError naming the known ones otherwise)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown implementation {name!r}; known: {', '.join(REGISTRY)}") from None


def label(name):
    """A reader's words for `name` (its title), or the name itself for a reference such as `ols`."""
    impl = REGISTRY.get(name)
    return impl.label if impl else name


def step_cost_s(name, fallback=1e-4):
    """The rough fixed cost per update of `name`, for planning how many iterations to time."""
    impl = REGISTRY.get(name)
    return impl.step_cost_s if impl else fallback


def swept(only):
    """The implementations among `only` that sweeps take, in registry order (all that sweep if none)."""
    chosen = [name for name, impl in REGISTRY.items() if name in only and impl.sweeps]
    return chosen or [name for name, impl in REGISTRY.items() if impl.sweeps]


def slow_iterations(name, budget_s=0.5, fewest=25):
    """Iterations a slow implementation gets in a sweep (about budget_s of fixed cost), or None if it is not slow."""
    cost = step_cost_s(name)
    return max(fewest, round(budget_s / cost)) if cost >= 1e-3 else None
