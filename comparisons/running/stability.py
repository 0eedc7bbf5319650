"""Gradient-descent stability from the Hessian of the MSE: the largest stable step and convergence speed.

For L(W, b) = mean((y - X W - b)^2) the Hessian is H = 2/n A^T A with A = [X, 1] (n, m + 1).
Full-batch descent contracts along each eigenvector by |1 - lr * lambda|, so it converges iff
lr < 2 / lambda_max, and the slowest direction shrinks by (1 - lr * lambda_min) per step.
"""
import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Stability:
    """Eigenvalues of the Hessian and what they say about a step size."""

    lambda_min: float
    lambda_max: float

    @property
    def max_stable_lr(self):
        """The largest stable step, 2 / lambda_max (descent diverges above it)."""
        return 2.0 / self.lambda_max

    def predicted_iterations(self, lr, tol):
        """Iterations for the slowest error component to shrink by `tol`: log(tol) / log(|1 - lr * lambda_min|).

        The lesson-style estimate uses the slowest eigenvalue; when lr is close to the threshold the
        fastest one can be the bottleneck instead, so the factor is the larger of the two |1 - lr*lambda|.
        """
        rate = max(abs(1.0 - lr * self.lambda_min), abs(1.0 - lr * self.lambda_max))
        if rate >= 1.0:
            return math.inf
        if rate == 0.0:
            return 1.0
        return math.log(tol) / math.log(rate)


def hessian(X):
    """The MSE's Hessian 2/n [X, 1]^T [X, 1], shape (m + 1, m + 1), in float64."""
    X = np.asarray(X, dtype=np.float64)
    design = np.hstack([X, np.ones((X.shape[0], 1))])
    return 2.0 / X.shape[0] * design.T @ design


def analyse(X):
    """Stability of full-batch descent on features X (n, m).

    With n >= m + 1 rows: the eigenvalues of the (m + 1, m + 1) Hessian. With fewer rows than
    parameters, [X, 1] has rank at most n < m + 1, so lambda_min = 0 exactly, and the nonzero
    eigenvalues of 2/n A^T A are those of 2/n A A^T (n, n): the same lambda_max from an n x n
    matrix, never the (m + 1)^2 one (20,000 features on 100 rows: 100 x 100, not 20,001 x 20,001).
    """
    X = np.asarray(X, dtype=np.float64)
    n, m = X.shape
    if n >= m + 1:
        eigenvalues = np.linalg.eigvalsh(hessian(X))  # ascending; the Hessian is symmetric
        return Stability(lambda_min=float(eigenvalues[0]), lambda_max=float(eigenvalues[-1]))
    design = np.hstack([X, np.ones((n, 1))])  # (n, m + 1)
    eigenvalues = np.linalg.eigvalsh(2.0 / n * design @ design.T)  # (n,), the Hessian's nonzero spectrum
    return Stability(lambda_min=0.0, lambda_max=float(eigenvalues[-1]))
