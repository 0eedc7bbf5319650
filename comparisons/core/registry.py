"""Every implementation of the study, declared once: what it is, how its trainer is built, what it can do.

The study acts on these fields, never on an implementation's name: the command line, the run plan,
the experiments, the tables, the figures and the report read their lists and their behaviour from
this table. Adding an implementation is one row here and one builder (docs/adding-an-implementation.md).
"""
from dataclasses import dataclass

REFERENCE = "numpy"  # every run is compared with this one, in the same dtype
# the frameworks, in the order readers meet them: {framework: (its name in a figure, its words in a sentence)}
FRAMEWORKS = {"numpy": ("numpy", "numpy by hand"), "tensorflow": ("TensorFlow", "TensorFlow and Keras"), "jax": ("JAX", "JAX")}
# a row whose fixed cost per update is at least this is all framework machinery (Python loops, callbacks):
# the dtype does not change it, so with --dtype both it runs once, in the last dtype
MACHINERY_STEP_COST_S = 1e-2


@dataclass(frozen=True)
class Implementation:
    """One implementation of the regression and how the study treats it."""

    name: str  # "base" or "base:variant", stable: tables, reports and tests use it
    summary: str  # one line for --help, the report and the README
    framework: str  # "numpy", "tensorflow" or "jax": which library it imports, so which devices it sees
    builder: object  # "module:function" (or a callable) taking a TrainerSpec, returning a Trainer (running/adapters)
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
    details: str = ""  # what it does and what it shows about its framework, for docs/implementations.md (generated)
    # an own_process row's "module:function" (or callable) taking the run's settings (workers=W): starts the
    # processes its trainer will run in and returns wait(), which blocks until they have started and idle; the
    # driver calls it before its own imports, so their start-ups overlap them. None: they start on first use
    starter: object = None

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


_NUMPY = "comparisons.running.adapters.numpy_trainers"
_TF = "comparisons.running.adapters.tf_trainers"
_JAX = "comparisons.running.adapters.jax_trainers"

