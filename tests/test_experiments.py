"""The experiments on small sizes: threshold theory, agreement of implementations, the matmul race,
the lesson's verdicts computed from evidence, and the scaling roofline arithmetic. No speed assertions."""
import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from comparisons.running import stability
from comparisons.core.config import StudyConfig
from comparisons.core.tolerances import EQUIVALENCE
from comparisons.experiments import ExperimentContext, lesson_claims, lr_sweep, matmul, scaling, variants

from .conftest import REPO


def _ctx(tmp_path, **changes):
    config = StudyConfig(quick=True, repeats=1, dtypes=("float64",)).with_changes(**changes)
    return ExperimentContext(config=config, out_dir=tmp_path, devices=("cpu",))


# --- lr_sweep -------------------------------------------------------------------------------------------

def test_threshold_matches_a_known_hessian():
    """Centred X with orthogonal columns of known norms: the Hessian is diagonal with known eigenvalues."""
    n = 8
    X = np.zeros((n, 2))
    X[:, 0] = [1, -1] * 4  # sum 0, sum of squares 8
    X[:, 1] = [3, 3, -3, -3] * 2  # sum 0, orthogonal to column 0, sum of squares 72
    # H = 2/n diag(8, 72, n) = diag(2, 18, 2): lambda_max = 18, threshold 2/18
    analysis = stability.analyse(X)
    assert analysis.lambda_max == pytest.approx(18.0)
    assert analysis.lambda_min == pytest.approx(2.0)
    assert analysis.max_stable_lr == pytest.approx(1 / 9)
    y = X @ np.array([[1.0], [0.5]]) + 2.0
    below = lr_sweep.measured_iterations(X, y, np.zeros((2, 1)), 0.0, 0.99 / 9, 5000)
    assert below > 0  # converges just below the threshold
    import handrolled

    above = handrolled.descend(X, y, np.zeros((2, 1)), 0.0, 1.01 / 9, 5000)
    assert above.diverged_at is not None  # and diverges just above it
    assert lr_sweep.side(0.99 / 9, analysis.max_stable_lr) == "stable"
    assert lr_sweep.side(1.01 / 9, analysis.max_stable_lr) == "unstable"


def test_predicted_iterations_bound_the_measured_ones():
    X = np.random.default_rng(0).random((50, 1)) * 2
    y = 3 * X + 4
    analysis = stability.analyse(X)
    for factor in (0.1, 0.5, 0.9):
        lr = factor * analysis.max_stable_lr
        predicted = analysis.predicted_iterations(lr, lr_sweep.TOLERANCE)
        # run just past the bound: a run that needs more returns -1 and fails below
        measured = lr_sweep.measured_iterations(X, y, np.zeros((1, 1)), 0.0, lr, math.ceil(predicted) + 1)
        assert 0 < measured <= math.ceil(predicted)


def test_all_implementations_agree_on_the_side_of_the_threshold(tmp_path, tf_ready):
    ctx = _ctx(tmp_path, iterations=300)
    table = lr_sweep.run(ctx)
    # quick: the first swept row of each kind (framework, gradient-checking or not)
    assert set(table.implementation) == {"numpy", "keras", "gradient_tape", "jax"}
    assert table.agrees_with_theory.all(), table[~table.agrees_with_theory]
    assert (table.groupby("lr").observed_side.nunique() == 1).all()
    assert {"stable", "unstable"} <= set(table.observed_side)
    assert set(lr_sweep.LESSON_RATES) <= set(table.lr)
    assert "## " in lr_sweep.report_section(table) and "lr_sweep.png" in lr_sweep.report_section(table)


def test_sweep_studies_the_data_it_is_given(tmp_path):
    """With --data the sweep's threshold is that data's, not the lesson's generator's."""
    import dataclasses

    from comparisons.inputs.data import initial_parameters, make_synthetic

    data = make_synthetic(40, 2, 0.1, seed=5)
    data = dataclasses.replace(data, X=10 * data.X, source="a file")  # a threshold 100x below the lesson's
    ctx = dataclasses.replace(_ctx(tmp_path, iterations=300, only=("numpy",)), data=data,
                              initial=initial_parameters(2, seed=5))
    table = lr_sweep.run(ctx)
    assert table.threshold.iloc[0] == pytest.approx(stability.analyse(data.X).max_stable_lr, rel=1e-12)
    assert set(table.data_source) == {"a file"} and "Data: a file." in lr_sweep.report_section(table)
    assert table.agrees_with_theory.all()


