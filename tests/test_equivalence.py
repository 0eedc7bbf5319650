"""Every implementation against the hand-rolled numpy run: loss curve, gradients and weights.

One helper, tests/equivalence.py's assert_matches_numpy (every test file compares with it), parametrised
here over implementations and dtypes (as tinygrad's helper_test_op); its docstring gives the tolerances.
"""
import numpy as np
import pytest

import handrolled
from comparisons.core import registry
from comparisons.inputs.data import order_seed
from comparisons.running.implementations import finite_difference_checks, make_trainer, stop_at_divergence
from comparisons.core.results import GradientMismatchError
from comparisons.core.tolerances import EQUIVALENCE

from .conftest import LESSON_ITERATIONS
from .equivalence import assert_matches_numpy

ITERATIONS = LESSON_ITERATIONS  # the shared runs' count (conftest): one trace serves several tests
# fit(epochs=N) on numpy arrays pays tens of ms per epoch: fewer; its per-step arithmetic is Keras' own, tested at 60
SHORT_RUNS = {"keras:numpy_input": 20}
# every single-process streaming row of every framework, read from the registry, so a new row is tested here at once;
# the distributed variants need a split CPU or worker processes (test_distributed.py), the Gram routes are allowed
# their rounding bound (test_gram.py)
STREAMING_ROWS = [n for n in registry.names() if n != registry.REFERENCE and not registry.get(n).distributed
            and registry.get(n).route == "streaming"]


def assert_equivalent(name, data, initial, dtype, lr=0.05, iterations=ITERATIONS, batches=None, result=None,
                      trainer=None):
    """Run `name` (unless its `result` of these settings, made by `trainer`, is given) as the study does, and compare it
    with numpy from the same start (assert_matches_numpy)."""
    X, y = data.X.astype(dtype), data.y.astype(dtype)
    W0, b0 = initial
    trainer = trainer or make_trainer(name, X, y, lr, iterations, batches=batches)
    if result is None:
        result = trainer(W0, b0)
    if trainer.spec.lr != lr:  # a trainer built for another rate, called at this one: cut back at this rate
        trainer = make_trainer(name, X, y, lr, iterations, batches=batches)
    result = stop_at_divergence(result, trainer, W0, b0)  # a run that cannot stop itself, past a divergence point
    assert_matches_numpy(result, X, y, W0, b0, lr, iterations, batches=batches)
    assert result.dtype == dtype
    return result


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", STREAMING_ROWS)
def test_matches_numpy(lesson_data, lesson_run, lesson_trainer, name, dtype):
    data, initial = lesson_data
    iterations = SHORT_RUNS.get(name, ITERATIONS)
    result = assert_equivalent(name, data, initial, dtype, iterations=iterations,
                               result=lesson_run(name, dtype, iterations), trainer=lesson_trainer(name, dtype, iterations))
    assert result.device == "cpu"


@pytest.mark.parametrize("name", ["keras", "gradient_tape", "gradient_tape:graph"])
def test_matches_numpy_with_several_features(tf_ready, name):
    from comparisons.inputs.data import initial_parameters, make_synthetic

    data = make_synthetic(64, 5, 0.5, seed=3)
    assert_equivalent(name, data, initial_parameters(5, seed=3), "float64", lr=0.02, iterations=40)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gradient_tape_autodiff_equals_analytic_every_step(lesson_data, lesson_run, lesson_trainer, dtype):
    data, initial = lesson_data
    result = lesson_run("gradient_tape", dtype, ITERATIONS)  # the run test_matches_numpy compares with numpy
    checks = [c for c in result.gradient_checks if c.method == "analytic_vs_autodiff"]
    assert [c.iteration for c in checks] == list(range(ITERATIONS))
    bound = 1e-12 if dtype == "float64" else 1e-4
    assert max(c.max_abs_diff for c in checks) < bound
    fd = finite_difference_checks(lesson_trainer("gradient_tape", dtype, ITERATIONS), *initial, result)
    assert [c.iteration for c in fd] == [0, ITERATIONS]
    # both sides are float64 whatever the run's dtype; central differences of a quadratic carry only rounding,
    # ~eps * loss / h ~ 1e-8 absolute, ~5e-10 relative to the size of the summed terms
    assert max(c.max_rel_diff for c in fd) < 1e-8


@pytest.mark.parametrize("noise, shift", [(0.5, 0.0), (0.0, 0.0), (1e-3, 1e3), (0.5, 1e5)],
                         ids=["lesson", "noiseless", "tiny_noise_large_mean", "large_mean"])
def test_finite_differences_hold_at_the_start_at_the_fit_and_far_away(tf_ready, noise, shift):
    """The rounding bound of the central differences is met wherever the check is made: at the
    start, at the least-squares point (residuals ~0 against a large y) and where residuals are huge."""
    import tf_models.gradient_tape as gt
    from comparisons.running import finite_difference
    from comparisons.inputs.data import initial_parameters, make_synthetic

    data = make_synthetic(100, 3, noise, seed=1)
    y = data.y + shift
    W0, b0 = initial_parameters(3, seed=1)
    W_ols, b_ols = handrolled.ols(data.X, y)
    for X_, y_, W, b in [(data.X, y, W0, b0), (data.X, y, W_ols, b_ols), (1e3 * data.X, 1e6 * y, W0, b0)]:
        assert finite_difference.check(gt.autodiff_gradient64(X_, y_, W, b), X_, y_, W, b)[2]


