"""A stated model of data-parallel gradient descent on K workers: what a step costs, and where more workers stop helping.

This is a model, not a measurement. Its inputs are measured (here, on loopback) or stated
(datacenter figures with their source); its outputs are projections.

- A step on K workers: each holds n / K rows, so its compute is `overhead + (n / K) (m + 1) t_value`
  (t_value: seconds per number of [X, 1] per step, from measured single-replica steps), and then
  all workers all-reduce the gradient.
- A ring all-reduce of B bytes over K workers costs 2 (K - 1) latencies (K - 1 reduce-scatter
  and K - 1 all-gather rounds) plus 2 (K - 1) / K B over the bandwidth (each worker sends and
  receives that share of the data); nothing for K = 1.
- The Gram route (sufficient statistics): each worker makes one pass over its rows to build
  G = [X, 1]^T [X, 1], c = [X, 1]^T y and s = y^T y, one all-reduce sends them, and then every
  iteration is O(m^2) on the worker, whatever n is.

With b = n (m + 1) t_value the work spread over workers and B the payload, the step time
t(K) = a + 2 alpha (K - 1) + 2 B / beta + (b - 2 B / beta) / K is convex in K, so its minimum over
integers sits at floor or ceil of K* = sqrt((b - 2 B / beta) / (2 alpha)): beyond that worker
count, adding a worker makes a step slower.
"""
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Network:
    """An interconnect for the model: per-message latency and bandwidth."""

    name: str  # "loopback (measured)" or "datacenter (stated)"
    latency_s: float  # alpha: seconds per message round of the ring
    bandwidth: float  # beta: bytes per second one worker sends (and receives)
    source: str  # where the figures come from


@dataclass(frozen=True)
class Compute:
    """Compute rates for the model (measured here)."""

    step_overhead_s: float  # fixed cost of one step whatever the rows (dispatch, the reduction's bookkeeping)
    value_s: float  # seconds per number of [X, 1] per step (the gradient's passes over a worker's rows)
    gram_product_s: float  # seconds per entry of the Gram pass: (m + 1)(m + 2) / 2 products per row
    gram_iteration_s: float  # one O(m^2) iteration on G, c, s


def gradient_payload(m):
    """Numbers all-reduced per step: the gradient over W and b."""
    return m + 1


def gram_payload(m, dense=False):
    """Numbers all-reduced once by the Gram route: G's upper triangle (or all of G if dense), c and s."""
    g = (m + 1) ** 2 if dense else (m + 1) * (m + 2) // 2
    return g + (m + 1) + 1


def ring_allreduce_s(workers, nbytes, latency_s, bandwidth):
    """Seconds for a ring all-reduce of nbytes over `workers`: 2 (K - 1) alpha + 2 (K - 1) / K nbytes / beta."""
    if workers < 1:
        raise ValueError("workers must be at least 1")
    k = workers
    return 2 * (k - 1) * latency_s + 2 * (k - 1) / k * nbytes / bandwidth


def step_s(workers, n, m, itemsize, compute, network):
    """Seconds of one data-parallel step on `workers` (per-step route): compute on n / K rows plus the all-reduce."""
    work = compute.step_overhead_s + n / workers * (m + 1) * compute.value_s
    return work + ring_allreduce_s(workers, gradient_payload(m) * itemsize, network.latency_s, network.bandwidth)


def gram_route_s(workers, n, m, iterations, gram_itemsize, compute, network):
    """Seconds of a whole run by the Gram route: one pass over n / K rows, one all-reduce, then the iterations locally."""
    one_pass = n / workers * (m + 1) * (m + 2) / 2 * compute.gram_product_s
    exchange = ring_allreduce_s(workers, gram_payload(m) * gram_itemsize, network.latency_s, network.bandwidth)
    return one_pass + exchange + iterations * compute.gram_iteration_s


def best_workers(spread_s, nbytes, latency_s, bandwidth, max_workers):
    """The worker count in 1..max_workers with the fastest step for a cost fixed + spread_s / K + ring all-reduce.

    Closed form: t(K) = const + 2 alpha K + (spread - 2 B / beta) / K is convex, so the best integer
    is floor or ceil of sqrt((spread - 2 B / beta) / (2 alpha)); K = 1 when spreading does not pay.
    """
    gain = spread_s - 2 * nbytes / bandwidth  # what 1/K multiplies once the bandwidth term is split out
    if gain <= 0:
        return 1
    if latency_s <= 0:
        return max_workers
    star = math.sqrt(gain / (2 * latency_s))
    cost = lambda k: 2 * latency_s * k + gain / k  # noqa: E731 (t(K) minus its constant part)
    candidates = {min(max_workers, max(1, c)) for c in (math.floor(star), math.ceil(star))}
    return min(candidates, key=lambda k: (cost(k), k))  # ties: fewer workers


def step_best_workers(n, m, itemsize, compute, network, max_workers=1024):
    """The worker count beyond which adding a worker makes a per-step-route step slower (model)."""
    return best_workers(n * (m + 1) * compute.value_s, gradient_payload(m) * itemsize,
                        network.latency_s, network.bandwidth, max_workers)


def gram_best_workers(n, m, gram_itemsize, compute, network, max_workers=1024):
    """The worker count beyond which adding a worker makes a Gram-route run slower (model)."""
    return best_workers(n * (m + 1) * (m + 2) / 2 * compute.gram_product_s, gram_payload(m) * gram_itemsize,
                        network.latency_s, network.bandwidth, max_workers)
