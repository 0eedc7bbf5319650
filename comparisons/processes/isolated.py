"""Run a list of configurations in a child process that reports one JSON line per event, surviving its crashes and hangs.

The child (for example `python -m tf_models.distribution_probe JOB.json`) prints
{"start": key} before a configuration and {"outcome": {...}} after it. Here each configuration
gets its own deadline; when the child dies or overruns, the configuration it was running is
recorded as failed (`timeout after S s`, `killed by SIGABRT`, `exit code 1`, with the last line of
its stderr), the process group is killed, and a fresh child takes the configurations left. So one
TensorFlow start-up serves a whole group unless something breaks.
"""
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tf_models.quiet_import import KNOWN_NOISE

from comparisons.processes.scratch import owned_dir, with_private_tmp


@dataclass(frozen=True)
class Failure:
    """A configuration the child did not finish: why, in one line."""

    key: str
    reason: str  # "timeout after 30 s", "killed by SIGSEGV", "exit code 1", "did not start"
    last_stderr: str  # the child's last meaningful stderr line, or ""


EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit): ")


def last_meaningful(text, noise=KNOWN_NOISE, prefer_exceptions=False, skip=()):
    """The last stderr line that can say why a child failed: not start-up noise, a warning or its source echo.

    noise: the framework's start-up notices to drop; prefer_exceptions: the last exception line
    ("ValueError: ...") wins over later lines; skip: prefixes of further lines to pass over.
    """
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not noise.search(line) and "Warning:" not in line and not line.startswith(" ")]
    exceptions = [line for line in lines if EXCEPTION_LINE.match(line)] if prefer_exceptions else []
    chosen = exceptions or [line for line in lines if not line.startswith(tuple(skip))]
    return chosen[-1][:240] if chosen else ""


def exit_reason(returncode):
    """How a child ended, in a few words: 'still running', 'killed by SIGKILL', 'exit code 1'."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def _reader(stream, lines):
    for line in stream:
        lines.put(line)
    lines.put(None)  # end of output


def _kill_group(proc):
    """End the child and everything it started (it leads its own session)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


REPOSITORY = Path(__file__).resolve().parents[2]  # children run here, so `python -m tf_models...` resolves


def run_resumable(keys, attempt):
    """Run `keys` through attempts until each has an outcome or a Failure; {key: outcome dict or Failure}.

    attempt(remaining keys) runs them in order in a fresh process (or cluster) and returns
    (records, reason, last_message): the {"start"}/{"outcome"} records it saw, why it ended early
    (None if it ran to the end) and the last meaningful message of its stderr. The key that had
    started without an outcome is the one that failed; a fresh attempt takes the ones after it.
    """
    results = {}
    remaining = list(keys)
    while remaining:
        before = len(remaining)
        records, reason, last = attempt(list(remaining))
        current = None
        for record in records:
            if "start" in record:
                current = record["start"]
            elif "outcome" in record and current in remaining:
                results[current] = record["outcome"]
                remaining.remove(current)
                current = None
        if current in remaining:  # it died or hung inside this configuration
            results[current] = Failure(current, reason or "ended without a result", last)
            remaining.remove(current)
        elif remaining and len(remaining) == before:  # it never started one: a fresh attempt would not either
            for key in remaining:
                results[key] = Failure(key, f"did not start ({reason or 'ended without a result'})", last)
            remaining = []
    return results


def _follow(proc, timeout_s, startup_s):
    """(records, timed out?) from a child's stdout, each "start" line opening a new deadline."""
    lines = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
    records, deadline = [], time.monotonic() + startup_s + timeout_s
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return records, True
        if line is None:
            proc.wait()
            return records, False
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a stray print of a library: not part of the protocol
        records.append(record)
        if "start" in record:
            deadline = time.monotonic() + timeout_s


def _child_attempt(command, write_job, timeout_s, startup_s, env, cwd, scratch):
    """attempt(remaining) for run_resumable: one child process, each configuration with its own deadline."""
    def attempt(remaining):
        job = Path(scratch) / "job.json"
        write_job(job, remaining)
        with open(Path(scratch) / "stderr.txt", "w+") as err:
            proc = subprocess.Popen(command(job), stdout=subprocess.PIPE, stderr=err, text=True,
                                    start_new_session=True, env=with_private_tmp(scratch, env), cwd=cwd)
            try:  # whatever ends this wait (a timeout, Ctrl-C, SIGTERM as KeyboardInterrupt), the child goes too
                records, timed_out = _follow(proc, timeout_s, startup_s)
            finally:
                _kill_group(proc)
            err.seek(0)
            last = last_meaningful(err.read())
        if timed_out:
            return records, f"timeout after {timeout_s:g} s", last
        return records, (None if proc.returncode == 0 else exit_reason(proc.returncode)), last
    return attempt


def run_child(command, keys, write_job, timeout_s, startup_s=60.0, env=None, cwd=REPOSITORY):
    """Run `keys` through children built from `command(job_path)`; {key: outcome dict or Failure}.

    write_job(path, keys) writes the job for the configurations still to run; each gets timeout_s
    seconds from its "start" line, and the child startup_s seconds to emit its first line.
    """
    with owned_dir("isolated-") as scratch:  # owner-tagged: a later run removes it if this one is killed
        return run_resumable(keys, _child_attempt(command, write_job, timeout_s, startup_s, env, cwd, scratch))


def python_module(module, *args):
    """command(job) for `python -m module [args] job` with this interpreter."""
    return lambda job: [sys.executable, "-m", module, *args, str(job)]