# --- variants -------------------------------------------------------------------------------------------

def test_variants_take_every_minibatch_row_in_registry_order():
    assert variants.implementations(("keras:jax", "gradient_tape", "keras", "numpy")) == ["numpy", "keras", "keras:jax"]
    assert variants.implementations(("gradient_tape",)) == ["numpy"]


def test_numpy_and_keras_paths_coincide_for_every_batch_size(tf_ready, lesson_data):
    data, (W0, b0) = lesson_data
    for batch_size in (100, 32, 1):
        epoch_rows, step_rows = variants.run_variant(data.X, data.y, W0, b0, 0.05, batch_size, 2, seed=0, repeats=1,
                                                     names=("numpy", "keras"))
        table, steps = pd.DataFrame(epoch_rows), pd.DataFrame(step_rows)
        keras = table[table.implementation == "keras"]
        assert (keras.max_rel_step_loss_diff_vs_numpy <= EQUIVALENCE["float64"]).all()
        assert (keras.max_abs_param_diff_vs_numpy <= EQUIVALENCE["float64"]).all()
        per_step = steps.pivot(index="step", columns="implementation", values="batch_loss")
        np.testing.assert_allclose(per_step.keras, per_step.numpy, rtol=EQUIVALENCE["float64"])
        assert len(per_step) == 2 * math.ceil(100 / batch_size)
    assert variants.relative_difference([1.0, 2.0], [1.0, 2.0 * (1 + 1e-6)]) == pytest.approx(1e-6, rel=1e-3)

def test_variants_time_as_many_calls_as_fit_the_budget(lesson_data):
    """The single run's rule: up to `repeats` timed calls, none when not even the warm-up fits the budget."""
    data, (W0, b0) = lesson_data
    for budget_s, repeats in ((math.inf, 3), (0.0, 0)):
        epoch_rows, _ = variants.run_variant(data.X, data.y, W0, b0, 0.05, 32, 2, seed=0, repeats=3, budget_s=budget_s)
        table = pd.DataFrame(epoch_rows)
        assert (table.repeats == repeats).all(), (budget_s, table.repeats.unique())
    assert (table.median_s == table.first_call_s).all()  # no repeat: the warm-up is the measurement



# --- matmul ---------------------------------------------------------------------------------------------

