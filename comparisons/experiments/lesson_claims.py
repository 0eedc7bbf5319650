"""The lesson's testable claims, paraphrased, each with evidence measured here and a verdict judged from it.

The claims are data (CLAIMS below): the statement, a few words for the Findings, how to measure
(`measure(env) -> dict` of numbers and short strings), how to judge (`judge(evidence) -> verdict`)
and how to show the evidence (a str.format template over that dict). `fixed` marks the facts of
arithmetic and numpy whose verdict cannot change from one run to the next. The table keeps the
measured evidence as JSON, so a verdict can be checked again from the table alone.

Reads what an earlier experiment of the same run wrote: when `matmul` ran before this one (it does in
config.EXPERIMENTS' order), the Strassen claim takes numpy's time-scaling exponent from its table
instead of timing a few sizes here. USES names it; run() passes the table in explicitly.
"""
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

import handrolled
from comparisons.running import stability
from comparisons.core import strict_json
from comparisons.inputs.data import initial_parameters, make_synthetic
from comparisons.output.prose import md_table
from comparisons.running.timing import time_calls
from comparisons.experiments import lr_sweep, matmul
from comparisons.output.findings import Finding, joined

NAME = "lesson_claims"
VERDICTS = ("holds", "wrong", "imprecise")
USES = (matmul.NAME,)  # experiments whose tables, when this run wrote them first, this one reads
COLUMNS = ["key", "claim", "verdict", "evidence", "measured"]


@dataclass(frozen=True)
class Env:
    """What the measurements need: seed, size of the run, and the tables of earlier experiments (by name)."""

    seed: int = 0
    quick: bool = False
    earlier: tuple = ()  # ((experiment name, DataFrame), ...) of USES written earlier in this run


@dataclass(frozen=True)
class Claim:
    """One claim of the lesson, in our words, with how to test it."""

    key: str
    text: str  # the claim, paraphrased
    short: str  # a few words naming it in the Findings
    measure: Callable  # Env -> dict of evidence
    judge: Callable  # evidence dict -> one of VERDICTS
    evidence: str  # str.format template over the evidence dict
    fixed: bool = False  # a fact of arithmetic or numpy: the same verdict on every run and machine


def verdict(condition, if_true="holds", if_false="wrong"):
    """if_true when condition holds, else if_false: the shape of most judges."""
    return if_true if condition else if_false


# --- measurements ------------------------------------------------------------------------------------

def measure_binomial(env):
    """Simulate many 10-question true/false tests answered at random; sample mean, variance and mode of the score."""
    rng = np.random.default_rng(env.seed)
    tests, questions = (20_000 if env.quick else 200_000), 10
    answers = rng.integers(2, size=(tests, questions))  # (tests, questions): the right answers
    guesses = rng.integers(2, size=(tests, questions))
    correct = (answers == guesses).sum(axis=1)  # (tests,): binomial(10, 1/2) if the claim holds
    mean, var = float(correct.mean()), float(correct.var(ddof=1))
    fourth = float(np.mean((correct - mean) ** 4))
    counts = np.bincount(correct, minlength=questions + 1)
    n, p = questions, 0.5
    return {"tests": tests, "questions": n, "p": p, "mean": mean, "var": var, "np": n * p, "npq": n * p * (1 - p),
            "se_mean": math.sqrt(var / tests), "se_var": math.sqrt(max(fourth - var ** 2, 0.0) / tests),
            "mode": int(np.argmax(counts)), "mode_pct": 100 * int(np.argmax(counts)) / n}


def binomial_fits(e):
    """The simulated mean and variance within 4 standard errors of n p and n p (1 - p)."""
    return abs(e["mean"] - e["np"]) <= 4 * e["se_mean"] and abs(e["var"] - e["npq"]) <= 4 * e["se_var"]


LESSON_ITERATES_025 = (-0.5, -0.25, -0.125, -0.0625)  # the four steps the lesson works out by hand
LESSON_FIRST_STEP_10 = 19.0  # the lesson's first step with step size 10


def descend_square(x0, lr, steps):
    """Iterates x_1..x_steps of x <- x - lr * 2x (descent on x**2)."""
    xs, x = [], float(x0)
    for _ in range(steps):
        x = x - lr * 2.0 * x  # f'(x) = 2x
        xs.append(x)
    return xs


