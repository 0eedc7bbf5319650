"""Sizes whose arrays cannot fit in this machine's memory, refused before any work. Standard library only.

A lower bound of what a run must hold at once, in float64: the data X and y (n x (m + 1)), one
run's loss curve and its two per-step gradient differences (3 x (N + 1)), and the stability
analysis' Gram matrix (the smaller side of [X, 1]: min(n, m + 1) squared). When that bound alone
exceeds the physical memory (os.sysconf), the run could only end in a MemoryError or in swapping:
a usage error says which size and how much it would need.
"""
import os

from comparisons.core.errors import UsageError

FLOAT64 = 8  # bytes


def physical_memory():
    """This machine's physical memory in bytes, or None where the system does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def human_bytes(count):
    """'3.2 GB', '24 TB': decimal units, two or three significant digits."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB", "EB"):
        if count < 1000 or unit == "EB":
            return f"{count:.3g} {unit}"
        count /= 1000


def needs(n_samples, features, iterations):
    """{what: bytes} of the arrays a run must hold (n_samples None: CSV data, not known before reading)."""
    parts = {"--iterations": 3 * (iterations + 1) * FLOAT64}  # the loss curve and the two gradient differences
    if n_samples is not None:
        parts["--n-samples x --features"] = n_samples * (features + 1) * FLOAT64  # X and y
        parts["--features"] = min(n_samples, features + 1) ** 2 * FLOAT64  # the Gram of the stability analysis
    return parts


def check_fits(n_samples, features, iterations, memory=None):
    """UsageError when the arrays of a run of these sizes cannot fit in memory (`memory` bytes: default physical)."""
    memory = physical_memory() if memory is None else memory
    if memory is None:
        return
    parts = needs(n_samples, features, iterations)
    total = sum(parts.values())
    if total <= memory:
        return
    what, largest = max(parts.items(), key=lambda item: item[1])
    explained = {"--iterations": f"--iterations {iterations} keeps 3 x (N + 1) float64 numbers per run "
                                 "(the loss curve and the per-step gradient checks)",
                 "--n-samples x --features": f"--n-samples {n_samples} x --features {features} is the data X "
                                             "and y in float64",
                 "--features": f"--features {features} on {n_samples} rows makes the stability analysis' Gram "
                               f"matrix {min(n_samples, features + 1)} x {min(n_samples, features + 1)}"}[what]
    raise UsageError(f"{explained}: about {human_bytes(largest)}, and this run needs at least "
                     f"{human_bytes(total)} in all, more than this machine's {human_bytes(memory)} of memory; "
                     f"choose a smaller {what.split(' x ')[0]}")
