"""Bad input through the driver: one `error:` line, exit 2, no traceback, and the previous results untouched.

Each case runs the driver (run_all.main) on a small fast configuration, so that a case the driver fails to
reject shows up as a run that succeeded (and replaced the results). The cases run in this process; a few
representatives also run as `python run_all.py` in a subprocess, as a user would, and one fresh interpreter
checks that no usage error needs TensorFlow, numpy or pandas to be reported (that keeps them instant).
"""
from pathlib import Path

import pytest

from .conftest import imports_of_runs, mark_as_results, run_driver, run_driver_process, snapshot

FAST = ("--only", "numpy", "--dtype", "float64", "--iterations", "10", "--repeats", "1", "--experiments", "none")
GOOD_CSV = "a,b,y\n1,2,3\n2,5,4\n3,1,9\n4,4,10\n"


@pytest.fixture
def previous(tmp_path):
    """An earlier results folder with known bytes, alone in its parent (tmp_path/out); inputs go in tmp_path."""
    folder = tmp_path / "out" / "results"
    (folder / "sub").mkdir(parents=True)
    (folder / "report.md").write_text("# an earlier run\n")
    (folder / "weights.csv").write_text("implementation,device,dtype,parameter,value\nnumpy,cpu,float64,x1,3\n")
    (folder / "sub" / "blob.bin").write_bytes(bytes(range(256)))
    return mark_as_results(folder)


def _assert_usage_error(proc, *words):
    """Exit 2, exactly one non-empty stderr line starting `error:` that contains `words`; returns it."""
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, f"exit {proc.returncode}, stderr: {proc.stderr}"
    assert len(lines) == 1, f"expected one stderr line, got: {lines}"
    assert lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0], f"{word!r} missing from: {lines[0]}"
    return lines[0]


def _assert_untouched(previous, before):
    """The previous results are byte-for-byte the same and nothing else (no staging folder) sits beside them."""
    assert snapshot(previous) == before
    assert [p.name for p in previous.parent.iterdir()] == ["results"]


# (csv text or None for a missing file, target, extra args, words in the message; {path} is the CSV's path)
CSV_CASES = {
    "missing file": (None, "y", (), ["{path}", "nope.csv", "no such file"]),
    "empty file": ("", "y", (), ["{path}", "empty"]),
    "missing target column": (GOOD_CSV, "price", (), ["{path}", "'price'", "'a', 'b', 'y'"]),
    "missing feature column": (GOOD_CSV, "y", ("--columns", "a,zz"), ["{path}", "'zz'"]),
    "non-numeric values": ("a,b,y\n1,2,3\n2,five,4\n3,1,9\n4,4,10\n", "y", (), ["{path}", "'b'", "'five'", "line 3"]),
    "NaN": ("a,b,y\n1,2,3\n2,5,4\n3,nan,9\n4,4,10\n", "y", (), ["{path}", "'b'", "line 4"]),
    "empty cell": ("a,b,y\n1,2,3\n2,5,4\n3,1,9\n4,4,\n", "y", (), ["{path}", "'y'", "empty", "line 5"]),
    "inf": ("a,b,y\n1,2,3\ninf,5,4\n3,1,9\n4,4,10\n", "y", (), ["{path}", "'a'", "infinite", "line 3"]),
    "fewer than 2 rows": ("a,y\n1,2\n", "y", (), ["{path}", "1 data row", "at least 2"]),
    "header only": ("a,y\n", "y", (), ["{path}", "no data rows"]),
    "constant feature": ("a,b,y\n1,2,3\n2,2,4\n3,2,9\n4,2,10\n", "y", (), ["{path}", "'b'", "constant"]),
    "duplicate column names": ("a,b,b,y\n1,2,3,4\n2,5,6,4\n3,1,2,9\n4,4,1,10\n", "y", (), ["{path}", "'b'", "more than once"]),
    "target among features": (GOOD_CSV, "y", ("--columns", "a,y"), ["{path}", "'y'", "target"]),
    "batch size above n": (GOOD_CSV, "y", ("--batch-size", "5"), ["--batch-size", "4 samples"]),
}


def _csv_case(tmp_path, case):
    """The argument list of CSV case `case` (its file written into tmp_path) and the words its message needs."""
    text, target, extra, words = CSV_CASES[case]
    path = tmp_path / ("nope.csv" if text is None else "data.csv")
    if text is not None:
        path.write_text(text)
    return ["--data", path, "--target", target, *FAST, *extra], [word.format(path=path) for word in words]


@pytest.mark.parametrize("case", list(CSV_CASES), ids=list(CSV_CASES))
def test_bad_csv_is_one_error_line_and_keeps_results(tmp_path, previous, capsys, case):
    args, words = _csv_case(tmp_path, case)
    before = snapshot(previous)
    _assert_usage_error(run_driver(capsys, "--out", previous, *args), *words)
    _assert_untouched(previous, before)


def test_data_folder_instead_of_file(tmp_path, previous, capsys):
    before = snapshot(previous)
    folder = tmp_path / "folder"
    folder.mkdir()
    _assert_usage_error(run_driver(capsys, "--out", previous, "--data", folder, "--target", "y", *FAST), "folder")
    _assert_untouched(previous, before)


