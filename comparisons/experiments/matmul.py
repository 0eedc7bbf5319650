"""The matmul race from the lesson's last cell: triple Python loop vs numpy.matmul vs tf.linalg.matmul.

The lesson says numpy multiplies matrices with Strassen's O(n^2.807) algorithm. numpy calls its
BLAS (environment.json names it), whose GEMM is the classical O(n^3) product, blocked for the caches and
vectorised; the evidence computed here is the exponent of time against n on large sizes.
"""
import math
from pathlib import Path

import numpy as np
import pandas as pd

from comparisons.output.prose import md_table
from comparisons.output.findings import Finding, joined
from comparisons.core.tolerances import MATMUL as MATMUL_AGREEMENT
from comparisons.running.timing import time_interleaved

NAME = "matmul"
STRASSEN_EXPONENT = math.log2(7)  # 2.807: seven half-size products instead of eight
TIME_BUDGET_S = 0.5  # timed calls of one method stop at about this: a product of 0.1-0.25 s (n = 2048) gets 2 to 5
FIT_MIN_N = 256  # below this, per-call overhead and unfilled caches bend the time curve


def sizes(config):
    """(loop sizes, library sizes) for a run: the loop only where it finishes in well under a second."""
    if config.quick:
        return (16, 32), (64, 128, 256, 512)
    if config.full:
        return (16, 32, 64, 96), (64, 128, 256, 512, 1024, 2048, 4096)
    return (16, 32, 64), (64, 128, 256, 512, 1024, 2048)


def loop_matmul(A, B):
    """C = A @ B with three nested Python loops over numpy elements, as the lesson's last cell does."""
    n, inner = A.shape
    p = B.shape[1]
    C = np.zeros((n, p), dtype=A.dtype)  # (n, p)
    for i in range(n):
        for j in range(p):
            for k in range(inner):
                C[i, j] += A[i, k] * B[k, j]
    return C


def strassen_one_level(A, B):
    """C = A @ B by one level of Strassen's recursion (7 half-size numpy products); n must be even."""
    h = A.shape[0] // 2
    A11, A12, A21, A22 = A[:h, :h], A[:h, h:], A[h:, :h], A[h:, h:]
    B11, B12, B21, B22 = B[:h, :h], B[:h, h:], B[h:, :h], B[h:, h:]
    M1 = (A11 + A22) @ (B11 + B22)
    M2 = (A21 + A22) @ B11
    M3 = A11 @ (B12 - B22)
    M4 = A22 @ (B21 - B11)
    M5 = (A11 + A12) @ B22
    M6 = (A21 - A11) @ (B11 + B12)
    M7 = (A12 - A22) @ (B21 + B22)
    C = np.empty_like(A)
    C[:h, :h] = M1 + M4 - M5 + M7
    C[:h, h:] = M3 + M5
    C[h:, :h] = M2 + M4
    C[h:, h:] = M1 - M2 + M3 + M6
    return C


def scale_probe(product, n, dtype, seed=0):
    """Relative error of the small diagonal block of a block-diagonal product whose other block is huge.

    A = diag(big * R1, R2), B = diag(big * R3, R4). The classical product (in any blocking or order)
    adds only exact zeros to R2 @ R4, so that block comes out to rounding error. Strassen-type
    algorithms form sums like (A11 + A22)(B11 + B22) that mix the blocks, and the small block is
    lost in the cancellation of huge terms: a relative error near 1.
    """
    big = 1e100 if dtype == "float64" else 1e15  # products of big stay finite in the dtype
    rng = np.random.default_rng(seed)
    h = n // 2
    A, B = np.zeros((n, n), dtype), np.zeros((n, n), dtype)
    A[:h, :h], B[:h, :h] = big * rng.standard_normal((h, h)), big * rng.standard_normal((h, h))
    A[h:, h:], B[h:, h:] = rng.standard_normal((n - h, n - h)), rng.standard_normal((n - h, n - h))
    C = np.asarray(product(A, B), dtype=np.float64)
    reference = A[h:, h:].astype(np.float64) @ B[h:, h:].astype(np.float64)  # (n - h, n - h)
    return float(np.max(np.abs(C[h:, h:] - reference)) / np.max(np.abs(reference)))


