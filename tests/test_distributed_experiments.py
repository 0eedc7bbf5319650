"""The distribution_support and distributed experiments: judging, derived figures, the report and the figure's artists."""
import math

import matplotlib.lines
import numpy as np
import pandas as pd
import pytest

import handrolled
from comparisons.experiments import projection
from comparisons.experiments import distributed as dist
from comparisons.experiments import distribution_support as support
from comparisons.processes.isolated import Failure
from comparisons.core.tolerances import EQUIVALENCE
from tf_models.distribution_probe import _first_line

from .conftest import legend_clear_of_axes

# ------------------------------------------------------------------ distribution_support


@pytest.fixture(scope="module")
def reference():
    rng = np.random.default_rng(3)
    X, y = rng.random((20, 1)), rng.random((20, 1))
    return handrolled.descend(X, y, np.array([[0.5]]), 0.1, 0.05, 10)


def _outcome(theta, curve=None, error=None):
    return {"weights": list(theta) if theta is not None else None, "loss_curve": curve, "error_class": error,
            "error_line": "it broke" if error else None, "seconds_per_step": 1e-3, "first_run_s": 0.5}


def test_judge_same_differs_fails(reference):
    theta = np.append(reference.weights.ravel(), reference.bias)
    curve = list(reference.loss_curve[:-1])
    assert support.judge(_outcome(theta, curve), reference, "float64")[0] == "same"
    nudged = theta * (1 + 1e-6)  # far beyond float64's 1e-10, within float32's 1e-4
    verdict, gap, detail = support.judge(_outcome(nudged, curve), reference, "float64")
    assert verdict == "differs" and gap == pytest.approx(1e-6, rel=1e-3) and "1e-06" in detail
    assert support.judge(_outcome(nudged, curve), reference, "float32")[0] == "same"
    doubled_loss = [2 * v for v in curve]  # right weights, wrong curve: still differs, by the curve's 1.0
    verdict, gap, _ = support.judge(_outcome(theta, doubled_loss), reference, "float64")
    assert verdict == "differs" and gap == pytest.approx(1.0)
    assert support.judge(_outcome(None, error="ValueError"), reference, "float64") == (
        "fails", pytest.approx(math.nan, nan_ok=True), "ValueError: it broke")
    verdict, _, detail = support.judge(Failure("k", "killed by SIGABRT", "abort"), reference, "float64")
    assert verdict == "fails" and detail == "killed by SIGABRT: abort"
    assert support.judge(_outcome([math.inf, 1.0], curve), reference, "float64")[0] == "differs"


def test_quick_plan_is_small_and_full_plan_is_the_whole_matrix():
    from comparisons.core.config import StudyConfig

    _, quick, _ = support.plan(StudyConfig(quick=True))
    assert list(quick) == ["mirrored"] and len(quick["mirrored"]) <= 8
    _, full, _ = support.plan(StudyConfig(full=True))
    combos = len(support.APIS) * len(support.FEEDS) * 3 * 2 * 2  # spe 1, 10, N; two n; two dtypes
    assert set(full) == set(support.STRATEGIES) and all(len(c) == combos for c in full.values())
    assert all(len({support.probe_key(c) for c in configs}) == len(configs) for configs in full.values())


def test_error_lines_state_the_error():
    graph = Exception("Graph execution error:\n\nDetected at node x defined at:\n  File \"a.py\", line 1\n\n"
                      "2 root error(s) found.\n  (0) INVALID_ARGUMENT:  You must feed a value\n\t [[{{node y}}]]\n"
                      "  (1) INVALID_ARGUMENT:  You must feed a value\n0 successful operations.")
    assert _first_line(graph) == "INVALID_ARGUMENT: You must feed a value"
    per_replica = ValueError("Attempt to convert a value (PerReplica:{\n  0: <tf.Tensor: 1.0>\n}) with an unsupported type")
    assert _first_line(per_replica) == "Attempt to convert a value (PerReplica:{...}) with an unsupported type"


