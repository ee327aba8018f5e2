"""What a scenario's policies do, as the report shows it: the delays and timeouts to mark
on the latency plot, and per destination service the short labels the service graph puts
on the edges into it (fault injection, timeout, retries, weights, mirror, circuit
breaker, outlier detection).

Read from the policy text the record keeps, through :mod:`meshchaos.istio`'s parser, so
``fixedDelay: 2s`` and ``perTryTimeout: 200ms`` mean here what they mean to the mesh.
A policy the parser refuses (or no policy) gives no marks and a note, never an error:
the report must still render.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Mark", "PolicyFacts", "policy_facts", "seconds_text", "service_of"]


@dataclass(frozen=True)
class Mark:
    """A time a policy sets: ``kind`` is ``delay``, ``timeout`` or ``perTryTimeout``."""

    kind: str
    seconds: float
    service: str

    @property
    def label(self) -> str:
        return f"{self.kind} {seconds_text(self.seconds)} ({self.service})"


@dataclass
class PolicyFacts:
    """Marks for the latency plot and labels per destination service for the graph."""

    marks: list[Mark] = field(default_factory=list)
    badges: dict[str, list[str]] = field(default_factory=dict)  # service -> labels
    subsets: dict[str, set[str]] = field(default_factory=dict)  # service -> routed subsets
    weights: dict[tuple[str, str], int] = field(default_factory=dict)  # (service, subset)
    mirrors: list[tuple[str, str | None, float | None]] = field(default_factory=list)
    note: str = ""

    def badge(self, service: str, text: str) -> None:
        labels = self.badges.setdefault(service, [])
        if text not in labels:
            labels.append(text)

    def mark(self, kind: str, seconds: float | None, service: str) -> None:
        if seconds is None or seconds <= 0:
            return
        m = Mark(kind, float(seconds), service)
        if m not in self.marks:
            self.marks.append(m)


def seconds_text(s: float) -> str:
    """``0.2`` -> ``200 ms``, ``1.5`` -> ``1.5 s``, ``0.00025`` -> ``250 µs``."""
    if s >= 1:
        return f"{s:.3g} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} µs"


def service_of(host: str) -> str:
    """A destination host as the graph names it: ``ratings.default.svc...`` -> ``ratings``."""
    return host.split(".", 1)[0]


def _percent(value: float | None) -> str:
    return "100%" if value is None else f"{value:g}%"


def _route(facts: PolicyFacts, host: str, route: Any) -> None:
    # The route's policies act on the calls to its destinations (for a gateway's
    # VirtualService, whose host is public, the destination is the service).
    targets = sorted({service_of(d.destination.host) for d in route.route}) or [host]
    for service in targets:
        _route_to(facts, service, route)
    for d in route.route:
        target = service_of(d.destination.host)
        if d.destination.subset:
            facts.subsets.setdefault(target, set()).add(d.destination.subset)
            if d.weight:
                key = (target, d.destination.subset)
                facts.weights[key] = facts.weights.get(key, 0) + d.weight
    for m in route.mirror_policies():
        target = service_of(m.destination.host)
        facts.mirrors.append((target, m.destination.subset, m.percentage))


def _route_to(facts: PolicyFacts, service: str, route: Any) -> None:
    fault = route.fault
    if fault is not None and fault.delay is not None:
        facts.mark("delay", fault.delay.fixed_delay, service)
        delay = fault.delay.fixed_delay
        share = (
            fault.delay.percentage if fault.delay.percentage is not None else fault.delay.percent
        )
        facts.badge(
            service, f"FI delay {seconds_text(delay or 0)} {_percent(share)}".replace("  ", " ")
        )
    if fault is not None and fault.abort is not None:
        code = fault.abort.http_status or fault.abort.grpc_status or fault.abort.http2_error
        facts.badge(service, f"FI abort {code} {_percent(fault.abort.percentage)}")
    if route.timeout is not None:
        facts.mark("timeout", route.timeout, service)
        facts.badge(service, f"TO {seconds_text(route.timeout)}")
    retries = route.retries
    if retries is not None:
        facts.mark("perTryTimeout", retries.per_try_timeout, service)
        per_try = f" x {seconds_text(retries.per_try_timeout)}" if retries.per_try_timeout else ""
        on = f" on {retries.retry_on}" if retries.retry_on else ""
        facts.badge(service, f"RT {retries.attempts}{per_try}{on}")
    subsets = "/".join(d.destination.subset for d in route.route if d.destination.subset)
    if route.match:
        facts.badge(service, f"match → {subsets}" if subsets else "match")
    elif subsets and len(route.route) == 1:
        facts.badge(service, f"→ {subsets}")
    weighted = [d for d in route.route if d.weight]
    if len(weighted) > 1:
        split = "/".join(f"{d.destination.subset or '?'} {d.weight}" for d in weighted)
        facts.badge(service, f"W {split}")
    for m in route.mirror_policies():
        target = m.destination.subset or service_of(m.destination.host)
        facts.badge(service, f"M {target} {_percent(m.percentage)}")


def _traffic_policy(facts: PolicyFacts, service: str, tp: Any, where: str = "") -> None:
    if tp is None:
        return
    pool = tp.connection_pool
    if pool is not None:
        parts = []
        if pool.tcp is not None and pool.tcp.max_connections is not None:
            parts.append(f"conn {pool.tcp.max_connections}")
        if pool.http is not None and pool.http.http1_max_pending_requests is not None:
            parts.append(f"pending {pool.http.http1_max_pending_requests}")
        if pool.http is not None and pool.http.http2_max_requests is not None:
            parts.append(f"req {pool.http.http2_max_requests}")
        facts.badge(service, f"CB{where} {' '.join(parts)}".rstrip())
    od = tp.outlier_detection
    if od is not None:
        errors = od.consecutive_5xx_errors or od.consecutive_gateway_errors
        eject = f" eject {seconds_text(od.base_ejection_time)}" if od.base_ejection_time else ""
        facts.badge(service, f"OD{where} {errors or ''}x5xx{eject}".replace(" x5xx", " 5xx"))
    for port in getattr(tp, "port_level_settings", ()):
        _traffic_policy(facts, service, port, f":{port.port.number}")


def policy_facts(policies: Sequence[Mapping[str, Any]]) -> PolicyFacts:
    """The facts of a record's ``policies`` entries (each with ``name`` and ``text``)."""
    from meshchaos.errors import ConfigInvalid
    from meshchaos.istio import DestinationRule, VirtualService, load_text

    facts = PolicyFacts()
    resources: list[Any] = []
    for p in policies:
        try:
            resources += load_text(str(p.get("text", "")), str(p.get("name", "<policy>")))
        except ConfigInvalid as exc:
            facts.note = f"policy {p.get('name')} not shown on the graph: {exc}".splitlines()[0]
    for r in resources:
        if isinstance(r, VirtualService):
            for host in _hosts(r.hosts):
                for route in r.http:
                    _route(facts, host, route)
        elif isinstance(r, DestinationRule):
            host = service_of(r.host)
            _traffic_policy(facts, host, r.traffic_policy)
            for subset in r.subsets:
                _traffic_policy(facts, host, subset.traffic_policy, f" {subset.name}")
    return facts


def _hosts(hosts: Iterable[str]) -> list[str]:
    # A gateway's VirtualService names the public host ("*", "bookinfo.example"); its
    # routes act on the gateway's calls, whose destinations name the service.
    return [service_of(h) for h in hosts]
