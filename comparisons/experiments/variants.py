"""Batch vs mini-batch vs stochastic descent, numpy and every mini-batch row on the same sample order, in float64.

For batch sizes n, 32 and 1 every implementation that can follow a sample order (registry field
`minibatch`: numpy, Keras fit, Keras on JAX) gets the same list of index arrays (one seeded
permutation per epoch, cut into batches), so their paths must coincide step for step. The
full-data loss per epoch comes from the numpy run's parameter trajectory; the per-step batch
losses (what each implementation logs) go to variants_steps.csv and are compared with numpy's.
"""
import math
from pathlib import Path

import numpy as np
import pandas as pd

import handrolled

from comparisons.core import registry
from comparisons.inputs.data import order_seed
from comparisons.running.implementations import make_trainer
from comparisons.output.prose import join, md_table
from comparisons.core.tolerances import EQUIVALENCE
from comparisons.running.timing import time_interleaved
from comparisons.experiments import study_data
from comparisons.output.findings import Finding

NAME = "variants"
DTYPE = "float64"  # the equivalence check needs float64
STEP_CAP = 20_000  # most single-sample updates per run (the epochs shrink on large data)
AGREEMENT = EQUIVALENCE[DTYPE]  # largest relative difference of per-step batch losses that counts as "the same path"


def epochs_for(config):
    """Epochs per batch size: the number of passes over the data."""
    return 5 if config.quick else (50 if config.full else 20)


def batch_sizes(n):
    """The lesson's three variants: full batch, mini-batches of 32, single samples."""
    return tuple(dict.fromkeys((n, min(32, n), 1)))