def blas_name():
    """The BLAS numpy was built against, from numpy.show_config(mode="dicts"), e.g. 'scipy-openblas 0.3.31'."""
    deps = np.show_config(mode="dicts").get("Build Dependencies", {})
    blas = deps.get("blas", {})
    config = blas.get("openblas configuration", "")
    name = f"{blas.get('name', 'unknown')} {blas.get('version', '')}".strip()
    return f"{name} ({config})" if config else name


def fit_exponent(n, seconds):
    """Slope of log(seconds) against log(n): the k in time ~ n^k, by least squares."""
    n, seconds = np.asarray(n, float), np.asarray(seconds, float)
    if len(n) < 2:
        return math.nan
    return float(np.polyfit(np.log(n), np.log(seconds), 1)[0])


def exponent_of(table, method="numpy", dtype="float64", min_n=FIT_MIN_N):
    """The time-scaling exponent of one method from a matmul table (min times, sizes >= min_n)."""
    rows = table[(table.method == method) & (table.dtype == dtype) & (table.n >= min_n)]
    return fit_exponent(rows.n, rows.min_s)


def is_classical_probe(rel_err):
    """Whether a scale-probe error shows a classical product (rounding-level, not the ~1 of Strassen)."""
    return bool(rel_err < 1e-3)


def _methods(device):
    """(method, device, make(A, B) -> callable returning the product on the host) for each library method."""
    import tensorflow as tf

    from tf_models.devices import tf_device_name

    def tf_eager(A, B):
        with tf.device(tf_device_name(device)):
            a, b = tf.constant(A), tf.constant(B)  # copied once, outside the timed calls
        def call():
            with tf.device(tf_device_name(device)):
                return tf.linalg.matmul(a, b).numpy()
        return call

    def tf_func(A, B):
        with tf.device(tf_device_name(device)):
            a, b = tf.constant(A), tf.constant(B)
        product = tf.function(tf.linalg.matmul)
        def call():
            with tf.device(tf_device_name(device)):
                return product(a, b).numpy()
        return call

    return (("tf_eager", device, tf_eager), ("tf_function", device, tf_func))


def _plain_product(method, device):
    """product(A, B) -> numpy array for the scale probe (untimed)."""
    if method == "numpy":
        return np.matmul
    if method == "strassen_1level":
        return strassen_one_level
    import tensorflow as tf

    from tf_models.devices import tf_device_name

    def product(A, B):
        with tf.device(tf_device_name(device)):
            return tf.linalg.matmul(tf.constant(A), tf.constant(B)).numpy()
    return product


def _row(method, device, dtype, n, timing, C, reference, probe):
    scale = float(np.max(np.abs(reference)))
    max_rel = float(np.max(np.abs(C.astype(np.float64) - reference))) / scale
    return {
        "method": method, "device": device, "dtype": dtype, "n": n, "repeats": timing.repeats,
        "first_call_s": timing.first_call_s, "median_s": timing.median_s, "min_s": timing.min_s,
        "max_s": timing.max_s, "gflops": 2.0 * n ** 3 / timing.min_s / 1e9,
        "max_rel_diff": max_rel, "allclose": bool(np.allclose(C, reference, rtol=1e-5, atol=1e-8 * math.sqrt(n) * scale)),
        "agrees": max_rel <= MATMUL_AGREEMENT[dtype], "scale_probe_rel_err": probe, "blas": blas_name(),
    }


