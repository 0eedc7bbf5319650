"""The lesson's testable claims, paraphrased, each with evidence computed here and a verdict derived from it.

Every claim is a Claim: `measure(env) -> evidence` (a dict of numbers and short strings),
`judge(evidence) -> "holds" | "wrong" | "imprecise"` and `describe(evidence) -> str`. The verdict
is always judge(evidence), so changing the evidence changes the verdict; nothing is hard-coded.
"""
import math
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

import handrolled
from .. import stability
from ..data import initial_parameters, make_synthetic
from ..timing import time_calls
from . import matmul

NAME = "lesson_claims"
VERDICTS = ("holds", "wrong", "imprecise")


@dataclass(frozen=True)
class Env:
    """What the measurements need: seed, size of the run, and where an earlier matmul table may be."""

    seed: int = 0
    quick: bool = False
    out_dir: Path | None = None


@dataclass(frozen=True)
class Claim:
    """One claim of the lesson, in our words, with how to test it."""

    key: str
    text: str
    measure: Callable  # Env -> dict
    judge: Callable  # dict -> verdict
    describe: Callable  # dict -> str


# --- statistics: guessing on a true/false test -------------------------------------------------------

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
    return {"tests": tests, "questions": questions, "p": 0.5, "mean": mean, "var": var,
            "se_mean": math.sqrt(var / tests), "se_var": math.sqrt(max(fourth - var ** 2, 0.0) / tests),
            "mode": int(np.argmax(counts))}


def judge_binomial(e):
    """holds when the simulated mean and variance are within 4 standard errors of n p and n p (1 - p)."""
    n, p = e["questions"], e["p"]
    ok = abs(e["mean"] - n * p) <= 4 * e["se_mean"] and abs(e["var"] - n * p * (1 - p)) <= 4 * e["se_var"]
    return "holds" if ok else "wrong"


def describe_binomial(e):
    n, p = e["questions"], e["p"]
    return (f"{e['tests']:,} simulated tests of {n} questions: mean {e['mean']:.4f} (n p = {n * p:g}, "
            f"SE {e['se_mean']:.4f}), variance {e['var']:.4f} (n p (1-p) = {n * p * (1 - p):g}, SE {e['se_var']:.4f})")


def judge_mode(e):
    """holds when the most frequent simulated score is half the questions."""
    return "holds" if e["mode"] * 2 == e["questions"] else "wrong"


def describe_mode(e):
    return f"most frequent score {e['mode']} of {e['questions']} ({100 * e['mode'] / e['questions']:.0f}%)"


# --- 1-D gradient descent on f(x) = x**2 from x = -1 ------------------------------------------------------

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
    xs = descend_square(-1.0, 0.25, 60)
    return {"first_four": xs[:4], "lesson_first_four": list(LESSON_ITERATES_025), "x_60": xs[-1],
            "factor": abs(1 - 2 * 0.25)}


def judge_step_025(e):
    """holds when the first four iterates match the lesson's and x_60 is essentially 0."""
    match = np.allclose(e["first_four"], e["lesson_first_four"], rtol=0, atol=1e-12)
    return "holds" if match and abs(e["x_60"]) < 1e-6 else "wrong"


def describe_step_025(e):
    return (f"iterates {', '.join(f'{x:g}' for x in e['first_four'])}; each step multiplies x by "
            f"{e['factor']:g}, x_60 = {e['x_60']:.3g}")


def measure_step_10(env):
    xs = descend_square(-1.0, 10.0, 5)
    return {"x_1": xs[0], "lesson_x_1": LESSON_FIRST_STEP_10, "x_5": xs[-1], "factor": abs(1 - 2 * 10.0)}


def judge_step_10(e):
    """holds when the first step lands where the lesson says (past the minimum at 0)."""
    return "holds" if e["x_1"] == e["lesson_x_1"] and e["x_1"] > 0 else "wrong"


def describe_step_10(e):
    return (f"x_1 = {e['x_1']:g}; the lesson stops there, but every step multiplies |x| by {e['factor']:g}: "
            f"x_5 = {e['x_5']:.3g}, so descent diverges rather than merely skipping the minimum")


# --- learning rates on the lesson's regression -------------------------------------------------------------

LESSON_SAFE_RATES = (0.1, 0.01, 0.001)  # the rates the lesson calls sufficiently low


def _lesson_data(seed, scale=1.0):
    data = make_synthetic(100, 1, 0.5, seed)
    return data.X * scale, data.y


