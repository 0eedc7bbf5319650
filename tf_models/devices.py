"""Which devices TensorFlow sees and labels, and the numerics switches for equivalence (comparisons/running/devices.py picks a run's)."""
import tensorflow as tf


def detected_gpus():
    """Labels ('gpu:0', 'gpu:1', ...) of the GPUs TensorFlow detects."""
    return [f"gpu:{i}" for i, _ in enumerate(tf.config.list_physical_devices("GPU"))]


def seen_devices():
    """The names of the physical devices TensorFlow sees, for messages: ['/physical_device:CPU:0', ...]."""
    return [d.name for d in tf.config.list_physical_devices()]


def tf_device_name(label):
    """The tf.device string of a label: 'cpu' -> '/CPU:0', 'gpu:1' -> '/GPU:1'."""
    kind, _, index = label.partition(":")
    return f"/{kind.upper()}:{index or 0}"


def label_of(device_string, replica=False):
    """The label of a placed tensor's or variable's device string: '.../device:GPU:0' -> 'gpu:0'.

    A single-device run's CPU is plain 'cpu'; a replica keeps its index ('cpu:1'), so that a
    distributed run can name every replica.
    """
    kind, _, index = device_string.rsplit("device:", 1)[-1].partition(":")
    kind = kind.lower()
    return "cpu" if kind == "cpu" and not replica else f"{kind}:{index or 0}"


def replicas_label(device_strings):
    """'cpu:0+cpu:1': every replica's label, joined by '+'."""
    return "+".join(label_of(d, replica=True) for d in device_strings)


def configure_numerics(seed, deterministic=True):
    """Switch TF32 off and, for equivalence runs, op determinism on; returns what was set."""
    tf.config.experimental.enable_tensor_float_32_execution(False)
    import keras  # imported here: device handling must not pay for Keras unless it is used

    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    return {
        "tf32_enabled": bool(tf.config.experimental.tensor_float_32_execution_enabled()),
        "op_determinism": bool(deterministic),
        "seed": seed,
    }


def device_report():
    """What TensorFlow sees: physical and logical devices, threads, build info."""
    build = tf.sysconfig.get_build_info()
    return {
        "physical_devices": [f"{d.device_type}:{d.name}" for d in tf.config.list_physical_devices()],
        "logical_devices": [d.name for d in tf.config.list_logical_devices()],
        "gpus": detected_gpus(),
        "built_with_cuda": bool(tf.test.is_built_with_cuda()),
        "cuda_version": build.get("cuda_version"),
        "cudnn_version": build.get("cudnn_version"),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
    }
