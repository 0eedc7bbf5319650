"""Linear regression by gradient descent, by hand in numpy (the study's `numpy` implementation).

Read in this order: model.py (prediction, loss, gradients, one step), descent.py (the training
loop), batches.py (mini-batch order), closed_form.py (the least-squares reference).
"""
from .batches import batch_indices, epochs_needed, sample_order
from .closed_form import ols
from .descent import DIVERGENCE_FACTOR, DescentResult, descend, divergence_point
from .model import gradient_step, gradients, gradients_from_residuals, mse, predict

__all__ = [
    "DIVERGENCE_FACTOR", "DescentResult", "batch_indices", "descend", "divergence_point",
    "epochs_needed", "gradient_step", "gradients", "gradients_from_residuals", "mse", "ols",
    "predict", "sample_order",
]
