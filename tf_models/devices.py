"""Which devices TensorFlow sees, which ones a run uses, and the numerics switches for equivalence."""
import tensorflow as tf


class DeviceError(ValueError):
    """A device was asked for that TensorFlow cannot provide."""


def detected_gpus():
    """Labels ('gpu:0', 'gpu:1', ...) of the GPUs TensorFlow detects."""
    return [f"gpu:{i}" for i, _ in enumerate(tf.config.list_physical_devices("GPU"))]


def resolve_devices(spec):
    """Turn --device auto|cpu|gpu|gpu:K into the list of device labels to run on."""
    gpus = detected_gpus()
    if spec == "cpu":
        return ["cpu"]
    if spec == "auto":
        return ["cpu"] + gpus
    if spec == "gpu" or spec.startswith("gpu:"):
        if not gpus:
            seen = ", ".join(d.name for d in tf.config.list_physical_devices()) or "nothing"
            raise DeviceError(f"--device {spec}: TensorFlow detected no GPU (it sees: {seen}); use --device cpu or auto")
        if spec == "gpu":
            return gpus
        if spec not in gpus:
            raise DeviceError(f"--device {spec}: TensorFlow detected only {', '.join(gpus)}")
        return [spec]
    raise DeviceError(f"unknown device {spec!r}; use auto, cpu, gpu or gpu:K")


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
