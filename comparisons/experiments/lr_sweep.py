"""Learning-rate stability against theory: the Hessian's 2 / lambda_max threshold and predicted convergence speed.

For the MSE the Hessian is H = 2/n [X, 1]^T [X, 1] (comparisons.running.stability). Full-batch descent
is stable iff lr < 2 / lambda_max. Every implementation is run at rates from far below to above
that threshold (including the lesson's 0.05, 0.25 and 10) and must land on the side theory says.

Convergence speed: with e_k = theta_k - theta_ols (theta = [W; b]), ||e_k|| <= rate^k ||e_0|| where
rate = max |1 - lr * lambda| over the Hessian's eigenvalues, so the predicted number of iterations
to shrink the parameter distance by `TOLERANCE` is log(TOLERANCE) / log(rate). The measured number is
the first iteration of the numpy float64 run with ||theta_k - theta_ols|| <= TOLERANCE * ||theta_0 - theta_ols||.
"""
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

import handrolled

from comparisons.core import registry

from comparisons.running import stability
from comparisons.running.implementations import make_trainer
from comparisons.output.prose import join, md_table, plural
from comparisons.experiments import study_data
from comparisons.output.findings import Finding

NAME = "lr_sweep"
LESSON_RATES = (0.05, 0.25, 10.0)  # the lesson's rate, its 1-D example's step, and its diverging step
TOLERANCE = 1e-6  # relative parameter distance to OLS at which a run counts as converged
WORK_CAP = 2 * 10**9  # most entries of [X, 1] one run may stream (iterations x n x (m + 1)): large files run shorter
SHORT_RUN = 25  # the fewest updates a run makes on the rates far from the threshold


def threshold_factors(config):
    """Rates to sweep, as multiples of the threshold 2 / lambda_max."""
    if config.quick:
        return (0.01, 0.5, 0.95, 1.05, 2.0)
    if config.full:
        return (1e-3, 1e-2, 0.1, 0.3, 0.5, 0.8, 0.9, 0.99, 1.01, 1.1, 1.5, 2.0, 5.0)
    return (1e-3, 0.1, 0.5, 0.99, 1.01, 2.0)


def implementations(config):
    """The implementations swept: quick, the first of each kind (framework, gradient-checking or not); else all."""
    names = registry.swept(config.only)
    if config.quick:
        kinds = {}
        for name in names:
            kinds.setdefault((registry.get(name).framework, registry.get(name).checks_gradient), name)
        names = list(kinds.values())
    return names


def side(lr, threshold):
    """'stable' below the threshold, 'unstable' at or above it."""
    return "stable" if lr < threshold else "unstable"


def room_past(predicted):
    """How many iterations a measured run may take when theory predicts `predicted`: half again, plus 10."""
    return int(1.5 * predicted) + 10


def measured_iterations(X, y, W0, b0, lr, cap, tol=TOLERANCE):
    """First iteration at which the numpy float64 run is within tol * its initial distance of OLS, or -1 within `cap`."""
    W_ols, b_ols = handrolled.ols(X, y)
    target = np.append(W_ols[:, 0], b_ols)  # (m + 1,): [W; b] of least squares
    result = handrolled.descend(X, y, W0, b0, lr, cap, keep_trajectory=True)
    distance = np.linalg.norm(result.trajectory - target, axis=1)  # (k + 1,)
    hit = np.flatnonzero(distance <= tol * distance[0])
    return int(hit[0]) if hit.size else -1