def run(ctx):
    """Time every method on square float matrices (per size and dtype, in interleaved rounds), check agreement with a
    float64 product, report GFLOP/s."""
    config = ctx.config
    loop_sizes, lib_sizes = sizes(config)
    rng = np.random.default_rng(config.seed)
    repeats = max(3, config.repeats)
    tf_methods = [m for device in ctx.devices_for("tensorflow") for m in _methods(device)]
    rows = []
    for n in sorted(set(loop_sizes) | set(lib_sizes)):
        A64, B64 = rng.standard_normal((n, n)), rng.standard_normal((n, n))
        for dtype in config.dtypes:
            A, B = A64.astype(dtype), B64.astype(dtype)
            # the reference: the same (rounded) inputs multiplied in float64
            reference = A.astype(np.float64) @ B.astype(np.float64)
            candidates = []
            if n in loop_sizes and dtype == "float64":  # the loop is the lesson's, in float64 only
                candidates.append(("python_loop", "cpu", lambda A=A, B=B: lambda: loop_matmul(A, B)))
            if n in lib_sizes:
                candidates.append(("numpy", "cpu", lambda A=A, B=B: lambda: np.matmul(A, B)))
                candidates += [(m, d, (lambda make=make, A=A, B=B: make(A, B))) for m, d, make in tf_methods]
            if n in lib_sizes and n >= 512 and dtype == "float64":  # Strassen for contrast, large sizes only
                candidates.append(("strassen_1level", "cpu", lambda A=A, B=B: lambda: strassen_one_level(A, B)))
            # every method of this (n, dtype) in the same interleaved rounds: a slow minute hits them alike
            calls = {(method, device): build() for method, device, build in candidates}
            progress = (lambda key: ctx.progress(f"matmul {key[0]} n={n} {dtype}")) if ctx.progress else None
            results, timings = time_interleaved(calls, repeats, budget_s=TIME_BUDGET_S, seed=config.seed,
                                                on_warm_up=progress)
            for method, device in calls:
                probe = math.nan if method == "python_loop" else scale_probe(_plain_product(method, device), n, dtype)
                rows.append(_row(method, device, dtype, n, timings[(method, device)], results[(method, device)],
                                 reference, probe))
    return pd.DataFrame(rows)


GUIDE_SLOPES = (2, 3)  # n^2 (reading the matrices) and n^3 (the classical product)


def slope_guides(ax, table):
    """n^2 and n^3 lines over the sizes the exponent is fitted on, just below the fastest times at the largest n."""
    large = table[table.n >= min(FIT_MIN_N, table.n.max())]
    n = np.geomspace(large.n.min(), large.n.max(), 20)
    anchor = large[large.n == large.n.max()].min_s.min() / 3  # a third below the fastest product at the largest n
    lines = []
    for slope, colour in zip(GUIDE_SLOPES, ("grey", "black")):
        t = anchor * (n / n[-1]) ** slope
        lines += ax.loglog(n, t, ":", color=colour, lw=1.4, gid="slope guide",
                           label=f"slope guide: time ~ n^{slope}" + (" (classical product)" if slope == 3 else
                                                                       " (reading the matrices)"))
        ax.annotate(f"n^{slope}", (n[0], t[0]), xytext=(-4, 0), textcoords="offset points", ha="right", va="center",
                    fontsize=8, color=colour)
    return lines


# what each method of matmul.csv is, in words (figures and prose); a method not listed shows its own name
METHOD_TITLES = {"numpy": "numpy.matmul", "python_loop": "the lesson's triple Python loop",
                 "strassen_1level": "one Strassen step, then numpy", "tf_eager": "TensorFlow tf.matmul, eager",
                 "tf_function": "TensorFlow tf.matmul in a tf.function"}
DTYPE_STYLES = {"float64": "-", "float32": "--"}


def method_title(method):
    """A method of matmul.csv in words ('python_loop' -> "the lesson's triple Python loop")."""
    return METHOD_TITLES.get(method, method)


