"""Which rows each replica or worker holds: the contiguous shard rule, and a worker's own rows (numpy only, no TensorFlow)."""
import numpy as np


def shards(n, parts):
    """Row ranges [(start, stop), ...] of np.array_split: the first n % parts shards get one row more."""
    sizes = [n // parts + (1 if k < n % parts else 0) for k in range(parts)]
    ends = np.cumsum(sizes)
    return [(int(e - s), int(e)) for s, e in zip(sizes, ends)]


def load_shard(data, index, workers, dtype):
    """(X_k (k, m), y_k (k, 1), n) for worker `index` of `workers` under the contiguous shard rule."""
    if "random" in data:
        spec = data["random"]
        n, m = int(spec["n"]), int(spec["m"])
        start, stop = shards(n, workers)[index]
        rng = np.random.default_rng([int(spec.get("seed", 0)), index])
        X = rng.standard_normal((stop - start, m)).astype(dtype)
        y = (X @ np.ones((m, 1), dtype) + rng.standard_normal((stop - start, 1)).astype(dtype)).astype(dtype)
        return X, y, n
    X_all, y_all = np.load(data["X"], mmap_mode="r"), np.load(data["y"], mmap_mode="r")
    n = X_all.shape[0]
    if n < workers:
        raise ValueError(f"{n} rows cannot be shared by {workers} workers")
    start, stop = shards(n, workers)[index]
    return np.array(X_all[start:stop], dtype), np.array(y_all[start:stop], dtype).reshape(-1, 1), n
