"""The scaling experiment's arithmetic, its Gram columns, its figure's artists and its findings. No speed assertions:
every timing below is either made up (to test the table logic) or only checked for structure."""
import numpy as np
import pandas as pd
import pytest

from comparisons.config import StudyConfig
from comparisons.experiments import ExperimentContext, scaling

from .conftest import legend_clear_of_axes

NAMES = ["numpy", "gradient_tape", "numpy:gram", "gradient_tape:gram"]


def _table(per_iteration, one_pass=None, sizes=(100, 10_000, 1_000_000), m=32, dtype="float32", bandwidth=1e10):
    """A made-up scaling table: per_iteration[name] and one_pass[name] are lists over `sizes`."""
    one_pass = one_pass or {}
    rows = []
    for name in NAMES:
        gram = scaling.is_gram(name)
        for k, n in enumerate(sizes):
            x_bytes, y_bytes = n * m * 4, n * 4
            iterations = 1000 if gram else 50
            per = per_iteration[name][k]
            passed = one_pass[name][k] if gram else np.nan
            rows.append({"implementation": name, "device": "cpu", "dtype": dtype, "n_samples": n, "n_features": m,
                         "iterations": iterations, "median_s": (passed + per * iterations) if gram else per * iterations,
                         "per_iteration_s": per, "one_pass_s": passed, "x_bytes": x_bytes, "y_bytes": y_bytes,
                         "bandwidth_gbs": bandwidth / 1e9, "bandwidth_sum_gbs": bandwidth / 1e9,
                         "bandwidth_gemv_gbs": bandwidth / 2e9, "status": "ok", "mode": None,
                         "floor_per_iteration_s": scaling.floor_per_iteration(x_bytes, bandwidth),
                         "one_pass_floor_s": scaling.one_pass_floor(x_bytes, y_bytes, bandwidth)})
    return scaling.with_ratios(pd.DataFrame(rows))


PER = {"numpy": [2e-5, 1e-4, 3e-2], "gradient_tape": [1e-5, 2e-4, 4e-2],
       "numpy:gram": [8e-6, 8e-6, 9e-6], "gradient_tape:gram": [3e-6, 3e-6, 3e-6]}
PASS = {"numpy:gram": [1e-4, 2e-3, 0.2], "gradient_tape:gram": [5e-2, 5e-2, 0.3]}


def test_floors_ratios_and_the_time_of_1000_iterations():
    table = _table(PER, PASS)
    x = table.x_bytes.to_numpy(float)
    np.testing.assert_allclose(table.floor_per_iteration_s, 2 * x / 1e10)
    np.testing.assert_allclose(table.one_pass_floor_s, (x + table.y_bytes) / 1e10)
    np.testing.assert_allclose(table.ratio_to_one_pass_floor, table.per_iteration_s / table.one_pass_floor_s)
    row = table[(table.implementation == "numpy:gram") & (table.n_samples == 1_000_000)].iloc[0]
    assert row.time_1000_s == pytest.approx(0.2 + 1000 * 9e-6)  # the pass counts
    assert row.pass_ratio_to_one_pass_floor == pytest.approx(0.2 / ((32e6 * 4 + 4e6) / 1e10))
    row = table[(table.implementation == "numpy") & (table.n_samples == 10_000)].iloc[0]
    assert row.time_1000_s == pytest.approx(1000 * 1e-4)


def test_crossover_is_the_smallest_n_from_which_gram_always_wins():
    # numpy: streaming 1000 x [2e-5, 1e-4, 3e-2] = [0.02, 0.1, 30] s; Gram [0.0081, 0.010, 0.209] s: wins from 100
    # gradient_tape: streaming [0.01, 0.2, 40] s; Gram [0.053, 0.053, 0.303] s: loses at 100, wins from 10,000
    crossover = scaling.gram_crossover(_table(PER, PASS)).set_index("implementation")
    assert crossover.loc["numpy:gram", "beats_streaming_from_n"] == 100
    assert crossover.loc["gradient_tape:gram", "beats_streaming_from_n"] == 10_000
    assert crossover.loc["gradient_tape:gram", "streaming_1000_s"] == pytest.approx(40.0)
    never = dict(PASS, **{"numpy:gram": [1.0, 1.0, 100.0]})
    assert pd.isna(scaling.gram_crossover(_table(PER, never)).set_index("implementation").loc[
        "numpy:gram", "beats_streaming_from_n"])
    assert "not within" in scaling.findings(_table(PER, never))[1]


