"""Envoy's LEAST_REQUEST balancer when hosts answer at different speeds.

Istio's default load balancer is LEAST_REQUEST (docs/ISTIO_SEMANTICS.md §7), which Envoy
implements as "power of two choices": draw two hosts at random and send the request to
the one with fewer requests in flight. When every host answers alike, the hosts are
symmetric and each gets ``1/k`` of the requests, which is what the oracle assumes
elsewhere. When one host is slower, it holds more requests in flight under concurrent
load and is chosen less often: the meshchaos suite measured reviews v1 at ~55 %
instead of 1/3 with ratings delayed behind v2 and v3. How much less depends on the load,
so the oracle can only bound it.

The bound: at any instant the hosts have some order by requests in flight. With a
strict order ``h1 < h2 < ... < hk`` (h1 least busy), two uniform draws with replacement
pick host ``hi`` with probability ``(2 (k - i) + 1) / k^2`` (both draws land on ``hi``
or later, minus both strictly later). Ties only mix these orders. So the long-run
share of each host lies in the convex hull of those vectors over all orders, and any
outcome share, being linear in the host shares, reaches its extremes at the orders
themselves. ``predict`` evaluates each distinct order and reports the min and max.

With one request at a time (``concurrency`` 1) nothing is in flight when a host is
picked, all hosts tie, and the split is exactly uniform.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from meshchaos.istio.model import LoadBalancerSimple, Resource
from meshchaos.oracle._dist import Dist
from meshchaos.oracle._match import cluster_policy

# Hosts whose mean latencies differ by less than this are treated as alike: Envoy's
# timers are that coarse (docs/ARCHITECTURE.md, performance facts).
LATENCY_TOLERANCE_S = 0.005
# More distinct orders than this are not enumerated; the shares are then left as the
# uniform estimate with a note (never reached with Bookinfo and httpbin).
MAX_ORDERS = 720


def is_least_request(
    resources: Sequence[Resource], service: str, subset: str | None, port: int
) -> bool:
    """True when the cluster balances with LEAST_REQUEST (Istio's default; LEAST_CONN is
    its alias). A consistent hash or ROUND_ROBIN/RANDOM picks regardless of load."""
    lb = cluster_policy(resources, service, subset, port).load_balancer
    if lb is None:
        return True
    if lb.consistent_hash is not None:
        return False
    return lb.simple in (
        None,
        LoadBalancerSimple.UNSPECIFIED,
        LoadBalancerSimple.LEAST_REQUEST,
        LoadBalancerSimple.LEAST_CONN,
    )


def mean_latency(d: Dist) -> float:
    total = sum(p for _, p in d.items())
    return sum(r.t * p for r, p in d.items()) / total if total else 0.0


def is_uneven(answers: Sequence[Dist]) -> bool:
    """True when the hosts' answers differ in mean latency beyond timer precision."""
    means = [mean_latency(d) for d in answers]
    return len(means) > 1 and max(means) - min(means) > LATENCY_TOLERANCE_S


def orders(hosts: Sequence[tuple[str, int]]) -> list[tuple[float, ...]]:
    """Per-version pick probabilities for every distinct load order of the hosts.

    ``hosts`` is ``[(version, instances), ...]``; the result has one vector per distinct
    order, each aligned with ``hosts``.
    """
    labels = [i for i, (_, n) in enumerate(hosts) for _ in range(n)]
    k = len(labels)
    rank_weight = [(2 * (k - i) + 1) / (k * k) for i in range(1, k + 1)]
    seen: dict[tuple[float, ...], None] = {}
    for perm in dict.fromkeys(itertools.permutations(labels)):  # distinct orders only
        if len(seen) >= MAX_ORDERS:
            break
        weights = [0.0] * len(hosts)
        for position, version in enumerate(perm):
            weights[version] += rank_weight[position]
        seen[tuple(round(w, 12) for w in weights)] = None
    return list(seen)