def measure_step_025(env):
    """Four hand-worked iterates of step 0.25 on x**2 and where 60 steps end."""
    xs = descend_square(-1.0, 0.25, 60)
    return {"first_four": xs[:4], "shown": ", ".join(f"{x:g}" for x in xs[:4]), "x_60": xs[-1],
            "factor": abs(1 - 2 * 0.25)}


def measure_step_10(env):
    """The first and fifth iterate of step 10 on x**2."""
    xs = descend_square(-1.0, 10.0, 5)
    return {"x_1": xs[0], "x_5": xs[-1], "factor": abs(1 - 2 * 10.0)}


LESSON_SAFE_RATES = (0.1, 0.01, 0.001)  # the rates the lesson calls sufficiently low


def _lesson_data(seed, scale=1.0):
    data = make_synthetic(100, 1, 0.5, seed)
    return data.X * scale, data.y


def measure_small_rates(env):
    """Largest stable step 2/lambda_max on x**2, on the lesson's data, and on it with x in other units (x 10)."""
    X, _ = _lesson_data(env.seed)
    X10, _ = _lesson_data(env.seed, scale=10.0)
    thresholds = {"square": 2.0 / 2.0, "lesson": stability.analyse(X).max_stable_lr,
                  "scaled": stability.analyse(X10).max_stable_lr}
    unstable = [lr for lr in LESSON_SAFE_RATES if any(lr >= t for t in thresholds.values())]
    return {"named": list(LESSON_SAFE_RATES), **{f"threshold_{k}": v for k, v in thresholds.items()},
            "unstable": unstable, "unstable_shown": ", ".join(f"{lr:g}" for lr in unstable) or "none"}


def measure_batch_stable(env):
    """Full-batch descent on the lesson's data 20% past its threshold."""
    X, y = _lesson_data(env.seed)
    W0, b0 = initial_parameters(1, env.seed)
    threshold = stability.analyse(X).max_stable_lr
    lr = 1.2 * threshold
    result = handrolled.descend(X, y, W0, b0, lr, 1000)
    diverged = result.diverged_at is not None
    return {"threshold": threshold, "lr": lr, "diverged_at": result.diverged_at if diverged else -1,
            "fate": f"diverges at iteration {result.diverged_at}" if diverged else "converges"}


def measure_small_lr_slow(env):
    """Iterations to 1e-6 of the initial distance to OLS at lr 0.05 and at 0.005 (numpy, float64)."""
    X, y = _lesson_data(env.seed)
    W0, b0 = initial_parameters(1, env.seed)
    analysis = stability.analyse(X)
    # each run stops a little past the iterations theory bounds it by: enough to get there, no more
    caps = {lr: lr_sweep.room_past(analysis.predicted_iterations(lr, lr_sweep.TOLERANCE)) for lr in (0.05, 0.005)}
    return {"lr_fast": 0.05, "lr_slow": 0.005,
            "iterations_fast": lr_sweep.measured_iterations(X, y, W0, b0, 0.05, caps[0.05]),
            "iterations_slow": lr_sweep.measured_iterations(X, y, W0, b0, 0.005, caps[0.005])}


def judge_small_lr_slow(e):
    """holds when the 10x smaller rate needs at least twice the iterations (imprecise if one never got there)."""
    if e["iterations_fast"] < 0 or e["iterations_slow"] < 0:
        return "imprecise"
    return verdict(e["iterations_slow"] >= 2 * e["iterations_fast"])


def measure_lesson_run(env):
    """The lesson's program (0.05, 1000 iterations) against the closed-form fit."""
    X, y = _lesson_data(env.seed)
    W0, b0 = initial_parameters(1, env.seed)
    result = handrolled.descend(X, y, W0, b0, 0.05, 1000)
    W_ols, b_ols = handrolled.ols(X, y)
    w, b = float(result.weights[0, 0]), float(result.bias)
    return {"weight": w, "bias": b, "ols_weight": float(W_ols[0, 0]), "ols_bias": float(b_ols),
            "max_abs_diff": max(abs(w - float(W_ols[0, 0])), abs(b - float(b_ols)))}


