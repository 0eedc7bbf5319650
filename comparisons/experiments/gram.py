"""The price of the Gram route in precision: its loss, s - 2 theta^T c + theta^T G theta, subtracts numbers of size s.

On the lesson's data at several noise levels (the loss at the fit is about noise^2, s about mean(y)^2),
numpy's streaming descent and `numpy:gram` run from the same start in float32 and float64. For every
point of the loss curve the table holds both losses, their relative gap, and the rounding bound of
the Gram-form loss at that point (handrolled.loss_rounding_bound, from s, the statistics and theta),
so the report can say where the gap is rounding of the form itself and where it would be a fault.
The iterates stay close (the gradient 2 (G theta - c) has no such cancellation relative to its own
size); only the loss loses digits, about eps * s / loss of them.
"""
from pathlib import Path

import numpy as np
import pandas as pd

import handrolled

from comparisons.inputs.data import initial_parameters, make_synthetic
from comparisons.core.tolerances import EQUIVALENCE
from comparisons.core import registry
from comparisons.output.findings import Finding

NAME = "gram"
NOISES = (0.5, 0.05, 0.01)  # the lesson's noise, then fits whose loss is 1e-4 and 2e-6 of s
N_SAMPLES, LR, ITERATIONS = 100, 0.05, 1000  # the lesson's run: converged by the end, so the loss is near noise^2
SHOWN = (0.01, "float32")  # the case the figure's left panel draws: the Gram curve visibly leaves the streaming one


def run(ctx):
    """Streaming and Gram loss curves, their gap and the Gram loss's rounding bound, per noise, dtype and iteration."""
    seed = ctx.config.seed
    W0, b0 = initial_parameters(1, seed)
    frames = []
    for noise in NOISES:
        data = make_synthetic(N_SAMPLES, 1, noise, seed)
        for dtype in ("float32", "float64"):
            X, y = data.X.astype(dtype), data.y.astype(dtype)
            streaming = handrolled.descend(X, y, W0, b0, LR, ITERATIONS)
            stats = handrolled.sufficient_statistics(X, y)
            gram = handrolled.descend_gram(stats, W0, b0, LR, ITERATIONS, keep_trajectory=True)
            k = min(len(streaming.loss_curve), len(gram.loss_curve))
            ref = np.asarray(streaming.loss_curve[:k], np.float64)
            ours = np.asarray(gram.loss_curve[:k], np.float64)
            bound = [handrolled.loss_rounding_bound(stats, theta[:, None], loss)
                     for theta, loss in zip(gram.trajectory[:k], ours)]
            frames.append(pd.DataFrame({
                "noise": noise, "dtype": dtype, "n_samples": N_SAMPLES, "s": float(stats.s),
                "iteration": np.arange(k), "streaming_loss": ref, "gram_loss": ours,
                "rel_gap": np.abs(ours - ref) / ref, "bound": bound, "tolerance": EQUIVALENCE[dtype],
                "max_abs_weight_diff": float(np.max(np.abs(np.append(gram.weights, gram.bias)
                                                           - np.append(streaming.weights, streaming.bias)))),
            }))
    return pd.concat(frames, ignore_index=True)


def summary(table):
    """One row per (noise, dtype): s, final loss, s / loss, largest gap, largest bound, and the verdict."""
    rows = []
    for (noise, dtype), part in table.groupby(["noise", "dtype"], sort=False):
        last = part.iloc[-1]
        worst = part.rel_gap.max()
        # a point agrees within the usual tolerance, or within it plus its own rounding bound
        within_tolerance = bool((part.rel_gap <= part.tolerance).all())
        within_bound = bool((part.rel_gap <= part.tolerance + part.bound).all())
        rows.append({"noise": noise, "dtype": dtype, "s": last.s, "final_loss": last.streaming_loss,
                     "s_over_loss": last.s / last.streaming_loss, "max_rel_gap": worst,
                     "max_bound": part.bound.max(), "tolerance": last.tolerance,
                     "max_abs_weight_diff": last.max_abs_weight_diff,
                     "verdict": "within tolerance" if within_tolerance else
                     "within tolerance + bound" if within_bound else "OUTSIDE"})
    return pd.DataFrame(rows)


def frozen_from(losses, least=10):
    """The first iteration from which a loss curve repeats exactly to its end (at least `least` points), or None.

    A float loss that stops changing for good means the parameters stopped changing: each update
    lr * gradient rounds away, being no larger than half an ulp (unit in the last place) of W and b.
    """
    values = np.asarray(losses)
    changed = np.flatnonzero(values[1:] != values[:-1])
    first = int(changed[-1]) + 1 if changed.size else 0
    return first if len(values) - first >= least and first > 0 else None


