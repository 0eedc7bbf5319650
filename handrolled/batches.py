"""Which samples each update sees: seeded permutations cut into mini-batches.

Another implementation that is handed the same index arrays follows the same path.
"""
import math

import numpy as np


def sample_order(n, epochs, seed):
    """One seeded permutation of range(n) per epoch: an int64 array of shape (epochs, n)."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(n) for _ in range(epochs)]) if epochs else np.empty((0, n), np.int64)


def epochs_needed(n, batch_size, steps):
    """How many passes over n samples `steps` updates of `batch_size` samples need."""
    return math.ceil(steps / math.ceil(n / batch_size))


def batch_indices(order, batch_size, steps):
    """The index array of each of `steps` updates, walking the epochs of `order` in turn.

    An epoch of n samples gives ceil(n / batch_size) batches; the last one may be smaller.
    Within a batch the rows keep their order in the data, so a batch of all n rows is X itself
    and batch_size = n reproduces full-batch descent bit for bit.
    """
    batches = []
    for permutation in order:
        for start in range(0, len(permutation), batch_size):
            batches.append(np.sort(permutation[start:start + batch_size]))
            if len(batches) == steps:
                return batches
    raise ValueError(f"order holds {len(batches)} batches, fewer than the {steps} steps asked for")