def measure_zero_gradient(env):
    """f(x, y) = x**2 - y**2 at the origin: gradient, Hessian eigenvalues, and values on a small circle."""
    f = lambda x, y: x ** 2 - y ** 2
    h = 1e-6
    gradient = [(f(h, 0) - f(-h, 0)) / (2 * h), (f(0, h) - f(0, -h)) / (2 * h)]
    angles = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    around = f(1e-3 * np.cos(angles), 1e-3 * np.sin(angles)) - f(0, 0)
    return {"gradient_norm": float(np.hypot(*gradient)),
            "hessian_eigenvalues": np.linalg.eigvalsh(np.array([[2.0, 0.0], [0.0, -2.0]])).tolist(),
            "above": int((around > 0).sum()), "below": int((around < 0).sum())}


def measure_unit_vectors(env):
    """The unit vectors of (2, 4, 6) and (3, 6, 9)."""
    u, v = np.array([2.0, 4.0, 6.0]), np.array([3.0, 6.0, 9.0])
    unit_u, unit_v = u / np.linalg.norm(u), v / np.linalg.norm(v)
    return {"unit_u": unit_u.tolist(), "unit_v": unit_v.tolist(),
            "u_shown": np.round(unit_u, 6).tolist(), "v_shown": np.round(unit_v, 6).tolist()}


def measure_dot_example(env):
    """numpy's dot product of (1, 2, 3) and (4, 5, 6)."""
    return {"dot": float(np.dot([1, 2, 3], [4, 5, 6])), "lesson_dot": 32.0}


def measure_cross_scalar(env):
    """Shapes of the cross and the dot product of two 3-vectors."""
    u, v = np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])
    cross, dot = np.cross(u, v), np.dot(u, v)
    return {"cross_shape": list(np.shape(cross)), "cross": cross.tolist(), "dot_shape": list(np.shape(dot)),
            "dot": float(dot), "cross_shape_shown": str(np.shape(cross)), "dot_shape_shown": str(np.shape(dot))}


def measure_gradient_form(env):
    """Try -2/n W^T R and -2/n X^T R on n = 100, m = 3 against central differences of the MSE."""
    rng = np.random.default_rng(env.seed)
    n, m = 100, 3
    X, y = rng.random((n, m)), rng.random((n, 1))  # (n, m), (n, 1)
    W, b = rng.standard_normal((m, 1)), 0.5  # (m, 1)
    R = y - (X @ W + b)  # (n, 1)
    try:
        wt_r = -2.0 / n * (W.T @ R)  # (1, m) @ (n, 1): needs m == n
        wt_error, wt_shape = "", list(wt_r.shape)
    except ValueError as exc:
        wt_error, wt_shape = type(exc).__name__, []
    xt_r = -2.0 / n * (X.T @ R)  # (m, n) @ (n, 1) -> (m, 1)
    loss = lambda W_: np.mean((y - (X @ W_ + b)) ** 2)
    step = 1e-6
    numeric = np.array([(loss(W + step * e) - loss(W - step * e)) / (2 * step)
                        for e in np.eye(m)[:, :, None]]).reshape(m, 1)  # e is (m, 1): one weight nudged
    return {"n": n, "m": m, "wt_r_error": wt_error, "wt_r_shape": wt_shape, "xt_r_shape": list(xt_r.shape),
            "wt_r_outcome": f"raises {wt_error}" if wt_error else f"has shape {tuple(wt_shape)}",
            "xt_r_shown": str(xt_r.shape), "xt_r_max_abs_diff": float(np.max(np.abs(xt_r - numeric)))}


def judge_gradient_form(e):
    """wrong when W^T R fails (or has the wrong shape) while X^T R matches the numerical gradient."""
    wt_ok = not e["wt_r_error"] and e["wt_r_shape"] == [e["m"], 1]
    xt_ok = e["xt_r_shape"] == [e["m"], 1] and e["xt_r_max_abs_diff"] < 1e-6
    if xt_ok and not wt_ok:
        return "wrong"
    return verdict(wt_ok, "holds", "imprecise")


def measure_transpose_1d(env):
    """Shape of a 1-D array, of its .T and of its reshape to a column."""
    a = np.array([1, 2, 3])
    return {"ndim": a.ndim, "shape": list(a.shape), "t_shape": list(a.T.shape),
            "column_shape": list(a.reshape(-1, 1).shape), "shown": [str(a.shape), str(a.T.shape), str(a.reshape(-1, 1).shape)]}


