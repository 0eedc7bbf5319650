"""--out: which folder a run may replace, where it stages, and the swap that publishes it. Standard library only.

A run replaces only a folder that a run wrote: one whose environment.json carries the study's
signature (SIGNATURE_KEY: SIGNATURE, written by every run), or an older results folder from before
the signature (environment.json naming run_all.py as its command, beside report.md and
weights.csv, as in every run since the results contract). A new path, or an existing empty
folder, is fine; anything else is refused before any work. A symlink is followed: the run is
published at its target and the link stays a link. A mount point (or a folder on another file
system than its parent) cannot take part in the rename that makes publishing atomic, so it is
refused up front too, with the advice to name a folder inside it.

The staging folder is made beside the target (same file system, so the swap is two renames)
with a unique, owner-tagged name (comparisons.processes.scratch), and the swap renames the previous results
to `.NAME.old-TAG-...` only for the instant between the renames. A run first removes what a killed
run left beside the target — and if one was killed between the two renames, so that only its
`.old-` folder holds the previous results, puts that folder back.
"""
import errno
import json
import os
import shutil
import signal
import tempfile
from pathlib import Path

from comparisons.processes import scratch
from comparisons.core.errors import UsageError

SIGNATURE_KEY = "results_of"
SIGNATURE = "run_all.py: linear regression by gradient descent, numpy vs TensorFlow/Keras vs JAX"
OLDER_RESULTS_FILES = ("report.md", "weights.csv")  # with environment.json: any results folder before the signature


def _environment(folder):
    try:
        value = json.loads((Path(folder) / "environment.json").read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def is_results_folder(folder):
    """Whether `folder` was written by a run of this study (see the module's docstring for the rule)."""
    env = _environment(folder)
    if env is None:
        return False
    if env.get(SIGNATURE_KEY) == SIGNATURE:
        return True
    command = env.get("command_line")
    return (isinstance(command, list) and bool(command) and Path(str(command[0])).name == "run_all.py"
            and all((Path(folder) / name).is_file() for name in OLDER_RESULTS_FILES))


def is_mount_point(folder):
    """Whether `folder` is a mount point: another device than its parent, or listed in /proc/self/mountinfo (bind mounts)."""
    folder = Path(folder)
    if os.path.ismount(folder):
        return True
    try:
        if folder.stat().st_dev != folder.parent.stat().st_dev:
            return True
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return False
    # field 5 is the mount point, with space, tab, newline and backslash written as octal escapes
    points = {line.split()[4].encode().decode("unicode_escape") for line in lines if len(line.split()) > 4}
    return str(folder) in points


def _staging_prefix(target):
    return f".{target.name}.tmp-"


def _old_prefix(target):
    return f".{target.name}.old-"


def check(out):
    """The real folder to publish `out` at (symlinks resolved); UsageError when a run must not write there."""
    out = Path(out)
    if out.name in ("", ".", "..") or Path.cwd().resolve().is_relative_to(out.resolve()):
        raise UsageError(f"--out {out} is the current folder or one above it; name a results folder, e.g. --out results")
    try:
        target = out.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise UsageError(f"--out {out} cannot be resolved ({exc}); name a plain folder") from None
    shown = f"--out {out}" + (f" (a link to {target})" if out.is_symlink() else "")
    if target.exists() and not target.is_dir():
        raise UsageError(f"{shown} is a file, not a folder; choose a folder path")
    parent = target.parent
    if not parent.is_dir():
        raise UsageError(f"{shown}: its parent folder {parent} does not exist or is not a folder; create it first")
    if target.is_dir():
        try:
            entries = sorted(p.name for p in target.iterdir())
        except OSError as exc:
            raise UsageError(f"{shown}: cannot read the folder ({exc.strerror}); choose another --out") from None
        if entries and not is_results_folder(target):
            listed = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            raise UsageError(f"{shown} is a folder that holds files no run of this study wrote ({listed}); a run "
                             f"replaces only an earlier run's results: name a new or empty folder, e.g. "
                             f"--out {out / 'results'}")
        if is_mount_point(target):
            raise UsageError(f"{shown} is a mount point (or on another file system than its parent), which cannot "
                             f"be swapped atomically; name a folder inside it, e.g. --out {out / 'results'}")
    try:  # try it for real: permission bits say little to root or on special file systems
        tempfile.TemporaryDirectory(dir=parent, prefix=f".{target.name}.probe-").cleanup()
    except OSError as exc:
        raise UsageError(f"{shown}: cannot write in {parent} ({exc.strerror}); choose a writable place") from None
    return target


def clean_beside(target):
    """Remove the staging folders a killed run left beside `target`; put back previous results a swap left aside.

    Returns the paths removed or restored.
    """
    target = Path(target)
    done = scratch.remove_stale(target.parent, (_staging_prefix(target),), pid_only_names=True)
    olds = [p for p in target.parent.glob(f"{_old_prefix(target)}*")
            if scratch.stale(p, (_old_prefix(target),), pid_only_names=True)]
    for old in sorted(olds, key=lambda p: p.stat().st_mtime, reverse=True):
        if not target.exists():
            old.rename(target)  # killed between the swap's two renames: these are the previous results
        else:
            shutil.rmtree(old, ignore_errors=True)
        done.append(old)
    return done


def make_staging(target):
    """A new, empty, owner-tagged staging folder beside `target`, with the permissions a plain mkdir would give."""
    staging = scratch.make_owned_dir(_staging_prefix(Path(target)), Path(target).parent)
    umask = os.umask(0o022)  # mkdtemp makes it private (0700); the results folder it becomes should not be
    os.umask(umask)
    staging.chmod(0o777 & ~umask)
    return staging


def publish(staging, target):
    """Swap the staging folder into place at `target`: the old results go only once the new ones are there."""
    old = target.parent / (_old_prefix(target) + staging.name[len(_staging_prefix(target)):])
    # no SIGINT/SIGTERM/SIGHUP between the two renames: an interrupt there would leave no folder at `target`
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
    try:
        if target.exists():
            _rename(target, old, target)
        try:
            _rename(staging, target, target)
        except OSError:
            if old.exists():
                old.rename(target)  # put the previous results back
            raise
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


def _rename(source, destination, target):
    try:
        source.rename(destination)
    except OSError as exc:
        if exc.errno in (errno.EXDEV, errno.EBUSY):  # became a mount point after the check
            raise OSError(exc.errno, f"cannot swap the results into {target} ({exc.strerror}): a mount point or "
                                     f"another file system; name a folder inside it with --out") from None
        raise
