"""The hand-rolled numpy regression: gradients, convergence to OLS, mini-batches, stability, dtypes."""
import numpy as np
import pytest

import handrolled
from comparisons.inputs.data import initial_parameters, make_synthetic
from comparisons.running.stability import analyse


def central_differences(X, y, W, b, h=1e-6):
    """Numerical gradient of the MSE in float64, one parameter at a time."""
    theta = np.append(W.ravel(), b)

    def loss(t):
        return handrolled.mse(y, handrolled.predict(X, t[:-1].reshape(-1, 1), t[-1]))

    grad = np.empty_like(theta)
    for j in range(theta.size):
        step = np.zeros_like(theta)
        step[j] = h
        grad[j] = (loss(theta + step) - loss(theta - step)) / (2 * h)
    return grad[:-1].reshape(-1, 1), grad[-1]


@pytest.mark.parametrize("n,m", [(7, 1), (50, 3), (200, 8), (31, 17)])
def test_analytic_gradients_match_central_differences(n, m):
    rng = np.random.default_rng(n * 100 + m)
    X, y = rng.normal(size=(n, m)), rng.normal(size=(n, 1))
    W, b = rng.normal(size=(m, 1)), float(rng.normal())
    grad_W, grad_b = handrolled.gradients(X, y, W, b)
    num_W, num_b = central_differences(X, y, W, b)
    scale = max(np.abs(num_W).max(), abs(num_b))
    # the MSE is quadratic: central differences are exact up to rounding, ~eps * loss / h ~ 1e-10
    np.testing.assert_allclose(grad_W, num_W, rtol=1e-7, atol=1e-7 * scale)
    assert abs(grad_b - num_b) <= 1e-7 * scale
    assert grad_W.shape == (m, 1)


def test_lesson_settings_reach_least_squares(lesson_data):
    data, (W0, b0) = lesson_data
    result = handrolled.descend(data.X, data.y, W0, b0, lr=0.05, iterations=1000)
    W_ols, b_ols = handrolled.ols(data.X, data.y)
    assert result.diverged_at is None and result.status == "ok"
    # relative 1e-6: the slowest direction shrinks by (1 - 0.05 * lambda_min)^1000 ~ 7e-7 in 1000 steps,
    # so the absolute gap (~1.5e-6 here) depends on how far the random start was
    np.testing.assert_allclose(result.weights, W_ols, rtol=1e-6)
    assert result.bias == pytest.approx(b_ols, rel=1e-6)
    assert len(result.loss_curve) == 1001  # N + 1 points
    assert np.all(np.diff(result.loss_curve) <= 1e-15)  # a stable step never raises the full-batch loss


def test_loss_curve_convention(lesson_data):
    """Point i is the loss before update i, point N the loss of the final parameters."""
    data, (W0, b0) = lesson_data
    result = handrolled.descend(data.X, data.y, W0, b0, lr=0.05, iterations=3, keep_trajectory=True)
    # the step sums R^T R in one loop where mse sums the squares pairwise: the same mean to float64 rounding
    assert result.loss_curve[0] == pytest.approx(handrolled.mse(data.y, handrolled.predict(data.X, W0, b0)), rel=1e-14)
    last = result.trajectory[-1]
    assert result.loss_curve[-1] == pytest.approx(
        handrolled.mse(data.y, handrolled.predict(data.X, last[:-1].reshape(-1, 1), last[-1])), rel=1e-15)
    np.testing.assert_array_equal(last[:-1], result.weights.ravel())


def test_caller_arrays_are_not_modified(lesson_data):
    data, (W0, b0) = lesson_data
    W_before = W0.copy()
    handrolled.descend(data.X, data.y, W0, b0, lr=0.05, iterations=10)
    np.testing.assert_array_equal(W0, W_before)


def test_full_sized_batch_is_full_batch_bit_for_bit(lesson_data):
    data, (W0, b0) = lesson_data
    n, steps = data.n, 50
    order = handrolled.sample_order(n, handrolled.epochs_needed(n, n, steps), seed=3)
    batches = handrolled.batch_indices(order, n, steps)
    full = handrolled.descend(data.X, data.y, W0, b0, 0.05, steps)
    mini = handrolled.descend(data.X, data.y, W0, b0, 0.05, steps, batches=batches)
    np.testing.assert_array_equal(full.loss_curve, mini.loss_curve)
    np.testing.assert_array_equal(full.weights, mini.weights)
    assert full.bias == mini.bias


