"""Import TensorFlow once, quietly: the study's process, its children and its workers all use this.

TensorFlow writes informational lines (oneDNN notices, "could not find cuda drivers", cuInit
failures on machines without a GPU) straight to file descriptor 2 before its logging is set up,
so TF_CPP_MIN_LOG_LEVEL alone does not silence them. Here stderr is captured while TensorFlow
loads and looks for devices; known start-up notices are dropped and any other line is passed
on, so a real error still shows.

A worker (a multi-worker process, a distribution-probe child) also hides matplotlib, pandas and JAX
while TensorFlow loads: `import tensorflow` imports Keras eagerly, and Keras imports the first two for
integrations a worker never uses (an image gallery, DataFrames given to fit); TensorFlow Lite imports
JAX, when installed, for a converter no run uses. Its start-up is that much shorter.
"""
import contextlib
import os
import re
import sys
import tempfile

KNOWN_NOISE = re.compile(
    r"All log messages before absl::InitializeLog|oneDNN custom operations are on|"
    r"Could not find cuda drivers|failed call to cuInit|Unable to register cu(DNN|FFT|BLAS) factory|"
    r"computation placer already registered|TF-TRT Warning|This TensorFlow binary is optimized to use|"
    r"rebuild TensorFlow with the appropriate compiler flags|Attempting to register factory|"
    r"cuda_executor|successful NUMA node read|^\s*$"
)
NOT_NEEDED_BY_WORKERS = ("matplotlib", "pandas", "jax")


@contextlib.contextmanager
def hidden_modules(names):
    """Within the block, `import name` of each of `names` not yet imported raises ImportError (libraries read it as
    "not installed"); afterwards they are importable again."""
    hidden = [name for name in names if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None
    try:
        yield
    finally:
        for name in hidden:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]


def import_tensorflow(hide=()):
    """Import TensorFlow and list its devices with the known start-up notices filtered out; `hide`: modules kept out."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's own C++ INFO and WARNING lines
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            with hidden_modules(hide):
                import tensorflow as tf

                tf.config.list_physical_devices()  # device discovery prints its notices now, not later
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines():
                if not KNOWN_NOISE.search(line):
                    print(line, file=sys.stderr)
    tf.get_logger().setLevel("ERROR")  # retracing warnings are expected: each run builds its own function
    return tf


def import_tensorflow_for_worker():
    """The quiet import for a worker process: matplotlib, pandas and JAX hidden while TensorFlow loads."""
    return import_tensorflow(hide=NOT_NEEDED_BY_WORKERS)
