"""Whether the study's arithmetic can carry the data: the sums of squares in X^T X and in the loss must stay finite.

Every implementation forms X^T X or X^T (y - X W) (the Hessian of the stability analysis, the Gram
routes, the gradient), and the loss squares the residuals: a column whose sum of squares overflows
the run's dtype gives inf or NaN there however the descent goes. Such data is refused with one
line naming the column (usage error), before any work; z-scoring (--standardize) makes every
feature's sum of squares n, so it is the advice for features. The sums are computed in
logarithms, so the check itself never overflows or warns.
"""
import math

import numpy as np

from comparisons.core.errors import UsageError

HEADROOM = 1e6  # beyond the sum of squares: its products with weights near 1, the m + 1 terms of a prediction


def log10_sum_of_squares(values):
    """log10(sum(values ** 2)) without overflow or underflow (-inf for all zeros), values float64."""
    values = np.asarray(values, dtype=np.float64).ravel()
    largest = float(np.max(np.abs(values))) if values.size else 0.0
    if largest == 0.0:
        return -math.inf
    _, exponent = np.frexp(largest)
    scale = math.ldexp(1.0, int(exponent))  # a power of two: the division is exact
    return 2 * math.log10(scale) + math.log10(float(np.sum((values / scale) ** 2)))


def limit_log10(dtype, m):
    """The largest log10 sum of squares a column may have in `dtype` with m features."""
    return math.log10(float(np.finfo(dtype).max)) - math.log10(HEADROOM * (m + 2) ** 2)


def check_carries(dataset, dtypes, standardize=False):
    """UsageError naming the first column whose sums of squares overflow one of `dtypes` (features skipped when standardised)."""
    columns = [(dataset.target_name, dataset.y, True)]
    if not standardize:
        columns += [(name, dataset.X[:, j], False) for j, name in enumerate(dataset.feature_names)]
    for dtype in sorted(dtypes, key=lambda d: -np.finfo(d).max):  # the widest first: no advice of a dtype that fails too
        limit = limit_log10(dtype, dataset.m)
        for name, values, is_target in columns:
            if log10_sum_of_squares(values) > limit:
                largest = float(np.max(np.abs(values)))
                advice = ("rescale the target column (divide it by a power of ten; --standardize scales the "
                          "features only)" if is_target else "use --standardize, or rescale the column")
                wider = " or use --dtype float64" if np.finfo(dtype).max < np.finfo(np.float64).max else ""
                raise UsageError(f"{'target' if is_target else 'feature'} column {name!r} (values up to "
                                 f"{largest:.3g}) is too large for {dtype} arithmetic: its sum of squares (in "
                                 f"X^T X and the loss) overflows; {advice}{wider}")