def figure(table):
    """Time and GFLOP/s against n, one colour per method and one line style per dtype, n^2 and n^3 guides (unsaved)."""
    from matplotlib.lines import Line2D

    from comparisons.output.figures import COLOURS, MARKERS, plt  # matplotlib with the Agg backend, loaded only to draw

    fig, (ax_t, ax_g) = plt.subplots(1, 2, figsize=(13, 6.4))
    methods = sorted(table.method.unique(), key=lambda m: (list(METHOD_TITLES).index(m) if m in METHOD_TITLES
                                                             else len(METHOD_TITLES), m))
    look = {m: dict(color=COLOURS[k % len(COLOURS)], marker=MARKERS[k % len(MARKERS)]) for k, m in enumerate(methods)}
    one_device = table.device.nunique() == 1
    for (method, device, dtype), rows in table.groupby(["method", "device", "dtype"]):
        rows = rows.sort_values("n")
        label = f"{method_title(method)}, {dtype}" + ("" if one_device else f" [{device}]")
        style = dict(linestyle=DTYPE_STYLES.get(dtype, ":"), ms=5, **look[method])
        ax_t.loglog(rows.n, rows.min_s, label=label, **style)
        ax_g.semilogx(rows.n, rows.gflops, label=label, **style)
    guides = slope_guides(ax_t, table)
    where = f"on {table.device.iloc[0]}" if one_device and len(table) else "per device"
    ax_t.set(xlabel="matrix size n (n x n times n x n)", ylabel="time per product (s, best of repeats)",
             title=f"Time per product ({where})\ndotted guides: slopes 2 and 3 over n >= {FIT_MIN_N}")
    ax_g.set(xlabel="matrix size n", ylabel="GFLOP/s (2 n^3 flops / time)", title="Throughput: higher is better")
    ax_g.set_yscale("log")
    for ax in (ax_t, ax_g):
        ax.grid(True, which="both", alpha=0.3)
        ax.title.set_fontsize(10)
    # one key below both panels: a colour per method, then the dtypes' line styles, then the guides
    handles = [Line2D([], [], linestyle="-", ms=5, label=method_title(m), **look[m]) for m in methods]
    handles += [Line2D([], [], color="grey", linestyle=DTYPE_STYLES[d], label=d)
                for d in DTYPE_STYLES if d in set(table.dtype)]
    handles += [Line2D([], [], color=g.get_color(), linestyle=g.get_linestyle(), label=g.get_label()) for g in guides]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    return fig


def plot(table, out_dir):
    """matmul.png."""
    from comparisons.output.figures import save

    return [save(figure(table), Path(out_dir) / f"{NAME}.png")]


def probes(table):
    """(library products' probe errors, one-level Strassen's probe errors) from the table's scale-probe column."""
    rows = table.dropna(subset=["scale_probe_rel_err"])
    return (rows[rows.method != "strassen_1level"].scale_probe_rel_err,
            rows[rows.method == "strassen_1level"].scale_probe_rel_err)


def loop_speedup(table):
    """(n, numpy's float64 speedup over the triple loop) at the largest n both ran, or None."""
    loop = table[(table.method == "python_loop") & (table.dtype == "float64")]
    lib = table[(table.method == "numpy") & (table.dtype == "float64")].set_index("n").min_s
    shared = sorted(set(loop.n) & set(lib.index))
    if not shared:
        return None
    n = shared[-1]
    return int(n), float(loop.set_index("n").min_s[n] / lib[n])


FINDINGS = {
    "matmul_classical": ("**numpy's matrix product is the classical algorithm, not Strassen's as the lesson says:** all "
                         "{products:n} numpy and TensorFlow products kept a tiny-valued block of a probe matrix accurate "
                         "to rounding."),
    "matmul_strassen_lost": "The study's own Strassen step lost it.",
    "matmul_strassen_like": ("**{lost:n} of {products:n} library products lost the scale probe's small block**, as a "
                             "Strassen-type product would."),
    "matmul_loop": "At n = {n:n} numpy.matmul is {speedup:,.0f}x faster than the lesson's triple Python loop (float64).",
}


def findings(table):
    """Findings: which algorithm numpy's matmul is, from the probe (the time exponent shows none); the loop against numpy."""
    library, strassen = probes(table)
    kept = int(library.map(is_classical_probe).sum())
    if len(library) and kept == len(library):
        first = Finding("matmul_classical", dict(products=len(library)), FINDINGS["matmul_classical"])
        if len(strassen) and not strassen.map(is_classical_probe).any():  # the probe tells the two apart
            first = joined(first, Finding("matmul_strassen_lost", {}, FINDINGS["matmul_strassen_lost"]))
        out = [first]
    else:
        out = [Finding("matmul_strassen_like", dict(products=len(library), lost=len(library) - kept),
                       FINDINGS["matmul_strassen_like"])]
    speedup = loop_speedup(table)
    if speedup:
        out.append(Finding("matmul_loop", dict(n=int(speedup[0]), speedup=float(speedup[1])), FINDINGS["matmul_loop"]))
    return out