def test_matmul_methods_agree_and_the_probe_tells_strassen_from_classical(tf_ready):
    rng = np.random.default_rng(1)
    A, B = rng.standard_normal((24, 24)), rng.standard_normal((24, 24))
    np.testing.assert_allclose(matmul.loop_matmul(A, B), A @ B, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(matmul.strassen_one_level(A, B), A @ B, rtol=1e-10, atol=1e-10)
    for _, _, make in matmul._methods("cpu"):
        np.testing.assert_allclose(make(A, B)(), A @ B, rtol=1e-12, atol=1e-12)
    assert matmul.is_classical_probe(matmul.scale_probe(np.matmul, 64, "float64"))
    assert not matmul.is_classical_probe(matmul.scale_probe(matmul.strassen_one_level, 64, "float64"))
    assert matmul.fit_exponent([100, 200, 400], [1.0, 8.0, 64.0]) == pytest.approx(3.0)
    assert matmul.fit_exponent([100, 200], [1.0, 7.0]) == pytest.approx(matmul.STRASSEN_EXPONENT)


def test_matmul_run_writes_the_table(tmp_path, tf_ready, monkeypatch):
    monkeypatch.setattr(matmul, "sizes", lambda config: ((8,), (8, 16)))
    table = matmul.run(_ctx(tmp_path))
    assert set(table.method) == {"python_loop", "numpy", "tf_eager", "tf_function"}
    assert table.agrees.all() and (table.gflops > 0).all()
    text = matmul.report_section(table)
    assert text.startswith("## ") and "matmul.png" in text and "Strassen" in text
    assert [p.name for p in matmul.plot(table, tmp_path)] == ["matmul.png"]


# --- lesson_claims --------------------------------------------------------------------------------------

ENV = lesson_claims.Env(seed=0, quick=True)
RESULTS = REPO / "results"


def _lesson_hessian_eigenvalues(scale=1.0):
    """Closed-form eigenvalues of 2/n [[sum x^2, sum x], [sum x, n]] for the lesson's data (x times scale)."""
    from comparisons.inputs.data import make_synthetic

    x = scale * make_synthetic(100, 1, 0.5, seed=0).X[:, 0]
    n = len(x)
    a, b, d = 2 / n * np.sum(x * x), 2 / n * np.sum(x), 2.0
    mid, half = (a + d) / 2, math.sqrt(((a - d) / 2) ** 2 + b ** 2)
    return mid - half, mid + half


def _expected_verdict(key, evidence_text):
    """The verdict the world dictates for a claim, found without the claim's own judge.

    Facts of arithmetic and numpy are known; the learning-rate claims follow from the closed-form
    eigenvalues of the lesson's 2x2 Hessian; the two speed claims from the numbers printed in their
    evidence (so a loaded machine changes the evidence and the verdict together, never the test).
    """
    known = {"binomial": "holds", "binomial_mode": "holds", "unit_vectors": "holds", "dot_example": "holds",
             "cross_for_scalar": "wrong", "zero_gradient_extremum": "wrong", "descent_step_0.25": "holds",
             "descent_step_10": "holds", "gradient_is_WT_R": "wrong", "transpose_makes_column": "wrong",
             "shape_is_a_call": "wrong", "matmul_matches_loops": "holds", "numpy_uses_strassen": "wrong"}
    if key in known:
        return known[key]
    low, high = _lesson_hessian_eigenvalues()
    if key == "small_rates_safe":  # stable iff lr < 2 / lambda_max, on x**2 (lambda 2), the data, the data x 10
        thresholds = (1.0, 2 / high, 2 / _lesson_hessian_eigenvalues(10.0)[1])
        return "holds" if all(lr < t for lr in (0.1, 0.01, 0.001) for t in thresholds) else "imprecise"
    if key == "batch_gd_stable":  # 1.2x the threshold: |1 - lr lambda_max| = 1.4 > 1, the error grows
        return "imprecise" if abs(1 - 1.2 * 2 / high * high) > 1 else "holds"
    if key == "small_rate_slow":  # slow direction: iterations ~ log(tol) / log(1 - lr lambda_min)
        steps = [math.log(1e-6) / math.log(1 - lr * low) for lr in (0.05, 0.005)]
        return "holds" if steps[1] >= 2 * steps[0] else "wrong"
    if key == "lesson_program_fits":  # 1000 contractions of the slow direction from the start's distance
        from comparisons.inputs.data import initial_parameters, make_synthetic

        data = make_synthetic(100, 1, 0.5, seed=0)
        theta = np.linalg.lstsq(np.hstack([data.X, np.ones((100, 1))]), data.y, rcond=None)[0][:, 0]
        W0, b0 = initial_parameters(1, seed=0)
        start = np.linalg.norm(np.array([W0[0, 0], b0]) - theta)
        return "holds" if (1 - 0.05 * low) ** 1000 * start < 1e-3 else "imprecise"
    if key == "numpy_10x":
        loop_us, vec_us = map(float, re.search(r"\(([\d.e+-]+) vs ([\d.e+-]+) us\)", evidence_text).groups())
        return "holds" if loop_us / vec_us >= 10 else "wrong"
    if key == "loop_500_under_2_min":
        seconds, n = re.search(r"([\d.e+-]+) s at n = (\d+)", evidence_text).groups()
        return "holds" if float(seconds) * (500 / int(n)) ** 3 <= 120 else "wrong"
    raise KeyError(key)


def test_committed_verdicts_match_an_independent_judgement():
    table = pd.read_csv(RESULTS / "lesson_claims.csv")
    assert sorted(table.key) == sorted(c.key for c in lesson_claims.CLAIMS)
    for key, row in zip(table.key, table.itertuples()):
        assert row.verdict == _expected_verdict(key, row.evidence), (key, row.evidence)


def test_a_quick_run_gives_the_known_verdicts_and_keeps_its_evidence(tmp_path):
    table = lesson_claims.run(_ctx(tmp_path))
    assert list(table.columns) == lesson_claims.COLUMNS
    assert list(table.key) == [c.key for c in lesson_claims.CLAIMS]
    for row in table.itertuples():
        evidence = json.loads(row.measured)
        if lesson_claims.BY_KEY[row.key].fixed or row.key.startswith(("binomial", "small_", "batch_", "lesson_")):
            assert row.verdict == _expected_verdict(row.key, row.evidence), row.key
        assert row.evidence == lesson_claims.BY_KEY[row.key].evidence.format(**evidence)
    assert json.loads(table.set_index("key").measured["dot_example"])["dot"] == 1 * 4 + 2 * 5 + 3 * 6


# Each case: a claim, evidence (None: measured here; only claims that do not time anything), an edit,
# and the verdicts before and after it: every judge demonstrably reads its evidence.
SPEED_EVIDENCE = {
    "numpy_10x": {"speedup_100": 16.0, "loop_us_100": 48.0, "vec_us_100": 3.0, "speedup_10000": 700.0,
                  "loop_us_10000": 4200.0, "vec_us_10000": 6.0},
    "loop_500_under_2_min": {"n": 48, "seconds": 0.035, "predicted_500_s": 0.035 * (500 / 48) ** 3, "limit_s": 120.0},
}
FLIPS = [
    ("binomial", lambda e: {**e, "mean": e["mean"] + 0.5}, "holds", "wrong"),
    ("binomial", lambda e: {**e, "var": e["var"] * 1.2}, "holds", "wrong"),
    ("binomial_mode", lambda e: {**e, "mode": 4}, "holds", "wrong"),
    ("cross_for_scalar", lambda e: {**e, "cross_shape": []}, "wrong", "holds"),
    ("zero_gradient_extremum", lambda e: {**e, "below": 0}, "wrong", "holds"),
    ("descent_step_0.25", lambda e: {**e, "first_four": [-0.5, -0.25, -0.1, -0.05]}, "holds", "wrong"),
    ("descent_step_10", lambda e: {**e, "x_1": 18.0}, "holds", "wrong"),
    ("small_rates_safe", lambda e: {**e, "unstable": []}, "imprecise", "holds"),
    ("small_rate_slow", lambda e: {**e, "iterations_slow": e["iterations_fast"]}, "holds", "wrong"),
    ("batch_gd_stable", lambda e: {**e, "diverged_at": -1}, "imprecise", "holds"),
    ("lesson_program_fits", lambda e: {**e, "max_abs_diff": 0.1}, "holds", "imprecise"),
    ("gradient_is_WT_R", lambda e: {**e, "wt_r_error": "", "wt_r_shape": [e["m"], 1]}, "wrong", "holds"),
    ("transpose_makes_column", lambda e: {**e, "t_shape": [3, 1]}, "wrong", "holds"),
    ("shape_is_a_call", lambda e: {**e, "error": ""}, "wrong", "holds"),
    ("numpy_10x", lambda e: {**e, "speedup_100": 3.0}, "holds", "wrong"),
    ("matmul_matches_loops", lambda e: {**e, "allclose": False}, "holds", "wrong"),
    ("numpy_uses_strassen", lambda e: {**e, "probe_rel_err": 1.0}, "wrong", "holds"),
    ("loop_500_under_2_min", lambda e: {**e, "predicted_500_s": 500.0}, "holds", "wrong"),
    ("unit_vectors", lambda e: {**e, "unit_v": [1.0, 0.0, 0.0]}, "holds", "wrong"),
    ("dot_example", lambda e: {**e, "dot": 31.0}, "holds", "wrong"),
]


@pytest.mark.parametrize("key,edit,before,after", FLIPS, ids=[f"{k}-{i}" for i, (k, *_) in enumerate(FLIPS)])
def test_a_verdict_follows_its_evidence(key, edit, before, after, monkeypatch):
    claim = lesson_claims.BY_KEY[key]
    if key == "numpy_uses_strassen":  # no timing: the exponent is only shown, never judged
        monkeypatch.setattr(lesson_claims.matmul, "fit_exponent", lambda n, s: 3.0)
    evidence = SPEED_EVIDENCE.get(key) or claim.measure(ENV)
    assert claim.judge(evidence) == before
    assert claim.judge(edit(evidence)) == after


def test_every_claim_is_covered_by_a_flip():
    assert {c.key for c in lesson_claims.CLAIMS} == {k for k, *_ in FLIPS}


def test_strassen_claim_reads_the_matmul_table_only_when_this_run_wrote_it_first(tmp_path):
    from comparisons.core.config import EXPERIMENTS

    assert EXPERIMENTS.index("matmul") < EXPERIMENTS.index("lesson_claims")  # the default order feeds it
    table = pd.DataFrame({"method": ["numpy"] * 3, "dtype": ["float64"] * 3, "n": [256, 512, 1024],
                          "min_s": [1.0, 7.0, 49.0], "scale_probe_rel_err": [1e-16] * 3})
    table.to_csv(tmp_path / "matmul.csv", index=False)
    after = lesson_claims.earlier_tables(_ctx(tmp_path, experiments=("matmul", "lesson_claims")))
    assert [name for name, _ in after] == ["matmul"]
    assert lesson_claims.earlier_tables(_ctx(tmp_path, experiments=("lesson_claims", "matmul"))) == ()
    evidence = lesson_claims.measure_strassen(lesson_claims.Env(earlier=after))
    assert evidence["exponent"] == pytest.approx(math.log(7) / math.log(2))  # 7x per doubling of n
    assert evidence["source"] == "from this run's matmul table"


def test_claims_findings_and_section_follow_the_table():
    rows = [lesson_claims.check(c, e) for c, e in [
        (lesson_claims.BY_KEY["dot_example"], {"dot": 32.0, "lesson_dot": 32.0}),
        (lesson_claims.BY_KEY["dot_example"], {"dot": 31.0, "lesson_dot": 32.0}),
        (lesson_claims.BY_KEY["numpy_10x"], SPEED_EVIDENCE["numpy_10x"])]]
    table = pd.DataFrame(rows)
    (found,) = lesson_claims.findings(table)
    assert found.kind == "lesson_claims_wrong" and found.facts == dict(
        claims=3, holds=2, wrong_count=1, imprecise=0, wrong=[lesson_claims.BY_KEY["dot_example"].short])
    assert lesson_claims.findings(table.iloc[[0, 2]])[0].facts["wrong"] == []  # both hold: none named
    section = lesson_claims.report_section(table)
    assert "**2 holds**, **1 wrong**, **0 imprecise**" in section
    assert "| np.dot((1,2,3), (4,5,6)) = 31 |" in section and "48 vs 3.0 us" in section


# --- scaling --------------------------------------------------------------------------------------------

def test_roofline_arithmetic():
    X = np.zeros((1_000_000, 32), np.float32)  # 128 MB
    assert scaling.floor_per_iteration(X.nbytes, 32e9) == pytest.approx(2 * 128e6 / 32e9)  # two reads of X
    # iterations fill about the target time: an 8 ms two-pass floor and a 1 s target leave room for at most
    # 125 steps and at least half that; twice the target twice as many, a bigger X fewer; clamped both ways
    steps = scaling.choose_iterations("numpy", X.nbytes, 32e9, 1.0)
    assert 0.5 <= steps * 2 * X.nbytes / 32e9 <= 1.0
    assert scaling.choose_iterations("numpy", X.nbytes, 32e9, 2.0) == pytest.approx(2 * steps, abs=1)
    assert scaling.choose_iterations("numpy", 2 * X.nbytes, 32e9, 1.0) < steps
    assert scaling.choose_iterations("numpy", 800, 32e9, 100.0) == 2000  # clamped above
    assert scaling.choose_iterations("numpy", 10 * X.nbytes, 32e9, 1e-6) == 8  # and below
    rows = pd.DataFrame({"n_samples": [100, 1000, 10000, 100000], "ratio_to_floor": [50.0, 1.5, 3.0, 1.2]})
    assert scaling.transition_n(rows) == 100000
    assert scaling.transition_n(rows.assign(ratio_to_floor=[9.0, 9.0, 9.0, 9.0])) is None
