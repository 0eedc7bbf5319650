"""Builders for the numpy rows (handrolled/): full-batch or mini-batch descent, and the Gram route."""
import numpy as np

import handrolled

from comparisons.core.results import RunResult, from_run
from comparisons.running.adapters import Trainer
from comparisons.running.cores import sufficient_statistics


def descent(spec):
    """handrolled.descend on the spec's data: full batch, or the spec's sample order.

    Full batch, X is stored column by column once, here, outside every timed call: then both of a
    step's products read it along its contiguous axis (see handrolled.descend). Mini-batches take
    rows, so they keep the row-major X.
    """
    X = np.asfortranarray(spec.X) if spec.batches is None else spec.X  # the same numbers, another layout

    def train(W0, b0, rate=spec.lr):
        r = handrolled.descend(X, spec.y, W0, b0, float(rate), spec.iterations, batches=spec.batches)
        return from_run(spec.name, spec.dtype, r, device="cpu")
    return Trainer(spec, train)


def gram(spec):
    """One float64-summed pass for G, c, s inside every call (its rows split over the cores), then the iterations on them."""
    X, y = spec.X, spec.y

    def train(W0, b0, rate=spec.lr):
        stats = sufficient_statistics(X, y)  # the one pass, inside every (timed) call
        r = handrolled.descend_gram(stats, W0, b0, float(rate), spec.iterations)
        return from_run(spec.name, spec.dtype, r, device="cpu",
                        loss_bound=gram_loss_bound(stats, r.weights, r.bias, r.loss_curve))
    stages = (lambda: sufficient_statistics(X, y),
              lambda stats, W0, b0: handrolled.descend_gram(stats, W0, b0, spec.lr, spec.iterations).loss_curve)
    return Trainer(spec, train, stages=stages)


def gram_loss_bound(stats, W, b, loss_curve):
    """The rounding bound of a Gram run's last loss point (converging: its smallest loss, the worst cancellation), or None."""
    theta = np.append(np.ravel(W), b).reshape(-1, 1)
    loss = float(loss_curve[-1])
    if not (np.all(np.isfinite(theta)) and np.isfinite(loss)) or loss == 0:
        return None
    return handrolled.loss_rounding_bound(stats, theta, loss)


__all__ = ["RunResult", "descent", "gram", "gram_loss_bound"]
