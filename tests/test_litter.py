"""No litter, no collisions: staging and scratch folders name their owner; a killed run's are removed by its successor."""
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from comparisons.output import out_folder

from comparisons.processes import scratch

from .conftest import REPO, run_driver, sigint_as_in_a_terminal, snapshot
from .test_robustness import TRAINING, _ANNOUNCED_RUN

FAST = ("--only", "numpy", "--dtype", "float64", "--iterations", "10", "--repeats", "1", "--experiments", "none")


def _dead_pid():
    """The PID of a process that has exited (and been reaped): nothing runs under it for now."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _ours(folder):
    return sorted(p.name for p in folder.iterdir()
                  if p.name.startswith(("multi-worker", "isolated-", "support-", ".results.")))


def test_names_are_unique_for_one_process_and_carry_its_tag(tmp_path):
    """Two staging folders of the same process (a container's PID 1 every time) never collide."""
    target = tmp_path / "results"
    first, second = out_folder.make_staging(target), out_folder.make_staging(target)
    assert first != second and first.parent == second.parent == tmp_path
    assert first.name.startswith(f".results.tmp-{scratch.owner_tag()}-")
    assert not scratch.stale(first, (".results.tmp-",))  # this process runs: not stale


def test_a_reused_pid_a_dead_pid_and_an_older_name_are_stale_and_other_hosts_are_not(tmp_path):
    me, tag = os.getpid(), scratch.owner_tag()
    pid, start, host = tag.split(".")
    dead = _dead_pid()
    folders = {
        "live": f".results.tmp-{tag}-abcd1234",
        "reused pid": f".results.tmp-{me}.{int(start) + 1}.{host}-abcd1234",  # same PID, another start: not us
        "dead": f".results.tmp-{dead}.{start}.{host}-abcd1234",
        "older name, dead": f".results.tmp-{dead}",
        "older name, live": f".results.tmp-{me}",
        "other host": f".results.tmp-{dead}.{start}.{'0' * 8 if host != '0' * 8 else '1' * 8}-abcd1234",
        "someone else's": ".results.tmp-notes",
    }
    for name in folders.values():
        (tmp_path / name).mkdir()
    removed = scratch.remove_stale(tmp_path, (".results.tmp-",), pid_only_names=True)
    assert sorted(p.name for p in removed) == sorted(folders[k] for k in ("reused pid", "dead", "older name, dead"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        folders[k] for k in ("live", "older name, live", "other host", "someone else's"))


def test_untagged_folders_in_the_temporary_directory_are_never_removed(tmp_path):
    """An older version's TemporaryDirectory (random name) may belong to a live run: kept, even all digits."""
    for name in ("multi-worker-k8a5_nty", "isolated-83920174", f"multi-worker-data-{_dead_pid()}"):
        (tmp_path / name).mkdir()
    assert scratch.remove_stale(tmp_path, scratch.SCRATCH_PREFIXES) == []


def test_earlier_results_left_aside_by_a_killed_swap_are_put_back(tmp_path):
    """Killed between the swap's two renames: the target is missing and the previous results sit in .old-: restored."""
    dead = _dead_pid()
    old = tmp_path / f".results.old-{dead}.1.{scratch.owner_tag().split('.')[2]}-abcd1234"
    old.mkdir()
    (old / "report.md").write_text("# the previous run\n")
    (tmp_path / f".results.tmp-{dead}.1.{scratch.owner_tag().split('.')[2]}-abcd1234").mkdir()  # its staging
    out_folder.clean_beside(tmp_path / "results")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]
    assert (tmp_path / "results" / "report.md").read_text() == "# the previous run\n"


def _held_driver(out, env, *args):
    """The driver in a child, held at its first timed call (it prints TRAINING there): past staging, mid-run."""
    script = _ANNOUNCED_RUN.format(repo=str(REPO), line=TRAINING, hold=True, in_fit=False)
    proc = subprocess.Popen([sys.executable, "-c", script, "--out", str(out), *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=sigint_as_in_a_terminal)
    line = proc.stdout.readline()
    assert line.strip() == TRAINING, f"the run ended before training: {proc.wait()} {proc.stderr.read()}"
    return proc


def test_sighup_mid_run_is_an_interrupt_that_keeps_earlier_results(earlier_results):
    before = snapshot(earlier_results)
    proc = _held_driver(earlier_results, None, *FAST)
    proc.send_signal(signal.SIGHUP)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1].startswith("error: interrupted (SIGHUP)")
    assert snapshot(earlier_results) == before
    assert sorted(p.name for p in earlier_results.parent.iterdir()) == ["results"]


def test_a_successor_removes_the_staging_of_a_driver_killed_with_sigkill(earlier_results, tmp_path, capsys, report_skipped):
    before = snapshot(earlier_results)
    proc = _held_driver(earlier_results, None, *FAST)
    proc.kill()  # SIGKILL: no handler, no `finally`
    proc.communicate(timeout=60)
    left = _ours(earlier_results.parent)
    assert len(left) == 1 and left[0].startswith(f".results.tmp-{proc.pid}."), left  # what it leaves behind
    assert snapshot(earlier_results) == before
    finished = run_driver(capsys, "--out", earlier_results, *FAST)
    assert finished.returncode == 0, finished.stderr
    assert sorted(p.name for p in earlier_results.parent.iterdir()) == ["results"]
    assert (earlier_results / "weights.csv").is_file()


@pytest.mark.slow
@pytest.mark.long
def test_a_successor_removes_the_scratch_of_a_multi_worker_driver_killed_with_sigkill(earlier_results, tmp_path, capsys,
                                                                                     monkeypatch, report_skipped):
    """The killed driver's workers die with it; its copy of X (multi-worker-data-*) and session folder go next run.

    The successor runs in this process, with the killed driver's temporary directory as its own."""
    temp = tmp_path / "temp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "TF_CPP_MIN_LOG_LEVEL": "2"}  # its own temporary directory
    driver = subprocess.Popen([sys.executable, "run_all.py", "--only", "gradient_tape:multi_worker", "--experiments",
                               "none", "--dtype", "float64", "--iterations", "200000", "--out", str(earlier_results)],
                              cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and driver.poll() is None and not (
                any(temp.glob("multi-worker-data-*/X.npy")) and any(temp.glob("multi-worker-[0-9]*/0000.json"))):
            time.sleep(0.2)
        assert driver.poll() is None, "the driver ended before its workers had their job"
        driver.kill()
        driver.wait()
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    left = _ours(temp)
    assert any(n.startswith("multi-worker-data-") for n in left) and any(
        n.startswith(f"multi-worker-{driver.pid}.") for n in left), left
    assert _ours(earlier_results.parent)  # and its staging folder
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # TMPDIR as the killed driver had it
    successor = run_driver(capsys, "--out", earlier_results, *FAST)
    assert successor.returncode == 0, successor.stderr
    assert _ours(temp) == [] and sorted(p.name for p in earlier_results.parent.iterdir()) == ["results"]
