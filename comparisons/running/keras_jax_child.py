"""keras:jax in its own process: `python -m comparisons.running.keras_jax_child JOB.npz RESULT.npz [...]`, and the parent's side.

Keras chooses its backend at its first import, so the study's Keras model (jax_models/keras_fit.py)
runs on JAX in a child process that sets KERAS_BACKEND=jax and JAX's x64 before importing Keras.
The child times itself with the study's one harness (comparisons.running.timing.time_calls: one warm-up
call, tracing and compiling included, then up to `repeats` timed calls within `budget_s`), so
process start-up and imports are never timed. Its result file holds each rate's parameters and
loss curve, the raw seconds, and whether TensorFlow was loaded (it must not be: data go in as
device arrays through a keras.utils.PyDataset, never tf.data).

The parent (make_keras_jax_trainer) writes the job, runs the child and reads the result; a child
that fails or hangs raises KerasJaxError with one line and the child's last stderr line
(comparisons.processes.isolated's rules, with JAX's start-up notices). One child can serve several
jobs in turn, each building and compiling its own model, so its start-up and imports are paid once:
further JOB RESULT pairs on its command line (run_jobs), or, inside a shared_child() block (the
driver opens one around the study), one child that reads `JOB<tab>RESULT` lines on its stdin
(`--serve READY`) for every keras:jax run until the block ends; a job that fails ends that child and
the next one starts a fresh child. A serving child imports JAX and Keras at once and then writes
the file READY, so the driver can start it before its own imports (start_shared) and wait until it
idles (KerasJaxSession.wait_ready) before anything is timed.
"""
import contextlib
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loop_result import LoopResult

from comparisons.processes.isolated import _kill_group, exit_reason, last_meaningful
from comparisons.processes.scratch import make_owned_dir
from comparisons.running.timing import time_calls

REPOSITORY = Path(__file__).resolve().parents[2]  # the child runs here, so `-m comparisons.running.keras_jax_child` resolves
TIMEOUT_S = 600.0  # hard limit on one child, start-up included (the lesson's run takes seconds)


class KerasJaxError(RuntimeError):
    """The keras:jax child failed, hung or wrote no result."""


@dataclass(frozen=True)
class ChildRun:
    """What one keras:jax child returned."""

    results: tuple  # a loop_result.LoopResult per learning rate, in the order asked
    first_call_s: float  # the warm-up call of the first rate (tracing and compiling included)
    repeat_s: tuple  # the timed calls of the first rate after the warm-up
    tensorflow_imported: bool  # whether 'tensorflow' was in the child's sys.modules at the end
    float64_kept: bool  # whether Keras' float64 -> float32 promotion was switched off (keras_fit.keep_float64)
    learning_rate_dtype: str  # the dtype of the SGD optimizer's learning-rate variable in the child


# ---- the child -----------------------------------------------------------------------------------

def _batches_of(job):
    if "batch_lengths" not in job:
        return None
    return np.split(job["batch_flat"], np.cumsum(job["batch_lengths"])[:-1])


def import_keras_on_jax():
    """(jax_models.keras_fit, StepLossRecorder): Keras on the JAX backend, JAX with x64 and "highest" precision first."""
    os.environ["KERAS_BACKEND"] = "jax"
    from jax_models.runtime import import_jax
    from tf_models.quiet_import import hidden_modules  # imports nothing of TensorFlow

    import_jax()  # x64 and matmul precision before Keras creates anything
    # Keras imports matplotlib and pandas, when installed, for integrations a fit on arrays never uses: a child
    # that has not loaded them starts without them
    with hidden_modules(("matplotlib", "pandas")):
        from jax_models import keras_fit
        from tf_models.keras_recorder import StepLossRecorder  # Keras only: the TensorFlow fit's own recorder

    return keras_fit, StepLossRecorder


