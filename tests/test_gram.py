"""The Gram route (one pass, then iterations on G, c, s) against independent oracles.

Oracles: the streaming descent of handrolled.descend (float64 iterates to ~1e-12), the MSE of the
residuals (the loss identity), exact rational arithmetic (the rounding bound), and the analytic
gradient 2 (G theta - c) against autodiff at every step of gradient_tape:gram.
"""
import math
from fractions import Fraction

import numpy as np
import pytest

import handrolled
from comparisons.inputs.data import initial_parameters, make_synthetic
from comparisons.core.tolerances import EQUIVALENCE

from .conftest import LESSON_ITERATIONS


def _design(X):
    return np.hstack([X, np.ones((X.shape[0], 1))])  # (n, m + 1)


@pytest.mark.parametrize("m", [1, 3])  # one feature: numpy's own loops; several: BLAS products
@pytest.mark.parametrize("block_rows", [1, 7, 100, 10_000])  # one row, leftovers, exact fit, one block
def test_statistics_are_the_means_of_the_products(block_rows, m):
    data = make_synthetic(100, m, 0.5, seed=2)
    stats = handrolled.sufficient_statistics(data.X, data.y, block_rows=block_rows)
    A = _design(data.X)
    # oracle: explicit sums over rows with einsum, no matrix product and no blocks
    np.testing.assert_allclose(stats.G, np.einsum("ij,ik->jk", A, A) / 100, rtol=1e-14)
    np.testing.assert_allclose(stats.c, np.einsum("ij,i->j", A, data.y[:, 0])[:, None] / 100, rtol=1e-14)
    assert stats.s == pytest.approx(float(np.sum(data.y ** 2)) / 100, rel=1e-14)
    assert stats.n == 100 and stats.G[-1, -1] == 1.0


def test_float32_statistics_are_the_float64_means_rounded_once():
    """Summed in float64: every float32 entry is the nearest float32 to the float64 mean."""
    data = make_synthetic(5000, 4, 0.5, seed=4)
    X32, y32 = data.X.astype(np.float32), data.y.astype(np.float32)
    stats = handrolled.sufficient_statistics(X32, y32, block_rows=512)
    A = _design(X32.astype(np.float64))
    assert stats.G.dtype == np.float32 and stats.c.dtype == np.float32 and stats.s.dtype == np.float32
    np.testing.assert_array_equal(stats.G, (A.T @ A / 5000).astype(np.float32))
    np.testing.assert_array_equal(stats.c, (A.T @ y32.astype(np.float64) / 5000).astype(np.float32))