def test_findings_and_report_read_the_table():
    table = _table(PER, PASS)
    text = scaling.findings(table)
    assert len(text) == 2
    assert "n = 10,000" in text[1] and "n = 100" in text[1]  # gradient_tape:gram, numpy:gram
    assert "30 s" in text[0] and "40 s" in text[0]
    slower = _table(dict(PER, numpy=[2e-5, 1e-4, 6e-2]), PASS)
    assert "60 s" in scaling.findings(slower)[0]
    report = scaling.report_section(table)
    assert "one-pass floor" in report and "Gram faster from n" in report and "10,000 |" in report


def test_figure_draws_a_line_per_implementation_both_floors_and_contains_every_value():
    from comparisons.figures import plt

    table = pd.concat([_table(PER, PASS), _table(PER, PASS, dtype="float64")], ignore_index=True)
    fig = scaling.figure(table)
    axes = [ax for ax in fig.axes if ax.get_lines()]
    assert len(axes) == 2
    for ax in axes:
        labels = [line.get_label() for line in ax.get_lines()]
        for name in ("numpy", "gradient_tape"):
            assert f"{name} [cpu]" in labels
        for name in ("numpy:gram", "gradient_tape:gram"):
            assert sum(label.startswith(f"{name} [cpu]") for label in labels) == 2  # after the pass; pass included
        floors = [line for line in ax.get_lines() if "floor" in line.get_label()]
        assert sorted(line.get_label().split(":")[0] for line in floors) == ["one-pass floor", "two-pass floor"]
        two = next(line for line in floors if line.get_label().startswith("two"))
        np.testing.assert_allclose(two.get_ydata(), 2 * np.array([100, 10_000, 1_000_000]) * 32 * 4 / 1e10)
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        values = np.concatenate([np.asarray(line.get_ydata(), float) for line in ax.get_lines()])
        xs = np.concatenate([np.asarray(line.get_xdata(), float) for line in ax.get_lines()])
        assert (values > 0).all() and (xs > 0).all()
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        assert 0 < x0 <= xs.min() and xs.max() <= x1 and 0 < y0 <= values.min() and values.max() <= y1
        # the Gram line after the pass is flat: the figure shows the values given, not a fit
        flat = next(line for line in ax.get_lines() if line.get_label().startswith("gradient_tape:gram [cpu], per"))
        np.testing.assert_allclose(flat.get_ydata(), PER["gradient_tape:gram"])
        assert legend_clear_of_axes(ax)  # a dozen entries inside would cover the small-n points
    plt.close(fig)


@pytest.mark.slow
def test_tiny_run_times_the_gram_stages(tmp_path, tf_ready, monkeypatch):
    monkeypatch.setattr(scaling, "plan", lambda config: ((100, 3000), (4,), ("float32",), NAMES, 0.005, 1))
    monkeypatch.setattr(scaling, "measure_bandwidth", lambda n_bytes: {"sum": 2e10, "gemv": 1e10, "bytes": n_bytes})
    monkeypatch.setattr(scaling, "GRAM_ITERATIONS", 100)  # the structure, not the lesson's 1000 (each a checked step)
    ctx = ExperimentContext(config=StudyConfig(quick=True, repeats=1), out_dir=tmp_path, devices=("cpu",))
    table = scaling.run(ctx)
    assert len(table) == len(NAMES) * 2 and (table.status == "ok").all()
    gram = table[table.implementation.map(scaling.is_gram)]
    assert (gram.iterations == 100).all() and (gram.one_pass_s > 0).all()
    assert table[~table.implementation.map(scaling.is_gram)].one_pass_s.isna().all()
    np.testing.assert_allclose(gram.time_1000_s, gram.median_s * 10)  # the whole call, scaled to 1000 iterations
    np.testing.assert_allclose(table.one_pass_floor_s, (table.x_bytes + table.y_bytes) / 2e10)
    assert [p.name for p in scaling.plot(table, tmp_path)] == ["scaling.png"]
    assert len(scaling.findings(table)) == 2