def run_job(job):
    """Run a job (a dict of arrays, as written by write_job) in this process; returns the result dict.

    This process must be fresh or already on Keras' JAX backend: KERAS_BACKEND is set here
    before Keras is imported.
    """
    keras_fit, StepLossRecorder = import_keras_on_jax()
    X, y = job["X"], job["y"]
    float64_kept = bool(job["keep_float64"]) and X.dtype == np.float64
    keras_fit.keep_float64(float64_kept)
    rates = [float(r) for r in job["rates"]]
    iterations = int(job["iterations"])
    train = keras_fit.make_keras_fit_trainer(X, y, rates[0], iterations, StepLossRecorder, batches=_batches_of(job),
                                             device=str(job["device"]))
    W0, b0 = job["W0"], float(job["b0"])
    first_result, timing = time_calls(lambda: train(W0, b0, rates[0]), int(job["repeats"]), float(job["budget_s"]))
    results = [first_result] + [train(W0, b0, rate) for rate in rates[1:]]
    out = {"first_call_s": timing.first_call_s, "repeat_s": np.asarray(timing.repeat_s, np.float64),
           "count": len(results), "tensorflow_imported": "tensorflow" in sys.modules, "float64_kept": float64_kept,
           "device": results[0].device, "jit_compile": results[0].jit_compile,
           "learning_rate_dtype": str(train.model.optimizer.learning_rate.dtype)}  # train: a keras_fit.KerasFit
    for k, r in enumerate(results):
        out[f"weights_{k}"], out[f"bias_{k}"], out[f"loss_curve_{k}"] = r.weights, r.bias, r.loss_curve
    return out


USAGE = "usage: python -m comparisons.running.keras_jax_child JOB.npz RESULT.npz [JOB.npz RESULT.npz ...]"


def main(argv=None):
    """Child entry point: python -m comparisons.running.keras_jax_child JOB.npz RESULT.npz [JOB.npz RESULT.npz ...]."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve"] and len(argv) <= 2:  # KerasJaxSession's child: `JOB<tab>RESULT` lines on stdin
        import_keras_on_jax()  # its start-up, before the first job comes: imports are never timed
        if len(argv) == 2:  # --serve READY: say the imports are done (the parent waits on it before timed work)
            Path(argv[1]).write_text("")
        for line in sys.stdin:
            _serve_one(*line.rstrip("\n").split("\t"))
        return 0
    if not argv or len(argv) % 2:
        print(f"error: {USAGE}", file=sys.stderr)
        return 2
    for job_path, result_path in zip(argv[::2], argv[1::2]):  # in turn: one start-up for every job
        _serve_one(job_path, result_path)
    return 0


def _serve_one(job_path, result_path):
    with np.load(job_path, allow_pickle=False) as data:
        job = {key: data[key] for key in data.files}
    out = run_job(job)
    partial = Path(result_path).with_name(Path(result_path).name + ".partial.npz")
    np.savez(partial, **out)
    os.replace(partial, result_path)  # all or nothing: the parent never reads half a file


# ---- the parent ----------------------------------------------------------------------------------

def write_job(path, X, y, W0, b0, rates, iterations, batches=None, device="cpu", repeats=0, budget_s=None,
              keep_float64=True):
    """Write a keras:jax job file (npz, no pickles); bad arguments raise ValueError here, before any child starts."""
    if batches is not None and len(batches) < iterations:
        raise ValueError(f"{len(batches)} batches for {iterations} updates: give one index array per update")
    if not len(rates):
        raise ValueError("no learning rate given")
    job = dict(X=np.asarray(X), y=np.asarray(y), W0=np.asarray(W0, np.float64).reshape(-1, 1),
               b0=np.float64(b0), rates=np.asarray(rates, np.float64), iterations=np.int64(iterations),
               device=np.str_(device), repeats=np.int64(repeats),
               budget_s=np.float64(math.inf if budget_s is None else budget_s), keep_float64=np.bool_(keep_float64))
    if batches is not None:
        job["batch_flat"] = np.concatenate([np.asarray(b, np.int64) for b in batches[:iterations]])
        job["batch_lengths"] = np.asarray([len(b) for b in batches[:iterations]], np.int64)
    np.savez(path, **job)


def run_child(job_path, result_path, timeout_s=TIMEOUT_S, python=None, env=None):
    """Run the child on a job file; raises KerasJaxError (one line) if it fails, hangs or writes nothing."""
    run_child_on([(job_path, result_path)], timeout_s, python, env)


def run_child_on(pairs, timeout_s=TIMEOUT_S, python=None, env=None):
    """Run one child on several (job file, result file) pairs in turn; KerasJaxError (one line) if it fails, hangs or misses a result."""
    with tempfile.TemporaryFile(mode="w+") as err:
        proc = _start_child([str(path) for pair in pairs for path in pair], err, python, env)
        try:
            proc.wait(timeout=timeout_s)
            reason = None if proc.returncode == 0 else exit_reason(proc.returncode)
        except subprocess.TimeoutExpired:
            reason = f"timeout after {timeout_s:g} s"
        finally:  # whatever ended the wait (a timeout, Ctrl-C), the child and its own children go too
            _kill_group(proc)
        last = _last_words(err, 0)
    if reason is None and not all(Path(result_path).exists() for _, result_path in pairs):
        reason = "no result file"
    if reason is not None:
        raise KerasJaxError(f"keras:jax child failed ({reason})" + (f": {last}" if last else ""))


def _start_child(args, err, python=None, env=None, stdin=subprocess.DEVNULL):
    """Popen of the child with `args`, its stderr into the file `err`, in its own session, on Keras' JAX backend."""
    command = [python or sys.executable, "-m", "comparisons.running.keras_jax_child", *args]
    child_env = dict(os.environ if env is None else env, KERAS_BACKEND="jax")
    child_env["PYTHONPATH"] = os.pathsep.join([str(REPOSITORY)] + [p for p in [child_env.get("PYTHONPATH")] if p])
    return subprocess.Popen(command, stdin=stdin, stdout=subprocess.DEVNULL, stderr=err, text=True, cwd=REPOSITORY,
                            env=child_env, start_new_session=True)


