"""Staging and scratch folders that name their owner, so a later run can remove the ones a killed run left.

Every folder the study creates for a while — the staging folder beside --out
(`.NAME.tmp-TAG-XXXXXXXX`, renamed `.NAME.old-TAG-XXXXXXXX` for the previous results during the
swap) and its scratch folders in the temporary directory (`multi-worker-TAG-...`,
`multi-worker-data-TAG-...`, `isolated-TAG-...`, `support-TAG-...`, `keras-jax-TAG-...`) — is made by tempfile.mkdtemp (a unique name, never
a collision) with TAG = `PID.START.HOST`: the creating process's id, its start time (clock ticks
since boot, from /proc; 0 where unknown) and a short hash of the host's name. The tag is in the
name rather than in a file inside, so it survives the swap's renames and nothing extra lands in
the results. A folder's owner is gone when that PID does not exist or now belongs to a process
that started at another time (a PID reused, as PID 1 is by every container run); folders of
another host are never touched. Staging names of older versions (`.NAME.tmp-PID`) are read as PID
alone; an untagged folder in the temporary directory is never removed (it may be a live older run's).
Only the standard library: the driver uses this before any heavy import.
"""
import contextlib
import hashlib
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

SCRATCH_PREFIXES = ("multi-worker-data-", "multi-worker-", "isolated-", "support-", "keras-jax-")  # the study's, in the temp dir
_TAG = re.compile(r"(?P<pid>\d+)(?:\.(?P<start>\d+)\.(?P<host>[0-9a-f]{8}))?(?:-.*)?")
_FULL_TAG = re.compile(r"\d+\.\d+\.[0-9a-f]{8}-.*")


def _host():
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def start_ticks(pid):
    """When process `pid` started (clock ticks since boot, /proc/PID/stat field 22); None if unknown or gone."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def owner_tag(pid=None):
    """`PID.START.HOST` of this process (or `pid`)."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}.{start_ticks(pid) or 0}.{_host()}"


def make_owned_dir(prefix, parent=None):
    """A new empty folder `prefix + TAG + '-' + random` in `parent` (default: the temporary directory)."""
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{owner_tag()}-", dir=parent))


@contextlib.contextmanager
def owned_dir(prefix, parent=None):
    """make_owned_dir as a `with` block that removes the folder however the block is left."""
    folder = make_owned_dir(prefix, parent)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def with_private_tmp(folder, env=None):
    """`env` (default: this process's environment) with TMPDIR in `folder`, made now.

    For a child whose scratch folder is `folder`: what it leaves in its temporary directory goes with
    that folder. TensorFlow's autograph writes a source file there per converted function and removes
    it only at a normal exit, so a child ended with a signal or os._exit left hundreds a day in /tmp.
    """
    private = Path(folder) / "tmp"
    private.mkdir(exist_ok=True)
    return dict(os.environ if env is None else env, TMPDIR=str(private))


def owner_alive(tag):
    """Whether the process a folder's tag names may still run (True when unsure: such folders are kept)."""
    found = _TAG.fullmatch(tag)
    if not found:
        return True  # not ours to judge
    if found["host"] and found["host"] != _host():
        return True  # another host's process: cannot be checked from here
    pid = int(found["pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists (another user's)
    if found["start"] and int(found["start"]) and start_ticks(pid) is not None:
        return start_ticks(pid) == int(found["start"])  # same PID, other start: a reused PID
    return True


def stale(folder, prefixes, pid_only_names=False):
    """Whether `folder` is one of ours (a name starting with one of `prefixes`) whose owner is gone.

    pid_only_names: also judge the older `PREFIX + PID` names (only where nothing else makes such names).
    """
    for prefix in prefixes:
        if folder.name.startswith(prefix):
            tag = folder.name[len(prefix):]
            ours = _TAG.fullmatch(tag) if pid_only_names else _FULL_TAG.fullmatch(tag)
            if ours and folder.is_dir() and not folder.is_symlink():
                return not owner_alive(tag)
    return False


def remove_stale(parent, prefixes, pid_only_names=False):
    """Remove the folders in `parent` named with one of `prefixes` whose owner is gone; returns their paths."""
    removed = []
    try:
        entries = list(Path(parent).iterdir())
    except OSError:
        return removed
    for folder in entries:
        if stale(folder, prefixes, pid_only_names):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def remove_stale_scratch():
    """Remove the study's scratch folders in the temporary directory that a killed run left."""
    return remove_stale(tempfile.gettempdir(), SCRATCH_PREFIXES)
