"""The shared data: the lesson's generator, generalised to m features, and the initial parameters.

Every implementation receives exactly these float64 arrays, cast to the run's dtype.
"""
from dataclasses import dataclass

import numpy as np

LESSON_WEIGHT = 3.0  # y = 4 + 3x + noise in the lesson
LESSON_BIAS = 4.0


@dataclass(frozen=True)
class Dataset:
    """Features, target and, for synthetic data, the parameters that generated them."""

    X: np.ndarray  # (n, m) float64
    y: np.ndarray  # (n, 1) float64
    feature_names: tuple  # m names: x1, x2, ... or the CSV's column names
    target_name: str
    true_weights: np.ndarray | None = None  # (m, 1), synthetic data only
    true_bias: float | None = None
    source: str = "synthetic"  # a one-line description for the report

    @property
    def n(self):
        return self.X.shape[0]

    @property
    def m(self):
        return self.X.shape[1]


def _streams(seed):
    """Independent generators for data, initial parameters and sample order, all from one seed."""
    data, init, order = np.random.SeedSequence(seed).spawn(3)
    return np.random.default_rng(data), np.random.default_rng(init), np.random.default_rng(order)


def order_seed(seed):
    """The seed of the sample-order stream (mini-batch permutations) for a study seed."""
    return int(_streams(seed)[2].integers(2**63 - 1))


def make_synthetic(n_samples=100, features=1, noise=0.5, seed=0):
    """The lesson's data: x ~ 2 * U(0, 1), y = 4 + 3 x + noise * N(0, 1), extended to m features.

    Feature 1 keeps the lesson's weight 3; features 2..m get weights drawn from U(-3, 3).
    """
    rng, _, _ = _streams(seed)
    X = 2.0 * rng.random((n_samples, features))  # (n, m)
    weights = np.empty((features, 1))
    weights[0, 0] = LESSON_WEIGHT
    weights[1:, 0] = rng.uniform(-3.0, 3.0, features - 1)
    y = LESSON_BIAS + X @ weights + noise * rng.standard_normal((n_samples, 1))  # (n, 1)
    return Dataset(
        X=X, y=y, feature_names=tuple(f"x{j + 1}" for j in range(features)), target_name="y",
        true_weights=weights, true_bias=LESSON_BIAS,
        source=f"synthetic: n={n_samples}, m={features}, x ~ 2*U(0,1), y = 4 + X W + {noise}*N(0,1), seed {seed}",
    )


def initial_parameters(features, seed=0):
    """Initial (W0 (m, 1), b0) drawn once from the seed, standard normal as in the lesson."""
    _, rng, _ = _streams(seed)
    return rng.standard_normal((features, 1)), float(rng.standard_normal())