# (args, words in the message); these use the synthetic data (n = 100)
ARG_CASES = {
    "lr zero": (("--lr", "0"), ["--lr"]),
    "lr negative": (("--lr", "-1"), ["--lr", "-1"]),
    "lr not a number": (("--lr", "abc"), ["--lr", "abc"]),
    "lr nan": (("--lr", "nan"), ["--lr"]),
    "iterations zero": (("--iterations", "0"), ["--iterations"]),
    "batch size zero": (("--batch-size", "0"), ["--batch-size"]),
    "batch size above n": (("--batch-size", "101"), ["--batch-size", "101"]),
    "unknown implementation": (("--only", "nosuch"), ["nosuch", "numpy"]),
    "unknown device": (("--device", "tpu"), ["tpu"]),
    "target without data": (("--target", "y"), ["--data"]),
    "centred target without standardize": (("--center-target",), ["--center-target", "--standardize"]),
    "seed too large": (("--seed", "4294967296"), ["--seed", "4294967295"]),
    "nothing left to run": (("--only", "gradient_tape", "--batch-size", "8"), ["nothing to run", "gradient_tape"]),
}


def test_out_as_the_current_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _assert_usage_error(run_driver(capsys, "--out", ".", "--quick", "--experiments", "none"), "current folder")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case", list(ARG_CASES), ids=list(ARG_CASES))
def test_bad_argument_is_one_error_line_and_keeps_results(previous, capsys, case):
    args, words = ARG_CASES[case]
    before = snapshot(previous)
    _assert_usage_error(run_driver(capsys, "--out", previous, *_without(FAST, args), *args), *words)
    _assert_untouched(previous, before)


def _without(options, override):
    """FAST minus any option that `override` sets, so the case's own value is the only one."""
    names, kept = set(override[::2]), []
    for name, value in zip(options[::2], options[1::2]):
        if name not in names:
            kept += [name, value]
    return kept


@pytest.mark.slow
@pytest.mark.parametrize("only", ["numpy,keras", "numpy,gradient_tape:mirrored"])
def test_device_gpu_without_gpu_says_what_tensorflow_saw(previous, capsys, only):
    """One line saying what TensorFlow saw, also when mirrored replicas would have wanted two GPUs; that
    TensorFlow's start-up noise stays out of a fresh process's stderr is checked on the end-to-end study's
    (tests/test_end_to_end.py)."""
    from tf_models.devices import detected_gpus

    from tf_models.quiet_import import import_tensorflow

    import_tensorflow()
    if detected_gpus():
        pytest.skip("a GPU is visible here")
    before = snapshot(previous)
    line = _assert_usage_error(run_driver(capsys, "--out", previous, *_without(FAST, ("--only",)),
                                          "--only", only, "--device", "gpu"), "--device gpu", "GPU", "CPU")
    assert "detected no GPU" in line and "sees" in line
    _assert_untouched(previous, before)


def test_out_pointing_at_a_file_leaves_it_alone(tmp_path, previous, capsys):
    target = tmp_path / "notes.txt"
    target.write_bytes(b"keep me\n")
    before = snapshot(previous)
    _assert_usage_error(run_driver(capsys, "--out", target, *FAST), str(target), "file")
    assert target.read_bytes() == b"keep me\n"
    _assert_untouched(previous, before)


def test_out_under_a_file(tmp_path, previous, capsys):
    blocker = tmp_path / "notes.txt"
    blocker.write_bytes(b"keep me\n")
    before = snapshot(previous)
    _assert_usage_error(run_driver(capsys, "--out", blocker / "results", *FAST), "notes.txt")
    assert blocker.read_bytes() == b"keep me\n"
    _assert_untouched(previous, before)


def test_out_in_an_unwritable_place(previous, capsys):
    before = snapshot(previous)  # /proc refuses new entries even to root
    _assert_usage_error(run_driver(capsys, "--out", "/proc/linreg-results", *FAST), "/proc")
    assert not any("linreg-results" in p.name for p in Path("/proc").iterdir())
    _assert_untouched(previous, before)


def test_usage_errors_from_a_shell_are_one_line_and_exit_2(tmp_path, previous):
    """As a user sees them: `python run_all.py ...` exits 2 with one line, for a bad option and for a bad CSV."""
    before = snapshot(previous)
    _assert_usage_error(run_driver_process("--out", previous, *_without(FAST, ("--lr",)), "--lr", "abc"), "--lr", "abc")
    args, words = _csv_case(tmp_path, "non-numeric values")
    _assert_usage_error(run_driver_process("--out", previous, *args), *words)
    _assert_untouched(previous, before)


def test_usage_errors_are_reported_before_any_heavy_import(tmp_path, previous):
    """Every command-line error, and --help, answers without loading TensorFlow, numpy or pandas; CSV errors need
    pandas to read the file but never TensorFlow."""
    command_line = [["--help"], ["--out", tmp_path / "notes.txt", *FAST], ["--out", "/proc/linreg-results", *FAST]]
    command_line += [["--out", previous, *_without(FAST, args), *args] for args, _ in ARG_CASES.values()]
    (tmp_path / "notes.txt").write_text("a file")
    for found in imports_of_runs(command_line):
        assert found["heavy"] == [], found
        assert found["code"] in (0, 2), found  # --help exits 0
    csv_cases = []
    for k, case in enumerate(CSV_CASES):  # each CSV file in a folder of its own
        (tmp_path / f"case{k}").mkdir()
        csv_cases.append(["--out", previous, *_csv_case(tmp_path / f"case{k}", case)[0]])
    for found in imports_of_runs(csv_cases):
        assert found["code"] == 2 and "tensorflow" not in found["heavy"] and "keras" not in found["heavy"], found


def test_a_good_csv_run_succeeds_with_the_same_fast_flags(tmp_path, previous, capsys):
    """The control: the flags above are fine, so each failure really comes from its bad input."""
    path = tmp_path / "good.csv"
    path.write_text(GOOD_CSV)
    proc = run_driver(capsys, "--out", previous, "--data", path, "--target", "y", *FAST)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (previous / "sub").exists()  # replaced by the new run
    weights = (previous / "weights.csv").read_text()
    assert ",a," in weights and ",b," in weights and "true" not in weights
    assert [p.name for p in previous.parent.iterdir()] == ["results"]
