"""Helpers shared by the scenarios: a :class:`Scenario` and :func:`run_scenario`.

A scenario applies policies, asks the oracle what they should do to one request
class, sizes the sample for the run's statistical budget, drives the load, reads the
proxy counters before and after, and checks the observed outcomes and counters
against the prediction::

    run_scenario(
        Scenario(policies=("fault-ratings-abort-50pct-500.yaml",)),
        mesh=mesh, policy=policy, load=load, record=record, min_effect=0.05,
    )

The fixtures (``policy``, ``load``, ``record``) are passed in as duck-typed objects,
so this module does not depend on the test suite's fixture package.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from meshchaos.load import LoadResult
from meshchaos.mesh.base import Applied, Mesh
from meshchaos.oracle.prediction import Prediction, RequestClass
from meshchaos.stats import current_alpha, detectable_effect, sample_size

__all__ = [
    "COUNTERS",
    "Scenario",
    "Sizing",
    "bookinfo",
    "counter_deltas",
    "httpbin",
    "inbound_requests",
    "mesh_counters",
    "mirror_checks",
    "plan_sample",
    "run_scenario",
]

POWER = 0.95
# Per-scenario caps on n: the suite's time budget (fault_injection <= 60 s) needs them.
# The record and the failure message state what the capped n can still detect.
BOOKINFO_CAP = 300
HTTPBIN_CAP = 4000
# The proxy counters every scenario compares with what the client saw (oracle names).
COUNTERS = (
    "fault.delays_injected",
    "fault.aborts_injected",
    "upstream_rq_retry",
    "upstream_rq_pending_overflow",
)


class PolicyFixture(Protocol):
    def __call__(self, *sources: Any) -> Applied: ...


class LoadFixture(Protocol):
    def gateway(self, path: str = ..., **kw: Any) -> LoadResult: ...
    def client(self, url: str, **kw: Any) -> LoadResult: ...


class RecordFixture(Protocol):
    def set(self, key: str, value: Any) -> None: ...
    def add_result(self, result: LoadResult, label: str = ...) -> None: ...


@dataclass(frozen=True)
class Scenario:
    """One scenario: what to apply, which requests to send, and how many at most.

    ``url`` is an in-mesh URL sent through the ``client`` workload's sidecar (httpbin
    scenarios); without it requests go to the gateway at ``request.path`` (Bookinfo).
    ``predict`` replaces ``policies`` when asking the oracle: the self-tests use it to
    tell the oracle something other than what was applied.
    """

    policies: tuple[str, ...]
    request: RequestClass = field(default_factory=RequestClass)
    url: str | None = None
    concurrency: int = 16
    max_requests: int = 1500
    min_requests: int = 60
    timeout: float = 30.0
    counters: tuple[str, ...] = COUNTERS
    predict: tuple[str, ...] | None = None

    @property
    def source(self) -> str:
        return "client" if self.url is not None else "gateway"


def httpbin(path: str, *policies: str, **kw: Any) -> Scenario:
    """A scenario sending ``path`` to httpbin through the in-mesh client's sidecar."""
    request = RequestClass(path=path, source="client", host="httpbin", port=8000)
    kw.setdefault("concurrency", 32)
    kw.setdefault("max_requests", HTTPBIN_CAP)
    return Scenario(policies=policies, request=request, url=f"http://httpbin:8000{path}", **kw)


def bookinfo(
    *policies: str, user: str | None = None, path: str = "/productpage", **kw: Any
) -> Scenario:
    """A scenario loading Bookinfo's ``path`` through the ingress gateway."""
    # Bookinfo's Python apps saturate 2 cores at ~250 pages/s; more concurrency only
    # queues, which shows up as latency outside the oracle's bands.
    kw.setdefault("concurrency", 12)
    kw.setdefault("max_requests", BOOKINFO_CAP)
    return Scenario(policies=policies, request=RequestClass(path=path, user=user), **kw)


@dataclass(frozen=True)
class Sizing:
    """How big the sample was planned, how big it ran, and what that can detect."""

    planned: int  # n needed to detect --min-effect with power 0.95 at the check level
    used: int  # after the scenario's cap and floor
    min_effect: float
    detectable: float  # smallest deviation the used n detects with power 0.95
    alpha: float  # the level each share check is sized for (scenario alpha / classes)

    @property
    def capped(self) -> bool:
        return self.used < self.planned


def _tested_shares(prediction: Prediction) -> list[float]:
    return [o.probability for o in prediction.outcomes if o.is_exact]