def run(ctx):
    """Run every implementation at each rate; record side, final loss, divergence and iterations to tolerance."""
    config = ctx.config
    data, W0, b0 = study_data(ctx)  # the study's own data: a CSV file's threshold is the one that matters
    analysis = stability.analyse(data.X)
    threshold = analysis.max_stable_lr
    rates = sorted({float(threshold * f) for f in threshold_factors(config)} | set(LESSON_RATES))
    far = [lr for lr in rates if lr in LESSON_RATES or not 0.5 <= lr / threshold <= 2.0]
    cells = data.n * (data.m + 1)  # the work of one update scales with the size of [X, 1]
    cap = min(20_000 if config.quick else 200_000, max(1_000, WORK_CAP // cells))
    rows, trainers = [], {}
    for lr in rates:
        predicted = analysis.predicted_iterations(lr, TOLERANCE)
        measured = (measured_iterations(data.X, data.y, W0, b0, lr, min(cap, room_past(predicted)))
                    if math.isfinite(predicted) else -1)
        for name in implementations(config):
            # slow implementations, and every one on large data, make fewer updates per rate
            slow = registry.slow_iterations(name)
            iterations = min(slow or config.iterations, max(SHORT_RUN, WORK_CAP // cells))
            if iterations < config.iterations and lr not in far:
                continue  # a short run cannot tell the sides apart near the threshold
            for dtype in (config.dtypes[-1:] if config.quick else config.dtypes):  # quick: one dtype
                if slow and dtype != config.dtypes[-1]:
                    continue  # one dtype for the slow ones
                if ctx.progress:
                    ctx.progress(f"lr_sweep {name} {dtype} lr={lr:.4g}")
                first_call = (name, dtype) not in trainers  # its seconds include tracing and compiling
                if first_call:  # one per implementation and dtype: the rate is an input
                    X, y = data.X.astype(dtype), data.y.astype(dtype)
                    trainers[name, dtype] = make_trainer(name, X, y, float(lr), iterations, device="cpu")
                began = time.perf_counter()
                result = trainers[name, dtype](W0, b0, float(lr))
                seconds = time.perf_counter() - began
                observed = "stable" if result.diverged_at is None else "unstable"
                rows.append({
                    "implementation": name, "dtype": dtype, "lr": lr, "lr_over_threshold": lr / threshold,
                    "threshold": threshold, "lambda_min": analysis.lambda_min, "lambda_max": analysis.lambda_max,
                    "iterations": iterations, "theory_side": side(lr, threshold), "observed_side": observed,
                    "agrees_with_theory": observed == side(lr, threshold),
                    "initial_loss": float(result.loss_curve[0]), "final_loss": float(result.loss_curve[-1]),
                    "diverged_at": -1 if result.diverged_at is None else result.diverged_at,
                    "predicted_iterations": predicted if math.isfinite(predicted) else -1.0,
                    "measured_iterations": measured, "tolerance": TOLERANCE, "seconds": seconds,
                    "data_source": data.source, "first_call": first_call,
                })
    return pd.DataFrame(rows)


def figure(table, lr=None):
    """Final loss against lr with the threshold, the run's rate `lr` and the shorter runs marked; predicted vs
    measured iterations (the Figure, unsaved). Without `lr` the lesson's rate is marked."""
    from matplotlib.lines import Line2D

    from comparisons.output.figures import colour, legend_outside, plt, title  # Agg backend, loaded only to draw

    lr = LESSON_RATES[0] if lr is None else float(lr)
    fig, (ax_l, ax_i) = plt.subplots(1, 2, figsize=(14, 6.8))
    threshold = table.threshold.iloc[0]
    full = int(table.iterations.max())
    dtypes = sorted(set(table.dtype), key=lambda d: np.finfo(d).eps)  # float64 first: filled markers
    short_runs = table[table.iterations < full]
    # every way keeps its colour of every figure; the legend names the styles, not the ways (they coincide)
    for (name, dtype), rows in table.groupby(["implementation", "dtype"]):
        ok, bad = rows[rows.diverged_at < 0], rows[rows.diverged_at >= 0]
        filled = dtype == dtypes[0]
        ax_l.loglog(ok.lr, ok.final_loss, "o", color=colour(name), mfc=colour(name) if filled else "none", ms=6,
                    alpha=0.7, gid=f"{name} [{dtype}]", label="_")
        ax_l.loglog(bad.lr, np.minimum(np.nan_to_num(bad.final_loss, posinf=1e300), 1e300), "x", color="red",
                    alpha=0.8, label="_")
    for dtype in dtypes:
        ways = table[table.dtype == dtype].implementation.nunique()
        ax_l.plot([], [], "o", color="dimgray", mfc="dimgray" if dtype == dtypes[0] else "none",
                  label=f"{dtype}: {ways} ways of training, {'filled' if dtype == dtypes[0] else 'hollow'} "
                        "(colour: the way, as in every figure)")
    ax_l.plot([], [], "x", color="red", label="diverged (loss at the iteration of divergence)")
    if len(short_runs):
        slow = short_runs.groupby("implementation").iterations.max()
        ax_l.loglog(short_runs.lr, np.minimum(np.nan_to_num(short_runs.final_loss, posinf=1e300), 1e300), ".",
                    color="black", ms=4, label=f"fewer than {full} iterations, stopped early: "
                    + join(f"{title(n)} ({int(k)})" for n, k in slow.items()))
    ax_l.axvline(threshold, color="black", ls="--", label=f"2 / lambda_max = {threshold:.3g}")
    ax_l.axvline(lr, color="tab:green", lw=2, alpha=0.6,
                 label=f"the run's rate lr = {lr:g}" + (" (the lesson's)" if lr == LESSON_RATES[0] else ""))
    others = [r for r in LESSON_RATES if r != lr]
    for k, rate in enumerate(others):
        ax_l.axvline(rate, color="grey", ls=":", lw=1,
                     label=f"the lesson's other rates ({join(f'{r:g}' for r in others)})" if k == 0 else "_")
    ax_l.set(xlabel="learning rate (log)", ylabel="loss at the last iteration run (MSE, log)",
             title="final loss against the rate (runs of the same length coincide)\n"
                   "green: the run's rate; dashed: the threshold 2 / lambda_max")
    legend_outside(ax_l, fontsize=7, ncol=1)
    good = _iteration_rows(table)
    ax_i.loglog(good.lr, good.predicted_iterations, "-o", color="black", ms=4,
                label="predicted log(tol) / log(max|1 - lr lambda|)")
    ax_i.loglog(good.lr, good.measured_iterations, "s", color=colour(registry.REFERENCE), mfc="none", ms=8,
                label=f"measured ({title(registry.REFERENCE)}, float64)")
    ax_i.axvline(threshold, color="black", ls="--")
    ax_i.axvline(lr, color="tab:green", lw=2, alpha=0.6)
    ax_i.set(xlabel="learning rate (log)", ylabel="iterations to shrink ||theta - theta_ols|| by 1e-6 (log)",
             title="iterations to tolerance\n(green: the run's rate, dashed: the threshold 2 / lambda_max)")
    ax_i.legend(fontsize=8)
    for ax in (ax_l, ax_i):
        ax.grid(True, which="both", alpha=0.3)
    return fig


def plot(table, out_dir):
    """lr_sweep.png, marking the run's rate from out_dir's config.json (the lesson's when there is none)."""
    from comparisons.output.figures import save

    config = Path(out_dir) / "config.json"
    lr = json.loads(config.read_text()).get("lr") if config.exists() else None
    return [save(figure(table, lr), Path(out_dir) / f"{NAME}.png")]


def _iteration_rows(table):
    """One row per stable rate whose numpy run reached the tolerance: predicted and measured iterations."""
    per_lr = table.drop_duplicates("lr")
    return per_lr[(per_lr.predicted_iterations > 0) & (per_lr.measured_iterations >= 0)]


def _coverage(table):
    """'numpy and keras in float32 and float64 at 9 rates; `x` in float64 at 5 rates': who ran where, from the table."""
    cover = table.groupby("implementation", sort=False).agg(
        dtypes=("dtype", lambda d: join(sorted(set(d)))), rates=("lr", "nunique"))
    groups = cover.reset_index().groupby(["dtypes", "rates"], sort=False).implementation.apply(list)
    return "; ".join(f"{join(f'`{n}`' for n in names) if len(names) <= 3 else f'{len(names)} implementations'} "
                     f"in {dtypes} at {plural(rates, 'rate')}"
                     for (dtypes, rates), names in groups.items())


def _disagreeing(table):
    """The runs that landed on the other side of the threshold than theory predicts."""
    return table[~table.agrees_with_theory.astype(bool)]


def agreement_sentence(table):
    """Whether every run landed on the side theory predicts, naming who ran at which rates and dtypes."""
    disagree = _disagreeing(table)
    ratios = table.lr_over_threshold
    near = ratios[(ratios > 0.95) & (ratios < 1.05)]
    span = (f"{ratios.min():.3g}x to {ratios.max():.3g}x the threshold"
            + (f", nearest it {join(f'{r:.3g}x' for r in sorted(near.unique()))}" if len(near) else ""))
    if disagree.empty:
        return (f"Every one of the {len(table)} runs landed on the side theory predicts ({span}): "
                f"{_coverage(table)}.")
    return (f"**{plural(len(disagree), 'run')} of {len(table)} disagree with theory**: " + "; ".join(
        f"`{r.implementation}` [{r.dtype}] at lr {r.lr:.4g} ({r.lr_over_threshold:.3g}x) was {r.observed_side}"
        for r in disagree.itertuples()) + f". Runs made ({span}): {_coverage(table)}.")


FINDINGS = {
    "lr_sweep": ("**Full-batch descent is stable only for learning rates below {threshold:.3g} here:** all {runs:n} runs "
                 "of the sweep ({implementations:n} implementations, {low:.3g}x to {high:.3g}x the threshold) landed on "
                 "the side it predicts."),
    "lr_sweep_disagree": ("**Full-batch descent is stable only for learning rates below {threshold:.3g} here, but "
                          "{disagree:n} of {runs:n} runs of the sweep did not** land on the predicted side."),
    "lr_sweep_why": ("The threshold is 2/lambda_max, lambda_max = {lambda_max:.4g} being the largest eigenvalue of the "
                     "loss's curvature (its Hessian 2/n [X, 1]^T [X, 1]); at the stable rates ({stable_rates:n}) the "
                     "numpy float64 run needed {share_low:.2f} to {share_high:.2f} of the predicted iterations to close "
                     "the distance to least squares to {tolerance:g} of its start."),
    "lr_sweep_why_alone": ("The threshold is 2/lambda_max, lambda_max = {lambda_max:.4g} being the largest eigenvalue "
                           "of the loss's curvature (its Hessian 2/n [X, 1]^T [X, 1])."),
}


def findings(table):
    """Two Findings: below which rate descent is stable and whether the runs obeyed it (the answer); the bound and how
    close the measured iterations came to the predicted ones."""
    t = table.iloc[0]
    disagree = len(_disagreeing(table))
    side = dict(threshold=float(t.threshold), runs=len(table), implementations=table.implementation.nunique(),
                low=float(table.lr_over_threshold.min()), high=float(table.lr_over_threshold.max()), disagree=disagree)
    kind = "lr_sweep" if disagree == 0 else "lr_sweep_disagree"
    good = _iteration_rows(table)
    why = dict(lambda_max=float(t.lambda_max))
    if good.empty:
        second = Finding("lr_sweep_why_alone", why, FINDINGS["lr_sweep_why_alone"])
    else:
        share = good.measured_iterations / good.predicted_iterations
        why.update(stable_rates=len(good), share_low=float(share.min()), share_high=float(share.max()),
                   tolerance=float(good.tolerance.iloc[0]))
        second = Finding("lr_sweep_why", why, FINDINGS["lr_sweep_why"])
    return [Finding(kind, side, FINDINGS[kind]), second]


def _short_runs(table):
    """'name: k iterations, ...' for the implementations that ran fewer iterations than the most, or 'none'."""
    most = table.iterations.max()
    short = table[table.iterations < most].groupby("implementation").iterations.max()
    return ", ".join(f"`{name}` {k} iterations" for name, k in short.items()) or "none"


def report_section(table):
    """Markdown: the threshold, whether every run agreed with it, and predicted vs measured iterations."""
    t = table.iloc[0]
    iterations = table.drop_duplicates("lr")[["lr", "lr_over_threshold", "predicted_iterations", "measured_iterations"]]
    stable = iterations.predicted_iterations > 0
    reached = iterations.measured_iterations >= 0
    shown = pd.DataFrame({
        "lr": iterations.lr.map("{:.4g}".format), "lr / threshold": iterations.lr_over_threshold.map("{:.3g}".format),
        "predicted": np.where(stable, iterations.predicted_iterations.map("{:.0f}".format), "never (unstable)"),
        "measured": np.where(reached, iterations.measured_iterations.astype(int).astype(str),
                             np.where(stable, "not reached", "-")),
        "measured / predicted": np.where(stable & reached, (iterations.measured_iterations
                                                            / iterations.predicted_iterations).map("{:.2f}".format), ""),
    })
    lines = [
        "## Learning-rate stability against the Hessian", "", f"![final loss and iterations against lr]({NAME}.png)", "",
        f"Data: {t.get('data_source', 'not recorded')}. The Hessian of the MSE, 2/n [X, 1]^T [X, 1], has eigenvalues "
        f"{t.lambda_min:.4g} to {t.lambda_max:.4g} (condition number {t.lambda_max / t.lambda_min if t.lambda_min > 0 else float('inf'):.3g}), so full-batch "
        f"descent is stable only for lr < 2 / lambda_max = **{t.threshold:.4g}**. The lesson's rates are "
        + join(f"{lr:g} = {lr / t.threshold:.3g}x" for lr in LESSON_RATES) + " the threshold.",
        "", agreement_sentence(table) + " Shorter runs (slow implementations, or large data) were made only at the "
        f"lesson's rates and outside 0.5x-2x the threshold: {_short_runs(table)}.",
        "",
        f"Iterations to bring the distance to the least-squares parameters down to {t.tolerance:g} of its start "
        "(predicted: log(tol) / log(max_i |1 - lr lambda_i|), an upper bound; measured: the numpy float64 run):",
        "", md_table(shown),
    ]
    return "\n".join(lines)
