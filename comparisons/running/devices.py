"""Which devices a framework's rows run on: --device auto|cpu|gpu|gpu:K against the GPUs it detects, one rule for all.

set_up(config, plan) is the driver's device set-up: it imports only the frameworks the plan needs in this
process, resolves their devices, splits the CPU for mirrored rows and fixes TensorFlow's numerics.
"""
import importlib
import os
from dataclasses import dataclass

from comparisons.core.errors import UsageError

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


@dataclass(frozen=True)
class Machine:
    """What the driver set up before the runs: each imported framework's device labels and TensorFlow's numerics."""

    devices: dict  # {"numpy": ["cpu"], "tensorflow": [...], "jax": [...]}: only the frameworks imported here
    numerics: dict | None = None  # TensorFlow's TF32 and determinism settings (configure_numerics), when it loaded
    tf_report: dict | None = None  # the devices TensorFlow saw (device_report), when it loaded

    def labels(self, framework):
        """The device labels that framework's rows run on here (the CPU for one not imported)."""
        return tuple(self.devices.get(framework, ["cpu"]))

    def jax_report(self):
        """JAX's runtime (versions, x64, devices) for environment.json, when JAX was imported here; else None."""
        if "jax" not in self.devices:
            return None
        from jax_models.runtime import runtime_report

        return runtime_report()


def frameworks_here(config, plan):
    """The frameworks the driver's own process must import for the plan's rows (tensorflow also for experiments)."""
    needed = {impl.framework for impl in plan.implementations
              if impl.framework != "numpy" and (impl.imports_here or impl.framework == "jax")}
    if config.experiments:
        needed.add("tensorflow")  # the experiments time TensorFlow rows too
    return needed


def _needed(config, plan):
    """The frameworks set_up imports here: frameworks_here, or TensorFlow alone to check a GPU asked for by name."""
    needed = frameworks_here(config, plan)
    if config.device.startswith("gpu") and not needed:
        needed = {"tensorflow"}
    return needed


def _splits_jax_cpu(plan):
    """Whether a JAX row of the plan is sharded over replicas (the host CPU is then split for it)."""
    return any(impl.framework == "jax" and impl.distributed == "replicas" for impl in plan.implementations)


def prepare_environment(config, plan):
    """Set now the environment variables set_up will set, importing no framework; idempotent.

    Processes started before set_up (the own-process rows' starters, which overlap the driver's imports)
    so inherit the environment they would inherit after it: TensorFlow's log level, JAX's CPU split.
    """
    needed = _needed(config, plan)
    if "tensorflow" in needed:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # as tf_models.quiet_import.import_tensorflow sets it
    if "jax" in needed and _splits_jax_cpu(plan):
        from jax_models.runtime import request_cpu_devices  # standard library only until JAX is imported

        request_cpu_devices(config.replicas)


def resolve_devices(config, plan):
    """Device labels per framework ({"numpy": ["cpu"], "tensorflow": [...], "jax": [...]}); UsageError if unavailable.

    A framework is imported (quietly) only when it has work here: one of its rows that the plan keeps
    and that runs in this process (TensorFlow also for the experiments). A numpy-only run under
    --device auto loads neither, a multi-worker-only one leaves TensorFlow to its workers, and a
    numpy and JAX run never imports TensorFlow. A GPU asked for by name is checked with every
    framework that runs (TensorFlow when only numpy does): its absence is a usage error saying what
    each framework saw. JAX's device list is read here also for keras:jax, whose Keras runs in a child.
    """
    needed = _needed(config, plan)
    devices, errors = {"numpy": ["cpu"]}, []
    if "tensorflow" in needed:
        devices["tensorflow"], error = _tensorflow_devices(config)
        errors += [error] if error else []
    if "jax" in needed:
        devices["jax"], error = _jax_devices(config, plan)
        errors += [error] if error else []
    if errors:
        raise UsageError("; ".join(errors))
    if "tensorflow" in devices:
        split_cpu_if_mirrored(config, plan)
    return devices


def set_up(config, plan):
    """Import the frameworks the plan needs here, resolve their devices, and fix TensorFlow's numerics: a Machine."""
    devices = resolve_devices(config, plan)
    if "tensorflow" not in devices:
        return Machine(devices)
    from tf_models.devices import configure_numerics, device_report

    return Machine(devices, numerics=configure_numerics(config.seed, deterministic=True), tf_report=device_report())


def _tensorflow_devices(config):
    """(TensorFlow's device labels for --device, or None, and an error text or None)."""
    from tf_models.quiet_import import import_tensorflow

    import_tensorflow()
    try:  # first: no GPU at all is said as such, also when mirrored replicas would want two
        return resolve_for("tensorflow", config.device), None  # lists physical devices only: the CPU can still be split
    except DeviceError as exc:
        return None, str(exc)


def _jax_devices(config, plan):
    """(JAX's device labels for --device, or None, and an error text or None); the CPU split first for sharded rows."""
    jax_rows = [impl for impl in plan.implementations if impl.framework == "jax"]
    sharded = _splits_jax_cpu(plan)
    try:
        from jax_models.runtime import import_jax

        import_jax(cpu_devices=config.replicas if sharded else None)
    except ImportError as exc:
        return None, (f"JAX is needed by {', '.join(impl.name for impl in jax_rows)} but does not import ({exc}); "
                      "install the pinned jax (make run does) or leave those rows out with --only")
    try:
        return resolve_for("jax", config.device), None
    except DeviceError as exc:
        return None, str(exc)


def split_cpu_if_mirrored(config, plan):
    """Split the CPU into config.replicas logical devices when a mirrored TensorFlow row will run on CPUs.

    Must run right after TensorFlow's import, before anything initialises its runtime; without a
    mirrored row the CPU stays one device, as every other run expects.
    """
    if not any(impl.distributed == "replicas" and impl.framework == "tensorflow" for impl in plan.implementations):
        return
    from tf_models.distributed import DistributionError, replica_devices

    try:
        replica_devices(config.replicas, config.device)  # GPUs when enough are seen, else splits the CPU
    except DistributionError as exc:
        raise UsageError(str(exc)) from None