REGISTRY = {impl.name: impl for impl in (
    Implementation("numpy", "hand-rolled batch gradient descent (handrolled/)", "numpy", f"{_NUMPY}:descent",
                   title="numpy, by hand", minibatch=True, step_cost_s=1e-5,
                   details="Lesson 0's algorithm, vectorised: one matrix product for the predictions, one for the "
                           "gradient, its residuals written into one buffer per run (handrolled/model.py). The "
                           "reference every other run is compared with. With one feature (the lesson's shape) numpy's "
                           "matmul on (n, 1) @ (1, 1) is slow, so the step writes `X @ W` as the elementwise `X * w` "
                           "it is; the scaling experiment times both kernels and a scaling-only formulation with "
                           "broadcasts (*numpy, by hand, broadcast form*, handrolled/broadcast.py)."),
    Implementation("keras", "Dense(1) + SGD + mse, fit on a repeated tf.data batch with steps_per_execution",
                   "tensorflow", f"{_TF}:keras_dataset", title="Keras fit", minibatch=True, stops_at_divergence=False,
                   step_cost_s=3e-4, note="all steps run in one `steps_per_execution` call on a repeated `tf.data` "
                   "batch, so fit's Python loop is entered once",
                   details="`Sequential([Input(shape=(m,), dtype), Dense(1)])`, `SGD(lr)`, `\"mse\"`, the shared "
                           "initial weights loaded into the layer, `model.fit` on a repeated `tf.data` batch for "
                           "one epoch of N steps with `steps_per_execution=N`, `jit_compile=False` passed "
                           "explicitly. A small metric (`StepLossRecorder`) keeps Keras' own loss of every step, "
                           "because with `steps_per_execution` Keras reports only the last one, and its epoch loss "
                           "is a running mean."),
    Implementation("keras:numpy_input", "the idiomatic model.fit(X, y, batch_size=n, epochs=N, shuffle=False)",
                   "tensorflow", f"{_TF}:keras_numpy_input", title="Keras fit, one epoch per update", stops_at_divergence=False, python_loop=True,
                   step_cost_s=3e-2,
                   note="every epoch re-enters Keras' Python loop (callbacks, a new iterator over the numpy arrays, "
                   "metric resets, logs copied to the host), and at a small size that overhead is all there is",
                   details="The idiomatic `model.fit(X, y, batch_size=n, epochs=N, shuffle=False)`, loss from "
                           "`History`. Same numbers, but each epoch pays Keras' per-epoch Python machinery "
                           "(callbacks, a new iterator, metric resets, logs copied to the host); the report's "
                           "timings give its cost. With `--dtype both` it runs in float64 only: its cost is that "
                           "machinery, the same in either dtype."),
    Implementation("gradient_tape", "whole loop in one tf.function, autodiff checked against the analytic gradient "
                   "every step; XLA while X is small", "tensorflow", f"{_TF}:tape_auto", title="GradientTape loop",
                   checks_gradient=True, step_cost_s=3e-5,
                   details="`tf.Variable` weights; each step records the loss under `tf.GradientTape`, takes the "
                           "autodiff gradients, computes the analytic ones from the same residuals, records their "
                           "largest difference, and applies the update. The whole loop is one `tf.function`, "
                           "compiled by XLA while X is small (`jit_compile` is recorded per run): XLA fuses the "
                           "small ops of a step (matrix products, subtractions, reductions, the check). Past that "
                           "size the default switches to a graph that takes each step in blocks of rows, each "
                           "block's share of the loss under its own tape, so that a block's second and third reads "
                           "(autodiff's X^T, the check's X^T R) could come from cache after the first. Whether that "
                           "beats the plain graph is measured, not assumed: the scaling experiment's report sets "
                           "the blocked row beside the unblocked one and the one-pass floor (`mode` in `runs.csv` "
                           "and `scaling.csv` says which ran). A difference between autodiff and the analytic "
                           "gradients beyond the dtype's tolerance is an error, not a footnote. Finite differences "
                           "(float64, central) check autodiff at the start and the end."),
    Implementation("gradient_tape:xla", "the same loop, always compiled by XLA", "tensorflow", f"{_TF}:tape_xla",
                   title="GradientTape loop, XLA", checks_gradient=True, step_cost_s=3e-5,
                   details="The same loop, always compiled by XLA."),
    Implementation("gradient_tape:graph", "the same loop in one tf.function, never XLA", "tensorflow", f"{_TF}:tape_graph",
                   title="GradientTape loop, graph", checks_gradient=True, step_cost_s=1e-4,
                   note="without XLA every small op of a step (matrix products, subtractions, reductions, the "
                   "check) is dispatched as its own kernel; XLA fuses them into a few",
                   details="The same loop in one `tf.function` without XLA or blocking: every small op is its own "
                           "kernel launch, and at large sizes it reads all of X three times per step."),
    Implementation("gradient_tape:eager", "the same step in a plain Python loop, eager TensorFlow", "tensorflow",
                   f"{_TF}:tape_eager", title="GradientTape, eager", checks_gradient=True, python_loop=True, step_cost_s=2.5e-3,
                   note="one Python iteration per step: the cost of dispatching each op from Python",
                   details="The same step in a Python loop, eager: the cost of dispatching each op from Python."),
    # one pass over X for G, c, s (costs about one streaming step at large n), then O(m^2) steps
    Implementation("numpy:gram", "one float64-summed pass for G, c, s, then the N iterations on them (handrolled/gram.py)",
                   "numpy", f"{_NUMPY}:gram", title="numpy, Gram route", route="gram", step_cost_s=5e-6,
                   details="One pass over the rows, summed in float64 block by block, gives the sufficient "
                           "statistics G = [X,1]^T [X,1] / n, c = [X,1]^T y / n and s = y^T y / n (all the loss and "
                           "its gradient need); the N updates then run on them, theta <- theta - 2 lr (G theta - "
                           "c), each O(m^2) whatever n is, and the loss is s - 2 theta^T c + theta^T G theta. Same "
                           "iterates as `numpy` in exact arithmetic; the loss in this form cancels (it loses about "
                           "eps * s / loss), so its agreement is judged against a rounding bound derived per run "
                           "(`loss_bound` in `equivalence.csv`). The pass is inside every timed call."),
    Implementation("gradient_tape:gram", "one pass for G, c, s, then the loss in Gram form under tf.GradientTape, "
                   "autodiff checked against 2 (G theta - c) every step; XLA loop", "tensorflow", f"{_TF}:gram_tape",
                   title="GradientTape, Gram route", checks_gradient=True, route="gram", step_cost_s=2e-6,
                   details="The same route in TensorFlow: the pass as a graph, the iterations in one XLA loop with "
                           "the Gram-form loss under `tf.GradientTape`, autodiff checked against the analytic 2 (G "
                           "theta - c) at every step."),
    Implementation("gradient_tape:mirrored", "the tape loop under MirroredStrategy over --replicas devices (GPUs when "
                   "at least 2 are seen, else logical CPUs), each holding its shard of rows, one SUM all-reduce per step",
                   "tensorflow", f"{_TF}:mirrored_tape", title="GradientTape, mirrored replicas", checks_gradient=True,
                   distributed="replicas", step_cost_s=4e-4,
                   details="The tape loop under `tf.distribute.MirroredStrategy` over `--replicas R` devices "
                           "(default 2): the GPUs when TensorFlow sees at least two (and `--device` allows them), "
                           "otherwise the CPU split into R logical devices before TensorFlow initialises. Logical "
                           "CPUs share the same cores: they prove the mechanics and measure the cost of "
                           "synchronising, not a speed-up. Each replica holds its own shard of rows "
                           "(`experimental_distribute_values_from_function`) and computes its share of the loss "
                           "over the *global* n, of the autodiff gradient and of the autodiff-minus-analytic "
                           "difference; one packed `all_reduce(SUM)` per step (every replica sends its share and "
                           "receives the sum) adds the shares, so rows that do not divide by R still give numpy's "
                           "numbers. Device label: every replica, e.g. `cpu:0+cpu:1`."),
    Implementation("keras:mirrored", "Dense(1) + SGD + mse fit under MirroredStrategy: repeated tf.data batch, "
                   "steps_per_execution=1, rows padded to equal shards with zero sample weight", "tensorflow",
                   f"{_TF}:mirrored_keras", title="Keras fit, mirrored replicas", stops_at_divergence=False,
                   distributed="replicas", step_cost_s=8e-3,
                   details="`Dense(1)` + `SGD` + `\"mse\"` built and compiled under the same strategy, `fit` on a "
                           "repeated `tf.data` batch of all rows with `steps_per_execution=1`: larger values fail "
                           "inside Keras' multi-step loop under the strategy. Keras averages each replica's loss "
                           "over its own rows and divides by R, and its first build adds the replicas' batches "
                           "elementwise (unequal shards crash with `AddN` shape errors), so the batch is padded to "
                           "R equal shards with rows of sample weight 0 and the real rows are weighted by (padded "
                           "rows)/n; the weights also undo Keras' float32 rounding of 1/R (which alone puts float64 "
                           "runs with R = 3 outside the tolerance). With these, `fit` gives numpy's numbers for any "
                           "n and R."),
    Implementation("gradient_tape:multi_worker", "the tape loop under MultiWorkerMirroredStrategy over --workers "
                   "processes on loopback (TF_CONFIG), one packed all-reduce per step", "tensorflow",
                   f"{_TF}:multi_worker_tape", title="GradientTape, worker processes", checks_gradient=True,
                   distributed="workers", own_process=True, step_cost_s=4e-3, starter=f"{_TF}:start_workers",
                   details="The tape loop under `tf.distribute.MultiWorkerMirroredStrategy` over `--workers W` "
                           "processes (default 2) that the driver starts on free loopback ports with `TF_CONFIG`; "
                           "each worker reads only its rows, one packed all-reduce per step (three separate ones "
                           "per step aborted the workers in repeated calls), and worker 0 hands back the result and "
                           "its own timings (warm-up and repeats around the whole loop; process start-up is "
                           "outside, like imports elsewhere). The same worker module runs on real hosts "
                           "([running.md](running.md#across-machines-the-multi-worker-module)). Keras `fit` under "
                           "this strategy is not in the study: see the distributed support matrix in the report."),
    Implementation("jax", "the loss in jax.numpy, jax.value_and_grad, the whole loop in jax.lax under jax.jit; autodiff "
                   "checked against the analytic gradient every step", "jax", f"{_JAX}:jit_loop", title="JAX jit loop",
                   checks_gradient=True, step_cost_s=3e-5,
                   details="The loss in `jax.numpy`, its value and autodiff gradients from `jax.value_and_grad`, "
                           "the analytic gradients from the same residuals, their largest difference recorded per "
                           "step (as `gradient_tape` does), and the whole loop a `jax.lax.while_loop` that stops at "
                           "divergence, in one `jax.jit` call compiled by XLA; the learning rate is an input, so "
                           "another rate reuses the compiled loop. `jax_enable_x64` is on (float64 runs are "
                           "float64) and the matmul precision \"highest\" (no TF32). Finite differences (float64, "
                           "central) check autodiff at the start and the end. Beside `gradient_tape:xla` it shows "
                           "two front ends of one compiler."),
    Implementation("jax:eager", "the same jitted step called from a Python loop, one dispatch per update", "jax",
                   f"{_JAX}:eager_loop", title="JAX, Python loop", checks_gradient=True, python_loop=True, step_cost_s=3e-4,
                   note="the step is the same compiled code as `jax`'s; each update is one dispatch from Python and "
                   "one transfer of its loss to the host, for the divergence test",
                   details="The same jitted step called from a Python loop once per update, the loss brought to the "
                           "host every step for the divergence test: how JAX training loops are usually written. "
                           "Beside `jax` it isolates the cost of dispatching each update from Python, since the "
                           "step's arithmetic is the same compiled code."),
    Implementation("keras:jax", "the keras row's Dense(1) + SGD + mse fit on the JAX backend (KERAS_BACKEND=jax), in its "
                   "own process", "jax", f"{_JAX}:keras_on_jax", title="Keras fit on JAX", minibatch=True,
                   stops_at_divergence=False, own_process=True, step_cost_s=3e-4,
                   starter=f"{_JAX}:start_keras_jax_child",
                   note="its times are taken inside its own process, around fit, as `keras`'s are in this one",
                   details="The `keras` row's model and fit (`Dense(1)`, `SGD(lr)`, `\"mse\"`, "
                           "`steps_per_execution=N`, the same `StepLossRecorder`) on Keras' JAX backend. Keras "
                           "fixes its backend at its first import, so it runs in a child process started with "
                           "`KERAS_BACKEND=jax`, which times its own calls and never imports TensorFlow. The feed "
                           "is a `keras.utils.PyDataset` of device arrays (tf.data would import TensorFlow) and "
                           "`jit_compile=True` (on JAX the alternative is op-by-op execution). Keras 3 demotes "
                           "float64 results to float32 on every backend but TensorFlow; the child switches that one "
                           "demotion off, so float64 runs are float64."),
    Implementation("jax:sharded", "the jax loop with its rows sharded over --replicas devices (jax.sharding; GPUs when "
                   "enough are seen, else the CPU split)", "jax", f"{_JAX}:sharded_loop", title="JAX, sharded rows",
                   checks_gradient=True, distributed="replicas", step_cost_s=1e-4,
                   details="The `jax` loop with the rows of X and y split over `--replicas R` devices by a one-axis "
                           "`jax.sharding.Mesh` (the GPUs when JAX sees enough, else the host split into R CPU "
                           "devices); W and b are replicated. XLA's SPMD partitioner turns the sums over rows into "
                           "per-device partial sums and an all-reduce, so every device applies the same update; "
                           "rows that do not divide by R are padded with zero-weight rows. The counterpart of "
                           "`gradient_tape:mirrored`."),
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


def framework_name(framework):
    """A framework's short name for figures ('tensorflow' -> 'TensorFlow'); the key itself for an unknown one."""
    return FRAMEWORKS.get(framework, (framework,))[0]


def framework_words(framework):
    """A framework's words in a sentence ('tensorflow' -> 'TensorFlow and Keras'); the key itself for an unknown one."""
    return FRAMEWORKS.get(framework, (framework, framework))[1]


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
