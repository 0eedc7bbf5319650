"""Linear regression by gradient descent in JAX, and the study's Keras model on the JAX backend.

Read in this order: runtime.py (importing JAX with x64 and full matmul precision, devices and
their labels, the CPU split), loop.py (`jax`, `jax:eager`: the descent with its per-step
autodiff-vs-analytic check), finite_difference.py (the check against central differences),
sharded.py (`jax:sharded`: rows over several devices), keras_fit.py
(`keras:jax`: Keras on the JAX backend, in its own process). Every trainer returns
loop_result.LoopResult, the loop result it shares with tf_models (a top-level module, numpy only).

Importing this package imports neither JAX nor Keras: each module imports what it needs, so the
parent of a keras:jax child, or a run without JAX rows, pays for neither.
"""