def measure_shape_call(env):
    """What calling X.shape() does."""
    X = np.zeros((100, 1))
    try:
        X.shape()
        error, message = "", ""
    except Exception as exc:  # the claim is about which exception, so catch them all
        error, message = type(exc).__name__, str(exc)
    return {"error": error, "message": message, "attribute": list(X.shape),
            "outcome": f"raises {error} ('{message}')" if error else "returns the shape", "shown": str(X.shape)}


def measure_matmul_loops(env):
    """numpy.matmul against the triple loop at n = 40."""
    rng = np.random.default_rng(env.seed)
    A, B = rng.standard_normal((40, 40)), rng.standard_normal((40, 40))
    loop, fast = matmul.loop_matmul(A, B), np.matmul(A, B)
    return {"n": 40, "allclose": bool(np.allclose(loop, fast)), "max_abs_diff": float(np.max(np.abs(loop - fast)))}


def measure_strassen(env):
    """The scale probe of numpy.matmul and the time-scaling exponent (from the matmul table when env has one)."""
    table = dict(env.earlier).get(matmul.NAME)
    if table is not None:
        exponent, source = matmul.exponent_of(table), "from this run's matmul table"
    else:  # measured here: a few float64 sizes, best of 3
        sizes = (128, 256, 512) if env.quick else (256, 512, 1024)
        rng = np.random.default_rng(env.seed)
        best = []
        for n in sizes:
            A, B = rng.standard_normal((n, n)), rng.standard_normal((n, n))
            best.append(time_calls(lambda: A @ B, 3)[1].min_s)
        exponent, source = matmul.fit_exponent(sizes, best), f"timed here at n = {', '.join(map(str, sizes))}"
    return {"blas": matmul.blas_name().split(" (")[0], "exponent": exponent, "source": source,
            "probe_rel_err": matmul.scale_probe(np.matmul, 512, "float64"),
            "strassen_probe_rel_err": matmul.scale_probe(matmul.strassen_one_level, 256, "float64"),
            "strassen_exponent": matmul.STRASSEN_EXPONENT}


def judge_strassen(e):
    """wrong when numpy keeps the probe's small block (classical product) while a Strassen step loses it."""
    numpy_classical = matmul.is_classical_probe(e["probe_rel_err"])
    if numpy_classical and not matmul.is_classical_probe(e["strassen_probe_rel_err"]):
        return "wrong"
    return verdict(not numpy_classical, "holds", "imprecise")


def _loop_gradients(X, residuals):
    """dL/dW and dL/db with Python loops over samples and features, as the lesson's sums are written."""
    n, m = X.shape
    grad_W = [0.0] * m
    grad_b = 0.0
    for i in range(n):
        r = residuals[i, 0]
        for j in range(m):
            grad_W[j] += -2.0 / n * r * X[i, j]
        grad_b += -2.0 / n * r
    return np.array(grad_W).reshape(m, 1), grad_b


def measure_numpy_speedup(env):
    """Loop gradients vs vectorised gradients on the lesson's data (n = 100) and on n = 10,000 (timed)."""
    out = {}
    for n in (100, 10_000):
        data = make_synthetic(n, 1, 0.5, env.seed)
        W0, b0 = initial_parameters(1, env.seed)
        residuals = data.y - handrolled.predict(data.X, W0, b0)  # (n, 1)
        loop_result, loop_t = time_calls(lambda: _loop_gradients(data.X, residuals), 3)
        vec_result, vec_t = time_calls(lambda: handrolled.gradients_from_residuals(data.X, residuals), 20)
        assert np.allclose(loop_result[0], vec_result[0]) and np.isclose(loop_result[1], vec_result[1])
        out[f"speedup_{n}"] = loop_t.min_s / vec_t.min_s
        out[f"loop_us_{n}"], out[f"vec_us_{n}"] = 1e6 * loop_t.min_s, 1e6 * vec_t.min_s
    return out


def measure_loop_500(env):
    """Time the triple loop at a small n and extrapolate by n^3 to the lesson's n = 500."""
    rng = np.random.default_rng(env.seed)
    n = 32 if env.quick else 48
    A, B = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    _, timing = time_calls(lambda: matmul.loop_matmul(A, B), 1)
    return {"n": n, "seconds": timing.min_s, "predicted_500_s": timing.min_s * (500 / n) ** 3, "limit_s": 120.0}


# --- the claims ---------------------------------------------------------------------------------------

