"""Values the arithmetic cannot carry: one clear error line, or a correct run after --standardize; strict JSON always."""
import json

import numpy as np
import pandas as pd
import pytest

from comparisons.core import strict_json
from handrolled.closed_form import column_norms

from .conftest import run_driver, snapshot

FAST = ("--only", "numpy", "--dtype", "float64", "--repeats", "1", "--experiments", "none")


def _strict(text):
    """json.loads that rejects NaN and Infinity, as strict JSON parsers do."""
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


def _huge_csv(path, scale=1e200, rows=60):
    """Columns a (near `scale`), b (near 1) and y = 2 b + 3 a / scale + 1 + noise: its OLS is known by rescaling a."""
    rng = np.random.default_rng(5)
    a = rng.uniform(1, 2, rows) * scale
    b = rng.uniform(0, 1, rows)
    y = 2 * b + 3 * (a / scale) + 1 + 0.01 * rng.standard_normal(rows)
    path.write_text("a,b,y\n" + "".join(f"{float(p)!r},{float(q)!r},{float(r)!r}\n" for p, q, r in zip(a, b, y)))
    return path, a, b, y


def _one_error(proc, *words):
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_features_near_1e200_are_one_error_line_naming_the_column(tmp_path, earlier_results, capsys):
    path, *_ = _huge_csv(tmp_path / "huge.csv")
    before = snapshot(earlier_results)
    _one_error(run_driver(capsys, "--out", earlier_results, "--data", path, "--target", "y", *FAST, "--iterations", "10"),
               "'a'", "float64", "--standardize")
    assert snapshot(earlier_results) == before and sorted(p.name for p in earlier_results.parent.iterdir()) == ["results"]


def test_a_huge_target_is_one_error_line_that_does_not_offer_standardize_as_the_cure(tmp_path, capsys):
    _one_error(run_driver(capsys, "--out", tmp_path / "r", "--noise", "1e200", *FAST, "--iterations", "10"),
               "target column 'y'", "rescale the target")


def test_float32_cannot_carry_what_float64_can(tmp_path, capsys):
    path, *_ = _huge_csv(tmp_path / "big.csv", scale=1e25)  # squares near 1e50: past float32's 3.4e38
    args = ("--data", path, "--target", "y", "--only", "numpy", "--repeats", "1", "--experiments", "none",
            "--iterations", "10")
    _one_error(run_driver(capsys, "--out", tmp_path / "r32", *args, "--dtype", "float32"), "'a'", "float32",
               "--dtype float64")
    proc = run_driver(capsys, "--out", tmp_path / "r64", *args, "--dtype", "float64")
    assert proc.returncode == 0 and "Warning" not in proc.stderr, proc.stderr


def test_standardize_runs_features_near_1e200_correctly_with_no_warning_and_strict_json(tmp_path, capsys):
    path, a, b, y = _huge_csv(tmp_path / "huge.csv")
    out = tmp_path / "results"
    proc = run_driver(capsys, "--out", out, "--data", path, "--target", "y", *FAST, "--iterations", "3000",
                      "--standardize")
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr and "nan" not in proc.stderr.lower(), proc.stderr
    for name in ("study.json", "environment.json", "config.json", "experiments.json"):
        _strict((out / name).read_text())
    # the oracle: least squares with column a divided by 1e200 by hand, then its weight scaled back
    design = np.column_stack([a / 1e200, b, np.ones_like(b)])
    theta = np.linalg.lstsq(design, y, rcond=None)[0]
    expected = {"a": theta[0] / 1e200, "b": theta[1], "bias": theta[2]}
    weights = pd.read_csv(out / "weights.csv", float_precision="round_trip")
    for implementation, rel in (("ols", 1e-9), ("numpy", 1e-6)):  # 3000 steps on z-scores converge that far
        rows = weights[weights.implementation == implementation].set_index("parameter").value
        for parameter, value in expected.items():
            assert rows[parameter] == pytest.approx(value, rel=rel), (implementation, parameter)


def test_strict_json_writes_null_for_non_finite_numbers_and_says_where():
    text = strict_json.dumps({"lambda_max": float("nan"), "curve": [1.0, np.float64(np.inf)], "ok": np.float32(0.5)})
    value = _strict(text)
    assert value["lambda_max"] is None and value["curve"] == [1.0, None] and value["ok"] == 0.5
    assert value[strict_json.NON_FINITE_KEY] == ["lambda_max (nan)", "curve[1] (inf)"]
    assert _strict(strict_json.dumps({"all": "finite"})) == {"all": "finite"}  # no note when nothing was replaced


def test_column_norms_equal_numpys_on_ordinary_data_and_stay_finite_on_huge_data():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((50, 3)) * np.array([1e-3, 1.0, 1e7])
    assert np.array_equal(column_norms(A), np.linalg.norm(A, axis=0))  # powers of two: exactly the same
    huge = np.array([[1e200], [2e200]])
    with np.errstate(over="raise"):
        assert column_norms(huge)[0] == pytest.approx(np.sqrt(5.0) * 1e200, rel=1e-15)
