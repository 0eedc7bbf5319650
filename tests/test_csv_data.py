"""CSV data and standardisation: every bad input is one clear UsageError; z-scored training matches raw OLS."""
import hashlib
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import handrolled
from comparisons.inputs.csv_data import load_csv
from comparisons.inputs.data import Dataset, initial_parameters, make_synthetic
from comparisons.core.errors import UsageError
from comparisons.running.stability import analyse
from comparisons.inputs.standardize import scales_differ_widely, standardize

from .conftest import run_driver

GOOD = "a,b,label,y\n1,2,x,3.5\n2,5,y,4\n3,1,z,9\n4,4,w,1e1\n"


def _write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _error(path, target="y", features=None):
    with pytest.raises(UsageError) as info:
        load_csv(path, target, features)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message
    return message


# (csv text, target, features, words the message must contain)
BAD_INPUTS = {
    "empty file": ("", "y", None, ["empty"]),
    "whitespace only": ("\n  \n", "y", None, ["empty"]),
    "header only": ("a,b,y\n", "y", None, ["no data rows"]),
    "header without rows but blank lines": ("a,b,y\n\n\n", "y", None, ["no data rows"]),
    "missing target": (GOOD, "price", None, ["'price'", "--target", "'a', 'b', 'label', 'y'"]),
    "no header": ("1,2,3\n4,5,6\n7,8,9\n", "y", None, ["'y'", "header"]),
    "missing feature": (GOOD, "y", ["a", "c"], ["'c'", "feature", "'a', 'b', 'label', 'y'"]),
    "non-numeric feature": (GOOD, "y", ["a", "label"], ["'label'", "non-numeric", "'x'", "line 2"]),
    "typo in a numeric column": ("a,y\n1,2\n2,3\n3x,4\n", "y", None, ["'a'", "non-numeric", "'3x'", "line 4"]),
    "non-numeric target": (GOOD, "label", ["a"], ["'label'", "non-numeric", "line 2"]),
    "NaN": ("a,b,y\n1,2,3\n2,NaN,4\n3,1,9\n", "y", None, ["'b'", "NaN", "line 3"]),
    "empty cell": ("a,b,y\n1,2,3\n2,5,4\n3,,9\n", "y", None, ["'b'", "empty", "line 4"]),
    "short row": ("a,b,y\n1,2,3\n2,5\n3,1,9\n", "y", None, ["'y'", "empty", "line 3"]),
    "inf": ("a,b,y\n1,2,3\n2,5,4\n3,1,inf\n", "y", None, ["'y'", "infinite", "line 4"]),
    "-inf": ("a,b,y\n1,-inf,3\n2,5,4\n3,1,1\n", "y", None, ["'b'", "infinite", "line 2"]),
    "row numbers count blank lines": ("a,y\n1,2\n\n2,3\n3,nan\n", "y", None, ["'y'", "line 5"]),
    "one row": ("a,y\n1,2\n", "y", None, ["1 data row", "at least 2"]),
    "fewer rows than parameters": ("a,b,c,y\n1,2,3,4\n2,3,5,6\n", "y", None, ["2 rows", "3 weights", "at least 4"]),
    "constant feature": ("a,b,y\n1,7,3\n2,7,4\n3,7,9\n", "y", None, ["'b'", "constant", "singular"]),
    "duplicate column names": ("a,b,a,y\n1,2,3,4\n2,5,4,4\n3,1,9,5\n", "y", None, ["'a'", "more than once", "header"]),
    "unnamed column": ("a,,y\n1,2,3\n2,5,4\n3,1,9\n", "y", None, ["column 2", "no name"]),
    "target among features": (GOOD, "y", ["a", "y"], ["'y'", "target", "feature"]),
    "feature listed twice": (GOOD, "y", ["a", "a"], ["'a'", "twice"]),
    "no feature columns given": (GOOD, "y", [], ["no feature columns"]),
    "no numeric feature left": ("label,y\nx,1\ny,2\nz,3\n", "y", None, ["no numeric column", "'y'"]),
    "more fields than header": ("a,y\n1,2,3\n2,3,4\n", "y", None, ["more fields than the header"]),
    "ragged row": ("a,b,y\n1,2,3\n2,5,4,4\n3,1,9\n", "y", None, ["line 3", "fields"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_input_is_one_clear_usage_error(tmp_path, case):
    text, target, features, words = BAD_INPUTS[case]
    path = _write(tmp_path, text)
    message = _error(path, target, features)
    assert str(path) in message  # says which file
    for word in words:
        assert word in message, f"{word!r} missing from: {message}"


def test_missing_file(tmp_path):
    message = _error(tmp_path / "nope.csv")
    assert "nope.csv" in message and "no such file" in message


def test_folder_instead_of_file(tmp_path):
    message = _error(tmp_path)
    assert "folder" in message and str(tmp_path) in message


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path):
    path = _write(tmp_path, GOOD)
    path.chmod(0)
    try:
        assert "cannot be read" in _error(path)
    finally:
        path.chmod(0o600)


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("caf\xe9,y\n1,2\n2,3\n".encode("latin-1"))
    assert "UTF-8" in _error(path)


def test_good_csv_loads_names_shapes_and_source(tmp_path):
    path = _write(tmp_path, GOOD)
    data = load_csv(path, "y")  # default features: the other numeric columns, not 'label'
    assert data.feature_names == ("a", "b") and data.target_name == "y"
    assert data.X.shape == (4, 2) and data.y.shape == (4, 1)
    assert data.X.dtype == np.float64 and data.y.dtype == np.float64
    np.testing.assert_array_equal(data.X[:, 1], [2, 5, 1, 4])
    np.testing.assert_array_equal(data.y[:, 0], [3.5, 4, 9, 10])
    assert data.true_weights is None and data.true_bias is None
    assert str(path) in data.source and "4 rows" in data.source and "a, b" in data.source
    assert hashlib.sha256(path.read_bytes()).hexdigest()[:12] in data.source


def test_chosen_columns_keep_their_order_and_spacing_is_forgiven(tmp_path):
    path = _write(tmp_path, "\ufeffa, b ,y\n 1, 2,3\n2 ,5,4\n3,1, 9\n")  # BOM and spaces around fields
    data = load_csv(path, "y", ["b", "a"])
    assert data.feature_names == ("b", "a")
    np.testing.assert_array_equal(data.X, [[2, 1], [5, 2], [1, 3]])


def test_checksum_changes_with_the_bytes(tmp_path):
    first = load_csv(_write(tmp_path, GOOD, "one.csv"), "y").source
    second = load_csv(_write(tmp_path, GOOD.replace("3.5", "3.25"), "two.csv"), "y").source
    assert first.split("sha256 ")[1] != second.split("sha256 ")[1]


# ---- standardisation ----

def _wide_scales(seed=1, n=200):
    """Three features on very different scales, as real data often has."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.normal(5, 2, n), rng.normal(-3e3, 1e3, n), rng.normal(1e-2, 1e-3, n)])
    W = np.array([[1.5], [-2e-3], [300.0]])
    y = 7.0 + X @ W + 0.1 * rng.standard_normal((n, 1))
    return Dataset(X=X, y=y, feature_names=("p", "q", "r"), target_name="t", source="test")


def test_standardized_features_are_z_scores_and_target_is_kept():
    data = _wide_scales()
    trained, _ = standardize(data)
    np.testing.assert_allclose(trained.X.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(trained.X.std(axis=0), 1, rtol=1e-12)
    np.testing.assert_array_equal(trained.y, data.y)
    assert trained.feature_names == data.feature_names
    np.testing.assert_array_equal(data.X, _wide_scales().X)  # the input is untouched


def test_centred_target_has_mean_zero_and_is_named_in_the_source():
    data = _wide_scales()
    trained, _ = standardize(data, center_target=True)
    assert abs(float(trained.y.mean())) < 1e-9 * float(np.abs(data.y).max())
    np.testing.assert_allclose(trained.y + data.y.mean(), data.y, rtol=1e-14)
    assert "target centred" in trained.source


def _rel(a, b):
    return np.max(np.abs(np.asarray(a, float) - np.asarray(b, float)) / np.abs(np.asarray(b, float)))


CENTRED = pytest.mark.parametrize("center", [False, True], ids=["raw_target", "centred_target"])


@CENTRED
def test_closed_form_on_z_scores_maps_back_to_raw_ols(center):
    data = _wide_scales()
    W_ref, b_ref = handrolled.ols(data.X, data.y)
    trained, to_raw = standardize(data, center_target=center)
    W, b = to_raw(*handrolled.ols(trained.X, trained.y))
    assert W.shape == (3, 1)
    assert _rel(W, W_ref) < 1e-10 and _rel(b, b_ref) < 1e-10


@CENTRED
def test_descent_on_z_scores_maps_back_to_raw_ols(center):
    data = _wide_scales()
    W_ref, b_ref = handrolled.ols(data.X, data.y)
    trained, to_raw = standardize(data, center_target=center)
    W0, b0 = initial_parameters(3, seed=0)
    run = handrolled.descend(trained.X, trained.y, W0, b0, lr=0.1, iterations=3000)
    assert run.diverged_at is None
    W, b = to_raw(run.weights, run.bias)
    assert _rel(W, W_ref) < 1e-6 and _rel(b, b_ref) < 1e-6


@CENTRED
def test_reparametrisation_keeps_the_mse(center):
    data = _wide_scales()
    trained, to_raw = standardize(data, center_target=center)
    rng = np.random.default_rng(5)
    for _ in range(5):
        W_std, b_std = rng.standard_normal((3, 1)), float(rng.standard_normal())
        W_raw, b_raw = to_raw(W_std, b_std)
        loss_std = handrolled.mse(trained.y, handrolled.predict(trained.X, W_std, b_std))
        loss_raw = handrolled.mse(data.y, handrolled.predict(data.X, W_raw, b_raw))
        assert loss_raw == pytest.approx(loss_std, rel=1e-9)


@CENTRED
def test_synthetic_truth_is_carried_into_trained_units(center):
    data = make_synthetic(100, 3, 0.5, seed=2)
    trained, to_raw = standardize(data, center_target=center)
    W, b = to_raw(trained.true_weights, trained.true_bias)
    np.testing.assert_allclose(W, data.true_weights, rtol=1e-12)
    assert b == pytest.approx(data.true_bias, rel=1e-12)


def test_scales_differ_widely():
    assert scales_differ_widely(_wide_scales().X)
    assert not scales_differ_widely(make_synthetic(100, 3, 0.5, seed=0).X)
    # one feature in the millions is badly scaled against the bias column of ones
    assert scales_differ_widely(np.arange(10.0).reshape(-1, 1) * 1e6)
    assert not scales_differ_widely(np.arange(10.0).reshape(-1, 1))
    base = 1 + np.arange(10.0) / 10  # root mean square ~1.5
    X = np.column_stack([base, 60 * base])  # scales 1 (bias), ~1.5 and ~90
    assert not scales_differ_widely(X) and scales_differ_widely(X, ratio=50)


# ---- a real dataset shipped inside a pinned package: matplotlib's msft.csv ----

def _msft_path():
    import matplotlib
    import matplotlib.cbook

    assert matplotlib.__version__ == "3.11.2"  # the pin; the sample file below ships with it
    path = Path(matplotlib.cbook.get_sample_data("msft.csv", asfileobj=False))
    assert path.is_file() and path.parent == Path(matplotlib.get_data_path()) / "sample_data"
    return path


@pytest.fixture(scope="module")
def msft():
    return load_csv(_msft_path(), "Close", ["Open", "High", "Low", "Volume"])


def _exact_ols(X, y):
    """Least squares of the float64 data in exact rational arithmetic (normal equations, 65 x 5 is tiny)."""
    A = [[Fraction(v) for v in row] + [Fraction(1)] for row in X]
    t = [Fraction(v) for v in y[:, 0]]
    k = len(A[0])
    M = [[sum(r[i] * r[j] for r in A) for j in range(k)] + [sum(r[i] * v for r, v in zip(A, t))] for i in range(k)]
    for i in range(k):
        for j in range(i + 1, k):
            f = M[j][i] / M[i][i]
            M[j] = [a - f * c for a, c in zip(M[j], M[i])]
    x = [Fraction(0)] * k
    for i in reversed(range(k)):
        x[i] = (M[i][k] - sum(M[i][j] * x[j] for j in range(i + 1, k))) / M[i][i]
    return np.array([float(v) for v in x[:-1]]).reshape(-1, 1), float(x[-1])


def test_msft_loads_with_all_numeric_columns_by_default():
    data = load_csv(_msft_path(), "Close")
    assert data.feature_names == ("Open", "High", "Low", "Volume", "Adj. Close*")  # Date is not numeric
    assert data.X.shape == (65, 5)


def test_msft_raw_descent_diverges_where_standardized_matches_ols(msft):
    assert msft.X.shape == (65, 4) and scales_differ_widely(msft.X)  # Volume ~1e7, prices ~1
    W0, b0 = initial_parameters(4, seed=0)
    raw = analyse(msft.X)
    assert raw.max_stable_lr < 1e-12  # Volume makes lambda_max enormous
    assert handrolled.descend(msft.X, msft.y, W0, b0, lr=0.05, iterations=1000).diverged_at is not None

    trained, to_raw = standardize(msft)
    lr = 0.9 * analyse(trained.X).max_stable_lr
    assert 0.05 < lr < 1  # a lesson-sized step is stable once standardised
    run = handrolled.descend(trained.X, trained.y, W0, b0, lr=lr, iterations=4000)
    assert run.diverged_at is None
    W, b = to_raw(run.weights, run.bias)
    W_ols, b_ols = handrolled.ols(msft.X, msft.y)
    assert _rel(W, W_ols) < 1e-6 and _rel(b, b_ols) < 1e-6
    # against the exact least-squares solution, the standardised closed form is accurate to ~1e-12; the raw
    # lstsq reference loses ~1e-7 on the Volume weight to the 1e7 scale gap, so it is not the benchmark here
    W_exact, b_exact = _exact_ols(msft.X, msft.y)
    W_std, b_std = to_raw(*handrolled.ols(trained.X, trained.y))
    assert _rel(W_std, W_exact) < 1e-10 and _rel(b_std, b_exact) < 1e-10
    assert _rel(W, W_exact) < 1e-6


def test_msft_end_to_end_standardized_weights_are_raw_units(tmp_path, capsys):
    """The driver on msft.csv: --standardize reports raw-unit weights equal to least squares; raw lr 0.05 diverges.

    The three numpy-only runs go through run_all.main in this process: the checks read exit codes, stderr and the
    files written, which a fresh interpreter would not change (tests/test_cli_errors.py runs the driver as a user would).
    """
    import pandas as pd

    data = load_csv(_msft_path(), "Close", ["Open", "High", "Low", "Volume"])
    W_exact, b_exact = _exact_ols(data.X, data.y)
    common = ["--data", str(_msft_path()), "--target", "Close", "--columns", "Open,High,Low,Volume", "--only", "numpy",
              "--dtype", "float64", "--repeats", "1", "--experiments", "none"]
    runs = {}
    for name, extra in {"std": ["--standardize", "--lr", "0.3", "--iterations", "4000"], "raw": ["--lr", "0.05"],
                        "centred": ["--standardize", "--center-target", "--lr", "0.3", "--iterations", "4000"]}.items():
        proc = run_driver(capsys, "--out", tmp_path / name, *common, *extra)
        assert proc.returncode == 0, proc.stderr
        runs[name] = proc
    weights = pd.read_csv(tmp_path / "std" / "weights.csv")
    numpy_rows = weights[weights.implementation == "numpy"].set_index("parameter").value
    assert list(numpy_rows.index) == ["Open", "High", "Low", "Volume", "bias"]
    assert _rel(numpy_rows.iloc[:4].to_numpy().reshape(-1, 1), W_exact) < 1e-6
    assert _rel(numpy_rows["bias"], b_exact) < 1e-6
    assert "true" not in set(weights.implementation)  # real data has no generator truth
    centred = pd.read_csv(tmp_path / "centred" / "weights.csv")
    centred_rows = centred[centred.implementation == "numpy"].set_index("parameter").value
    assert _rel(centred_rows.iloc[:4].to_numpy().reshape(-1, 1), W_exact) < 1e-6
    assert _rel(centred_rows["bias"], b_exact) < 1e-6  # the mean of Close added back: raw units
    assert "target centred" in (tmp_path / "centred" / "report.md").read_text()
    assert "sha256" in (tmp_path / "std" / "report.md").read_text()
    assert "warning" not in runs["std"].stderr
    status = pd.read_csv(tmp_path / "raw" / "runs.csv").status
    assert status.str.startswith("diverged at iteration").all()
    assert "try --standardize" in runs["raw"].stderr