def test_support_report_and_findings_read_the_table():
    table = pd.DataFrame([
        dict(strategy="mirrored", devices="cpu:0+cpu:1", api="tape", feed="distributed", steps_per_execution=20,
             n_samples=101, rows_divisible=False, dtype="float64", iterations=20, outcome="same", max_rel_diff=0.0,
             detail="weights and loss curve within 1e-10", seconds_per_step=0.00123, first_run_s=1.0),
        dict(strategy="mirrored", devices="cpu:0+cpu:1", api="keras", feed="numpy", steps_per_execution=1,
             n_samples=101, rows_divisible=False, dtype="float64", iterations=20, outcome="fails",
             max_rel_diff=math.nan, detail="InvalidArgumentError: AddN shapes", seconds_per_step=math.nan,
             first_run_s=0.3),
    ])
    text = support.report_section(table)
    assert "1 same, 0 differs, 1 fails" in text and "| **fails** |" in text and "1.23" in text
    assert "| keras | arrays | 1 |" in text and "| numpy |" not in text  # a feed, not the numpy row's title
    trailer = table.assign(detail=["weights within 1e-10", "InvalidArgumentError: AddN shapes [Op:AddN] name: "
                                   "'while/body/_1/while/cond/then/_115/Placeholder_1'"])
    assert "| InvalidArgumentError: AddN shapes |" in support.report_section(trailer)
    assert support._short_detail("must feed a value for placeholder tensor 'while/body/_1/while/cond/Placeholder_1' "
                                 "with dtype int32") == "must feed a value for placeholder tensor '...' with dtype int32"
    answer, cheapest = support.findings(table)
    assert answer.kind == "distribution_support" and answer.facts["ways"] == 2
    assert answer.facts["same"] + answer.facts["differs"] + answer.facts["fails"] == 2
    assert cheapest.kind == "distribution_support_cheapest_and_failure"
    assert cheapest.facts["step_ms"] == pytest.approx(1.23, rel=1e-3)
    assert cheapest.facts["failure"] == "InvalidArgumentError" and cheapest.facts["failures"] == 1


# ------------------------------------------------------------------------------ distributed

def test_network_from_allreduce_inverts_the_ring_model():
    latency, bandwidth = 50e-6, 2e9
    small_bytes, large_bytes = 132, 4 * 2**20
    for workers in (2, 4):
        small = (small_bytes, projection.ring_allreduce_s(workers, small_bytes, latency, bandwidth))
        large = (large_bytes, projection.ring_allreduce_s(workers, large_bytes, latency, bandwidth))
        got_latency, got_bandwidth = dist.network_from_allreduce(small, large, workers)
        # the small message's own bandwidth term, 2 (K - 1) / K B / beta over the 2 (K - 1) rounds, counts as latency
        assert got_latency == pytest.approx(latency + small_bytes / (workers * bandwidth), rel=1e-9)
        assert got_bandwidth == pytest.approx(bandwidth, rel=1e-9)


def test_compute_rates_from_one_replica_steps():
    steps = pd.DataFrame([
        dict(strategy="mirrored", replicas=1, n_samples=100, seconds_per_step=1e-4),
        dict(strategy="mirrored", replicas=1, n_samples=100_100, seconds_per_step=1e-4 + 100_000 * 33 * 2e-9),
        dict(strategy="mirrored", replicas=2, n_samples=100, seconds_per_step=9.0),  # ignored: not one replica
    ])
    rates = dist.compute_rates(steps, 1e-10, 3e-6)
    assert rates.step_overhead_s == pytest.approx(1e-4) and rates.value_s == pytest.approx(2e-9, rel=1e-9)


def test_mirrored_groups_share_one_process_split_into_the_largest_count():
    assert dist.mirrored_groups((4, 1, 2)) == {4: [1, 2, 4]}
    assert dist.mirrored_groups((1,)) == {1: [1]}


