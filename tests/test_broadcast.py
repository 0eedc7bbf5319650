"""The broadcast formulation of numpy's descent (handrolled/broadcast.py) against the lesson's matmul form."""
import numpy as np
import pytest

import handrolled
from comparisons.inputs.data import initial_parameters, make_synthetic
from handrolled.broadcast import descend_broadcast


@pytest.mark.parametrize("m, lr", [(1, 0.05), (3, 0.02)])  # the lesson's shape, and columns added one at a time
def test_broadcast_descent_is_the_lesson_descent_to_float64_rounding(m, lr):
    data = make_synthetic(2000, m, 0.5, seed=3)
    W0, b0 = initial_parameters(m, seed=3)
    lesson = handrolled.descend(data.X, data.y, W0, b0, lr, 200)
    broadcast = descend_broadcast(data.X, data.y, W0, b0, lr, 200)
    np.testing.assert_allclose(broadcast.weights, lesson.weights, rtol=1e-12)
    assert broadcast.bias == pytest.approx(lesson.bias, rel=1e-12)
    np.testing.assert_allclose(broadcast.loss_curve, lesson.loss_curve, rtol=1e-12)
    assert broadcast.diverged_at is None and broadcast.weights.shape == (m, 1) and len(broadcast.loss_curve) == 201


def test_broadcast_descent_keeps_float32_and_stops_where_the_lesson_stops():
    data = make_synthetic(500, 1, 0.5, seed=4)
    W0, b0 = initial_parameters(1, seed=4)
    X, y = data.X.astype(np.float32), data.y.astype(np.float32)
    result = descend_broadcast(X, y, W0, b0, 0.05, 50)
    assert result.weights.dtype == np.float32 and result.loss_curve.dtype == np.float32
    np.testing.assert_allclose(result.loss_curve, handrolled.descend(X, y, W0, b0, 0.05, 50).loss_curve, rtol=1e-5)
    lesson, broadcast = (f(data.X, data.y, W0, b0, 10.0, 100) for f in (handrolled.descend, descend_broadcast))
    assert lesson.diverged_at is not None and broadcast.diverged_at == lesson.diverged_at
    assert len(broadcast.loss_curve) == len(lesson.loss_curve)


def test_broadcast_descent_does_not_touch_its_inputs():
    data = make_synthetic(100, 2, 0.5, seed=5)
    W0 = np.array([[0.5], [-0.25]])
    X, y, W = data.X.copy(), data.y.copy(), W0.copy()
    descend_broadcast(X, y, W, 0.1, 0.05, 10)
    np.testing.assert_array_equal(X, data.X)
    np.testing.assert_array_equal(y, data.y)
    np.testing.assert_array_equal(W, W0)