def measure_small_rates(env):
    """Largest stable step 2/lambda_max on x**2, on the lesson's data, and on it with x in other units (x 10)."""
    X, _ = _lesson_data(env.seed)
    X10, _ = _lesson_data(env.seed, scale=10.0)
    return {"named": list(LESSON_SAFE_RATES), "threshold_square": 2.0 / 2.0,
            "threshold_lesson": stability.analyse(X).max_stable_lr,
            "threshold_scaled": stability.analyse(X10).max_stable_lr}


def judge_small_rates(e):
    """holds if every named rate is stable in all three problems, imprecise if some named rate is unstable in one."""
    thresholds = (e["threshold_square"], e["threshold_lesson"], e["threshold_scaled"])
    return "holds" if all(lr < t for lr in e["named"] for t in thresholds) else "imprecise"


def describe_small_rates(e):
    unstable = [lr for lr in e["named"] if lr >= e["threshold_scaled"]]
    return (f"stable iff lr < 2/lambda_max: {e['threshold_square']:g} on x**2, {e['threshold_lesson']:.3g} on the "
            f"lesson's data, {e['threshold_scaled']:.3g} with its x multiplied by 10 (other units); there "
            f"{', '.join(f'{lr:g}' for lr in unstable) or 'none'} of the named rates diverge. "
            "'Small' is relative to the curvature")


def measure_batch_stable(env):
    X, y = _lesson_data(env.seed)
    W0, b0 = initial_parameters(1, env.seed)
    threshold = stability.analyse(X).max_stable_lr
    lr = 1.2 * threshold  # a step only 20% past the threshold
    result = handrolled.descend(X, y, W0, b0, lr, 1000)
    return {"threshold": threshold, "lr": lr, "diverged_at": -1 if result.diverged_at is None else result.diverged_at}


def judge_batch_stable(e):
    """imprecise if full-batch descent diverges at some step size, holds otherwise."""
    return "imprecise" if e["diverged_at"] >= 0 else "holds"


def describe_batch_stable(e):
    fate = f"diverges at iteration {e['diverged_at']}" if e["diverged_at"] >= 0 else "converges"
    return (f"full-batch descent on the lesson's data with lr = {e['lr']:.3g} (1.2 x the threshold "
            f"{e['threshold']:.3g}) {fate}: batch descent is stable only below 2/lambda_max")


def _iterations_to(X, y, W0, b0, lr, tol, cap):
    """First iteration whose parameter distance to OLS is <= tol times the initial one (numpy, float64), or -1."""
    W_ols, b_ols = handrolled.ols(X, y)
    target = np.append(W_ols[:, 0], b_ols)  # (m + 1,)
    result = handrolled.descend(X, y, W0, b0, lr, cap, keep_trajectory=True)
    distance = np.linalg.norm(result.trajectory - target, axis=1)  # (k + 1,)
    hit = np.flatnonzero(distance <= tol * distance[0])
    return int(hit[0]) if hit.size else -1


def measure_small_lr_slow(env):
    X, y = _lesson_data(env.seed)
    W0, b0 = initial_parameters(1, env.seed)
    fast = _iterations_to(X, y, W0, b0, 0.05, 1e-6, 5000)
    slow = _iterations_to(X, y, W0, b0, 0.005, 1e-6, 50000)
    return {"lr_fast": 0.05, "lr_slow": 0.005, "iterations_fast": fast, "iterations_slow": slow}


def judge_small_lr_slow(e):
    """holds when the 10x smaller rate needs at least twice the iterations to reach the same tolerance."""
    if e["iterations_fast"] < 0 or e["iterations_slow"] < 0:
        return "imprecise"
    return "holds" if e["iterations_slow"] >= 2 * e["iterations_fast"] else "wrong"


def describe_small_lr_slow(e):
    return (f"iterations until the distance to the OLS parameters falls to 1e-6 of its start: "
            f"{e['iterations_fast']} at lr {e['lr_fast']:g}, {e['iterations_slow']} at lr {e['lr_slow']:g}")


def measure_lesson_run(env):
    X, y = _lesson_data(env.seed)
    W0, b0 = initial_parameters(1, env.seed)
    result = handrolled.descend(X, y, W0, b0, 0.05, 1000)
    W_ols, b_ols = handrolled.ols(X, y)
    return {"weight": float(result.weights[0, 0]), "bias": float(result.bias), "ols_weight": float(W_ols[0, 0]),
            "ols_bias": b_ols, "max_abs_diff": float(max(abs(result.weights[0, 0] - W_ols[0, 0]), abs(result.bias - b_ols)))}


