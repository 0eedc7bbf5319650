"""Batch vs mini-batch vs stochastic descent, numpy and Keras on the same sample order, in float64.

For batch sizes n, 32 and 1 both implementations get the same list of index arrays (one seeded
permutation per epoch, cut into batches), so their paths must coincide step for step. The
full-data loss per epoch comes from the numpy run's parameter trajectory; the per-step batch
losses (what each implementation logs) go to variants_steps.csv and are compared between the two.
"""
import math
from pathlib import Path

import numpy as np
import pandas as pd

import handrolled

from ..data import order_seed
from ..implementations import make_trainer
from ..prose import join, md_table
from ..tolerances import EQUIVALENCE
from ..timing import time_interleaved
from . import study_data

NAME = "variants"
DTYPE = "float64"  # the equivalence check needs float64
IMPLEMENTATIONS = ("numpy", "keras")
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


def run_variant(X, y, W0, b0, lr, batch_size, epochs, seed, repeats=3):
    """Train numpy and Keras on one batch size; return (per-epoch rows, per-step rows)."""
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
    # built once (Keras compiles on the first call), then timed in interleaved rounds like the single run
    trainers = {name: make_trainer(name, X, y, lr, steps, batches=batches) for name in IMPLEMENTATIONS}
    warm, timings = time_interleaved({name: (lambda t=t: t(W0, b0)) for name, t in trainers.items()}, repeats, seed=seed)
    numpy_result = warm["numpy"]
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
    """Each batch size for numpy and Keras on the study's data (float64); per-epoch table, per-step CSV."""
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
                                            repeats=2 if config.quick else 5)  # 5: [min, max] covers the median at >= 90 %
        rows += [{**row, "data_source": data.source, "n_samples": data.n} for row in epoch_rows]
        steps += step_rows
    pd.DataFrame(steps).to_csv(Path(ctx.out_dir) / f"{NAME}_steps.csv", index=False, float_format="%.17g")
    return pd.DataFrame(rows)


def figure(table):
    """Full-data loss above OLS against epochs and against wall-clock time (the Figure, unsaved)."""
    from ..figures import plt  # matplotlib with the Agg backend, loaded only to draw

    fig, (ax_e, ax_t) = plt.subplots(1, 2, figsize=(13, 5))
    colours = dict(zip(sorted(table.batch_size.unique(), reverse=True), ("C0", "C1", "C2", "C3")))
    for (name, batch_size), rows in table.groupby(["implementation", "batch_size"]):
        rows = rows.sort_values("epoch")
        excess = np.maximum(rows.full_loss - rows.ols_loss, 1e-17)  # log scale: floor at rounding
        style = dict(color=colours[batch_size], ls="-" if name == "numpy" else "--",
                     marker="" if name == "numpy" else "o", mfc="none", ms=4)
        label = f"{name}, batch {batch_size}"
        ax_e.semilogy(rows.epoch, excess, label=label, **style)
        ax_t.loglog(rows.wall_s[rows.epoch > 0], excess[rows.epoch > 0], label=label, **style)
    ax_e.set(xlabel="epoch (passes over the data)", ylabel="full-data MSE minus the OLS MSE (log)",
             title="loss against epochs (keras dashed over numpy solid: the same path)")
    ax_t.set(xlabel="wall-clock time (s, median run / epochs x epoch, log)", ylabel="full-data MSE minus the OLS MSE (log)",
             title="loss against time")
    for ax in (ax_e, ax_t):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def plot(table, out_dir):
    """variants.png."""
    from ..figures import save

    return [save(figure(table), Path(out_dir) / f"{NAME}.png")]


def _last_epoch(table):
    """(epochs, numpy's rows at the last epoch by batch size, the largest keras-vs-numpy step difference or nan)."""
    epochs = int(table.epoch.max())
    last = table[table.epoch == epochs]
    keras_rows = last[last.implementation == "keras"]
    worst = keras_rows.max_rel_step_loss_diff_vs_numpy.max() if not keras_rows.empty else math.nan
    return epochs, last[last.implementation == "numpy"].set_index("batch_size").sort_index(), worst


