"""Linear regression by gradient descent, by hand in numpy (the study's `numpy` implementation).

Read in this order: model.py (prediction, loss, gradients, one step), result.py (DescentResult,
what a run returns), descent.py (the training loop), batches.py (mini-batch order), closed_form.py
(the least-squares reference), gram.py (the same descent on sufficient statistics: one pass over the
data, then O(m^2) per iteration).
"""
from .batches import batch_indices, epochs_needed, sample_order
from .closed_form import ols
from .descent import DIVERGENCE_FACTOR, descend, divergence_point
from .gram import (GramStatistics, descend_gram, gram_gradient, gram_loss, loss_magnitude, loss_rounding_bound,
                   sufficient_statistics)
from .model import gradient_step, gradients, gradients_from_residuals, mse, mse_of_residuals, predict, residuals_into
from .result import DescentResult

__all__ = [
    "DIVERGENCE_FACTOR", "DescentResult", "GramStatistics", "batch_indices", "descend", "descend_gram",
    "divergence_point", "epochs_needed", "gradient_step", "gradients", "gradients_from_residuals", "gram_gradient",
    "gram_loss", "loss_magnitude", "loss_rounding_bound", "mse", "mse_of_residuals", "ols", "predict",
    "residuals_into", "sample_order", "sufficient_statistics",
]
