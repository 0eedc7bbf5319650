"""The scaling model of the distributed experiment, against hand-computed values, limits and brute force."""
import itertools

import pytest

from comparisons.experiments.projection import (
    Compute, Network, best_workers, gradient_payload, gram_best_workers, gram_payload, gram_route_s,
    ring_allreduce_s, step_best_workers, step_s,
)

NET = Network("test", latency_s=1e-5, bandwidth=1e9, source="made up")
RATES = Compute(step_overhead_s=1e-4, value_s=1e-9, gram_product_s=5e-10, gram_iteration_s=2e-6)


def test_ring_allreduce_by_hand():
    # 4 workers, 1000 bytes, 10 us, 1 MB/s: 6 latencies (60 us) + 3/2 * 1000 / 1e6 (1.5 ms)
    assert ring_allreduce_s(4, 1000, 1e-5, 1e6) == pytest.approx(6e-5 + 1.5e-3, rel=1e-12)
    # 2 workers: 2 latencies + the whole payload once
    assert ring_allreduce_s(2, 8, 3e-6, 4.0) == pytest.approx(6e-6 + 2.0, rel=1e-12)


def test_one_worker_pays_no_communication():
    assert ring_allreduce_s(1, 10**9, 1.0, 1.0) == 0.0
    n, m = 1000, 32
    assert step_s(1, n, m, 4, RATES, NET) == pytest.approx(1e-4 + n * 33 * 1e-9, rel=1e-12)
    assert gram_route_s(1, n, m, 1000, 8, RATES, NET) == pytest.approx(n * 33 * 34 / 2 * 5e-10 + 1000 * 2e-6, rel=1e-12)


def test_payload_counts():
    assert gradient_payload(32) == 33
    assert gram_payload(32) == 33 * 34 // 2 + 33 + 1 == 595  # upper triangle of G, then c, then s
    assert gram_payload(32, dense=True) == 33 * 33 + 33 + 1 == 1123
    assert gram_payload(1) == 3 + 2 + 1  # G is 2x2 symmetric: 3 distinct entries


def test_all_reduce_grows_with_workers_and_compute_shrinks():
    times = [ring_allreduce_s(k, 4096, 1e-5, 1e9) for k in range(1, 200)]
    assert all(b > a for a, b in zip(times, times[1:]))
    no_network = Network("free", 0.0, float("inf"), "")
    steps = [step_s(k, 10**6, 32, 4, RATES, no_network) for k in range(1, 200)]
    assert all(b < a for a, b in zip(steps, steps[1:]))


@pytest.mark.parametrize("n, latency, bandwidth", itertools.product(
    (100, 10**4, 10**6, 10**8), (1e-7, 6e-7, 1e-5, 1e-3), (1e6, 25e9)))
def test_crossover_matches_brute_force(n, latency, bandwidth):
    net = Network("grid", latency, bandwidth, "")
    times = [step_s(k, n, 32, 4, RATES, net) for k in range(1, 1025)]
    brute = 1 + min(range(len(times)), key=lambda i: (round(times[i], 15), i))
    assert step_best_workers(n, 32, 4, RATES, net) == brute
    gram_times = [gram_route_s(k, n, 32, 1000, 8, RATES, net) for k in range(1, 1025)]
    gram_brute = 1 + min(range(len(gram_times)), key=lambda i: (round(gram_times[i], 15), i))
    assert gram_best_workers(n, 32, 8, RATES, net) == gram_brute


def test_crossover_limits():
    assert best_workers(spread_s=0.0, nbytes=100, latency_s=1e-6, bandwidth=1e9, max_workers=1024) == 1
    assert best_workers(spread_s=1.0, nbytes=100, latency_s=0.0, bandwidth=1e9, max_workers=64) == 64
    # sqrt(spread / (2 alpha)) exactly an integer when bandwidth is free: spread = 2 alpha K^2
    assert best_workers(spread_s=2 * 1e-6 * 49, nbytes=0, latency_s=1e-6, bandwidth=1e9, max_workers=1024) == 7
    assert best_workers(spread_s=1e3, nbytes=0, latency_s=1e-9, bandwidth=1e9, max_workers=1024) == 1024