def findings(table):
    """Findings: whether Keras follows numpy's mini-batch path, and what the batch size buys per epoch."""
    epochs, numpy_last, worst = _last_epoch(table)
    sizes = list(numpy_last.index)
    out = []
    if not math.isnan(worst):
        out.append(f"Fed the same sample order, Keras follows numpy's path at batch sizes {join(sizes)} "
                   f"(largest relative difference of the per-step losses {worst:.2g})." if worst <= AGREEMENT else
                   f"**Keras and numpy part ways on the same sample order**: per-step losses differ by up to {worst:.2g}.")
    if len(sizes) >= 2:
        small, full = numpy_last.iloc[0], numpy_last.iloc[-1]
        out.append(f"After {epochs} epochs batch size {sizes[0]} is {small.full_loss - small.ols_loss:.2g} above the "
                   f"least-squares loss and batch size {sizes[-1]} {full.full_loss - full.ols_loss:.2g}.")
    return out


def report_section(table):
    """Markdown: agreement of numpy and Keras per batch size, and what each variant buys per epoch and per second."""
    epochs, _, worst = _last_epoch(table)
    last = table[table.epoch == epochs]
    keras_rows = last[last.implementation == "keras"]
    lines = ["## Batch, mini-batch and stochastic descent", "", f"![loss against epochs and time]({NAME}.png)", "",
             f"numpy and Keras trained on the same float64 data ({table.iloc[0].get('data_source', 'not recorded')}) with lr = "
             f"{table.lr.iloc[0]:g}, for {epochs} epochs per "
             "batch size, each fed the same seeded sample order (one permutation per epoch). Full-data loss per "
             "epoch comes from the numpy trajectory; each implementation's own per-step batch loss is in "
             f"`{NAME}_steps.csv`.", ""]
    n = table.iloc[0].get("n_samples", math.nan)
    left_out = [b for b in (32, 1) if b < n and b not in set(table.batch_size)]
    if left_out:
        lines += [f"Left out: batch size {', '.join(map(str, left_out))}, whose one epoch of the {int(n):,} rows would "
                  f"take more than {STEP_CAP:,} updates.", ""]
    if math.isnan(worst):
        lines.append("Only numpy ran (no Keras rows): there is no second implementation to compare its path with.")
    elif worst <= AGREEMENT:
        lines.append("numpy and Keras follow the same path at every batch size: the largest relative difference "
                     f"of their per-step batch losses is {worst:.2g} (threshold {AGREEMENT:g}), the largest parameter "
                     f"difference {keras_rows.max_abs_param_diff_vs_numpy.max():.2g}.")
    else:
        lines.append(f"**numpy and Keras differ**: relative per-step loss difference up to {worst:.2g} "
                     f"(threshold {AGREEMENT:g}).")
    rows = []
    for batch_size, group in table.groupby("batch_size", sort=False):
        np_rows, k_rows = group[group.implementation == "numpy"], group[group.implementation == "keras"]
        one, end = np_rows[np_rows.epoch == 1].iloc[0], np_rows[np_rows.epoch == epochs].iloc[0]
        ms = lambda r: f"{r.median_s.iloc[0] / epochs * 1e3:.3g}" if not r.empty else "-"
        rows.append({"batch size": batch_size, "updates/epoch": int(one.steps),
                     "excess loss after 1 epoch": f"{one.full_loss - one.ols_loss:.3g}",
                     "after the last": f"{end.full_loss - end.ols_loss:.3g}", "numpy ms/epoch": ms(np_rows),
                     "keras ms/epoch": ms(k_rows),
                     "keras first call (s)": f"{k_rows.first_call_s.iloc[0]:.2f}" if not k_rows.empty else "-"})
    lines += ["", md_table(pd.DataFrame(rows))]
    by_size = {b: r[(r.implementation == "numpy") & (r.epoch == epochs)].iloc[0] for b, r in table.groupby("batch_size")}
    sizes = sorted(by_size)
    if len(sizes) >= 2:
        sgd, full = by_size[sizes[0]], by_size[sizes[-1]]
        lines += ["", f"Per epoch, smaller batches make more updates and get closer to the optimum sooner "
                  f"(after {epochs} epochs: batch {sizes[0]} is {sgd.full_loss - sgd.ols_loss:.3g} above the OLS loss, "
                  f"full batch {full.full_loss - full.ols_loss:.3g}); with a fixed lr the single-sample path keeps "
                  "jittering around the optimum instead of settling. Per second the picture depends on the "
                  "per-update overhead: numpy and Keras pay a fixed cost per update, which batch size 1 pays n times per epoch."]
    return "\n".join(lines)
