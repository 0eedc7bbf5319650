"""Train on z-scored features, report in the units of the original columns.

With z = (x - mu) / sigma (population std), a model y_hat = Z W_std + b_std is the same function of x as
y_hat = X W_raw + b_raw with W_raw = W_std / sigma and b_raw = b_std - sum(W_std * mu / sigma). It is a
reparametrisation of the same predictions, so the MSE of every iterate is unchanged and the loss curves
of raw and standardised runs stay directly comparable; only the path of descent (its conditioning) differs.
Centring the target too (y - mean(y)) shifts every prediction and the bias by the same constant, so
the residuals, and with them the MSE, are again unchanged.
"""
import dataclasses

import numpy as np

from comparisons.core.errors import UsageError


def standardize(dataset, center_target=False):
    """(the dataset with z-scored features, to_raw(W_std, b_std) -> (W_raw (m, 1), b_raw)).

    center_target=True also subtracts the target's mean: the bias then starts near its optimum (0)
    and descent only has to find the weights; to_raw adds the mean back to the bias.
    """
    X = np.asarray(dataset.X, dtype=np.float64)
    scale = power_of_two_scale(X)  # (m,): the statistics of X / scale cannot overflow, and scaling back is exact
    mu = X.mean(axis=0) if scale is None else (X / scale).mean(axis=0) * scale  # (m,)
    sigma = X.std(axis=0) if scale is None else (X / scale).std(axis=0) * scale  # (m,), population std (ddof=0)
    constant = [name for name, s in zip(dataset.feature_names, sigma) if not s > 0]
    if constant:
        raise UsageError(f"feature {constant[0]!r} is constant, so it cannot be standardised; leave it out")
    mu_col, sigma_col = mu.reshape(-1, 1), sigma.reshape(-1, 1)  # (m, 1)

    y_mean = float(np.mean(dataset.y)) if center_target else 0.0  # subtracted from y, added back to b

    def to_raw(W_std, b_std):
        """Parameters trained on z-scored features, in the units of the original columns (float64)."""
        W_std = np.asarray(W_std, dtype=np.float64).reshape(-1, 1)
        W_raw = W_std / sigma_col
        return W_raw, float(b_std) + y_mean - float(np.sum(W_raw * mu_col))

    true_weights, true_bias = dataset.true_weights, dataset.true_bias
    if true_weights is not None:  # the generator's parameters, expressed in the trained units
        true_bias = float(true_bias + np.sum(true_weights * mu_col)) - y_mean
        true_weights = true_weights * sigma_col
    Z = (X - mu) / sigma if scale is None else (X / scale - mu / scale) / (sigma / scale)  # (n, m), same values
    trained = dataclasses.replace(
        dataset, X=Z, y=np.asarray(dataset.y, np.float64) - y_mean,
        true_weights=true_weights, true_bias=true_bias,
        source=f"{dataset.source}; features z-scored (population std)" + ("; target centred" if center_target else ""),
    )
    return trained, to_raw


def power_of_two_scale(X):
    """Per column, the power of two just above max |x| (m,), when a column is large enough for its squares to
    overflow; else None (nothing to scale). Dividing by a power of two is exact, so results are unchanged."""
    largest = np.max(np.abs(X), axis=0) if X.size else np.zeros(X.shape[1:])
    if not np.any(largest > 1e100):
        return None
    _, exponents = np.frexp(np.where(largest > 0, largest, 1.0))
    return np.ldexp(1.0, exponents)


def scales_differ_widely(X, ratio=100.0):
    """Whether the columns of [X, 1] differ in scale (root mean square) by more than `ratio`: a hint to --standardize.

    The constant column of the bias counts too: one feature in the millions is badly scaled
    against the bias even when it is alone.
    """
    X = np.asarray(X, dtype=np.float64)
    scale = power_of_two_scale(X)
    rms = np.sqrt(np.mean(X ** 2, axis=0)) if scale is None else np.sqrt(np.mean((X / scale) ** 2, axis=0)) * scale
    scales = np.append(rms, 1.0)  # the bias column's scale is 1
    smallest = scales.min()
    return bool(smallest == 0 or scales.max() / smallest > ratio)