def plan_sample(
    prediction: Prediction, min_effect: float, alpha: float, *, cap: int, floor: int
) -> Sizing:
    """Size the sample so every exact share's check detects ``min_effect`` (capped)."""
    shares = _tested_shares(prediction) or [1.0]
    # Holm's first step tests at alpha / k: size for that, the worst case.
    level = alpha / max(1, len(shares))
    planned = max(sample_size(p, min_effect, level, POWER) for p in shares)
    used = max(floor, min(planned, cap))
    detectable = max(detectable_effect(p, used, level, POWER) for p in shares)
    return Sizing(planned, used, min_effect, detectable, level)


def mesh_counters(
    mesh: Mesh, names: Iterable[str], workloads: Iterable[str] | None = None
) -> dict[str, int]:
    """Mesh-wide sums of the outbound counters whose names end with each of ``names``.

    Faults and retries act in the calling proxy (a sidecar or the gateway), so the
    sum over every proxy is what the oracle's per-request expectation is about.
    """
    wanted = tuple(names)
    if workloads is None:
        workloads = sorted({p.workload for p in mesh.status()})
    totals = dict.fromkeys(wanted, 0)
    for workload in workloads:
        try:
            stats = mesh.proxy_stats(workload)
        except Exception:  # noqa: S112  # a killed instance has no stats; others still count
            continue
        for key, value in stats.items():
            if key.startswith("cluster.inbound|"):
                continue  # server side: faults and retries are counted by the caller
            for name in wanted:
                if key.endswith("." + name):
                    totals[name] += value
    return totals


def running_topology(mesh: Mesh) -> Any:
    """Bookinfo + httpbin as the oracle knows them, with the instances the mesh runs now
    (scenarios scale workloads such as ``ratings-v-faulty`` up and down)."""
    from meshchaos.oracle.topology import BOOKINFO

    counts: dict[str, int] = {}
    for proxy in mesh.status():
        if proxy.alive and proxy.workload in BOOKINFO.instances:
            counts[proxy.workload] = counts.get(proxy.workload, 0) + 1
    if not counts:  # a backend that reports no proxies: trust the catalogue
        return BOOKINFO
    zeroed = dict.fromkeys(BOOKINFO.instances, 0)
    return BOOKINFO.scaled(**{**zeroed, **counts})


def _max_events(name: str, resources: Sequence[Any], source: str) -> int:
    """The most ``name`` events one request can cause (an upper bound)."""
    per_call = 1
    if name == "upstream_rq_retry":
        attempts = [
            route.retries.attempts
            for r in resources
            for route in getattr(r, "http", ())
            if route.retries is not None
        ]
        per_call = max([2, *attempts])  # Istio's default policy retries up to 2 times
    # productpage calls reviews up to twice (its own retry), and reviews calls ratings.
    return per_call * (2 if source == "gateway" else 1)


def counter_deltas(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in after}


def _predicted_resources(mesh: Mesh, policy: Any, predict: Sequence[str] | None) -> list[Any]:
    """What the oracle is told: the mesh's resources, or the baseline plus ``predict``."""
    if predict is None:
        return list(mesh.resources())
    from meshchaos.manifests import merge

    return merge(getattr(policy, "baseline", {}).values(), _load(policy, predict))


def _load(policy: Any, names: Sequence[str]) -> list[Any]:
    from meshchaos.istio import load_files

    return list(load_files([policy.resolve_path(n) for n in names]))