CLAIMS = (
    Claim("binomial", "Scores from guessing at random on true/false tests follow a binomial law with mean n p "
          "and variance n p (1 - p).", "guessing scores are binomial", measure_binomial,
          lambda e: verdict(binomial_fits(e)),
          "{tests:,} simulated tests of {questions} questions: mean {mean:.4f} (n p = {np:g}, SE {se_mean:.4f}), "
          "variance {var:.4f} (n p (1-p) = {npq:g}, SE {se_var:.4f})"),
    Claim("binomial_mode", "The most common score from random guessing on 10 true/false questions is 50%.",
          "the most common guessing score is 50%", measure_binomial,
          lambda e: verdict(2 * e["mode"] == e["questions"]),
          "most frequent score {mode} of {questions} ({mode_pct:.0f}%)"),
    Claim("unit_vectors", "(2, 4, 6) and (3, 6, 9) have the same unit vector, so they point the same way.",
          "parallel vectors share a unit vector", measure_unit_vectors,
          lambda e: verdict(np.allclose(e["unit_u"], e["unit_v"], rtol=0, atol=1e-12)),
          "unit vectors {u_shown} and {v_shown}", fixed=True),
    Claim("dot_example", "The dot product of (1, 2, 3) and (4, 5, 6) is 32.", "the dot product example",
          measure_dot_example, lambda e: verdict(e["dot"] == e["lesson_dot"]),
          "np.dot((1,2,3), (4,5,6)) = {dot:g}", fixed=True),
    Claim("cross_for_scalar", "To multiply two vectors into a single number one should use the cross product.",
          "the cross product for a scalar", measure_cross_scalar,
          lambda e: verdict(not (len(e["cross_shape"]) >= 1 and len(e["dot_shape"]) == 0)),
          "cross((1,2,3), (4,5,6)) = {cross} has shape {cross_shape_shown}, a vector; dot = {dot:g} has shape {dot_shape_shown}, "
          "the scalar. The lesson's own formula uses the dot", fixed=True),
    Claim("zero_gradient_extremum", "A point where every partial derivative is zero is sure to be a local "
          "minimum or maximum.", "a zero gradient is always an extremum", measure_zero_gradient,
          lambda e: verdict(not (e["gradient_norm"] < 1e-9 and e["above"] > 0 and e["below"] > 0)),
          "f = x**2 - y**2 at the origin: |gradient| = {gradient_norm:.1g}, Hessian eigenvalues "
          "{hessian_eigenvalues}, and on a circle of radius 1e-3 f is above f(0) at {above} and below at {below} "
          "of 64 points: a saddle, neither minimum nor maximum", fixed=True),
    Claim("descent_step_0.25", "Descending x**2 from -1 with step 0.25 halves x each time (-0.5, -0.25, -0.125, "
          "-0.0625, ...) and reaches the minimum at 0.", "step 0.25 on x**2", measure_step_025,
          lambda e: verdict(np.allclose(e["first_four"], LESSON_ITERATES_025, rtol=0, atol=1e-12)
                            and abs(e["x_60"]) < 1e-6),
          "iterates {shown}; each step multiplies x by {factor:g}, x_60 = {x_60:.3g}", fixed=True),
    Claim("descent_step_10", "With step 10 the first update from -1 lands at 19, past the minimum.",
          "step 10 on x**2", measure_step_10, lambda e: verdict(e["x_1"] == LESSON_FIRST_STEP_10 and e["x_1"] > 0),
          "x_1 = {x_1:g}; the lesson stops there, but every step multiplies |x| by {factor:g}: x_5 = {x_5:.3g}, so "
          "descent diverges rather than merely skipping the minimum", fixed=True),
    Claim("small_rates_safe", "Rates such as 0.1, 0.01 or 0.001 are low enough to avoid jumping over the minimum.",
          "0.1, 0.01 and 0.001 are safe rates", measure_small_rates,
          lambda e: verdict(not e["unstable"], "holds", "imprecise"),
          "stable iff lr < 2/lambda_max: {threshold_square:g} on x**2, {threshold_lesson:.3g} on the lesson's "
          "data, {threshold_scaled:.3g} with its x multiplied by 10 (other units); unstable somewhere: "
          "{unstable_shown}. 'Small' is relative to the curvature"),
    Claim("small_rate_slow", "Very small learning rates need many times more iterations.",
          "small rates are slow", measure_small_lr_slow, judge_small_lr_slow,
          "iterations until the distance to the OLS parameters falls to 1e-6 of its start: {iterations_fast} at "
          "lr {lr_fast:g}, {iterations_slow} at lr {lr_slow:g}"),
    Claim("batch_gd_stable", "Full-batch gradient descent is the stable, accurate variant.",
          "full-batch descent is stable", measure_batch_stable,
          lambda e: verdict(e["diverged_at"] < 0, "holds", "imprecise"),
          "full-batch descent on the lesson's data with lr = {lr:.3g} (1.2 x the threshold {threshold:.3g}) "
          "{fate}: batch descent is stable only below 2/lambda_max"),
    Claim("lesson_program_fits", "The lesson's program (rate 0.05, 1000 iterations) finds the line of best fit.",
          "the lesson's program finds the best fit", measure_lesson_run,
          lambda e: verdict(e["max_abs_diff"] < 1e-3, "holds", "imprecise"),
          "w = {weight:.6f}, b = {bias:.6f} vs OLS {ols_weight:.6f}, {ols_bias:.6f} (largest difference "
          "{max_abs_diff:.2g})"),
    Claim("gradient_is_WT_R", "In matrix form the weight gradient is -2/n times W transposed times the residuals.",
          "the gradient as W^T R", measure_gradient_form, judge_gradient_form,
          "with n = {n}, m = {m}: W^T R ((1, m) times (n, 1)) {wt_r_outcome}; -2/n X^T R has shape {xt_r_shown} "
          "and matches central differences to {xt_r_max_abs_diff:.1g}", fixed=True),
    Claim("transpose_makes_column", "np.array([1, 2, 3]) is a row matrix and its .T is a column vector.",
          "`.T` of a 1-D array is a column", measure_transpose_1d,
          lambda e: verdict(not (e["t_shape"] == e["shape"] and e["t_shape"] != [e["shape"][0], 1])),
          "np.array([1, 2, 3]) is 1-D (ndim {ndim}, shape {shown[0]}), not a row matrix; .T has shape {shown[1]}, "
          "unchanged; reshape(-1, 1) gives {shown[2]}", fixed=True),
    Claim("shape_is_a_call", "X.shape() returns the (rows, columns) tuple of a numpy array.",
          "`X.shape()` returns the shape", measure_shape_call, lambda e: verdict(not e["error"]),
          "X.shape() {outcome}; the attribute X.shape (no call) is {shown}", fixed=True),
    Claim("numpy_10x", "numpy's vectorised operations are about 10x faster, if not more, than Python loops.",
          "numpy is 10x faster than loops", measure_numpy_speedup, lambda e: verdict(e["speedup_100"] >= 10),
          "gradient by Python loops vs numpy: {speedup_100:.0f}x faster at n = 100 ({loop_us_100:.0f} vs "
          "{vec_us_100:.1f} us), {speedup_10000:.0f}x at n = 10,000"),
    Claim("matmul_matches_loops", "numpy.matmul gives the same product as the triple loop (up to rounding).",
          "matmul equals the triple loop", measure_matmul_loops, lambda e: verdict(e["allclose"]),
          "n = {n}: allclose = {allclose}, largest difference {max_abs_diff:.2g}", fixed=True),
    Claim("numpy_uses_strassen", "numpy multiplies matrices with Strassen's O(n^2.807) algorithm.",
          "numpy uses Strassen", measure_strassen, judge_strassen,
          "numpy uses {blas}; block-scale probe: relative error {probe_rel_err:.2g} for numpy.matmul vs "
          "{strassen_probe_rel_err:.2g} for one Strassen step (classical products keep the small block); time "
          "grows as n^{exponent:.2f} ({source}; Strassen would give {strassen_exponent:.3f})"),
    Claim("loop_500_under_2_min", "The triple-loop product of two 500 x 500 matrices takes at most two minutes.",
          "a 500 x 500 loop product within two minutes", measure_loop_500,
          lambda e: verdict(e["predicted_500_s"] <= e["limit_s"]),
          "{seconds:.3g} s at n = {n} on this machine, so about {predicted_500_s:.0f} s at n = 500 "
          "(limit {limit_s:.0f} s)"),
)
BY_KEY = {claim.key: claim for claim in CLAIMS}