def report_section(table):
    """Markdown: the race's numbers, agreement, BLAS and the measured exponent against Strassen's."""
    lines = [f"## The matmul race (the lesson's last cell)", "", f"![matmul time and GFLOP/s]({NAME}.png)", ""]
    loop = table[table.method == "python_loop"]
    lib = table[table.method != "python_loop"]
    if not loop.empty:
        big = loop.loc[loop.n.idxmax()]
        extrapolated = big.min_s * (500 / big.n) ** 3
        speedup = loop_speedup(table)
        lines.append(f"The triple Python loop ran for n = {', '.join(str(int(n)) for n in sorted(loop.n.unique()))}: "
                     f"{big.min_s:.3g} s at n = {int(big.n)} ({big.gflops * 1e3:.3g} MFLOP/s; by n^3, about "
                     f"{extrapolated:.0f} s at the lesson's n = 500)"
                     + (f"; numpy.matmul is {speedup[1]:,.0f}x faster at n = {speedup[0]}." if speedup else "."))
    best = lib.loc[lib.groupby(["method", "device", "dtype"]).gflops.idxmax()]
    best = best[["method", "device", "dtype", "gflops", "n"]].rename(columns={"gflops": "best GFLOP/s", "n": "at n"})
    best["method"] = best.method.map(method_title)  # words, not the table's ids (numpy: the library call, not the study's row)
    lines += ["", "Timed in interleaved rounds; GFLOP/s is 2 n^3 over the fastest call.", "", md_table(best, "{:.1f}")]
    disagree = table[~table.agrees.astype(bool)]
    lines += ["", ("Every product agrees with a float64 reference of the same inputs "
                   f"(largest relative difference {table.max_rel_diff.max():.2g}; float64 loop vs numpy: "
                   f"allclose = {bool(table[table.dtype == 'float64'].allclose.all())})." if disagree.empty else
                   f"**{len(disagree)} products disagree** with the float64 reference: "
                   + ", ".join(f"{r.method} n={r.n} {r.dtype}" for r in disagree.itertuples()) + ".")]
    exponent = exponent_of(table)
    blas = table.blas.iloc[0]
    lib_probe, strassen = probes(table)
    classical = lib_probe[lib_probe.map(is_classical_probe)]
    lines += ["", f"**Which algorithm?** numpy calls **{blas}**.", "",
              f"- Time scaling cannot tell: numpy's float64 time grows as n^{exponent:.2f} over n >= {FIT_MIN_N}, "
              f"but larger products also use cores and caches better, so an exponent below Strassen's "
              f"{STRASSEN_EXPONENT:.3f} is no sign of Strassen, nor one near 3 proof of the classical product.",
              f"- A scale probe can: in block-diagonal matrices with blocks ~1e100 (1e15 in float32) and ~1, the "
              "classical product only adds exact zeros to the small block, while Strassen's sums like "
              f"(A11 + A22)(B11 + B22) cancel it away. {len(classical)} of {len(lib_probe)} numpy/TensorFlow products "
              f"keep the small block (largest relative error {lib_probe.max():.2g})"]
    if not strassen.empty:
        lines[-1] += (f"; the one-level Strassen written here loses it (relative error "
                      f"{strassen.min():.2g}).")
    else:
        lines[-1] += "."
    all_classical = len(classical) == len(lib_probe) and len(lib_probe) > 0
    lines += ["", ("So numpy's matmul (and TensorFlow's) is the classical O(n^3) product, blocked for the caches, "
                   "vectorised and multithreaded - not Strassen: its speed comes from those, not from fewer flops."
                   if all_classical else
                   "Some products lost the small block: they behave like a Strassen-type algorithm.")]
    return "\n".join(lines)