def judge_lesson_run(e):
    """holds when 1000 steps of 0.05 land within 1e-3 of the least-squares parameters."""
    return "holds" if e["max_abs_diff"] < 1e-3 else "imprecise"


def describe_lesson_run(e):
    return (f"w = {e['weight']:.6f}, b = {e['bias']:.6f} vs OLS {e['ols_weight']:.6f}, {e['ols_bias']:.6f} "
            f"(largest difference {e['max_abs_diff']:.2g})")


def measure_zero_gradient(env):
    """f(x, y) = x**2 - y**2 at the origin: gradient, Hessian eigenvalues, and values on a small circle."""
    f = lambda x, y: x ** 2 - y ** 2
    h = 1e-6
    gradient = [(f(h, 0) - f(-h, 0)) / (2 * h), (f(0, h) - f(0, -h)) / (2 * h)]
    eigenvalues = np.linalg.eigvalsh(np.array([[2.0, 0.0], [0.0, -2.0]])).tolist()
    angles = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    around = f(1e-3 * np.cos(angles), 1e-3 * np.sin(angles)) - f(0, 0)
    return {"gradient_norm": float(np.hypot(*gradient)), "hessian_eigenvalues": eigenvalues,
            "above": int((around > 0).sum()), "below": int((around < 0).sum())}


def judge_zero_gradient(e):
    """wrong when a zero-gradient point has points both above and below it arbitrarily close (a saddle)."""
    return "wrong" if e["gradient_norm"] < 1e-9 and e["above"] > 0 and e["below"] > 0 else "holds"


def describe_zero_gradient(e):
    return (f"f = x**2 - y**2 at the origin: |gradient| = {e['gradient_norm']:.1g}, Hessian eigenvalues "
            f"{e['hessian_eigenvalues']}, and on a circle of radius 1e-3 f is above f(0) at {e['above']} "
            f"and below at {e['below']} of 64 points: a saddle, neither minimum nor maximum")


# --- linear algebra and numpy ---------------------------------------------------------------------------

def measure_unit_vectors(env):
    u, v = np.array([2.0, 4.0, 6.0]), np.array([3.0, 6.0, 9.0])
    return {"unit_u": (u / np.linalg.norm(u)).tolist(), "unit_v": (v / np.linalg.norm(v)).tolist()}


def judge_unit_vectors(e):
    """holds when the two unit vectors coincide."""
    return "holds" if np.allclose(e["unit_u"], e["unit_v"], rtol=0, atol=1e-12) else "wrong"


def describe_unit_vectors(e):
    return f"unit vectors {np.round(e['unit_u'], 6).tolist()} and {np.round(e['unit_v'], 6).tolist()}"


def measure_dot_example(env):
    return {"dot": float(np.dot([1, 2, 3], [4, 5, 6])), "lesson_dot": 32.0}


def judge_dot_example(e):
    """holds when numpy's dot product equals the lesson's value."""
    return "holds" if e["dot"] == e["lesson_dot"] else "wrong"


def describe_dot_example(e):
    return f"np.dot((1,2,3), (4,5,6)) = {e['dot']:g}"


def measure_cross_scalar(env):
    u, v = np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])
    cross, dot = np.cross(u, v), np.dot(u, v)
    return {"cross_shape": list(np.shape(cross)), "cross": cross.tolist(), "dot_shape": list(np.shape(dot)),
            "dot": float(dot)}


def judge_cross_scalar(e):
    """wrong when the cross product gives a vector while the dot product gives the scalar."""
    return "wrong" if len(e["cross_shape"]) >= 1 and len(e["dot_shape"]) == 0 else "holds"


def describe_cross_scalar(e):
    return (f"cross((1,2,3), (4,5,6)) = {e['cross']} has shape {tuple(e['cross_shape'])}, a vector; "
            f"dot = {e['dot']:g} has shape {tuple(e['dot_shape'])}, the scalar. The lesson's own formula uses the dot")


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
            "xt_r_max_abs_diff": float(np.max(np.abs(xt_r - numeric)))}