def _last_words(err, offset):
    """The child's last exception line in `err` from `offset` on, else its last line that is not start-up noise or JAX's note on filtered frames."""
    from jax_models.runtime import KNOWN_NOISE

    err.flush()
    err.seek(offset)
    return last_meaningful(err.read(), noise=KNOWN_NOISE, prefer_exceptions=True, skip=("For simplicity, JAX", "-----"))


class KerasJaxSession:
    """One keras:jax child (`--serve`) that runs jobs one after another: its start-up and imports are paid once.

    run() has run_child's contract: KerasJaxError (one line, the child's last words about this job) when the
    child fails, hangs past timeout_s (its start-up included when it starts for this job) or writes no result;
    the child is then ended, and the next run() starts a fresh one. close() ends it.
    """

    POLL_S = 0.02  # how often the parent looks for the result file

    def __init__(self):
        self._proc, self._err, self._ready = None, None, None

    def start(self):
        """Start the child now when none runs, so its start-up (JAX and Keras imports) overlaps the caller's own work."""
        if self._proc is None:
            self._err = tempfile.TemporaryFile(mode="w+")
            self._ready = make_owned_dir("keras-jax-")  # for READY; owner-tagged: a later run removes it if this one is killed
            self._proc = _start_child(["--serve", str(self._ready / "ready")], self._err, stdin=subprocess.PIPE)

    def wait_ready(self, timeout_s=TIMEOUT_S):
        """Block until the child has imported JAX and Keras and idles on its stdin; True if it did (or none was started).

        A child that exits or is not ready within timeout_s is ended and False returned: the next run()
        starts a fresh one and reports a failure as it always does.
        """
        if self._proc is None:
            return True
        deadline = time.monotonic() + timeout_s
        while not (self._ready / "ready").exists():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.close(wait_s=0)
                return False
            time.sleep(self.POLL_S)
        return True

    def run(self, job_path, result_path, timeout_s=TIMEOUT_S):
        """Have the child run one job file into result_path; raises KerasJaxError as run_child does."""
        deadline = time.monotonic() + timeout_s
        try:
            self.start()
            offset = self._err.seek(0, os.SEEK_END)  # this job's words start here (a fresh child's: at 0)
            reason = None
            try:
                self._proc.stdin.write(f"{job_path}\t{result_path}\n")
                self._proc.stdin.flush()
            except BrokenPipeError:  # the child is gone: its exit code below says how
                pass
            while not Path(result_path).exists():
                code = self._proc.poll()
                if code is not None:
                    reason = exit_reason(code) if code != 0 else "no result file"
                    break
                if time.monotonic() > deadline:
                    reason = f"timeout after {timeout_s:g} s"
                    break
                time.sleep(self.POLL_S)
        except BaseException:  # Ctrl-C, SIGTERM as KeyboardInterrupt: the child and its own children go now
            self.close(wait_s=0)
            raise
        if reason is not None:
            if self._proc.poll() is None:
                _kill_group(self._proc)
            last = _last_words(self._err, offset)
            self.close(wait_s=0)
            raise KerasJaxError(f"keras:jax child failed ({reason})" + (f": {last}" if last else ""))

    def close(self, wait_s=5.0):
        """End the child (an idle one leaves at the end of its stdin; killed if it has not within wait_s) and drop its stderr."""
        proc, err, ready, self._proc, self._err, self._ready = self._proc, self._err, self._ready, None, None, None
        if ready is not None and not (ready / "ready").exists():
            wait_s = 0  # still importing: it would read its stdin's end only once done, so no use waiting
        if proc is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=wait_s)
            _kill_group(proc)
        if err is not None:
            err.close()
        if ready is not None:
            shutil.rmtree(ready, ignore_errors=True)