@pytest.mark.parametrize("batch_size", [1, 32])
def test_sgd_path_is_set_by_the_seed(lesson_data, batch_size):
    data, (W0, b0) = lesson_data
    steps = 120

    def path(seed):
        order = handrolled.sample_order(data.n, handrolled.epochs_needed(data.n, batch_size, steps), seed)
        return handrolled.descend(data.X, data.y, W0, b0, 0.05, steps,
                                  batches=handrolled.batch_indices(order, batch_size, steps)).loss_curve

    np.testing.assert_array_equal(path(11), path(11))
    assert not np.array_equal(path(11), path(12))


def test_batches_cover_every_sample_once_per_epoch():
    order = handrolled.sample_order(10, 2, seed=0)
    batches = handrolled.batch_indices(order, 4, 6)  # 3 batches per epoch: 4, 4, 2
    assert [len(b) for b in batches] == [4, 4, 2, 4, 4, 2]
    assert sorted(np.concatenate(batches[:3]).tolist()) == list(range(10))
    with pytest.raises(ValueError):
        handrolled.batch_indices(order, 4, 7)


def test_learning_rate_threshold_from_the_hessian():
    data = make_synthetic(100, 3, 0.5, seed=5)
    W0, b0 = initial_parameters(3, seed=5)
    threshold = analyse(data.X).max_stable_lr
    # the Hessian without its formula: central differences of the analytic gradient, one parameter at a time
    W, b, h = np.zeros((3, 1)), 0.0, 1e-3  # the MSE is quadratic: the differences are exact up to rounding
    columns = []
    for k in range(4):
        step = np.eye(4)[k] * h
        (gW_plus, gb_plus) = handrolled.gradients(data.X, data.y, W + step[:3, None], b + step[3])
        (gW_minus, gb_minus) = handrolled.gradients(data.X, data.y, W - step[:3, None], b - step[3])
        columns.append((np.append(gW_plus.ravel(), gb_plus) - np.append(gW_minus.ravel(), gb_minus)) / (2 * h))
    eigenvalues = np.linalg.eigvalsh(np.array(columns))  # (4,), ascending
    assert threshold == pytest.approx(2 / eigenvalues[-1], rel=1e-8)
    below = handrolled.descend(data.X, data.y, W0, b0, 0.98 * threshold, 3000, keep_trajectory=True)
    above = handrolled.descend(data.X, data.y, W0, b0, 1.05 * threshold, 3000)
    assert below.diverged_at is None
    # converges, at the rate theory gives: ||theta_k - theta_ols|| <= max_i |1 - lr lambda_i|^k ||theta_0 - theta_ols||
    rate = np.max(np.abs(1 - 0.98 * threshold * eigenvalues))
    W_ols, b_ols = handrolled.ols(data.X, data.y)
    distance = np.linalg.norm(below.trajectory - np.append(W_ols[:, 0], b_ols), axis=1)  # (3001,)
    k = np.arange(len(distance))
    assert np.all(distance <= rate ** k * distance[0] * (1 + 1e-9) + 1e-12)
    assert distance[-1] < 1e-6 * distance[0]
    assert above.diverged_at is not None  # reported, not raised
    assert above.status == f"diverged at iteration {above.diverged_at}"
    assert len(above.loss_curve) == above.diverged_at + 1


def test_divergence_with_overflow_is_reported_not_raised(lesson_data):
    data, (W0, b0) = lesson_data
    with np.errstate(all="raise"):  # numpy's overflow must not surface even when the caller asks it to raise
        result = handrolled.descend(data.X, data.y, W0, b0, lr=10.0, iterations=1000)
    assert result.diverged_at is not None and result.diverged_at < 1000


def test_divergence_point_rule():
    assert handrolled.divergence_point([1.0, 2.0, 3.0]) is None
    assert handrolled.divergence_point([1.0, 2.0, np.inf, 1.0]) == 2
    assert handrolled.divergence_point([1.0, 0.5, np.nan]) == 2
    assert handrolled.divergence_point([2.0, 1e6, 2.1e6]) == 2  # past 1e6 times the start