def run_scenario(
    scenario: Scenario,
    *,
    mesh: Mesh,
    policy: PolicyFixture,
    load: LoadFixture,
    record: RecordFixture,
    min_effect: float,
    extra_checks: Callable[[LoadResult, Prediction], Sequence[Any]] | None = None,
) -> Any:
    """Apply, predict, size, load, and check; returns the :class:`CheckReport`.

    Raises :class:`meshchaos.errors.PolicyDeviation` when the mesh deviates.
    """
    __tracebackhide__ = True
    from meshchaos.check import counter_matches, expect, matches
    from meshchaos.oracle.predict import predict

    if scenario.policies:
        policy(*scenario.policies)
    told = _predicted_resources(mesh, policy, scenario.predict)
    request = replace(scenario.request, concurrency=scenario.concurrency)
    prediction = predict(told, request, running_topology(mesh))
    alpha = current_alpha()
    sizing = plan_sample(
        prediction, min_effect, alpha, cap=scenario.max_requests, floor=scenario.min_requests
    )
    record.set("policies", list(scenario.policies))
    record.set("predicted_with", list(scenario.predict or scenario.policies))
    record.set("request", scenario.request)
    record.set("prediction", prediction)
    record.set("sizing", sizing)

    names = [n for n in scenario.counters]
    before = mesh_counters(mesh, names)
    if scenario.url is not None:
        result = load.client(
            scenario.url,
            requests=sizing.used,
            concurrency=scenario.concurrency,
            timeout=scenario.timeout,
            headers=dict(scenario.request.headers),
        )
    else:
        result = load.gateway(
            scenario.request.path,
            user=scenario.request.user,
            requests=sizing.used,
            concurrency=scenario.concurrency,
            timeout=scenario.timeout,
            headers=dict(scenario.request.headers),
        )
    deltas = counter_deltas(before, mesh_counters(mesh, names))
    record.add_result(result)
    record.set("counters", deltas)

    checks: list[Any] = [matches(prediction)]
    for name in names:
        if name == "upstream_rq_pending_overflow":
            # Compared with the overloaded responses the client saw, not with a rate.
            overloaded = sum(1 for s in result.samples if s.overloaded)
            checks.append(
                counter_matches(
                    name, deltas.get(name, 0), overloaded / max(1, result.count), result.count
                )
            )
            continue
        if name in prediction.unpredictable:
            continue  # its rate depends on the balancer's split: the oracle gives none
        # A counter the oracle does not mention is expected to stay at zero.
        expected = prediction.counters.get(name, 0.0)
        # One request can count several events (retries; productpage asking reviews
        # twice), so the count is no binomial. Scaled by the most events one request
        # can make (A), each request's share lies in [0, 1], and by Bhatia-Davis its
        # variance is at most that of a Bernoulli with the same mean: the binomial
        # test on count/A is conservative.
        a = max(_max_events(name, told, scenario.source), math.ceil(expected))
        checks.append(
            counter_matches(
                f"{name} (/{a})" if a > 1 else name,
                round(deltas.get(name, 0) / a),
                expected / a,
                result.count,
            )
        )
    if extra_checks is not None:
        checks.extend(extra_checks(result, prediction))
    evidence = {
        "policy": ", ".join(scenario.policies) or "(none)",
        "predicted with": ", ".join(scenario.predict or scenario.policies) or "(none)",
        "sample": (
            f"{result.count} requests (planned {sizing.planned}; detects "
            f"{_fmt_effect(sizing.detectable)} at power {POWER})"
        ),
        "proxy counters": ", ".join(f"{k}={v}" for k, v in deltas.items()),
    }
    report = expect(result, evidence=evidence).to(*checks)
    return report


def _fmt_effect(effect: float) -> str:
    return "nothing reliably" if math.isinf(effect) else f"a {effect:.3f} deviation"


INBOUND = "cluster.inbound|8000||.upstream_rq_total"


def inbound_requests(mesh: Mesh, workload: str) -> int:
    """Requests the workload's sidecar passed to its app (httpbin's port 8000)."""
    return mesh.proxy_stats(workload).get(INBOUND, 0)


def settled_inbound(mesh: Mesh, workload: str, deadline: float = 3.0) -> int:
    """The inbound count once it stops changing (mirrored copies land asynchronously)."""
    end = time.monotonic() + deadline
    last = inbound_requests(mesh, workload)
    while time.monotonic() < end:
        time.sleep(0.1)  # a polling interval: we converge on the value, with a deadline
        now = inbound_requests(mesh, workload)
        if now == last:
            return now
        last = now
    return last


def mirror_checks(
    mesh: Mesh,
    record: RecordFixture,
    primary: str = "httpbin-v1",
    shadow: str = "httpbin-v2",
    key: str = "httpbin/v2",
) -> Callable[[LoadResult, Prediction], list[Any]]:
    """Extra checks for :func:`run_scenario`: ``primary`` serves every request, ``shadow``
    receives the mirrored share. Reads the inbound counters now, compares after the load."""
    from meshchaos.check import counter_matches

    before = {w: inbound_requests(mesh, w) for w in (primary, shadow)}

    def checks(result: LoadResult, prediction: Prediction) -> list[Any]:
        n = result.count
        delta = {w: settled_inbound(mesh, w) - before[w] for w in before}
        record.set("inbound", delta)
        out = [counter_matches(f"{primary} inbound requests (served)", delta[primary], 1.0, n)]
        if key not in prediction.unpredictable:
            out.append(
                counter_matches(
                    f"{shadow} inbound requests (mirrored)",
                    delta[shadow],
                    prediction.mirrored.get(key, 0.0),
                    n,
                )
            )
        return out

    return checks
