"""Visible progress and up-front limits: sizes that cannot fit are usage errors; a large CSV loads in chunks with a bar."""
import tracemalloc

import numpy as np
import pytest

import run_all
from comparisons.inputs import csv_data
from comparisons.core import limits
from comparisons.running import stability
from comparisons.core.errors import UsageError

from .conftest import imports_of_runs

FAST = ("--only", "numpy", "--dtype", "float64", "--repeats", "1", "--experiments", "none")


@pytest.mark.parametrize("args, words", [
    (("--iterations", "1e12"), ["--iterations 1000000000000", "TB", "memory", "smaller --iterations"]),
    (("--n-samples", "1e10"), ["--n-samples 10000000000", "GB", "smaller --n-samples"]),
    (("--n-samples", "1000000", "--features", "10000000"), ["--n-samples 1000000 x --features 10000000"]),
], ids=["iterations", "n-samples", "features"])
def test_sizes_that_cannot_fit_are_usage_errors_before_any_heavy_import(tmp_path, args, words):
    (found,) = imports_of_runs([["--out", tmp_path / "r", *FAST, *args]])
    assert found["code"] == 2 and found["heavy"] == [], found
    lines = found["stderr"].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for word in words:
        assert word in lines[0], lines[0]
    assert not (tmp_path / "r").exists()


def test_the_memory_bound_is_the_sum_of_its_arrays():
    # by hand: 3 x 1001 float64 (curves) + 100 x 2 (X, y) + min(100, 2)^2 (Gram), 8 bytes each
    total = 8 * (3 * 1001 + 100 * 2 + 2 ** 2)
    assert sum(limits.needs(100, 1, 1000).values()) == total
    limits.check_fits(100, 1, 1000, memory=total)
    with pytest.raises(UsageError, match="--iterations 1000 keeps"):
        limits.check_fits(100, 1, 1000, memory=total - 1)
    assert limits.needs(None, 5, 9) == {"--iterations": 8 * 3 * 10}  # CSV data: only the curves are known up front


@pytest.mark.parametrize("text, value", [("1000", 1000), ("1e3", 1000), ("2.5e3", 2500), ("1E6", 10 ** 6)])
def test_whole_numbers_may_be_written_in_scientific_notation(text, value):
    args = run_all.build_parser().parse_args(["--iterations", text])
    assert args.iterations == value and isinstance(args.iterations, int)


@pytest.mark.parametrize("text", ["1.5e0", "1e-3", "1e400", "e3", "1.5", "ten"])
def test_other_numbers_are_not_whole(text):
    with pytest.raises(UsageError, match="not a whole number"):
        run_all.build_parser().parse_args(["--iterations", text])


def test_stability_with_fewer_rows_than_parameters_matches_the_dense_hessian():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((30, 80))
    dense = np.linalg.eigvalsh(stability.hessian(X))  # the oracle: the (81, 81) Hessian itself
    found = stability.analyse(X)
    assert found.lambda_max == pytest.approx(dense[-1], rel=1e-12)
    assert found.lambda_min == 0.0 and abs(dense[0]) < 1e-12 * dense[-1]  # rank 30 < 81: singular


def test_stability_of_20000_features_on_100_rows_never_forms_the_large_matrix():
    X = np.random.default_rng(3).standard_normal((100, 20_000))
    tracemalloc.start()
    try:
        found = stability.analyse(X)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_001 ** 2 * 8 / 50, peak  # far below the (m + 1) x (m + 1) float64 Hessian (3.2 GB)
    assert found.lambda_max > 0 and found.lambda_min == 0.0


def _csv(path, rows, columns=4, bad_line=None):
    """A numeric CSV (header c0.., y) with a blank line every 10 rows; row `bad_line` (a file line) gets 'oops'."""
    rng = np.random.default_rng(4)
    lines, values = ["," .join([*(f"c{j}" for j in range(columns)), "y"])], rng.standard_normal((rows, columns + 1))
    for k, row in enumerate(values):
        if k % 10 == 9:
            lines.append("")
        lines.append(",".join(f"{v!r}" for v in row.tolist()))
    if bad_line is not None:
        cells = lines[bad_line - 1].split(",")
        lines[bad_line - 1] = ",".join(["oops", *cells[1:]])
    path.write_text("\n".join(lines) + "\n")
    return path, values


def test_chunks_keep_every_value_and_the_line_numbers_of_bad_cells(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_data, "CHUNK_ROWS", 7)  # many chunks, boundaries everywhere, blank lines between
    path, values = _csv(tmp_path / "data.csv", 100)
    data = csv_data.load_csv(path, "y")
    np.testing.assert_array_equal(data.X, values[:, :4])
    np.testing.assert_array_equal(data.y[:, 0], values[:, 4])
    path, _ = _csv(tmp_path / "bad.csv", 100, bad_line=95)
    lines = path.read_text().splitlines()
    assert lines[94].startswith("oops")  # line 95 of the file, past many chunks and blank lines
    with pytest.raises(UsageError, match=r"column 'c0' has a non-numeric value 'oops' on line 95"):
        csv_data.load_csv(path, "y")


def test_a_large_csv_shows_a_bar_and_loads_within_a_small_multiple_of_its_size(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(csv_data, "PROGRESS_MIN_BYTES", 2 ** 20)
    monkeypatch.setattr(csv_data, "CHUNK_ROWS", 5_000)  # a file of 12 chunks, as 200 MB is of the real chunk size
    path, values = _csv(tmp_path / "large.csv", 60_000)  # about 6 MB of text, 2.4 MB of float64
    size = path.stat().st_size
    capsys.readouterr()
    tracemalloc.start()
    try:
        data = csv_data.load_csv(path, "y")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "reading large.csv" in capsys.readouterr().err  # the bar, on stderr
    np.testing.assert_array_equal(data.X, values[:, :4])
    # one chunk's cells as strings plus the float64 columns; every cell as a string at once was 4-5 times the file
    assert peak < 1.5 * size, (peak, size)
