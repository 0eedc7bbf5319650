"""Import JAX once, with the study's numerics, and name its devices as the study does.

The numerics are set before any computation: `jax_enable_x64` (float64 runs really are float64;
without it JAX silently makes float32 of them) and `jax_default_matmul_precision="highest"`
(full float32 products on GPUs, the equivalent of TF32 off). The host platform can be split
into R CPU devices for the sharded loop; XLA reads that request when JAX starts its backends,
so it must be made before the first computation (import_jax(cpu_devices=R) does it).

JAX's start-up on a machine without a GPU is quiet, but its C++ side may write notices (a CUDA
plugin looking for drivers) straight to file descriptor 2; they are filtered as TensorFlow's are,
and any other line is passed on, so a real error still shows.
"""
import logging
import os
import re
import sys
import tempfile

HOST_DEVICES_FLAG = "--xla_force_host_platform_device_count"
KNOWN_NOISE = re.compile(
    r"All log messages before absl::InitializeLog|Could not find cuda drivers|failed call to cuInit|"
    r"Unable to register cu(DNN|FFT|BLAS) factory|An NVIDIA GPU may be present on this machine|"
    r"Unable to initialize backend '(cuda|rocm|tpu)'|Platform '(cuda|rocm|tpu)' is experimental|"
    r"CUDA backend failed to initialize|^\s*$"
)


class DeviceError(ValueError):
    """A device was asked for that JAX cannot provide."""


class HostSplitError(RuntimeError):
    """The CPU was to be split into more devices than JAX, already started, has."""


def _backends_started():
    """Whether JAX has started its backends (after that, the number of CPU devices is fixed)."""
    if "jax" not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge
        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):  # a JAX without that helper: assume the worst
        return True


def request_cpu_devices(count):
    """Ask XLA for `count` CPU devices (the host platform split); effective only before JAX starts.

    Sets XLA_FLAGS (replacing an earlier count) and, when JAX is imported but not started, its
    `jax_num_cpu_devices` option. Raises HostSplitError when JAX already runs with fewer.
    """
    count = int(count)
    if count < 1:
        raise ValueError(f"a CPU split needs at least 1 device, not {count}")
    if _backends_started():
        import jax

        have = len(jax.devices("cpu"))
        if have < count:
            raise HostSplitError(
                f"JAX already started with {have} CPU device(s), so it cannot be split into {count}: "
                f"call request_cpu_devices({count}) (or import_jax(cpu_devices={count})) before any JAX computation, "
                f"or set XLA_FLAGS={HOST_DEVICES_FLAG}={count} before starting Python")
        return
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if not f.startswith(HOST_DEVICES_FLAG)]
    os.environ["XLA_FLAGS"] = " ".join(flags + [f"{HOST_DEVICES_FLAG}={count}"])
    if "jax" in sys.modules:
        import jax

        try:
            jax.config.update("jax_num_cpu_devices", count)
        except (AttributeError, KeyError, ValueError):  # older JAX: XLA_FLAGS alone does it
            pass


def _configure(jax):
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_default_matmul_precision", "highest")


def import_jax(cpu_devices=None):
    """JAX with x64 and "highest" matmul precision, its devices discovered without start-up noise.

    cpu_devices=R first splits the host platform into R CPU devices (see request_cpu_devices).
    """
    if cpu_devices is not None:
        request_cpu_devices(cpu_devices)
    if "jax" in sys.modules and _backends_started():
        jax = sys.modules["jax"]
        _configure(jax)
        return jax
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import jax

            _configure(jax)
            logging.getLogger("jax._src.xla_bridge").setLevel(logging.ERROR)  # "no GPU/TPU found" notices
            jax.devices()  # backends start now: their notices are captured here, not later
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines():
                if not KNOWN_NOISE.search(line):
                    print(line, file=sys.stderr)
    return jax


def gpu_devices(jax):
    """JAX's GPU devices, in its order (an empty list when it has no GPU backend)."""
    try:
        return list(jax.devices("gpu"))
    except RuntimeError:  # "Unknown backend: 'gpu' requested, but no platforms ... are present"
        return []


def detected_gpus():
    """Labels ('gpu:0', 'gpu:1', ...) of the GPUs JAX detects."""
    return [f"gpu:{i}" for i in range(len(gpu_devices(import_jax())))]


def seen_devices():
    """What JAX sees, for messages and environment.json: ['cpu:0 (cpu)', 'gpu:0 (NVIDIA ...)', ...]."""
    jax = import_jax()
    return [f"{d.platform}:{d.id} ({d.device_kind})" for d in jax.devices("cpu") + gpu_devices(jax)]


def device_of(label):
    """The jax Device of a label: 'cpu' (the first CPU device), 'cpu:1', 'gpu:0', ..."""
    jax = import_jax()
    kind, _, index = label.partition(":")
    devices = jax.devices("cpu") if kind == "cpu" else gpu_devices(jax) if kind == "gpu" else None
    if devices is None:
        raise DeviceError(f"unknown device {label!r}; use cpu, cpu:K or gpu:K")
    k = int(index or 0)
    if k >= len(devices):
        raise DeviceError(f"device {label!r}: JAX sees {len(devices)} {kind.upper()} device(s) "
                          f"({', '.join(seen_devices())})")
    return devices[k]


def label_of(device):
    """The study's label of one jax Device: 'cpu' for the first CPU, 'cpu:1', 'gpu:0', ..."""
    jax = import_jax()
    kind = "cpu" if device.platform == "cpu" else "gpu"
    index = (jax.devices("cpu") if kind == "cpu" else gpu_devices(jax)).index(device)
    return "cpu" if kind == "cpu" and index == 0 else f"{kind}:{index}"


def replicas_label(devices):
    """The label of a sharded run: every device, joined by '+' ('cpu:0+cpu:1', 'gpu:0+gpu:1')."""
    jax = import_jax()
    labels = []
    for device in devices:
        kind = "cpu" if device.platform == "cpu" else "gpu"
        labels.append(f"{kind}:{(jax.devices('cpu') if kind == 'cpu' else gpu_devices(jax)).index(device)}")
    return "+".join(labels)


def placed_label(array):
    """The label of where a jax array lives: one device's label, or the '+'-joined replicas of a sharded one."""
    devices = sorted(array.devices(), key=lambda d: d.id)
    return label_of(devices[0]) if len(devices) == 1 else replicas_label(devices)


def runtime_report():
    """What JAX runs with: versions, x64, matmul precision, devices seen (for environment.json)."""
    jax = import_jax()
    import jaxlib

    return {
        "jax": jax.__version__, "jaxlib": jaxlib.__version__, "backend": jax.default_backend(),
        "x64": bool(jax.config.jax_enable_x64), "matmul_precision": str(jax.config.jax_default_matmul_precision),
        "devices": seen_devices(), "gpus": detected_gpus(),
    }