def check(claim, evidence):
    """One table row of a claim from its measured evidence: key, claim, verdict, evidence text, evidence JSON."""
    return {"key": claim.key, "claim": claim.text, "verdict": claim.judge(evidence),
            "evidence": claim.evidence.format(**evidence), "measured": strict_json.dumps(evidence)}


def earlier_tables(ctx):
    """The tables of USES that this run wrote before this experiment (in its --experiments order)."""
    order = list(ctx.config.experiments)
    here = order.index(NAME) if NAME in order else len(order)
    return tuple((name, pd.read_csv(Path(ctx.out_dir) / f"{name}.csv")) for name in USES
                 if name in order[:here] and (Path(ctx.out_dir) / f"{name}.csv").exists())


def run(ctx):
    """Measure the evidence of every claim (once per measurement) and judge it: one row per claim."""
    env = Env(seed=ctx.config.seed, quick=ctx.config.quick, earlier=earlier_tables(ctx))
    measured, rows = {}, []
    for claim in CLAIMS:
        if ctx.progress:
            ctx.progress(f"lesson claim {claim.key}")
        if claim.measure not in measured:  # binomial and binomial_mode share one simulation
            measured[claim.measure] = claim.measure(env)
        rows.append(check(claim, measured[claim.measure]))
    return pd.DataFrame(rows, columns=COLUMNS)


