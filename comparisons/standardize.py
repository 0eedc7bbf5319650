"""Train on z-scored features, report in the units of the original columns.

With z = (x - mu) / sigma (population std), a model y_hat = Z W_std + b_std is the same function of x as
y_hat = X W_raw + b_raw with W_raw = W_std / sigma and b_raw = b_std - sum(W_std * mu / sigma). It is a
reparametrisation of the same predictions, so the MSE of every iterate is unchanged and the loss curves
of raw and standardised runs stay directly comparable; only the path of descent (its conditioning) differs.
"""
import dataclasses

import numpy as np

from .errors import UsageError


def standardize(dataset):
    """(the dataset with z-scored features and the same target, to_raw(W_std, b_std) -> (W_raw (m, 1), b_raw))."""
    X = np.asarray(dataset.X, dtype=np.float64)
    mu = X.mean(axis=0)  # (m,)
    sigma = X.std(axis=0)  # (m,), population std (ddof=0)
    constant = [name for name, s in zip(dataset.feature_names, sigma) if not s > 0]
    if constant:
        raise UsageError(f"feature {constant[0]!r} is constant, so it cannot be standardised; leave it out")
    mu_col, sigma_col = mu.reshape(-1, 1), sigma.reshape(-1, 1)  # (m, 1)

    def to_raw(W_std, b_std):
        """Parameters trained on z-scored features, in the units of the original columns (float64)."""
        W_std = np.asarray(W_std, dtype=np.float64).reshape(-1, 1)
        W_raw = W_std / sigma_col
        return W_raw, float(b_std) - float(np.sum(W_raw * mu_col))

    true_weights, true_bias = dataset.true_weights, dataset.true_bias
    if true_weights is not None:  # the generator's parameters, expressed in the trained units
        true_bias = float(true_bias + np.sum(true_weights * mu_col))
        true_weights = true_weights * sigma_col
    trained = dataclasses.replace(
        dataset, X=(X - mu) / sigma, true_weights=true_weights, true_bias=true_bias,
        source=f"{dataset.source}; features z-scored (population std)",
    )
    return trained, to_raw


def scales_differ_widely(X, ratio=100.0):
    """Whether the columns of [X, 1] differ in scale (root mean square) by more than `ratio`: a hint to --standardize.

    The constant column of the bias counts too: one feature in the millions is badly scaled
    against the bias even when it is alone.
    """
    X = np.asarray(X, dtype=np.float64)
    scales = np.append(np.sqrt(np.mean(X ** 2, axis=0)), 1.0)  # the bias column's scale is 1
    smallest = scales.min()
    return bool(smallest == 0 or scales.max() / smallest > ratio)
