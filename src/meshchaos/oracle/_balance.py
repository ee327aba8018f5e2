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

The hosts also differ when their versions do different work for the same request:
reviews v1 answers without calling ratings, v2 and v3 wait for it, so under load v1 is
less busy and picked more often (measured: 38.5 % instead of a third, 763 of 1,983
pages, with nothing delayed). The oracle models no service times, so it compares the
calls each version makes (:func:`calls_differ`).

With one request at a time (``concurrency`` 1) nothing is in flight when a host is
picked, all hosts tie, and the split is exactly uniform.

Shares that vary with the order may still be exact *within a group of outcomes*: with
ratings aborted on half of its calls, half of the pages served by v2 or v3 show the
ratings error, whatever share v1 takes. ``predict`` finds such conditional shares
(:func:`conditionals`), which keep the suite sharp where the split itself is only bounded.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from meshchaos.istio.model import LoadBalancerSimple, Resource
from meshchaos.oracle._dist import Dist
from meshchaos.oracle._match import cluster_policy
from meshchaos.oracle.topology import Topology

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


def calls_made(topology: Topology, service: str, version: str, uri: str) -> tuple[str, ...]:
    """The services ``version`` of ``service`` calls while serving ``uri``, in order."""
    beh = topology.services[service].versions[version]
    path = next((e for e in beh.paths if uri.startswith(e.prefix)), None)
    if path is None:
        return ()
    return tuple(c for c in path.calls if topology.edge(service, version, c) is not None)


def calls_differ(topology: Topology, service: str, versions: Sequence[str], uri: str) -> bool:
    """True when the versions make different calls for ``uri``: their service times differ
    under load even with nothing delayed (reviews v1 skips ratings)."""
    return len({calls_made(topology, service, v, uri) for v in versions}) > 1


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


# A conditional share must agree in every load order to this precision to count as exact.
_EXACT = 1e-9


def conditionals(
    runs: Sequence[dict[str, float]], bounded: Sequence[str]
) -> list[tuple[str, tuple[str, ...], float, float]]:
    """Conditional shares that hold in every load order.

    ``runs`` gives each order's class probabilities (the uniform split among them).
    For each class in ``bounded`` (its share varies with the order), the group of
    classes ``G`` with the largest least share that contains it and in which
    ``P(class | G)`` is the same in every order and strictly between 0 and 1.
    Returns ``(class, G, P(class | G), min share of G)``; the last is what the
    sample is sized against. The long-run split is a mixture of
    the orders, and a ratio equal at every vertex of a mixture is equal on all of it.
    """
    classes = sorted({c for r in runs for c in r})
    if len(classes) > 10:  # 512 groups per class: more than Bookinfo and httpbin give
        return []
    out = []
    for cls in bounded:
        others = [c for c in classes if c != cls]
        best: tuple[tuple[str, ...], float, float] | None = None
        for size in range(len(others), 0, -1):
            for rest in itertools.combinations(others, size):
                group = tuple(sorted((cls, *rest)))
                found = _constant_ratio(runs, cls, group)
                if found is not None and (best is None or found[1] > best[2]):
                    best = (group, *found)
        if best is not None:
            out.append((cls, best[0], best[1], best[2]))
    return out


def _constant_ratio(
    runs: Sequence[dict[str, float]], cls: str, group: tuple[str, ...]
) -> tuple[float, float] | None:
    ratios, totals = [], []
    for r in runs:
        total = sum(r.get(c, 0.0) for c in group)
        if total <= _EXACT:
            return None
        ratios.append(r.get(cls, 0.0) / total)
        totals.append(total)
    if max(ratios) - min(ratios) > _EXACT or not _EXACT < ratios[0] < 1 - _EXACT:
        return None
    return ratios[0], min(totals)
