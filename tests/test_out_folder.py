"""--out replaces only an earlier run's results: anything else is refused before any work; links are followed, mounts refused."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from comparisons.output.out_folder import SIGNATURE, SIGNATURE_KEY, is_results_folder

from .conftest import REPO, imports_of_runs, mark_as_results, run_driver, snapshot

# these tests are about where a run's results go, not what its report says
pytestmark = pytest.mark.usefixtures("report_skipped")

FAST = ("--only", "numpy", "--dtype", "float64", "--iterations", "10", "--repeats", "1", "--experiments", "none")


def _one_usage_error(proc, *words):
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def _a_run_wrote(folder):
    """The run's own results are in `folder`: its environment.json is signed and its weights were written."""
    env = json.loads((folder / "environment.json").read_text())
    return env[SIGNATURE_KEY] == SIGNATURE and (folder / "weights.csv").read_text().startswith("implementation,")


def _user_folder(path):
    """A folder of someone's own work (a thesis, a clone): files and a .git folder, none of them results."""
    (path / ".git").mkdir(parents=True)
    (path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (path / "thesis.tex").write_text("\\section{Results}\n")
    (path / "report.md").write_text("# my own report\n")
    return path


def test_a_folder_no_run_wrote_is_refused_untouched_before_any_heavy_import(tmp_path):
    folder = _user_folder(tmp_path / "thesis")
    before = snapshot(folder)
    (found,) = imports_of_runs([["--out", folder, *FAST]])
    assert found["code"] == 2 and found["heavy"] == [], found  # no numpy, pandas or TensorFlow: no work began
    lines = found["stderr"].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --out") and "no run of this study wrote" in lines[0], lines
    assert snapshot(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis"]  # no staging folder beside it


def test_an_environment_json_alone_does_not_make_a_results_folder(tmp_path, capsys):
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "environment.json").write_text(json.dumps({"python": "3.11", "command_line": ["train.py"]}))
    (folder / "weights.csv").write_text("w\n1\n")
    (folder / "report.md").write_text("# not ours\n")
    before = snapshot(folder)
    _one_usage_error(run_driver(capsys, "--out", folder, *FAST), "no run of this study wrote")
    assert snapshot(folder) == before


def test_an_empty_folder_and_then_the_run_it_holds_are_replaced(tmp_path, capsys):
    folder = tmp_path / "results"
    folder.mkdir()
    assert run_driver(capsys, "--out", folder, *FAST).returncode == 0
    assert _a_run_wrote(folder)
    (folder / "stale.txt").write_text("left by hand in an earlier run's folder\n")
    assert run_driver(capsys, "--out", folder, *FAST, "--seed", "3").returncode == 0  # its own earlier run: replaced
    assert _a_run_wrote(folder) and not (folder / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_an_older_results_folder_without_the_signature_is_recognised(tmp_path, capsys):
    """Folders written before the signature existed (the committed results/ among them) are still replaced."""
    folder = tmp_path / "results"
    shutil.copytree(REPO / "results", folder, ignore=shutil.ignore_patterns("tensorboard", "*.png"))
    env = json.loads((folder / "environment.json").read_text())
    env.pop(SIGNATURE_KEY, None)  # as a run before this change wrote it
    (folder / "environment.json").write_text(json.dumps(env))
    assert is_results_folder(folder)
    assert run_driver(capsys, "--out", folder, *FAST).returncode == 0
    assert _a_run_wrote(folder) and not (folder / "lr_sweep.csv").exists()


def test_a_link_is_followed_the_run_published_at_its_target_and_the_link_stays(tmp_path, capsys):
    target = tmp_path / "store"
    target.mkdir()
    mark_as_results(target)
    (target / "report.md").write_text("# an earlier run\n")
    (tmp_path / "work").mkdir()
    link = tmp_path / "work" / "results"
    link.symlink_to(target, target_is_directory=True)
    proc = run_driver(capsys, "--out", link, *FAST)
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert _a_run_wrote(target) and (target / "report.md").read_text() != "# an earlier run\n"
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["results"]  # no .results.old-* link left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store", "work"]  # no staging beside the target


def _other_file_system():
    """A writable folder on another file system than the temporary directory's, or None."""
    shm = "/dev/shm"
    if not os.path.isdir(shm) or not os.access(shm, os.W_OK):
        return None
    import tempfile

    return shm if os.stat(shm).st_dev != os.stat(tempfile.gettempdir()).st_dev else None


def test_a_link_to_another_file_system_publishes_there(tmp_path, capsys):
    other = _other_file_system()
    if other is None:
        pytest.skip("no writable folder on another file system (/dev/shm)")
    import tempfile

    elsewhere = tempfile.mkdtemp(prefix="i22-out-", dir=other)
    try:
        link = tmp_path / "results"
        link.symlink_to(os.path.join(elsewhere, "results"))  # the target does not exist yet
        proc = run_driver(capsys, "--out", link, *FAST)
        assert proc.returncode == 0, proc.stderr
        assert link.is_symlink() and _a_run_wrote(link.resolve())
        assert os.listdir(elsewhere) == ["results"] and [p.name for p in tmp_path.iterdir()] == ["results"]
    finally:
        shutil.rmtree(elsewhere, ignore_errors=True)


def test_a_mount_point_is_refused_before_any_work(tmp_path):
    """A bind-mounted results folder (as in a container) cannot be renamed: refused up front, its files kept.

    The mount lives in a private mount namespace (`unshare -rm`), gone when the driver exits.
    """
    unshare = shutil.which("unshare")
    probe = subprocess.run([unshare, "-rm", "true"], capture_output=True) if unshare else None
    if probe is None or probe.returncode != 0:
        pytest.skip("cannot make a private mount namespace here (unshare -rm)")
    source = tmp_path / "source"
    source.mkdir()
    mark_as_results(source)
    (source / "report.md").write_text("# an earlier run\n")
    mounted = tmp_path / "results"
    mounted.mkdir()
    before = snapshot(source)
    script = f'mount --bind "$1" "$2" && exec "$3" "$4" --out "$2" "${{@:5}}"'
    proc = subprocess.run([unshare, "-rm", "bash", "-c", script, "bash", source, mounted, sys.executable,
                           REPO / "run_all.py", *FAST], cwd=REPO, capture_output=True, text=True, timeout=120)
    _one_usage_error(proc, "mount point", f"--out {mounted / 'results'}")
    assert snapshot(source) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results", "source"]


def test_the_current_folders_parent_and_a_file_stay_refused(tmp_path, capsys, monkeypatch):
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    _one_usage_error(run_driver(capsys, "--out", "..", *FAST), "current folder")
    (tmp_path / "notes.txt").write_text("a file")
    _one_usage_error(run_driver(capsys, "--out", tmp_path / "notes.txt", *FAST), "is a file")
