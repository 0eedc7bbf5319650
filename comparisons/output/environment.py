"""What the study ran on: versions, hardware, BLAS, threads, TensorFlow devices, git commit."""
import ctypes
import datetime
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

import numpy as np

from comparisons.output.out_folder import SIGNATURE, SIGNATURE_KEY
from comparisons.running.cores import cores

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                    "TF_NUM_INTEROP_THREADS", "TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")


def _version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model():
    """The CPU's model name from /proc/cpuinfo, or platform.processor()."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def blas_info():
    """Which BLAS numpy was built against (name, version, threading) from numpy.show_config."""
    try:
        config = np.show_config(mode="dicts")
        blas = config.get("Build Dependencies", {}).get("blas", {})
        return {key: blas.get(key) for key in ("name", "version", "openblas configuration") if key in blas}
    except Exception as exc:  # show_config's layout is not a stable API
        return {"error": str(exc)}


def openblas_runtime():
    """Threads and core type of the OpenBLAS numpy loaded, asked of the library itself (None if not OpenBLAS)."""
    try:
        paths = {line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines()
                 if "openblas" in line.lower() and line.split()[-1].startswith("/")}
    except OSError:
        return None
    for path in sorted(paths):
        lib = ctypes.CDLL(path)
        for prefix, suffix in (("scipy_openblas_", "64_"), ("scipy_openblas_", ""), ("openblas_", "64_"), ("openblas_", "")):
            threads, config = (getattr(lib, f"{prefix}get_num_threads{suffix}", None),
                               getattr(lib, f"{prefix}get_config{suffix}", None))
            if threads and config:
                config.restype = ctypes.c_char_p
                return {"library": Path(path).name, "threads": int(threads()), "config": config().decode()}
    return None


def git_commit():
    """The repository's HEAD commit (with '+dirty' when the work tree has changes), or None."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (commit + ("+dirty" if dirty else "")) or None


def collect(config, started_at, tf_report=None, numerics=None, jit=None, jax_report=None):
    """environment.json's content as a dict."""
    return {
        SIGNATURE_KEY: SIGNATURE,  # marks the folder as a run's results: a later run may replace it (out_folder)
        "started_at": started_at.isoformat(timespec="seconds"),
        "finished_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command_line": list(config.command_line),
        "seed": config.seed,
        "git_commit": git_commit(),
        "versions": {"python": platform.python_version(),
                     **{p: _version(p) for p in ("numpy", "tensorflow", "keras", "jax", "jaxlib", "pandas", "matplotlib",
                                                  "tensorboard")}},
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_cores_logical": os.cpu_count(),
        "cpu_cores_usable": cores(),
        "blas": {**blas_info(), "runtime": openblas_runtime()},
        "thread_settings": {name: os.environ.get(name) for name in THREAD_VARIABLES},
        "tensorflow": tf_report,
        "numerics": numerics,  # TF32, op determinism
        "xla_jit_compile": jit,  # per compiled implementation
        "jax": jax_report,  # x64, matmul precision ("highest": no TF32), devices seen; None when JAX did not run here
    }