def judge_gradient_form(e):
    """wrong when W^T R fails (or has the wrong shape) while X^T R matches the numerical gradient."""
    wt_ok = not e["wt_r_error"] and e["wt_r_shape"] == [e["m"], 1]
    xt_ok = e["xt_r_shape"] == [e["m"], 1] and e["xt_r_max_abs_diff"] < 1e-6
    if xt_ok and not wt_ok:
        return "wrong"
    return "holds" if wt_ok else "imprecise"


def describe_gradient_form(e):
    wt = f"raises {e['wt_r_error']}" if e["wt_r_error"] else f"has shape {tuple(e['wt_r_shape'])}"
    return (f"with n = {e['n']}, m = {e['m']}: W^T R ((1, m) times (n, 1)) {wt}; -2/n X^T R has shape "
            f"{tuple(e['xt_r_shape'])} and matches central differences to {e['xt_r_max_abs_diff']:.1g}")


def measure_transpose_1d(env):
    a = np.array([1, 2, 3])
    return {"ndim": a.ndim, "shape": list(a.shape), "t_shape": list(a.T.shape),
            "column_shape": list(a.reshape(-1, 1).shape)}


def judge_transpose_1d(e):
    """wrong when .T leaves a 1-D array's shape unchanged (no column vector appears)."""
    return "wrong" if e["t_shape"] == e["shape"] and e["t_shape"] != [e["shape"][0], 1] else "holds"


def describe_transpose_1d(e):
    return (f"np.array([1, 2, 3]) is 1-D (ndim {e['ndim']}, shape {tuple(e['shape'])}), not a row matrix; "
            f".T has shape {tuple(e['t_shape'])}, unchanged; reshape(-1, 1) gives {tuple(e['column_shape'])}")


def measure_shape_call(env):
    X = np.zeros((100, 1))
    try:
        X.shape()
        error, message = "", ""
    except Exception as exc:  # the claim is about which exception, so catch them all
        error, message = type(exc).__name__, str(exc)
    return {"error": error, "message": message, "attribute": list(X.shape)}


def judge_shape_call(e):
    """wrong when calling X.shape() raises instead of returning the shape."""
    return "wrong" if e["error"] else "holds"


def describe_shape_call(e):
    outcome = f"raises {e['error']} ('{e['message']}')" if e["error"] else "returns the shape"
    return f"X.shape() {outcome}; the attribute X.shape (no call) is {tuple(e['attribute'])}"


# --- speed and algorithms -------------------------------------------------------------------------------

def measure_matmul_loops(env):
    rng = np.random.default_rng(env.seed)
    A, B = rng.standard_normal((40, 40)), rng.standard_normal((40, 40))
    loop, fast = matmul.loop_matmul(A, B), np.matmul(A, B)
    return {"n": 40, "allclose": bool(np.allclose(loop, fast)), "max_abs_diff": float(np.max(np.abs(loop - fast)))}


def judge_matmul_loops(e):
    """holds when numpy.matmul is allclose to the triple loop."""
    return "holds" if e["allclose"] else "wrong"


def describe_matmul_loops(e):
    return f"n = {e['n']}: allclose = {e['allclose']}, largest difference {e['max_abs_diff']:.2g}"


def measure_strassen(env):
    """The scale probe of numpy.matmul and the time-scaling exponent (from matmul.csv if this run has one)."""
    table_file = env.out_dir / f"{matmul.NAME}.csv" if env.out_dir else None
    if table_file is not None and table_file.exists():
        table = pd.read_csv(table_file)
        numpy_rows = table[(table.method == "numpy") & (table.dtype == "float64")]
        exponent, source = matmul.exponent_of(table), "matmul.csv"
        probe = float(numpy_rows.scale_probe_rel_err.max())
    else:  # measured here: a few float64 sizes, best of 3
        sizes = (128, 256, 512) if env.quick else (256, 512, 1024)
        rng = np.random.default_rng(env.seed)
        best = []
        for n in sizes:
            A, B = rng.standard_normal((n, n)), rng.standard_normal((n, n))
            best.append(time_calls(lambda: A @ B, 3)[1].min_s)
        exponent, source = matmul.fit_exponent(sizes, best), f"timed here at n = {sizes}"
        probe = matmul.scale_probe(np.matmul, 512, "float64")
    return {"blas": matmul.blas_name().split(" (")[0], "exponent": exponent, "probe_rel_err": probe,
            "strassen_probe_rel_err": matmul.scale_probe(matmul.strassen_one_level, 256, "float64"), "source": source}


