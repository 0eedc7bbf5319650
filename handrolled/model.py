"""The linear model, its loss and its analytic gradients, in plain numpy.

Shapes: X is (n, m), y is (n, 1), W is (m, 1), b is a scalar of X's dtype.
Every function keeps the dtype of its inputs: float32 in, float32 out.
"""
import numpy as np


def predict(X, W, b):
    """Predictions y_hat = X @ W + b, shape (n, 1)."""
    return X @ W + b


def residuals_into(X, y, W, b, out):
    """Residuals y - (X @ W + b), shape (n, 1), written into `out` (n, 1): no n-long temporaries.

    The same numbers as y - predict(X, W, b). With one feature, numpy's matmul is slow on
    (n, 1) @ (1, 1) (the scaling experiment times it), so the product is written as the multiply it is.
    """
    if X.shape[1] == 1:
        np.multiply(X, W[0, 0], out=out)
    else:
        np.matmul(X, W, out=out)
    out += b
    return np.subtract(y, out, out=out)


def mse(y, y_hat):
    """Mean squared error mean((y - y_hat)**2), with no 1/2 factor (Keras' "mse")."""
    return np.mean((y - y_hat) ** 2)


def mse_of_residuals(residuals):
    """The same mean from residuals R (n, 1) as R^T R / n: one pass over R, no array of squares.

    Summed by numpy's own loop (einsum): BLAS would split this one dot product over both cores,
    which costs more than it saves when the other core is busy.
    """
    return np.einsum("ij,ij->", residuals, residuals) / residuals.dtype.type(residuals.shape[0])


def gradients_from_residuals(X, residuals):
    """Analytic gradients from residuals R = y - y_hat: dL/dW = -2/n X^T R (m, 1), dL/db = -2/n sum(R)."""
    n, m = X.shape
    scale = X.dtype.type(-2.0 / n)  # a dtype scalar, so float32 stays float32
    # with one feature X^T R is one dot product, summed by numpy's own loop as in mse_of_residuals
    XtR = np.einsum("ij,ik->jk", X, residuals) if m == 1 else X.T @ residuals  # (m, 1)
    return scale * XtR, scale * residuals.sum()


def gradients(X, y, W, b):
    """Analytic gradients of the MSE with respect to W and b at (W, b)."""
    return gradients_from_residuals(X, y - predict(X, W, b))


def gradient_step(W, b, grad_W, grad_b, lr):
    """One gradient-descent update: returns (W - lr * grad_W, b - lr * grad_b)."""
    lr = W.dtype.type(lr)
    return W - lr * grad_W, b - lr * grad_b