def _table():
    """A distributed table as run() builds it, with made-up measurements (no TensorFlow)."""
    measured = [dict(kind="measured", what="step", strategy=s, replicas=r, workers=w, n_samples=n, n_features=32,
                     dtype="float32", seconds_per_step=t)
                for s, r, w, n, t in [("mirrored", 1, 1, 100, 2e-4), ("mirrored", 1, 1, 100_000, 2e-2),
                                      ("mirrored", 2, 1, 100, 1e-3), ("mirrored", 2, 1, 100_000, 1.5e-2),
                                      ("multi_worker", 1, 2, 100, 5e-3), ("multi_worker", 1, 2, 100_000, 2.5e-2)]]
    measured += [dict(kind="measured", what="allreduce", strategy="multi_worker", workers=2, numbers=33, bytes=132,
                      seconds=4e-3, dtype="float32"),
                 dict(kind="measured", what="allreduce", strategy="multi_worker", workers=2, numbers=2**20,
                      bytes=2**22, seconds=4e-2, dtype="float32"),
                 dict(kind="measured", what="gram_pass", n_samples=100_000, n_features=32, dtype="float64", seconds=0.05),
                 dict(kind="measured", what="gram_iteration", n_features=32, dtype="float64", seconds=1e-5)]
    latency, bandwidth = dist.network_from_allreduce((132, 4e-3), (2**22, 4e-2), 2)
    loopback = projection.Network("loopback", latency, bandwidth, "made up")
    compute = dist.compute_rates(pd.DataFrame(measured[:2]), 0.05 / (100_000 * 33 * 34 / 2), 1e-5)
    inputs = [dict(kind="measured", what="network", network="loopback", latency_s=latency,
                   bandwidth_bytes_s=bandwidth, note="made up"),
              dict(kind="stated", what="network", network="datacenter", latency_s=dist.DATACENTER.latency_s,
                   bandwidth_bytes_s=dist.DATACENTER.bandwidth, note=dist.DATACENTER.source),
              dict(kind="measured", what="compute", seconds=compute.step_overhead_s, value_s=compute.value_s)]
    return pd.DataFrame(measured + inputs + dist.projection_rows(compute, [loopback, dist.DATACENTER]))


def test_projection_rows_agree_with_the_model_and_their_best_k_is_the_fastest_of_the_grid():
    table = _table()
    model = table[table.kind == "model"]
    assert len(model) == 2 * len(dist.PROJECTED_N) * len(dist.WORKER_COUNTS) * 2  # networks x n x K x routes
    for (network, route, n), rows in model.groupby(["network", "route", "n_samples"]):
        column = "seconds_per_step" if route == "per_step" else "seconds_per_run"
        best = int(rows.best_workers.iloc[0])
        at_best = dist.projection_at(table, network, route, n, best)[column]
        assert at_best <= rows[column].min() * (1 + 1e-12)  # the exact best beats every grid point
    one = model[(model.route == "per_step") & (model.workers == 1) & (model.n_samples == 100)].iloc[0]
    assert one.seconds_per_step == pytest.approx(2e-4 + 100 * 33 * (2e-2 - 2e-4) / (99_900 * 33))


def test_report_and_findings_label_the_model_and_read_the_table():
    table = _table()
    text = dist.report_section(table)
    assert "Model, not a measurement" in text and "share the cores of one machine" in text
    assert "two cores" not in text and "2 cores" not in text  # machine facts come from environment.json only
    assert "docs.nvidia.com" in text and "595 numbers" in text
    assert "| 100 | 0.2 | 1 | 5 |" in text  # ms per step, mirrored 1 and 2 replicas, 2 workers, from the table
    waiting, model = dist.findings(table)
    assert waiting.kind == "distributed_waiting" and waiting.facts["allreduce_us"] == pytest.approx(4000)
    assert model.kind == "distributed_ring_model" and model.facts["n"] == 1_000_000
    assert model.facts["step_workers"] <= model.facts["max_workers"] == max(dist.WORKER_COUNTS)


