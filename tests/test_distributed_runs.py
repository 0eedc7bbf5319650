"""The support matrix's MirroredStrategy probe for real (slow: a TensorFlow start-up in a child process)."""
import numpy as np
import pytest

from comparisons.inputs.data import initial_parameters, make_synthetic
from comparisons.experiments import distribution_support as support


@pytest.mark.slow
def test_mirrored_probe_matches_numpy_with_uneven_shards_and_records_keras_crash():
    data = make_synthetic(support.INDIVISIBLE_N, 1, 0.5, 0)
    W0, b0 = initial_parameters(1, 0)
    configs = [dict(api="tape", feed="distributed", steps_per_execution=5, n=101, dtype="float64", iterations=10),
               dict(api="tape", feed="numpy", steps_per_execution=10, n=100, dtype="float64", iterations=10),
               dict(api="keras", feed="numpy", steps_per_execution=1, n=101, dtype="float64", iterations=10)]
    outcomes = support._run_group("mirrored", configs, data, W0, b0, 0.05, 60.0)
    import handrolled

    verdicts = {}
    for c in configs:
        X, y = data.X[:c["n"]], data.y[:c["n"]]
        reference = handrolled.descend(X, y, W0, b0, 0.05, c["iterations"])
        verdicts[c["feed"], c["api"]] = support.judge(outcomes[support.probe_key(c)], reference, "float64")
    assert verdicts["distributed", "tape"][0] == "same"
    # the whole arrays on each of 2 replicas, each loss over the global n, summed: twice the gradient
    assert verdicts["numpy", "tape"][0] == "differs"
    verdict, _, detail = verdicts["numpy", "keras"]
    assert verdict == "fails" and detail.startswith("InvalidArgumentError")
