"""jax:sharded: the `jax` loop with the rows of X and y spread over R devices (jax.sharding).

The counterpart of gradient_tape:mirrored. X and y are split by rows over a one-axis Mesh
("rows"); W and b are replicated. The loop is the same traced code as loop.py's: XLA's SPMD
partitioner turns the sums over rows (the loss, X^T R, sum R) into per-device partial sums and an
all-reduce, so every device applies the same update. When n is not a multiple of R, the last
rows are padding: zeros with row weight 0, so their residuals are 0 and the loss and the
gradients stay those of the n real rows (the mean divides by n, not by the padded count).
On a CPU, R devices come from splitting the host platform (runtime.request_cpu_devices).
"""
import numpy as np

from loop_result import LoopResult  # the one type every TensorFlow and JAX loop returns (numpy only)

from .loop import descent_loop, truncated_fields
from .runtime import gpu_devices, import_jax, placed_label

jax = import_jax()
from jax.sharding import Mesh, NamedSharding, PartitionSpec  # noqa: E402


def replica_devices(replicas, platform="cpu"):
    """The first `replicas` devices of `platform` ('cpu' or 'gpu'); a clear error when JAX has fewer."""
    devices = list(jax.devices("cpu")) if platform == "cpu" else gpu_devices(jax)
    if len(devices) < replicas:
        hint = (f"split the CPU first: jax_models.runtime.request_cpu_devices({replicas}) before JAX starts"
                if platform == "cpu" else "use platform='cpu' with a split CPU")
        raise ValueError(f"jax:sharded over {replicas} {platform.upper()} devices: JAX sees {len(devices)}; {hint}")
    return devices[:replicas]


def padded_rows(X, y, replicas):
    """(X, y, row weights (n_padded, 1)) with zero rows appended so that every device holds as many rows."""
    n = X.shape[0]
    padded = -(-n // replicas) * replicas
    pad = padded - n
    weights = np.concatenate([np.ones(n, X.dtype), np.zeros(pad, X.dtype)]).reshape(-1, 1)
    return (np.concatenate([X, np.zeros((pad, X.shape[1]), X.dtype)]), np.concatenate([y, np.zeros((pad, 1), y.dtype)]),
            weights)


def make_sharded_trainer(X, y, lr, iterations, replicas=2, platform="cpu", divergence_factor=1e6):
    """Build a trainer: (W0, b0, lr=lr) -> LoopResult with the rows over `replicas` devices. First call compiles."""
    devices = replica_devices(replicas, platform)
    n = X.shape[0]
    dtype = X.dtype
    factor = float(divergence_factor)
    mesh = Mesh(np.array(devices), ("rows",))
    by_rows, replicated = NamedSharding(mesh, PartitionSpec("rows", None)), NamedSharding(mesh, PartitionSpec())
    X_p, y_p, weights = padded_rows(X, y, replicas)
    X_d, y_d, w_d = (jax.device_put(a, by_rows) for a in (X_p, y_p, weights))
    col_abs_max = jax.device_put(dtype.type(np.abs(X).sum(axis=0, dtype=dtype).max()), replicated)
    loop = jax.jit(lambda X, y, w, c, W0, b0, lr: descent_loop(X, y, w, n, c, W0, b0, lr, iterations, factor))
    label = placed_label(X_d)  # every device holding a shard of the rows, '+'-joined

    def train(W0, b0, lr=lr):
        """One run from (W0, b0); another lr reuses the compiled loop, as lr is an input."""
        W0_d = jax.device_put(np.asarray(W0, dtype).reshape(-1, 1), replicated)
        b0_d, lr_d = jax.device_put(dtype.type(b0), replicated), jax.device_put(dtype.type(lr), replicated)
        outputs = jax.device_get(loop(X_d, y_d, w_d, col_abs_max, W0_d, b0_d, lr_d))  # on the host before return
        return LoopResult(**truncated_fields(*outputs, iterations, dtype), device=label, jit_compile=True,
                          mode="sharded")

    return train