def test_figure_artists():
    table = _table()
    fig = dist.figure(table)
    ax_m, ax_s, ax_r = fig.axes
    measured = [l for l in ax_m.get_lines() if l.get_label().startswith("measured: ")]
    assert len(measured) == 3 + 1  # mirrored 1 and 2 replicas, 2 workers, the all-reduce latency line
    model_lines = [l for ax in (ax_s, ax_r) for l in ax.get_lines() if l.get_label().startswith("model")]
    assert len(model_lines) == 2 * len(dist.PROJECTED_N) + 2 * len(dist.PROJECTED_N)
    # one meaning per line style across the three panels, the network as the marker
    def meaning(label):  # what a line is, read from its legend words
        return ("all-reduce" if "all-reduce" in label else "measured step" if label.startswith("measured: ") else
                "per-step model" if "per-step route" in label else "Gram model" if "Gram route" in label else label)

    styles = {}  # (line style, a pale band) -> meanings: the Gram route is a band under the dashed per-step line
    for ax in fig.axes:
        for line in ax.get_lines():
            if not line.get_label().startswith("_"):
                band = line.get_linewidth() >= dist.GRAM_BAND and line.get_alpha() == dist.GRAM_ALPHA
                styles.setdefault((line.get_linestyle(), band), set()).add(meaning(line.get_label()))
    assert styles == {("-", False): {"measured step"}, (":", False): {"all-reduce"}, ("--", False): {"per-step model"},
                      ("-", True): {"Gram model"}}
    # per-step times in ms, as the tables give them
    steps = table[(table.kind == "measured") & (table.what == "step")].sort_values(["strategy", "replicas", "n_samples"])
    np.testing.assert_allclose(np.concatenate([l.get_ydata() for l in measured[:3]]), 1e3 * steps.seconds_per_step)
    assert ax_m.get_ylabel().startswith("ms per step") and ax_s.get_ylabel().startswith("ms per step")
    assert all((l.get_marker() == "s") == ("(loopback)" in l.get_label()) for l in model_lines)
    assert [l.get_linestyle() for l in measured] == ["-"] * 3 + [":"]
    assert "MEASURED" in ax_m.get_title() and "MODEL" in ax_s.get_title() and "MODEL" in ax_r.get_title()
    assert {l.get_label() for l in measured} == {t.get_text() for t in ax_m.get_legend().get_texts()}
    key = [t.get_text() for t in fig.legends[0].get_texts()]  # one short key for both model panels
    assert key == [f"n = {dist._power(n)}" for n in dist.PROJECTED_N] + [
        "model, per-step route", "model, Gram route", "loopback figures (hollow squares)", "best K"]
    assert ax_s.get_legend() is None and ax_r.get_legend() is None
    # a model line's colour is its n, the same in both model panels
    by_n = {}
    for line in model_lines:
        by_n.setdefault(line.get_label().rsplit("n = ", 1)[1], set()).add(line.get_color())
    assert all(len(c) == 1 for c in by_n.values()) and len({c.pop() for c in by_n.values()}) == len(dist.PROJECTED_N)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert legend_clear_of_axes(ax_m)
    assert not any(fig.legends[0].get_window_extent(renderer).overlaps(ax.get_window_extent(renderer)) for ax in fig.axes)
    for ax in fig.axes:
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        for line in ax.get_lines():
            x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
            if isinstance(line, matplotlib.lines.Line2D) and len(x) and line.get_transform() == ax.transData:
                assert np.all(x > 0) and np.all(y > 0)
                assert x0 <= x.min() and x.max() <= x1 and y0 <= y.min() and y.max() <= y1
    stars = [l for l in ax_s.get_lines() if l.get_marker() == "*"]
    assert len(stars) == 2 * len(dist.PROJECTED_N)  # one best K per network and n
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_steps_table_marks_a_failed_setting_and_leaves_an_unmeasured_one_blank():
    table = _table()
    steps = table[(table.kind == "measured") & (table.what == "step")].copy()
    steps["note"] = ""
    failed = (steps.strategy == "multi_worker") & (steps.n_samples == 100_000)
    steps.loc[failed, ["seconds_per_step", "note"]] = [np.nan, "worker 1 timed out"]
    steps = steps[~((steps.strategy == "mirrored") & (steps.replicas == 2) & (steps.n_samples == 100))]
    lines = dist._steps_table(steps)
    rows = lines[0].splitlines()
    assert rows[0] == ("| n | mirrored, 1 replica (ms/step) | mirrored, 2 replicas (ms/step) "
                       "| multi_worker, 2 workers (ms/step) |")
    assert rows[2:] == ["| 100 | 0.2 |  | 5 |", "| 100,000 | 20 | 15 | failed |"]
    assert lines[1:] == ["\nFailed: multi_worker, 2 workers at n = 100,000: worker 1 timed out"]
