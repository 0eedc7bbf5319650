"""Configurations run in child processes: a crash or a hang fails one configuration, the others still run."""
import json
import sys
import textwrap

from comparisons.processes.isolated import Failure, run_child, run_resumable

CHILD = textwrap.dedent("""
    import json, os, sys, tempfile, time
    job = json.load(open(sys.argv[1]))
    for key in job["keys"]:
        print(json.dumps({"start": key}), flush=True)
        if key == job.get("litter"):  # as TensorFlow's autograph does: a file it removes only at a normal exit
            with tempfile.NamedTemporaryFile(prefix="left-by-a-crash-", delete=False) as left:
                print(json.dumps({"outcome": {"left": left.name}}), flush=True)
            os.abort()
        if key == job.get("crash"):
            print("fatal: simulated crash", file=sys.stderr, flush=True)
            os.abort()
        if key == job.get("hang"):
            time.sleep(600)
        print("a stray line from a library", flush=True)
        print(json.dumps({"outcome": {"value": key + "!", "pid": os.getpid()}}), flush=True)
""")


def _run(tmp_path, keys, **faults):
    script = tmp_path / "child.py"
    script.write_text(CHILD)

    def write_job(path, remaining):
        path.write_text(json.dumps({"keys": remaining, **faults}))
    return run_child(lambda job: [sys.executable, str(script), str(job)], keys, write_job, timeout_s=2.0, startup_s=10.0)


def test_every_key_gets_its_outcome_from_one_child(tmp_path):
    results = _run(tmp_path, ["a", "b", "c"])
    assert {k: r["value"] for k, r in results.items()} == {"a": "a!", "b": "b!", "c": "c!"}
    assert len({r["pid"] for r in results.values()}) == 1  # one start-up served them all


def test_a_crash_fails_its_configuration_and_a_fresh_child_takes_the_rest(tmp_path):
    results = _run(tmp_path, ["a", "b", "c"], crash="b")
    assert results["a"]["value"] == "a!" and results["c"]["value"] == "c!"
    assert isinstance(results["b"], Failure)
    assert results["b"].reason == "killed by SIGABRT"
    assert results["b"].last_stderr == "fatal: simulated crash"
    assert results["a"]["pid"] != results["c"]["pid"]


def test_a_hang_is_a_timeout(tmp_path):
    results = _run(tmp_path, ["a", "b"], hang="a")
    assert isinstance(results["a"], Failure) and results["a"].reason == "timeout after 2 s"
    assert results["b"]["value"] == "b!"


def test_a_child_that_never_starts_fails_every_key_once():
    calls = []

    def attempt(remaining):
        calls.append(list(remaining))
        return [], "exit code 1", "error: no such module"
    results = run_resumable(["a", "b"], attempt)
    assert calls == [["a", "b"]]
    assert all(isinstance(r, Failure) and r.reason == "did not start (exit code 1)" for r in results.values())


def test_an_interrupted_parent_leaves_no_child(tmp_path, monkeypatch):
    import os

    import pytest

    import comparisons.processes.isolated as isolated

    started = []

    def interrupted(proc, timeout_s, startup_s):
        started.append(proc)
        raise KeyboardInterrupt  # as Ctrl-C (or SIGTERM turned into it) while waiting for the child

    monkeypatch.setattr(isolated, "_follow", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, ["a"], hang="a")
    (proc,) = started
    assert proc.returncode is not None  # reaped: ended by the launcher, not left running
    with pytest.raises(ProcessLookupError):
        os.kill(proc.pid, 0)


def test_the_failure_line_skips_warnings_and_their_source_echo():
    from comparisons.processes.isolated import last_meaningful

    text = ("fatal: the real cause\n/x/epoch_iterator.py:74: UserWarning: `shuffle=True` was passed\n"
            "  self.data_adapter = data_adapters.get_data_adapter(\n")
    assert last_meaningful(text) == "fatal: the real cause"


def test_what_a_crashed_child_leaves_in_its_temporary_directory_goes_with_its_scratch_folder(tmp_path):
    import tempfile
    from pathlib import Path

    results = _run(tmp_path, ["a"], litter="a")
    left = Path(results["a"]["left"])
    assert left.name.startswith("left-by-a-crash-")
    assert left.parent.parent.name.startswith("isolated-")  # the child's TMPDIR: its scratch folder's tmp/
    assert Path(tempfile.gettempdir()) in left.parents  # the scratch folder is in this process's temporary directory
    assert not left.parent.parent.exists()  # removed with the scratch folder
