"""TensorFlow for a worker process: quiet, and without the plotting and table libraries Keras loads.

`import tensorflow` imports Keras eagerly, and Keras imports matplotlib (for an image-gallery
helper) and pandas (to slice DataFrames given to fit) whenever they are installed. A worker of
the study (a multi-worker process, a distribution-probe child) feeds numpy arrays and tf.data
and draws nothing, so both are hidden while TensorFlow loads: Keras then skips those two
integrations, and every worker start-up is that much shorter. The study's own process, which
plots and writes tables, imports TensorFlow with comparisons.tf_runtime instead.
"""
import os
import sys

NOT_NEEDED_BY_WORKERS = ("matplotlib", "pandas")


def import_tensorflow_for_worker():
    """Import TensorFlow with TF_CPP_MIN_LOG_LEVEL=2 and its Python logger at ERROR, hiding NOT_NEEDED_BY_WORKERS."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's own C++ INFO and WARNING lines
    hidden = [name for name in NOT_NEEDED_BY_WORKERS if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # `import name` now raises ImportError, which Keras treats as "not installed"
    try:
        import tensorflow as tf
    finally:
        for name in hidden:  # importable again for whatever this process does later
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]
    tf.get_logger().setLevel("ERROR")
    return tf
