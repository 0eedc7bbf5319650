"""Every core on one pass: the Gram pass's ranges of rows run in threads, one per core, BLAS one thread each.

handrolled's pass sums its rows block by block, range by range, through a map it is given (Python's
map by default). Run serially, each block's small products go to BLAS, which splits them over the
cores and pays a hand-over per block. Here each core takes a range of its own instead, and BLAS is
held to one thread while the ranges run (threadpoolctl), so that each core's blocks stay in its cache.
"""
import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import handrolled
from threadpoolctl import ThreadpoolController


def cores():
    """How many CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@cache
def _workers():
    """One thread per core, and the handle that sets BLAS's own thread count (both made once, when first needed)."""
    return ThreadPoolExecutor(cores(), thread_name_prefix="row-ranges"), ThreadpoolController()


def threaded_map(work, starts, stops):
    """list(map(work, starts, stops)), each call in a thread of its own with BLAS held to one thread meanwhile."""
    starts, stops = list(starts), list(stops)
    if len(starts) == 1:
        return [work(starts[0], stops[0])]
    pool, blas = _workers()
    with blas.limit(limits=1, user_api="blas"):  # one BLAS thread per range: each core sums its own blocks
        return list(pool.map(work, starts, stops))


def parts_for(m):
    """How many ranges the pass of m features splits its rows into: one per core, or one with a single feature,
    whose per-block products are too small to pay for the hand-over (measured slower in threads)."""
    return 1 if m == 1 else cores()


def sufficient_statistics(X, y, block_rows=None):
    """handrolled.sufficient_statistics with its rows split into parts_for(m) ranges, run by threaded_map."""
    return handrolled.sufficient_statistics(X, y, block_rows, parts=parts_for(X.shape[1]), map_ranges=threaded_map)