COLOURS = {"holds": "#4caf50", "wrong": "#e53935", "imprecise": "#fb8c00"}


def figure(table):
    """One coloured row per claim with its verdict (the Figure, unsaved)."""
    from comparisons.output.figures import plt  # matplotlib with the Agg backend, loaded only to draw

    fig, ax = plt.subplots(figsize=(11, 0.42 * len(table) + 1.2))
    for i, row in enumerate(table.itertuples()):
        y = len(table) - 1 - i
        ax.barh(y, 1, color=COLOURS.get(row.verdict, "grey"), height=0.8)
        ax.text(0.01, y, row.verdict, va="center", fontsize=9, color="white", fontweight="bold")
        ax.text(1.03, y, textwrap.shorten(row.claim, 110), va="center", fontsize=8.5)
    ax.set_xlim(0, 8)
    ax.set_ylim(-0.6, len(table) - 0.4)
    ax.axis("off")
    counts = table.verdict.value_counts()
    ax.set_title("The lesson's claims, tested: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS),
                 loc="left")
    return fig


def plot(table, out_dir):
    """lesson_claims.png."""
    from comparisons.output.figures import save

    return [save(figure(table), Path(out_dir) / f"{NAME}.png")]


FINDINGS = {
    "lesson_claims": ("**Of the lesson's {claims:n} testable claims, {holds:n} hold, {wrong_count:n} wrong and "
                      "{imprecise:n} imprecise.**"),
    "lesson_claims_wrong": "Wrong: {wrong:l}.",
}


def findings(table):
    """The verdict counts, naming the claims found wrong: one Finding."""
    counts = table.verdict.value_counts()
    wrong = [BY_KEY[k].short if k in BY_KEY else f"`{k}`" for k, v in zip(table.key, table.verdict) if v == "wrong"]
    found = Finding("lesson_claims_wrong" if wrong else "lesson_claims",
                    dict(claims=len(table), holds=int(counts.get("holds", 0)), wrong_count=len(wrong),
                         imprecise=int(counts.get("imprecise", 0)), wrong=wrong), FINDINGS["lesson_claims"])
    if wrong:  # then named
        found = joined(found, Finding("lesson_claims_wrong", dict(wrong=wrong), FINDINGS["lesson_claims_wrong"]))
    return [found]


def report_section(table):
    """Markdown: counts of verdicts and the claim/verdict/evidence table."""
    counts = table.verdict.value_counts()
    shown = table[["claim", "verdict", "evidence"]].rename(columns={"claim": "claim (paraphrased)"})
    shown = shown.assign(verdict="**" + shown.verdict + "**")
    return "\n".join([
        "## The lesson's claims, checked", "", f"![verdicts on the lesson's claims]({NAME}.png)", "",
        f"{len(table)} testable claims of the lesson, paraphrased, each verdict computed from its row's evidence "
        "(numbers: the CSV's `measured` column): "
        + ", ".join(f"**{counts.get(v, 0)} {v}**" for v in VERDICTS) + ".", "", md_table(shown)])