def test_finite_difference_bound_catches_a_small_formula_error(lesson_data, lesson_run, lesson_trainer, monkeypatch):
    """A gradient wrong by 1e-4 relative lies outside the bound; a zero-safety check stops the run."""
    from comparisons.running import finite_difference as fd

    data, (W0, b0) = lesson_data
    numeric, rounding = fd.central_differences(data.X, data.y, W0, b0)
    grad_W, grad_b = handrolled.gradients(data.X, data.y, W0, b0)
    exact = np.append(np.ravel(grad_W), grad_b)
    assert np.all(np.abs(numeric - exact) <= fd.SAFETY * rounding)  # the truth passes
    assert np.all(np.abs(numeric - exact * (1 + 1e-4)) > fd.SAFETY * rounding)  # a slip does not
    result = lesson_run("gradient_tape", "float64", ITERATIONS)
    monkeypatch.setattr(fd, "SAFETY", 0.0)  # no difference at all allowed: must stop the run
    with pytest.raises(GradientMismatchError, match="central differences"):
        finite_difference_checks(lesson_trainer("gradient_tape", "float64", ITERATIONS), W0, b0, result)


def test_gradient_mismatch_is_an_error(lesson_data, lesson_trainer, monkeypatch):
    """A tolerance the arithmetic cannot meet must stop the run, not end up in a footnote."""
    from comparisons.core import tolerances

    monkeypatch.setitem(tolerances.GRADIENT, "float64", -1.0)
    _, initial = lesson_data
    with pytest.raises(GradientMismatchError):
        lesson_trainer("gradient_tape", "float64", ITERATIONS)(*initial)


@pytest.mark.parametrize("batch_size", [1, 32, 100])
def test_keras_minibatch_follows_the_same_order(tf_ready, lesson_data, batch_size):
    data, initial = lesson_data
    steps = 50
    order = handrolled.sample_order(data.n, handrolled.epochs_needed(data.n, batch_size, steps), order_seed(0))
    batches = handrolled.batch_indices(order, batch_size, steps)
    assert_equivalent("keras", data, initial, "float64", iterations=steps, batches=batches)


@pytest.mark.parametrize("name", ["keras", "gradient_tape", "gradient_tape:eager"])
def test_divergence_is_reported_at_the_same_iteration(lesson_data, lesson_trainer, name):
    data, initial = lesson_data
    diverging = lesson_trainer(name, "float64", ITERATIONS)(*initial, 10.0)  # a trainer built for lr 0.05
    result = assert_equivalent(name, data, initial, "float64", lr=10.0, result=diverging,
                               trainer=lesson_trainer(name, "float64", ITERATIONS))
    assert result.diverged_at is not None and result.status.startswith("diverged at iteration")


@pytest.mark.parametrize("name", ["keras", "gradient_tape", "gradient_tape:graph"])
def test_one_trainer_serves_several_learning_rates(lesson_data, lesson_trainer, name):
    """The rate passed at call time is the one used (no stale compiled constant), in either order."""
    data, (W0, b0) = lesson_data
    trainer = lesson_trainer(name, "float64", ITERATIONS)  # built for lr 0.05
    for lr in (0.3, 0.05, 10.0):
        reference = make_trainer(registry.REFERENCE, data.X, data.y, lr, ITERATIONS)(W0, b0)
        result = trainer(W0, b0, lr)
        assert result.diverged_at == reference.diverged_at
        np.testing.assert_allclose(result.loss_curve, reference.loss_curve, rtol=EQUIVALENCE["float64"], atol=0)


def test_whole_lesson_run_agrees_to_1e_10(tf_ready, lesson_data):
    """The lesson's settings (lr 0.05, 1000 iterations, float64) for the fast implementations."""
    data, initial = lesson_data
    for name in ["keras", "gradient_tape", "gradient_tape:graph"]:
        assert_equivalent(name, data, initial, "float64", iterations=1000)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("block_rows", [16, 25, 100, 1000])  # leftover rows, none, one block, only leftovers
def test_blocked_loop_matches_numpy(tf_ready, lesson_data, dtype, block_rows):
    """Taking each step block by block (each block's loss share under its own tape) is the same descent,
    converging (lr 0.05) and diverging (lr 10), both from one trainer: the rate is an input of its loop."""
    from tf_models.gradient_tape import make_tape_trainer

    data, (W0, b0) = lesson_data
    X, y = data.X.astype(dtype), data.y.astype(dtype)
    trainer = make_tape_trainer(X, y, 0.05, 40, mode="blocked", block_rows=block_rows)
    for lr, diverges in [(0.05, False), (10.0, True)]:
        result = trainer(W0, b0, lr)
        reference = assert_matches_numpy(result, X, y, W0, b0, lr, 40)
        assert result.mode == "blocked" and (reference.diverged_at is not None) == diverges
        assert result.grad_rel_diff.max() < (1e-12 if dtype == "float64" else 1e-5)  # the check sees every row


def test_default_gradient_tape_compiles_with_xla_only_while_x_is_small(lesson_run):
    from tf_models.gradient_tape import XLA_MAX_BYTES, resolve_mode

    small, large = np.empty((100, 1)), np.empty((XLA_MAX_BYTES // 8 + 1, 1))
    assert resolve_mode("auto", small) == "xla" and resolve_mode("auto", large) == "blocked"
    assert resolve_mode("graph", small) == "graph" and resolve_mode("xla", large) == "xla"
    with pytest.raises(ValueError):
        resolve_mode("fast", small)
    assert lesson_run("gradient_tape", "float64", ITERATIONS).jit_compile is True
    assert lesson_run("gradient_tape:graph", "float64", ITERATIONS).jit_compile is False
