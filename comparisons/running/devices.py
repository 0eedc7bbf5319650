"""Which devices a framework's rows run on: --device auto|cpu|gpu|gpu:K against the GPUs it detects, one rule for all."""
import importlib

# each framework's device module: detected_gpus() -> ['gpu:0', ...], seen_devices() -> what it sees, for messages
DEVICE_MODULES = {"tensorflow": ("tf_models.devices", "TensorFlow"), "jax": ("jax_models.runtime", "JAX")}


class DeviceError(ValueError):
    """A device was asked for that the framework cannot provide."""


def resolve(spec, gpus, framework, seen):
    """The device labels for --device `spec` given a framework's GPU labels; seen() says what it sees (for errors)."""
    if spec == "cpu":
        return ["cpu"]
    if spec == "auto":
        return ["cpu"] + gpus
    if spec == "gpu" or spec.startswith("gpu:"):
        if not gpus:
            raise DeviceError(f"--device {spec}: {framework} detected no GPU (it sees: {', '.join(seen()) or 'nothing'}); "
                              "use --device cpu or auto")
        if spec == "gpu":
            return gpus
        if spec not in gpus:
            raise DeviceError(f"--device {spec}: {framework} detected only {', '.join(gpus)}")
        return [spec]
    raise DeviceError(f"unknown device {spec!r}; use auto, cpu, gpu or gpu:K")


def resolve_for(framework, spec):
    """resolve() with the GPUs the framework ("tensorflow", "jax") detects; its package is imported here."""
    module_name, title = DEVICE_MODULES[framework]
    module = importlib.import_module(module_name)
    return resolve(spec, module.detected_gpus(), title, module.seen_devices)