@pytest.mark.parametrize("batch_size", [None, 8])
def test_float32_in_float32_out(lesson_data, batch_size):
    data, (W0, b0) = lesson_data
    X, y = data.X.astype(np.float32), data.y.astype(np.float32)
    batches = None
    if batch_size:
        order = handrolled.sample_order(100, 3, 0)
        batches = handrolled.batch_indices(order, batch_size, 20)
    result = handrolled.descend(X, y, W0, b0, 0.05, 20, batches=batches, keep_trajectory=True)
    assert result.weights.dtype == np.float32
    assert result.loss_curve.dtype == np.float32
    assert result.trajectory.dtype == np.float32
    assert np.asarray(result.bias).dtype == np.float32
    grad_W, grad_b = handrolled.gradients(X, y, W0.astype(np.float32), np.float32(b0))
    assert grad_W.dtype == np.float32 and np.asarray(grad_b).dtype == np.float32


def test_ols_recovers_exact_parameters():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3))
    W_true, b_true = np.array([[1.5], [-2.0], [0.25]]), 0.75
    W, b = handrolled.ols(X, X @ W_true + b_true)
    np.testing.assert_allclose(W, W_true, atol=1e-12)
    assert b == pytest.approx(b_true, abs=1e-12)


def test_synthetic_data_is_the_lessons():
    data = make_synthetic(100, 1, 0.5, seed=0)
    assert data.X.shape == (100, 1) and data.y.shape == (100, 1) and data.X.dtype == np.float64
    assert 0 <= data.X.min() and data.X.max() < 2  # x ~ 2 * U(0, 1)
    assert data.true_weights[0, 0] == 3.0 and data.true_bias == 4.0
    residual = data.y - (4 + 3 * data.X)
    assert 0.3 < residual.std() < 0.7  # noise 0.5 * N(0, 1)
    again = make_synthetic(100, 1, 0.5, seed=0)
    np.testing.assert_array_equal(data.X, again.X)
    assert not np.array_equal(data.X, make_synthetic(100, 1, 0.5, seed=1).X)


@pytest.mark.parametrize("m", [1, 4])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_residuals_into_the_buffer_are_y_minus_the_prediction(m, dtype):
    rng = np.random.default_rng(m)
    X, y = rng.normal(size=(300, m)).astype(dtype), rng.normal(size=(300, 1)).astype(dtype)
    W, b = rng.normal(size=(m, 1)).astype(dtype), dtype(0.7)
    out = np.full((300, 1), np.nan, dtype)
    R = handrolled.residuals_into(X, y, W, b, out=out)
    assert R is out and R.dtype == dtype
    # oracle: the prediction as explicit float64 sums over the features, no matrix product
    expected = y.astype(np.float64) - (np.einsum("ij,j->i", X.astype(np.float64), W[:, 0].astype(np.float64))[:, None]
                                       + float(b))
    np.testing.assert_allclose(R, expected, rtol=1e-5 if dtype == np.float32 else 1e-13,
                               atol=1e-5 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("dtype, rel", [(np.float64, 1e-13), (np.float32, 1e-5)])
def test_loss_from_residuals_is_the_mean_of_their_squares(dtype, rel):
    R = np.random.default_rng(3).normal(size=(2000, 1)).astype(dtype)
    loss = handrolled.mse_of_residuals(R)
    assert loss.dtype == dtype
    # oracle: exactly rounded sum of the squares (math.fsum over float64 squares of the stored values)
    import math
    assert float(loss) == pytest.approx(math.fsum(float(r) ** 2 for r in R[:, 0]) / 2000, rel=rel)


def test_column_major_x_gives_the_row_major_iterates():
    """The numpy trainer stores X column by column: same descent, to float64 rounding of the products' sums."""
    from comparisons.running.implementations import make_trainer

    data = make_synthetic(500, 6, 0.5, seed=8)
    W0, b0 = initial_parameters(6, seed=8)
    rows = handrolled.descend(data.X, data.y, W0, b0, 0.05, 200, keep_trajectory=True)
    columns = handrolled.descend(np.asfortranarray(data.X), data.y, W0, b0, 0.05, 200, keep_trajectory=True)
    np.testing.assert_allclose(columns.trajectory, rows.trajectory, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(columns.loss_curve, rows.loss_curve, rtol=1e-12)
    trained = make_trainer("numpy", data.X, data.y, 0.05, 200)(W0, b0)
    np.testing.assert_allclose(trained.weights, rows.weights, rtol=1e-12)
    assert data.X.flags.c_contiguous  # the caller's array keeps its layout
