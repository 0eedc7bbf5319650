"""Device resolution and placement: what runs where, and clean failures when a GPU is asked for."""
import numpy as np
import pytest

from comparisons.running.implementations import make_trainer


def test_auto_without_gpu_is_cpu(tf_ready):
    from comparisons.running.devices import resolve_for
    from tf_models.devices import detected_gpus

    assert resolve_for("tensorflow", "auto") == ["cpu"] + detected_gpus()
    assert resolve_for("tensorflow", "cpu") == ["cpu"]


def test_gpu_without_gpu_fails_cleanly(tf_ready):
    from comparisons.running.devices import DeviceError, resolve_for
    from tf_models.devices import detected_gpus

    if detected_gpus():
        pytest.skip("a GPU is present: this checks the no-GPU failure")
    with pytest.raises(DeviceError, match="detected no GPU.*sees: .*CPU"):
        resolve_for("tensorflow", "gpu")
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_for("tensorflow", "tpu")


def test_labels_and_device_names():
    from tf_models.devices import label_of, tf_device_name

    assert tf_device_name("cpu") == "/CPU:0" and tf_device_name("gpu:1") == "/GPU:1"
    assert label_of("/job:localhost/replica:0/task:0/device:CPU:0") == "cpu"
    assert label_of("/job:localhost/replica:0/task:0/device:GPU:1") == "gpu:1"


@pytest.mark.parametrize("name", ["keras", "gradient_tape", "gradient_tape:eager"])
def test_results_carry_the_device_the_variables_live_on(tf_ready, lesson_data, name):
    data, initial = lesson_data
    result = make_trainer(name, data.X, data.y, 0.05, 3, device="cpu")(*initial)
    assert result.device == "cpu"


def test_logical_devices_and_numerics(tf_ready):
    tf = tf_ready
    assert any(d.device_type == "CPU" for d in tf.config.list_logical_devices())
    assert tf.config.experimental.tensor_float_32_execution_enabled() is False
    with tf.device("/CPU:0"):
        x = tf.constant([1.0])
    assert x.device.endswith("CPU:0")


def _gpu_or_skip(tf):
    if not tf.config.list_physical_devices("GPU"):
        pytest.skip("no GPU detected by TensorFlow on this machine; GPU placement cannot be checked")


@pytest.mark.parametrize("name", ["keras", "gradient_tape"])
def test_runs_on_gpu_and_matches_cpu(tf_ready, lesson_data, name):
    _gpu_or_skip(tf_ready)
    data, initial = lesson_data
    cpu = make_trainer(name, data.X, data.y, 0.05, 50, device="cpu")(*initial)
    gpu = make_trainer(name, data.X, data.y, 0.05, 50, device="gpu:0")(*initial)
    assert gpu.device == "gpu:0"
    np.testing.assert_allclose(gpu.loss_curve, cpu.loss_curve, rtol=1e-10)


def test_resolution_and_plan_with_two_gpus_seen(tf_ready, monkeypatch):
    """The GPU branches of device resolution, exercised on the CPU by showing TensorFlow's answer two GPUs."""
    import tf_models.devices as devices
    from comparisons.core.config import StudyConfig
    from comparisons.running.devices import DeviceError, resolve_for
    from comparisons.running.study import plan

    real = tf_ready.config.list_physical_devices
    fake = [tf_ready.config.PhysicalDevice(f"/physical_device:GPU:{i}", "GPU") for i in range(2)]
    monkeypatch.setattr(devices.tf.config, "list_physical_devices",
                        lambda kind=None: fake if kind == "GPU" else real(kind))
    assert resolve_for("tensorflow", "auto") == ["cpu", "gpu:0", "gpu:1"]
    assert resolve_for("tensorflow", "gpu") == ["gpu:0", "gpu:1"]
    assert resolve_for("tensorflow", "gpu:1") == ["gpu:1"]
    with pytest.raises(DeviceError, match="detected only gpu:0, gpu:1"):
        resolve_for("tensorflow", "gpu:2")
    # numpy runs on the CPU only; each TensorFlow implementation on every resolved device, in every dtype
    triples = plan(StudyConfig(only=("numpy", "keras"))).triples({"numpy": ["cpu"], "tensorflow": ["cpu", "gpu:0", "gpu:1"]})
    assert [t for t in triples if t[0] == "numpy"] == [("numpy", "cpu", "float32"), ("numpy", "cpu", "float64")]
    assert {(d, dt) for n, d, dt in triples if n == "keras"} == {
        (d, dt) for d in ("cpu", "gpu:0", "gpu:1") for dt in ("float32", "float64")}


class _TensorFlowAsked(Exception):
    """Raised by the stand-in importer: the code under test asked for TensorFlow."""


@pytest.mark.parametrize("changes, needs_tf", [
    ({"only": ("numpy",), "experiments": ()}, False),  # --device auto, numpy only: nothing for TensorFlow to do
    ({"only": ("numpy",), "experiments": (), "device": "cpu"}, False),
    ({"only": ("numpy", "gradient_tape"), "experiments": (), "batch_size": 8}, False),  # the tape is skipped
    ({"only": ("numpy", "keras"), "experiments": (), "batch_size": 8}, True),  # Keras follows mini-batches
    ({"only": ("keras",), "experiments": ()}, True),
    ({"only": ("numpy",), "experiments": ("lr_sweep",)}, True),  # experiments get the devices
    ({"only": ("numpy",), "experiments": (), "device": "gpu"}, True),  # a GPU asked for by name is checked
])
def test_devices_are_resolved_only_when_tensorflow_has_work(monkeypatch, changes, needs_tf):
    """devices.resolve_devices imports TensorFlow only for a TensorFlow run, an experiment or an explicit GPU."""
    from comparisons.running.devices import resolve_devices
    from comparisons.running.study import plan
    from tf_models import quiet_import as tf_runtime
    from comparisons.core.config import StudyConfig

    def refuse():
        raise _TensorFlowAsked

    monkeypatch.setattr(tf_runtime, "import_tensorflow", refuse)
    config = StudyConfig().with_changes(**changes)
    if needs_tf:
        with pytest.raises(_TensorFlowAsked):
            resolve_devices(config, plan(config))
    else:
        assert resolve_devices(config, plan(config)) == {"numpy": ["cpu"]}