def figure(table):
    """The Figure: the shown case's loss curves (left) and every case's gap against its bound (right)."""
    from comparisons.output.figures import colour, plt, title

    numpy_gram = next((n for n, i in registry.REGISTRY.items() if i.framework == "numpy" and i.route == "gram"), "")

    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 5.6), gridspec_kw={"width_ratios": [1, 1.25]})
    noise, dtype = SHOWN
    case = table[(table.noise == noise) & (table.dtype == dtype)]
    exact = table[(table.noise == noise) & (table.dtype == "float64")]
    # near the fit (loss below 3x its final value) on a linear axis, where the cancellation shows
    start = int(case.iteration[case.streaming_loss < 3 * case.streaming_loss.iloc[-1]].iloc[0])
    initial = case.streaming_loss.iloc[0]
    # one quantity in both panels: the iteration from which both losses repeat exactly (the right title's range)
    both = [frozen_from(case.gram_loss.to_numpy()), frozen_from(case.streaming_loss.to_numpy())]
    frozen = None if None in both else max(both)
    case, exact = case[case.iteration >= start], exact[exact.iteration >= start]
    streaming, gram = title(registry.REFERENCE), title(numpy_gram)
    left.plot(case.iteration, case.streaming_loss, "-", lw=2, color=colour(registry.REFERENCE), label=f"{streaming}, {dtype}")
    left.plot(case.iteration, case.gram_loss, "-", lw=1, alpha=0.8, color=colour(numpy_gram), label=f"{gram}, {dtype}")
    left.plot(exact.iteration, exact.streaming_loss, ":", color="k", label=f"{streaming}, float64")
    if frozen is not None:
        left.axvline(frozen, color="tab:red", lw=0.8, ls="--",
                     label=f"from {frozen} on both {dtype} losses repeat exactly: the parameters no longer\n"
                           f"change, as each update (lr x gradient) is at most half the gap between\n{dtype} numbers next to W and b, so it rounds away")
    left.set(xlabel="iteration", ylabel="loss (MSE)",
             title=f"noise {noise}, {dtype}, near the fit (s / loss ~ {case.s.iloc[-1] / case.streaming_loss.iloc[-1]:.0e})"
                   f"\nfrom iteration {start}, where the loss first falls below 3x its final value\n"
                   f"(it starts at {initial:.3g}: the whole descent would flatten this scale)")
    left.title.set_fontsize(10)
    left.legend(fontsize=7.5, loc="upper right")
    noises = list(dict.fromkeys(table.noise))  # the colour is the noise; float32 and float64 lie decades apart
    for (noise, dtype), part in table.groupby(["noise", "dtype"], sort=False):
        color = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")[noises.index(noise) % 5]
        gap = part.rel_gap.where(part.rel_gap > 0)  # an exact match has no place on a log axis
        right.semilogy(part.iteration, gap, "-", color=color, lw=1, label=f"gap, noise {noise}, {dtype}")
        right.semilogy(part.iteration, part.bound, "--", color=color, lw=1, label=f"bound, noise {noise}, {dtype}")
    for dtype, tol in EQUIVALENCE.items():
        right.axhline(tol, color="grey", lw=0.8, ls=":")
        right.annotate(f"{dtype} tolerance", (0, tol), fontsize=7, va="bottom", color="grey")
    still = {}  # (noise, dtype) -> the iteration from which both losses repeat exactly: the gap is flat after it
    for key, part in table.groupby(["noise", "dtype"], sort=False):
        both = [frozen_from(part.gram_loss.to_numpy()), frozen_from(part.streaming_loss.to_numpy())]
        if None not in both:
            still[key] = max(both)
    note = ("" if not still else
            f"\n{' and '.join(sorted({d for _, d in still}))} gaps flat from iteration {min(still.values())}"
            + (f"-{max(still.values())}" if max(still.values()) > min(still.values()) else "")
            + ":\nboth losses repeat exactly, the parameters are frozen (each update rounds away)")
    right.set(xlabel="iteration", ylabel="relative gap to the streaming loss",
              title="Gram-form loss: measured gap (solid), rounding bound (dashed)" + note)
    right.title.set_fontsize(10)
    from matplotlib.lines import Line2D

    key = [Line2D([], [], color=("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")[k % 5], lw=2,
                  label=f"noise {noise}") for k, noise in enumerate(noises)]
    key += [Line2D([], [], color="dimgray", ls="-", label="measured gap"),
            Line2D([], [], color="dimgray", ls="--", label="rounding bound")]
    right.legend(handles=key, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def plot(table, out_dir):
    """gram.png from the table alone."""
    from comparisons.output.figures import save

    return [save(figure(table), Path(out_dir) / f"{NAME}.png")]


FINDINGS = {
    "gram": ("**The Gram route's loss formula loses digits when the fit is close:** in {dtype} with noise {noise:g} its "
             "loss departs from the streaming loss by up to {gap:.2g} relative, while the weights still agree to "
             "{weight_diff:.2g}."),
    "gram_bound": ("The formula s - 2 theta^T c + theta^T G theta subtracts terms about s / loss = {s_over_loss:.3g} "
                   "times the loss, and the gap stays inside its derived rounding bound {bound:.2g}; at the lesson's "
                   "noise {lesson_noise:g} the {lesson_dtype} gap is {lesson_gap:.2g} against a tolerance of "
                   "{tolerance:g}: {verdict}."),
}


def findings(table):
    """Two Findings, every number read from the table: the Gram loss's cancellation (the answer), then its bound and
    the lesson's case."""
    s = summary(table)
    shown = s[(s.noise == SHOWN[0]) & (s.dtype == SHOWN[1])].iloc[0]
    lesson = s[(s.noise == NOISES[0]) & (s.dtype == "float32")].iloc[0]
    return [Finding("gram", dict(dtype=shown["dtype"], noise=float(shown.noise), gap=float(shown.max_rel_gap),
                                 weight_diff=float(shown.max_abs_weight_diff)), FINDINGS["gram"]),
            Finding("gram_bound", dict(s_over_loss=float(shown.s_over_loss), bound=float(shown.max_bound),
                                       lesson_noise=float(lesson.noise), lesson_dtype=lesson["dtype"],
                                       lesson_gap=float(lesson.max_rel_gap), tolerance=float(lesson.tolerance),
                                       verdict=lesson.verdict), FINDINGS["gram_bound"])]


def report_section(table):
    """Markdown: the summary table, the bound's derivation in a sentence, and which rows need the bound."""
    s = summary(table)
    lines = ["## The Gram route's price in precision", "", f"![Gram-form loss against streaming]({NAME}.png)", "",
             "The Gram routes take the loss as s - 2 theta^T c + theta^T G theta (G, c, s summed in float64 in one "
             "pass, then rounded once to the run's dtype). Near the fit each term is about s while the loss is about "
             "noise^2, so the subtraction loses about log10(s / loss) digits. A point agrees when its gap to the "
             "streaming loss is within the usual tolerance plus a first-order rounding bound k u M / loss (u half the "
             "dtype's eps, M about 4 s near the fit, k = 2 (m + 1) + 4, plus n in float64; derived in "
             "`handrolled/gram.py`); the tolerance itself is never widened.",
             "", f"Lesson data (n = {N_SAMPLES}, one feature), lr {LR}, {ITERATIONS} iterations, the same start:", "",
             "| noise | dtype | s | final loss | s / loss | max relative gap | max bound | tolerance | "
             "max abs weight diff | verdict |", "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r.noise:g} | {r.dtype} | {r.s:.4g} | {r.final_loss:.3g} | {r.s_over_loss:.3g} | "
              f"{r.max_rel_gap:.2g} | {r.max_bound:.2g} | {r.tolerance:g} | {r.max_abs_weight_diff:.2g} | "
              f"{r.verdict} |" for r in s.itertuples()]
    needs = s[s.verdict == "within tolerance + bound"]
    if len(needs):
        lines += ["", f"{len(needs)} of {len(s)} rows pass only with the bound: the cancellation it predicts, not a "
                  "different descent, since their weights agree (last column) and their gap grows as the loss falls "
                  "toward noise^2."]
    outside = s[s.verdict == "OUTSIDE"]
    if len(outside):
        lines += ["", "**Outside even the bound:** " + ", ".join(f"noise {r.noise:g} {r.dtype}"
                                                                for r in outside.itertuples()) + "."]
    lines += ["", "The streaming loss mean((y - X W - b)^2) squares residuals already formed, so its error grows "
              "like eps sqrt(s / loss), not eps s / loss: streaming is the accurate side."]
    return "\n".join(lines)