def test_gram_loss_and_gradient_equal_the_streaming_ones():
    data = make_synthetic(200, 3, 0.5, seed=5)
    stats = handrolled.sufficient_statistics(data.X, data.y)
    rng = np.random.default_rng(0)
    for _ in range(5):
        W, b = rng.standard_normal((3, 1)), float(rng.standard_normal())
        theta = np.append(W, b).reshape(-1, 1)
        loss = handrolled.mse(data.y, handrolled.predict(data.X, W, b))
        assert handrolled.gram_loss(stats, theta) == pytest.approx(loss, rel=1e-12)
        grad_W, grad_b = handrolled.gradients(data.X, data.y, W, b)
        np.testing.assert_allclose(handrolled.gram_gradient(stats, theta), np.append(grad_W, grad_b)[:, None],
                                   rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("m, lr", [(1, 0.05), (4, 0.02)])
def test_gram_iterates_are_the_streaming_iterates_in_float64(m, lr):
    data = make_synthetic(100, m, 0.5, seed=6)
    W0, b0 = initial_parameters(m, seed=6)
    streaming = handrolled.descend(data.X, data.y, W0, b0, lr, 300, keep_trajectory=True)
    gram = handrolled.descend_gram(handrolled.sufficient_statistics(data.X, data.y), W0, b0, lr, 300,
                                   keep_trajectory=True)
    np.testing.assert_allclose(gram.trajectory, streaming.trajectory, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gram.loss_curve, streaming.loss_curve, rtol=1e-12)
    assert gram.diverged_at is None and gram.weights.shape == (m, 1)


def test_gram_divergence_is_caught_at_the_same_iteration(lesson_data):
    data, (W0, b0) = lesson_data
    streaming = handrolled.descend(data.X, data.y, W0, b0, 10.0, 100)
    gram = handrolled.descend_gram(handrolled.sufficient_statistics(data.X, data.y), W0, b0, 10.0, 100)
    assert streaming.diverged_at is not None and gram.diverged_at == streaming.diverged_at
    assert len(gram.loss_curve) == len(streaming.loss_curve)


def _exact_loss(X, y, theta):
    """mean((y - [X, 1] theta)^2) in rational arithmetic from the arrays' exact binary values."""
    n = X.shape[0]
    total = Fraction(0)
    for i in range(n):
        r = Fraction(float(y[i, 0])) - sum(Fraction(float(X[i, j])) * Fraction(float(theta[j, 0]))
                                           for j in range(X.shape[1])) - Fraction(float(theta[-1, 0]))
        total += r * r
    return total / n


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_rounding_bound_holds_against_exact_arithmetic_and_is_not_vacuous(dtype):
    """Near the fit (loss ~1e-6 of s) the Gram-form loss is wrong in its leading digits; the bound covers it."""
    rng = np.random.default_rng(7)
    ratios = []
    for trial in range(40):
        X = (2 * rng.random((6, 2))).astype(dtype)
        y = (100 + X @ np.array([[3.0], [-1.0]]) + 1e-3 * rng.standard_normal((6, 1))).astype(dtype)
        stats = handrolled.sufficient_statistics(X, y)
        W, b = handrolled.ols(X, y)
        theta = (np.append(W, b) + 1e-4 * rng.standard_normal(3)).astype(dtype).reshape(-1, 1)
        computed = handrolled.gram_loss(stats, theta)
        exact = _exact_loss(X, y, theta)
        error = abs(Fraction(float(computed)) - exact) / exact
        bound = handrolled.loss_rounding_bound(stats, theta, float(exact))
        assert float(error) <= bound, (trial, float(error), bound)
        ratios.append(float(error) / bound)
    # the bound is first-order worst case, yet not off by orders of magnitude: some trial uses a good share of it
    assert max(ratios) > (1e-2 if dtype == "float32" else 1e-4)


def test_rounding_bound_is_about_eps_s_over_loss():
    """Near the fit the magnitude is ~4 s, so the bound is (4m + 12) eps s / loss within a few percent."""
    data = make_synthetic(1000, 2, 0.5, seed=8)
    stats = handrolled.sufficient_statistics(data.X.astype(np.float32), data.y.astype(np.float32))
    W, b = handrolled.ols(data.X, data.y)
    theta = np.append(W, b).astype(np.float32).reshape(-1, 1)
    loss = float(handrolled.mse(data.y, handrolled.predict(data.X, W, b)))
    expected = (4 * 2 + 12) * np.finfo(np.float32).eps * float(stats.s) / loss
    # one-signed features and a positive fit: |theta|^T |G| |theta| is theta^T G theta ~ s; one weight is negative here
    assert 0.5 * expected < handrolled.loss_rounding_bound(stats, theta, loss) < 3 * expected


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("block_rows", [16, 100])  # blocks and leftover rows, one whole block (the default trainers
# of every other test see only leftovers: the lesson's 100 rows are far fewer than a block)
def test_tape_gram_follows_numpy_gram(tf_ready, lesson_data, dtype, block_rows):
    """Same statistics (float64 sums, one rounding), hence the same Gram iterates up to the order of a few sums."""
    from tf_models.gram import make_gram_tape_trainer

    data, (W0, b0) = lesson_data
    X, y = data.X.astype(dtype), data.y.astype(dtype)
    stats = handrolled.sufficient_statistics(X, y)
    reference = handrolled.descend_gram(stats, W0, b0, 0.05, 60, keep_trajectory=True)
    result = make_gram_tape_trainer(X, y, 0.05, 60, block_rows=block_rows)(W0, b0)
    rtol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(result.statistics[0], stats.G, rtol=rtol)
    np.testing.assert_allclose(result.statistics[1], stats.c, rtol=rtol)
    np.testing.assert_allclose(result.weights, reference.weights, rtol=rtol)
    # each Gram-form loss is within its rounding bound of the exact one, so two of them within twice that
    bounds = [handrolled.loss_rounding_bound(stats, theta[:, None], loss)
              for theta, loss in zip(reference.trajectory, reference.loss_curve)]
    gaps = np.abs(result.loss_curve - reference.loss_curve) / reference.loss_curve
    assert np.all(gaps <= 2 * np.array(bounds)), (gaps.max(), min(bounds))
    if dtype == "float64":
        np.testing.assert_allclose(result.loss_curve, reference.loss_curve, rtol=1e-12)
    assert result.mode == "gram" and result.weights.dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_tape_gram_checks_autodiff_against_the_analytic_gradient_every_step(lesson_run, dtype):
    result = lesson_run("gradient_tape:gram", dtype, LESSON_ITERATIONS)  # the run test_equivalence compares with numpy
    checks = [c for c in result.gradient_checks if c.method == "analytic_vs_autodiff"]
    assert [c.iteration for c in checks] == list(range(LESSON_ITERATIONS))
    # autodiff of theta^T G theta is (G + G^T) theta: the same as 2 G theta up to a few roundings of |G| |theta|
    assert max(c.max_rel_diff for c in checks) < 10 * np.finfo(dtype).eps


def test_tape_gram_gradient_mismatch_stops_the_run(lesson_data, lesson_trainer, monkeypatch):
    from comparisons.core import tolerances
    from comparisons.core.results import GradientMismatchError

    monkeypatch.setitem(tolerances.GRADIENT, "float64", -1.0)
    _, initial = lesson_data
    with pytest.raises(GradientMismatchError, match="gradient_tape:gram"):
        lesson_trainer("gradient_tape:gram", "float64", LESSON_ITERATIONS)(*initial)


@pytest.mark.parametrize("name", ["numpy:gram", "gradient_tape:gram"])
def test_small_noise_float32_needs_the_bound_and_stays_within_it(tf_ready, name):
    """Near a fit with loss ~2e-6 of s, the float32 Gram loss misses the streaming one by more than the
    usual 1e-4; the derived bound, added to the usual tolerance, covers it. The weights still agree."""
    from comparisons.running.implementations import make_trainer

    data = make_synthetic(100, 1, 0.01, seed=0)
    W0, b0 = initial_parameters(1, seed=0)
    X, y = data.X.astype(np.float32), data.y.astype(np.float32)
    streaming = make_trainer("numpy", X, y, 0.05, 1000)(W0, b0)
    gram = make_trainer(name, X, y, 0.05, 1000)(W0, b0)
    gap = np.max(np.abs(gram.loss_curve.astype(np.float64) - streaming.loss_curve) / streaming.loss_curve)
    assert EQUIVALENCE["float32"] < gap <= EQUIVALENCE["float32"] + gram.loss_bound
    np.testing.assert_allclose(gram.weights, streaming.weights, rtol=EQUIVALENCE["float32"])
    assert gram.bias == pytest.approx(streaming.bias, rel=EQUIVALENCE["float32"])


# --- the gram experiment ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gram_table(tmp_path_factory):
    from comparisons.core.config import StudyConfig
    from comparisons.experiments import ExperimentContext, gram

    return gram.run(ExperimentContext(config=StudyConfig(), out_dir=tmp_path_factory.mktemp("gram")))


def test_gram_experiment_shows_the_cancellation_within_the_bound(gram_table):
    from comparisons.experiments import gram

    s = gram.summary(gram_table).set_index(["noise", "dtype"])
    # oracle for s: the generator's y, summed independently of the statistics' blocks
    y = make_synthetic(gram.N_SAMPLES, 1, 0.01, seed=0).y.astype(np.float32).astype(np.float64)
    assert s.loc[(0.01, "float32"), "s"] == pytest.approx(float(np.mean(y ** 2)), rel=1e-6)
    # the shown case departs beyond the usual tolerance, yet every case stays within tolerance + bound
    assert s.loc[(0.01, "float32"), "max_rel_gap"] > 100 * s.loc[(0.01, "float32"), "tolerance"]
    assert s.loc[(0.5, "float32"), "verdict"] == "within tolerance"
    assert (s.verdict != "OUTSIDE").all()
    # the gap grows with s / loss: less noise, more digits lost
    gaps = s.xs("float32", level="dtype").sort_values("s_over_loss").max_rel_gap.to_numpy()
    assert np.all(np.diff(gaps) > 0)


def test_gram_figure_draws_both_curves_and_every_gap_with_its_bound(gram_table):
    from comparisons.experiments import gram

    fig = gram.figure(gram_table)
    left, right = fig.axes[:2]
    from comparisons.core import registry

    assert [line.get_label() for line in left.get_lines()][:3] == [  # the registry's titles, not its ids
        f"{registry.label('numpy')}, float32", f"{registry.label('numpy:gram')}, float32",
        f"{registry.label('numpy')}, float64"]
    # both float32 losses repeat exactly at the end: the mark says from where (the same iteration the right
    # panel's title gives for this case), and why
    frozen = [line for line in left.get_lines()[3:] if "rounds away" in line.get_label()]
    case = gram_table[(gram_table.noise == gram.SHOWN[0]) & (gram_table.dtype == gram.SHOWN[1])]
    last_changes = [np.flatnonzero(c[1:] != c[:-1])[-1] + 1 for c in (case.gram_loss.to_numpy(),
                                                                         case.streaming_loss.to_numpy())]
    last_change = max(last_changes)
    assert [list(line.get_xdata()) for line in frozen] == ([[last_change] * 2] if len(case) - last_change >= 10 else [])
    gram_line, streaming_line = left.get_lines()[1], left.get_lines()[0]
    assert np.max(np.abs(gram_line.get_ydata() - streaming_line.get_ydata())) > 1e-6  # visibly apart at ~1e-4
    labels = [line.get_label() for line in right.get_lines()]
    assert sum(label.startswith("gap") for label in labels) == 6 and sum(label.startswith("bound") for label in labels) == 6
    low, high = right.get_ylim()
    values = np.concatenate([gram_table.rel_gap[gram_table.rel_gap > 0], gram_table.bound])
    assert right.get_yscale() == "log" and 0 < low <= values.min() and values.max() <= high
    lo, hi = left.get_ylim()
    assert lo <= min(gram_line.get_ydata().min(), streaming_line.get_ydata().min())
    from comparisons.output.figures import plt
    plt.close(fig)


def test_gram_findings_read_the_table(gram_table):
    from comparisons.experiments import gram

    first, second = gram.findings(gram_table)
    worst = gram.summary(gram_table).set_index(["noise", "dtype"]).loc[(0.01, "float32"), "max_rel_gap"]
    assert first.kind == "gram" and first.facts["gap"] == worst and first.facts["dtype"] == "float32"
    assert first.facts["noise"] == 0.01 and second.kind == "gram_bound"
    doubled = gram_table.assign(rel_gap=2 * gram_table.rel_gap)
    assert gram.findings(doubled)[0].facts["gap"] == pytest.approx(2 * worst)
    assert "gram.png" in gram.report_section(gram_table)
    # the rows that need the bound: a gap past the tolerance, counted from the table's own columns
    s = gram.summary(gram_table)
    needs = int((s.max_rel_gap > s.tolerance).sum())
    assert (f"{needs} of {len(s)} rows pass only with the bound" in gram.report_section(gram_table)) == (needs > 0)
    assert "pass only with the bound" not in gram.report_section(gram_table.assign(rel_gap=0.0))


@pytest.mark.parametrize("name", ["numpy:gram", "gradient_tape:gram"])
def test_gram_routes_report_divergence_like_numpy_and_take_the_rate_at_call_time(lesson_data, lesson_trainer, name):
    from comparisons.running.implementations import make_trainer

    data, initial = lesson_data
    trainer = lesson_trainer(name, "float64", LESSON_ITERATIONS)  # built for lr 0.05
    for lr in (10.0, 0.3):  # diverging, then converging, from one trainer
        reference = make_trainer("numpy", data.X, data.y, lr, LESSON_ITERATIONS)(*initial)
        result = trainer(*initial, lr)
        assert result.diverged_at == reference.diverged_at
        k = len(reference.loss_curve)
        np.testing.assert_allclose(result.loss_curve[:k], reference.loss_curve, rtol=EQUIVALENCE["float64"])
    assert reference.diverged_at is None and result.loss_bound is not None


def test_gram_stages_are_the_trainers_own_pass_and_iterations(lesson_data):
    """Timed apart by the scaling experiment: the pass gives the statistics, the iterations the trainer's curve."""
    from comparisons.running.implementations import gram_stages, make_trainer

    data, (W0, b0) = lesson_data
    trainer = make_trainer("numpy:gram", data.X, data.y, 0.05, 30)
    one_pass, iterate = gram_stages(trainer)
    stats = one_pass()
    # oracle for G: [X, 1]^T [X, 1] / n built directly
    Xa = np.hstack([data.X, np.ones((data.n, 1))])
    np.testing.assert_allclose(stats.G, Xa.T @ Xa / data.n, rtol=1e-13)
    np.testing.assert_array_equal(iterate(stats, W0, b0), trainer(W0, b0).loss_curve)
    with pytest.raises(ValueError, match="Gram route"):
        gram_stages(make_trainer("numpy", data.X, data.y, 0.05, 30))


@pytest.mark.parametrize("m", [1, 3])
@pytest.mark.parametrize("block_rows", [1, 7, 512, None])  # one row, leftovers, several blocks, the default
@pytest.mark.parametrize("parts", [1, 2, 3])  # one range, or rows split into ranges (3: of unequal length), in threads
def test_float32_blocks_cast_into_the_reused_buffer_give_the_float64_reference(block_rows, m, parts):
    """The pass casts each float32 block into one float64 buffer: every block of every range, the last one short,
    counts once, whether the ranges run one after the other or in threads."""
    from comparisons.running.cores import threaded_map

    data = make_synthetic(1000, m, 0.5, seed=9)
    X32, y32 = data.X.astype(np.float32), data.y.astype(np.float32)
    stats = handrolled.sufficient_statistics(X32, y32, block_rows=block_rows, parts=parts, map_ranges=threaded_map)
    A, y64 = _design(X32.astype(np.float64)), y32.astype(np.float64)[:, 0]
    # oracle: exactly rounded sums (math.fsum; products of float32 values are exact in float64), rounded to float32
    exact = lambda u, v: math.fsum(u * v) / 1000
    G = np.array([[exact(A[:, j], A[:, k]) for k in range(m + 1)] for j in range(m + 1)])
    np.testing.assert_array_equal(stats.G, G.astype(np.float32))
    np.testing.assert_array_equal(stats.c, np.array([[exact(A[:, j], y64)] for j in range(m + 1)]).astype(np.float32))
    assert stats.s == np.float32(exact(y64, y64))


def test_default_blocks_hold_the_block_bytes_of_float64_rows():
    from handrolled.gram import BLOCK_BYTES, MAX_BLOCK_ROWS, block_rows_for

    assert block_rows_for(32) == min(MAX_BLOCK_ROWS, BLOCK_BYTES // 256)  # 32 float64 features: 256 bytes a row
    assert block_rows_for(1, block_bytes=80) == 10 and block_rows_for(100, block_bytes=8) == 1
    assert block_rows_for(1, block_bytes=8 * (MAX_BLOCK_ROWS + 1)) == MAX_BLOCK_ROWS  # capped


def test_the_threaded_pass_gives_blas_its_threads_back():
    """BLAS runs one thread per range during the pass, and as many threads as before it afterwards."""
    from threadpoolctl import threadpool_info

    from comparisons.running import cores

    def blas_threads():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    before = blas_threads()
    data = make_synthetic(4000, 3, 0.5, seed=5)
    threaded = handrolled.sufficient_statistics(data.X, data.y, block_rows=100, parts=2, map_ranges=cores.threaded_map)
    assert blas_threads() == before
    one = handrolled.sufficient_statistics(data.X, data.y, block_rows=100)
    # float64 sums in another order: equal to float64 rounding (about n eps of the sums' size)
    np.testing.assert_allclose(threaded.G, one.G, rtol=4000 * np.finfo(np.float64).eps)
    assert cores.sufficient_statistics(data.X, data.y).n == 4000  # the study's pass: one range per core
    assert cores.parts_for(3) == cores.cores() and cores.parts_for(1) == 1  # one feature: one range


def test_row_ranges_cover_every_row_once():
    from handrolled.gram import row_ranges

    for n, rows, parts in ((1000, 100, 3), (1000, 100, 1), (1000, 400, 5), (7, 100, 2), (10, 1, 10)):
        ranges = row_ranges(n, rows, parts)
        assert ranges[0][0] == 0 and ranges[-1][1] == n and all(a < b for a, b in ranges)
        assert all(ranges[k][1] == ranges[k + 1][0] for k in range(len(ranges) - 1))
        assert len(ranges) == max(1, min(parts, n // rows))  # at most one range per block of rows
