"""Builders for the JAX rows (jax_models/): the jitted fori_loop, its Python-loop twin, the sharded loop, Keras on JAX."""
import functools
import math

import handrolled

from comparisons.core.results import from_run
from comparisons.running.adapters import Trainer
from comparisons.running.timing import Timing
from comparisons.running.keras_jax_child import make_keras_jax_trainer, start_shared
from comparisons.processes.scratch import owned_dir


def _autodiff_gradient(spec):
    """JAX's autodiff gradient of the MSE at (W, b) in float64, for the finite-difference check."""
    from jax_models.finite_difference import autodiff_gradient64

    return lambda W, b: autodiff_gradient64(spec.X, spec.y, W, b)


def _checked(spec, jax_train):
    """A trainer from a jax_models trainer (returning a LoopResult) (lr is an input of the compiled code: a new rate does not retrace)."""
    def train(W0, b0, rate=spec.lr):
        return from_run(spec.name, spec.dtype, jax_train(W0, b0, lr=float(rate)))
    return Trainer(spec, train, autodiff_gradient=_autodiff_gradient(spec))


def _loop(mode, spec):
    from jax_models.loop import make_jax_trainer

    return _checked(spec, make_jax_trainer(spec.X, spec.y, float(spec.lr), spec.iterations, mode=mode,
                                           device=spec.device, divergence_factor=handrolled.DIVERGENCE_FACTOR))


jit_loop = functools.partial(_loop, "jit")
jit_loop.__doc__ = "The whole descent in jax.lax under jax.jit, autodiff checked against the analytic gradient every step."
eager_loop = functools.partial(_loop, "python_loop")
eager_loop.__doc__ = "The same step, jitted, called once per update from a Python loop."


def sharded_loop(spec):
    """The jitted loop with the rows sharded over spec.replicas devices (GPUs when enough are seen, else split CPUs)."""
    from jax_models.runtime import detected_gpus
    from jax_models.sharded import make_sharded_trainer

    platform = "gpu" if spec.device != "cpu" and len(detected_gpus()) >= spec.replicas else "cpu"
    return _checked(spec, make_sharded_trainer(spec.X, spec.y, float(spec.lr), spec.iterations,
                                               replicas=spec.replicas, platform=platform,
                                               divergence_factor=handrolled.DIVERGENCE_FACTOR))


def keras_on_jax(spec):
    """The study's Keras model and fit on the JAX backend, in a child process that times itself."""
    # owner-tagged scratch: a later run removes it if this one is killed
    keras_train = make_keras_jax_trainer(spec.X, spec.y, float(spec.lr), spec.iterations, batches=spec.batches,
                                         device=spec.device, scratch=lambda: owned_dir("keras-jax-"))

    def train(W0, b0, rate=spec.lr, repeats=0, budget_s=math.inf):
        child = keras_train.run(W0, b0, rates=(float(rate),), repeats=repeats, budget_s=budget_s)
        return from_run(spec.name, spec.dtype, child.results[0], updates_per_call=spec.iterations,
                        timing=Timing(first_call_s=child.first_call_s, repeat_s=tuple(child.repeat_s)))
    return Trainer(spec, train)


def start_keras_jax_child(**_):
    """keras_on_jax's starter: the shared keras:jax child started now (inside the driver's shared_child() block), its
    imports under way; returns its wait() for them (comparisons.running.keras_jax_child.start_shared)."""
    return start_shared()


__all__ = ["eager_loop", "jit_loop", "keras_on_jax", "sharded_loop", "start_keras_jax_child"]