def judge_strassen(e):
    """wrong when numpy keeps the probe's small block (classical product) while a Strassen step loses it."""
    if matmul.is_classical_probe(e["probe_rel_err"]) and not matmul.is_classical_probe(e["strassen_probe_rel_err"]):
        return "wrong"
    return "holds" if not matmul.is_classical_probe(e["probe_rel_err"]) else "imprecise"


def describe_strassen(e):
    return (f"numpy uses {e['blas']}; block-scale probe: relative error {e['probe_rel_err']:.2g} for numpy.matmul vs "
            f"{e['strassen_probe_rel_err']:.2g} for one Strassen step (classical products keep the small block); "
            f"time grows as n^{e['exponent']:.2f} ({e['source']}; Strassen would give {matmul.STRASSEN_EXPONENT:.3f})")


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
    """Loop gradients vs vectorised gradients on the lesson's data (n = 100) and on n = 10,000."""
    out = {}
    for n in (100, 10_000):
        data = make_synthetic(n, 1, 0.5, env.seed)
        W0, b0 = initial_parameters(1, env.seed)
        residuals = data.y - handrolled.predict(data.X, W0, b0)  # (n, 1)
        loop_result, loop_t = time_calls(lambda: _loop_gradients(data.X, residuals), 3)
        vec_result, vec_t = time_calls(lambda: handrolled.gradients_from_residuals(data.X, residuals), 20)
        assert np.allclose(loop_result[0], vec_result[0]) and np.isclose(loop_result[1], vec_result[1])
        out[f"speedup_{n}"] = loop_t.min_s / vec_t.min_s
        out[f"loop_s_{n}"], out[f"vec_s_{n}"] = loop_t.min_s, vec_t.min_s
    return out


def judge_numpy_speedup(e):
    """holds when the vectorised gradient is at least 10x faster than the loops on the lesson's n = 100."""
    return "holds" if e["speedup_100"] >= 10 else "wrong"


def describe_numpy_speedup(e):
    return (f"gradient by Python loops vs numpy: {e['speedup_100']:.0f}x faster at n = 100 "
            f"({e['loop_s_100'] * 1e6:.0f} vs {e['vec_s_100'] * 1e6:.1f} us), {e['speedup_10000']:.0f}x at n = 10,000")


def measure_loop_500(env):
    """Time the triple loop at n = 48 and extrapolate by n^3 to the lesson's n = 500."""
    rng = np.random.default_rng(env.seed)
    n = 32 if env.quick else 48
    A, B = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    _, timing = time_calls(lambda: matmul.loop_matmul(A, B), 1)
    return {"n": n, "seconds": timing.min_s, "predicted_500_s": timing.min_s * (500 / n) ** 3, "limit_s": 120.0}


def judge_loop_500(e):
    """holds when the n^3 extrapolation to n = 500 stays under the lesson's two minutes."""
    return "holds" if e["predicted_500_s"] <= e["limit_s"] else "wrong"


def describe_loop_500(e):
    return (f"{e['seconds']:.3g} s at n = {e['n']} on this machine, so about {e['predicted_500_s']:.0f} s at n = 500 "
            f"(limit {e['limit_s']:.0f} s)")