_shared = None  # the KerasJaxSession of an open shared_child() block


@contextlib.contextmanager
def shared_child():
    """Within this block every keras:jax trainer runs its jobs in one KerasJaxSession; the block ends the child."""
    global _shared
    if _shared is not None:  # already open further out: that block owns the child
        yield
        return
    _shared = KerasJaxSession()
    try:
        yield
    finally:
        session, _shared = _shared, None
        session.close()


def start_shared():
    """Start the shared_child() block's child now; its wait_ready, for its start-up (outside a block: nothing, at once)."""
    if _shared is None:
        return lambda: True
    _shared.start()
    return _shared.wait_ready


def read_result(path, dtype, iterations):
    """A ChildRun from a result file."""
    with np.load(path, allow_pickle=False) as data:
        out = {key: data[key] for key in data.files}
    np_dtype = np.dtype(dtype)
    results = tuple(
        LoopResult(weights=np.asarray(out[f"weights_{k}"], np_dtype).reshape(-1, 1),
                   bias=np_dtype.type(out[f"bias_{k}"]), loss_curve=np.asarray(out[f"loss_curve_{k}"], np_dtype),
                   device=str(out["device"]), jit_compile=bool(out["jit_compile"]), mode="keras")
        for k in range(int(out["count"])))
    return ChildRun(results=results, first_call_s=float(out["first_call_s"]),
                    repeat_s=tuple(float(s) for s in out["repeat_s"]),
                    tensorflow_imported=bool(out["tensorflow_imported"]), float64_kept=bool(out["float64_kept"]),
                    learning_rate_dtype=str(out["learning_rate_dtype"]))


def run_jobs(jobs, timeout_s=TIMEOUT_S):
    """One child for several jobs: each a dict of write_job's arguments (X, y, W0, b0, rates, iterations, ...); a ChildRun each.

    Bad arguments raise ValueError before the child starts; a failure of any job raises KerasJaxError.
    """
    with tempfile.TemporaryDirectory(prefix="keras-jax-") as tmp:
        pairs = [(Path(tmp) / f"job{k}.npz", Path(tmp) / f"result{k}.npz") for k in range(len(jobs))]
        for (job_path, _), job in zip(pairs, jobs):
            write_job(job_path, **job)
        run_child_on(pairs, timeout_s)
        return [read_result(result_path, str(np.asarray(job["X"]).dtype), job["iterations"])
                for (_, result_path), job in zip(pairs, jobs)]


@dataclass(frozen=True)
class KerasJaxTrainer:
    """keras:jax in the parent: called (W0, b0[, rate]), one fit's LoopResult; run(), several rates and the timing."""

    run: object  # (W0, b0, rates=(lr,), repeats=0, budget_s=None) -> ChildRun: one job of the child
    lr: float  # the rate a call uses when given none

    def __call__(self, W0, b0, rate=None):
        """One fit from (W0, b0) at `rate` (default: lr): its LoopResult."""
        return self.run(W0, b0, rates=(float(self.lr if rate is None else rate),)).results[0]


def make_keras_jax_trainer(X, y, lr, iterations, batches=None, device="cpu", keep_float64=True,
                           timeout_s=TIMEOUT_S, scratch=None):
    """Build keras:jax: a KerasJaxTrainer, (W0, b0, rate=lr) -> LoopResult, each call one child process (inside a
    shared_child() block, the next job of the block's child).

    Keras runs all N updates (fit cannot stop between steps): diverged_at is None and the curve has
    N + 1 points; truncating at divergence is the caller's, as for the study's `keras`.
    train.run(W0, b0, rates=(lr,), repeats=0, budget_s=None) -> ChildRun serves several rates
    from one compiled model and times the first (warm-up, then repeats) inside the child.
    scratch() -> a `with` block giving the folder for the job and result files (default: a temporary one).
    """
    dtype = str(X.dtype)
    scratch = scratch or (lambda: tempfile.TemporaryDirectory(prefix="keras-jax-"))

    def run(W0, b0, rates=(lr,), repeats=0, budget_s=None):
        with scratch() as tmp:
            job, result = Path(tmp) / "job.npz", Path(tmp) / "result.npz"
            write_job(job, X, y, W0, b0, rates, iterations, batches, device, repeats, budget_s, keep_float64)
            if _shared is not None:
                _shared.run(job, result, timeout_s)
            else:
                run_child(job, result, timeout_s)
            return read_result(result, dtype, iterations)

    return KerasJaxTrainer(run, float(lr))


if __name__ == "__main__":
    sys.exit(main())