def relative_difference(a, b):
    """Largest |a - b| / max(|a|, |b|, tiny), elementwise over two equal-length arrays."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), np.finfo(np.float64).tiny)
    return float(np.max(np.abs(a - b) / scale))


def implementations(only):
    """numpy, then every other row among `only` that follows a sample order, in registry order."""
    others = [name for name in registry.names() if name in only and name != registry.REFERENCE
              and registry.get(name).minibatch]
    return [registry.REFERENCE, *others]


def run_variant(X, y, W0, b0, lr, batch_size, epochs, seed, repeats=3, names=(registry.REFERENCE,), budget_s=math.inf):
    """Train `names` on one batch size; return (per-epoch rows, per-step rows).

    Each row gets up to `repeats` timed calls, fewer when they would pass `budget_s` at its pace (the single
    run's rule: comparisons.running.timing.calls_owed)."""
    n = X.shape[0]
    per_epoch = math.ceil(n / batch_size)  # updates per pass over the data
    steps = epochs * per_epoch
    order = handrolled.sample_order(n, epochs, order_seed(seed))  # (epochs, n)
    batches = handrolled.batch_indices(order, batch_size, steps)  # steps index arrays, shared by both
    # the numpy path with its parameters at every step: [W^T, b] before update i, shape (steps + 1, m + 1)
    path = handrolled.descend(X, y, W0, b0, lr, steps, batches=batches, keep_trajectory=True)
    trajectory = path.trajectory
    at_epochs = trajectory[::per_epoch]  # (epochs + 1, m + 1): parameters at each epoch boundary
    full_loss = np.mean((y - (X @ at_epochs[:, :-1].T + at_epochs[:, -1])) ** 2, axis=0)  # (epochs + 1,)
    W_ols, b_ols = handrolled.ols(X, y)
    ols_loss = float(handrolled.mse(y, handrolled.predict(X, W_ols, b_ols)))
    epoch_rows, step_rows = [], []
    # built once (compiled frameworks compile on the first call), then timed in interleaved rounds like the single
    # run; a row that times itself (its own process) does so there, by the same rule
    trainers = {name: make_trainer(name, X, y, lr, steps, batches=batches) for name in names}
    own = {name: t(W0, b0, repeats=repeats, budget_s=budget_s)
           for name, t in trainers.items() if t.spec.implementation.own_process}
    warm, timings = time_interleaved({name: (lambda t=t: t(W0, b0)) for name, t in trainers.items() if name not in own},
                                     repeats, budget_s, seed=seed)
    warm = {name: warm.get(name) or own[name] for name in names}
    timings.update({name: result.timing for name, result in own.items()})
    numpy_result = warm[registry.REFERENCE]
    for name, result in warm.items():
        timing = timings[name]
        low, high, coverage = timing.interval
        batch_losses = result.loss_curve[:steps]  # (steps,): loss on the batch before each update
        step_diff = relative_difference(batch_losses, numpy_result.loss_curve[:steps])
        weight_diff = float(max(np.max(np.abs(result.weights - numpy_result.weights)),
                                abs(result.bias - numpy_result.bias)))
        per_epoch_s = timing.median_s / epochs
        for e in range(epochs + 1):
            in_epoch = batch_losses[(e - 1) * per_epoch:e * per_epoch] if e else batch_losses[:0]
            epoch_rows.append({
                "implementation": name, "dtype": str(X.dtype), "lr": lr, "batch_size": batch_size, "epoch": e,
                "steps": e * per_epoch, "wall_s": e * per_epoch_s, "full_loss": float(full_loss[e]),
                "mean_batch_loss": float(np.mean(in_epoch)) if len(in_epoch) else math.nan,
                "ols_loss": ols_loss, "final_loss_own": float(result.loss_curve[-1]),
                "max_rel_step_loss_diff_vs_numpy": step_diff, "max_abs_param_diff_vs_numpy": weight_diff,
                "first_call_s": timing.first_call_s, "median_s": timing.median_s, "repeats": timing.repeats,
                "status": result.status, "updates_per_call": steps, "median_low_s": low, "median_high_s": high,
                "interval_coverage": coverage,
            })
        step_rows += [{"implementation": name, "batch_size": batch_size, "step": i, "batch_loss": float(v)}
                      for i, v in enumerate(batch_losses)]
    return epoch_rows, step_rows


def run(ctx):
    """Each batch size for numpy and the other mini-batch rows on the study's data (float64); per-epoch table, per-step CSV."""
    config = ctx.config
    data, W0, b0 = study_data(ctx)
    X, y = data.X.astype(DTYPE), data.y.astype(DTYPE)
    # batch size 1 makes n updates per epoch: on a large file fewer epochs keep it to STEP_CAP updates,
    # and a batch size whose single epoch would pass STEP_CAP updates is left out (the report says so)
    epochs = min(epochs_for(config), max(1, STEP_CAP // data.n))
    rows, steps = [], []
    for batch_size in [b for b in batch_sizes(data.n) if math.ceil(data.n / b) <= STEP_CAP]:
        if ctx.progress:
            ctx.progress(f"variants batch size {batch_size}")
        epoch_rows, step_rows = run_variant(X, y, W0, b0, config.lr, batch_size, epochs, config.seed,
                                            repeats=2 if config.quick else 5, names=implementations(config.only),  # 5: [min, max] covers the median at >= 90 %
                                            budget_s=config.time_budget_s)
        rows += [{**row, "data_source": data.source, "n_samples": data.n} for row in epoch_rows]
        steps += step_rows
    pd.DataFrame(steps).to_csv(Path(ctx.out_dir) / f"{NAME}_steps.csv", index=False, float_format="%.17g")
    return pd.DataFrame(rows)


def figure(table):
    """Full-data loss above OLS against epochs and against wall-clock time (the Figure, unsaved).

    Each implementation keeps its colour of every figure; numpy is a pale band and the others thin lines
    over it, so a path that coincides with numpy's shows inside the band. The batch size is the marker.
    """
    from matplotlib.lines import Line2D

    from comparisons.output.figures import colour, plt, title  # matplotlib with the Agg backend, loaded only to draw

    fig, (ax_e, ax_t) = plt.subplots(1, 2, figsize=(13, 5.4))
    batches = sorted(table.batch_size.unique(), reverse=True)
    markers = dict(zip(batches, "os^Dv<>"))
    others = [n for n in dict.fromkeys(table.implementation) if n != registry.REFERENCE]
    looks = {registry.REFERENCE: dict(ls="-", lw=5, alpha=0.35, solid_capstyle="butt", zorder=1)}
    looks.update({name: dict(ls=("--", ":", "-.")[k % 3], lw=1.2, zorder=2) for k, name in enumerate(others)})
    for (name, batch_size), rows in table.groupby(["implementation", "batch_size"]):
        rows = rows.sort_values("epoch")
        excess = np.maximum(rows.full_loss - rows.ols_loss, 1e-17)  # log scale: floor at rounding
        style = dict(color=colour(name), marker=markers[batch_size] if name != registry.REFERENCE else "", mfc="none",
                     ms=4, **looks[name])
        label = f"{title(name)}, batch {batch_size}"
        ax_e.semilogy(rows.epoch, excess, label=label, **style)
        ax_t.loglog(rows.wall_s[rows.epoch > 0], excess[rows.epoch > 0], label=label, **style)
        if name == registry.REFERENCE:  # the batch size written at the end of numpy's path, in both panels
            ax_e.annotate(f"batch {batch_size}", (rows.epoch.iloc[-1], excess.iloc[-1]), xytext=(4, 0),
                          textcoords="offset points", va="center", fontsize=8, gid="batch label")
            ax_t.annotate(f"batch {batch_size}", (rows.wall_s.iloc[-1], excess.iloc[-1]), xytext=(4, 0),
                          textcoords="offset points", va="center", fontsize=7, color="dimgray", gid="batch label")
    ax_e.set(xlabel="epoch (passes over the data)", ylabel="full-data MSE minus the OLS MSE (log)",
             title="loss against epochs: the same path in every implementation")
    ax_t.set(xlabel="wall-clock time from the start of training, s (log; epochs done x the median run's time per epoch)",
             ylabel="full-data MSE minus the OLS MSE (log)", title="loss against time")
    ax_t.xaxis.label.set_fontsize(8.5)
    ax_e.set_xlim(right=ax_e.get_xlim()[1] * 1.08)  # room for the batch labels
    for ax in (ax_e, ax_t):
        ax.grid(True, which="both", alpha=0.3)
    key = [Line2D([], [], color=colour(n), **{k: v for k, v in looks[n].items() if k in ("ls", "lw", "alpha")},
                  label=title(n) + (" (pale band)" if n == registry.REFERENCE else "")) for n in dict.fromkeys(table.implementation)]
    key += [Line2D([], [], color="dimgray", ls="", marker=markers[b], mfc="none", label=f"batch {b}") for b in batches]
    fig.legend(handles=key, loc="lower center", ncol=len(key), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def plot(table, out_dir):
    """variants.png."""
    from comparisons.output.figures import save

    return [save(figure(table), Path(out_dir) / f"{NAME}.png")]


def _last_epoch(table):
    """(epochs, numpy's rows at the last epoch by batch size, {other row: its largest step difference from numpy})."""
    epochs = int(table.epoch.max())
    last = table[table.epoch == epochs]
    others = last[last.implementation != registry.REFERENCE]
    worst = others.groupby("implementation", sort=False).max_rel_step_loss_diff_vs_numpy.max().to_dict()
    return epochs, last[last.implementation == registry.REFERENCE].set_index("batch_size").sort_index(), worst


def _titles(rows):
    """The rows' titles in italics, as a reader sees them elsewhere (the registry's title, not its id)."""
    return [f"*{registry.label(name)}*" for name in rows]


def _names(rows):
    """The rows' titles joined in a phrase."""
    return join(_titles(rows))


FINDINGS = {
    "variants_same_path": ("**Given the same shuffled order of samples, numpy's steps are taken exactly by {ways:l}** "
                           "(float64) at batch sizes {sizes:l}: per-step losses differ by at most {worst:.2g} relative."),
    "variants_apart": ("**On the same sample order, numpy's path is left by {apart:l}**: per-step losses differ by up "
                       "to {worst:.2g} relative."),
    "variants_excess": ("After {epochs:n} passes over the data, batches of {small:n} end {small_excess:.2g} above the "
                        "least-squares loss and full batches {full_excess:.2g}."),
}


def findings(table):
    """Findings: whether the other mini-batch rows follow numpy's path, and what the batch size buys per epoch."""
    epochs, numpy_last, worst = _last_epoch(table)
    sizes = list(numpy_last.index)
    out = []
    if worst:
        apart = {name: w for name, w in worst.items() if not w <= AGREEMENT}
        if not apart:
            out.append(Finding("variants_same_path", dict(ways=_titles(worst), sizes=[int(b) for b in sizes],
                                                          worst=float(max(worst.values()))), FINDINGS["variants_same_path"]))
        else:
            out.append(Finding("variants_apart", dict(apart=_titles(apart), worst=float(max(apart.values()))),
                               FINDINGS["variants_apart"]))
    if len(sizes) >= 2:
        small, full = numpy_last.iloc[0], numpy_last.iloc[-1]
        out.append(Finding("variants_excess", dict(epochs=epochs, small=int(sizes[0]),
                                                   small_excess=float(small.full_loss - small.ols_loss),
                                                   full_excess=float(full.full_loss - full.ols_loss)),
                           FINDINGS["variants_excess"]))
    return out


def report_section(table):
    """Markdown: agreement with numpy per batch size, and what each variant buys per epoch and per second."""
    epochs, _, worst = _last_epoch(table)
    last = table[table.epoch == epochs]
    others = [name for name in dict.fromkeys(table.implementation) if name != registry.REFERENCE]
    lines = ["## Batch, mini-batch and stochastic descent", "", f"![loss against epochs and time]({NAME}.png)", "",
             f"{_names([registry.REFERENCE, *others])} trained on the same float64 data "
             f"with lr = {table.lr.iloc[0]:g}, {epochs} epochs (passes over the data) per batch size, in the same "
             f"seeded sample order; excess loss is numpy's full-data loss above least squares (per-step batch losses: "
             f"`{NAME}_steps.csv`).", ""]
    n = table.iloc[0].get("n_samples", math.nan)
    left_out = [b for b in (32, 1) if b < n and b not in set(table.batch_size)]
    if left_out:
        lines += [f"Left out: batch size {', '.join(map(str, left_out))}, whose one epoch of the {int(n):,} rows would "
                  f"take more than {STEP_CAP:,} updates.", ""]
    if not worst:
        lines.append("Only numpy ran: there is no second implementation to compare its path with.")
    for name, w in worst.items():
        params = last[last.implementation == name].max_abs_param_diff_vs_numpy.max()
        lines.append(f"- {registry.label(name)}: " + (
            f"numpy's path at every batch size (per-step losses within {w:.2g} relative, threshold {AGREEMENT:g}; "
            f"parameters within {params:.2g})." if w <= AGREEMENT else
            f"**differs from numpy**: relative per-step loss difference up to {w:.2g} (threshold {AGREEMENT:g})."))
    rows = []
    for batch_size, group in table.groupby("batch_size", sort=False):
        np_rows = group[group.implementation == registry.REFERENCE]
        one, end = np_rows[np_rows.epoch == 1].iloc[0], np_rows[np_rows.epoch == epochs].iloc[0]
        row = {"batch size": batch_size, "updates/epoch": int(one.steps),
               "excess loss after 1 epoch": f"{one.full_loss - one.ols_loss:.3g}",
               "after the last": f"{end.full_loss - end.ols_loss:.3g}"}
        for name in [registry.REFERENCE, *others]:
            r = group[group.implementation == name]
            row[f"ms/epoch, {registry.label(name)}"] = f"{r.median_s.iloc[0] / epochs * 1e3:.3g}" if not r.empty else "-"
        for name in others:
            r = group[group.implementation == name]
            row[f"first call (s), {registry.label(name)}"] = f"{r.first_call_s.iloc[0]:.2f}" if not r.empty else "-"
        rows.append(row)
    lines += ["", md_table(pd.DataFrame(rows))]
    by_size = {b: r[(r.implementation == registry.REFERENCE) & (r.epoch == epochs)].iloc[0]
               for b, r in table.groupby("batch_size")}
    sizes = sorted(by_size)
    if len(sizes) >= 2:
        sgd, full = by_size[sizes[0]], by_size[sizes[-1]]
        lines += ["", f"Batch {sizes[0]} makes more updates per epoch than batch {sizes[-1]} and ends "
                  f"{'closer' if sgd.full_loss < full.full_loss else 'no closer'}, though "
                  "with a fixed lr a single-sample path jitters around the optimum; per second, it pays each "
                  "implementation's fixed cost per update n times per epoch."]
    return "\n".join(lines)
