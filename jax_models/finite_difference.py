"""JAX's autodiff gradient of the MSE in float64, for the study's check against central differences."""
import numpy as np

from .runtime import import_jax

jax = import_jax()
import jax.numpy as jnp  # noqa: E402 (after import_jax: x64 is on, so float64 is float64)


def _loss64(X64, y64, theta):
    """The MSE at theta = [W; b] (m + 1,), float64."""
    return jnp.mean(jnp.square(y64 - (X64 @ theta[:-1].reshape(-1, 1) + theta[-1])))


_grad64 = jax.jit(jax.grad(_loss64, argnums=2))


def autodiff_gradient64(X, y, W, b):
    """jax.grad of the MSE at (W, b), in float64, as [dL/dW; dL/db] (m + 1,).

    The study checks it against central differences of the loss (comparisons/running/finite_difference.py).
    """
    theta = np.append(np.asarray(W, np.float64).ravel(), np.float64(b))  # (m + 1,): [W, b]
    return np.asarray(_grad64(jnp.asarray(np.asarray(X, np.float64)), jnp.asarray(np.asarray(y, np.float64)), theta))