CLAIMS = (
    Claim("binomial", "Scores from guessing at random on true/false tests follow a binomial law with mean n p "
          "and variance n p (1 - p).", measure_binomial, judge_binomial, describe_binomial),
    Claim("binomial_mode", "The most common score from random guessing on 10 true/false questions is 50%.",
          measure_binomial, judge_mode, describe_mode),
    Claim("unit_vectors", "(2, 4, 6) and (3, 6, 9) have the same unit vector, so they point the same way.",
          measure_unit_vectors, judge_unit_vectors, describe_unit_vectors),
    Claim("dot_example", "The dot product of (1, 2, 3) and (4, 5, 6) is 32.",
          measure_dot_example, judge_dot_example, describe_dot_example),
    Claim("cross_for_scalar", "To multiply two vectors into a single number one should use the cross product.",
          measure_cross_scalar, judge_cross_scalar, describe_cross_scalar),
    Claim("zero_gradient_extremum", "A point where every partial derivative is zero is sure to be a local "
          "minimum or maximum.", measure_zero_gradient, judge_zero_gradient, describe_zero_gradient),
    Claim("descent_step_0.25", "Descending x**2 from -1 with step 0.25 halves x each time (-0.5, -0.25, -0.125, "
          "-0.0625, ...) and reaches the minimum at 0.", measure_step_025, judge_step_025, describe_step_025),
    Claim("descent_step_10", "With step 10 the first update from -1 lands at 19, past the minimum.",
          measure_step_10, judge_step_10, describe_step_10),
    Claim("small_rates_safe", "Rates such as 0.1, 0.01 or 0.001 are low enough to avoid jumping over the minimum.",
          measure_small_rates, judge_small_rates, describe_small_rates),
    Claim("small_rate_slow", "Very small learning rates need many times more iterations.",
          measure_small_lr_slow, judge_small_lr_slow, describe_small_lr_slow),
    Claim("batch_gd_stable", "Full-batch gradient descent is the stable, accurate variant.",
          measure_batch_stable, judge_batch_stable, describe_batch_stable),
    Claim("lesson_program_fits", "The lesson's program (rate 0.05, 1000 iterations) finds the line of best fit.",
          measure_lesson_run, judge_lesson_run, describe_lesson_run),
    Claim("gradient_is_WT_R", "In matrix form the weight gradient is -2/n times W transposed times the residuals.",
          measure_gradient_form, judge_gradient_form, describe_gradient_form),
    Claim("transpose_makes_column", "np.array([1, 2, 3]) is a row matrix and its .T is a column vector.",
          measure_transpose_1d, judge_transpose_1d, describe_transpose_1d),
    Claim("shape_is_a_call", "X.shape() returns the (rows, columns) tuple of a numpy array.",
          measure_shape_call, judge_shape_call, describe_shape_call),
    Claim("numpy_10x", "numpy's vectorised operations are about 10x faster, if not more, than Python loops.",
          measure_numpy_speedup, judge_numpy_speedup, describe_numpy_speedup),
    Claim("matmul_matches_loops", "numpy.matmul gives the same product as the triple loop (up to rounding).",
          measure_matmul_loops, judge_matmul_loops, describe_matmul_loops),
    Claim("numpy_uses_strassen", "numpy multiplies matrices with Strassen's O(n^2.807) algorithm.",
          measure_strassen, judge_strassen, describe_strassen),
    Claim("loop_500_under_2_min", "The triple-loop product of two 500 x 500 matrices takes at most two minutes.",
          measure_loop_500, judge_loop_500, describe_loop_500),
)


def check(claim, env, cache=None):
    """(verdict, evidence text, evidence dict) of one claim; `cache` shares a measurement between claims."""
    cache = {} if cache is None else cache
    if claim.measure not in cache:
        cache[claim.measure] = claim.measure(env)
    evidence = cache[claim.measure]
    return claim.judge(evidence), claim.describe(evidence), evidence


def run(ctx):
    """Measure the evidence of every claim and judge it: one row per claim (claim, verdict, evidence)."""
    env = Env(seed=ctx.config.seed, quick=ctx.config.quick, out_dir=Path(ctx.out_dir))
    cache, rows = {}, []
    for claim in CLAIMS:
        if ctx.progress:
            ctx.progress(f"lesson claim {claim.key}")
        verdict, text, _ = check(claim, env, cache)
        rows.append({"claim": claim.text, "verdict": verdict, "evidence": text})
    return pd.DataFrame(rows, columns=["claim", "verdict", "evidence"])


COLOURS = {"holds": "#4caf50", "wrong": "#e53935", "imprecise": "#fb8c00"}


def plot(table, out_dir):
    """One coloured row per claim with its verdict: lesson_claims.png."""
    from ..figures import plt, save  # matplotlib with the Agg backend, loaded only to draw

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
    return [save(fig, Path(out_dir) / f"{NAME}.png")]


def report_section(table):
    """Markdown: counts of verdicts and the claim/verdict/evidence table."""
    counts = table.verdict.value_counts()
    lines = ["## The lesson's claims, checked", "", f"![verdicts on the lesson's claims]({NAME}.png)", "",
             f"{len(table)} testable claims of the lesson, in our words. Each verdict is computed from the evidence "
             "in the same row: " + ", ".join(f"**{counts.get(v, 0)} {v}**" for v in VERDICTS) + ".", "",
             "| claim (paraphrased) | verdict | evidence |", "|---|---|---|"]
    cell = lambda text: str(text).replace("|", "\\|")  # a bare | would end the markdown cell
    lines += [f"| {cell(r.claim)} | **{r.verdict}** | {cell(r.evidence)} |" for r in table.itertuples()]
    return "\n".join(lines)
