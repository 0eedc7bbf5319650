"""Shared test set-up: quiet TensorFlow, the lesson's data, and the repository root."""
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def lesson_data():
    """The lesson's data set (n = 100, one feature) and the shared initial parameters."""
    from comparisons.data import initial_parameters, make_synthetic

    data = make_synthetic(100, 1, 0.5, seed=0)
    return data, initial_parameters(1, seed=0)


@pytest.fixture(scope="session")
def tf_ready():
    """TensorFlow imported quietly, TF32 off and op determinism on, as in equivalence runs."""
    from comparisons.tf_runtime import import_tensorflow

    tf = import_tensorflow()
    from tf_models.devices import configure_numerics

    configure_numerics(seed=0, deterministic=True)
    return tf
