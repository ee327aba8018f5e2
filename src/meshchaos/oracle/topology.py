"""The application topology as the oracle evaluates it: services, versions, instances, call edges.

The oracle evaluates Istio policy on this graph. Nothing here is a fact of its own: every
service, version, instance count, call edge and propagated header is read from
``meshchaos.apps.facts`` (docs/BOOKINFO.md §1-§6), which the local mesh's workloads and our
apps read too. The oracle imports no mesh code (docs/ARCHITECTURE.md, "Oracle, load,
verdict").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from meshchaos.apps import facts
from meshchaos.apps.facts import CLIENT, INGRESS_GATEWAY, CallEdge, PathCalls, Response, Workload

__all__ = [
    "BOOKINFO",
    "CLIENT",
    "INGRESS_GATEWAY",
    "Behaviour",
    "CallEdge",
    "PathCalls",
    "Response",
    "Service",
    "Topology",
    "Workload",
    "topology_of",
]


@dataclass(frozen=True)
class Behaviour:
    """What one version of an app does with a request.

    A leaf app answers from ``responses`` (a finite mixture); ``httpbin`` apps answer
    from the request path instead (``/status/<codes>``, ``/delay/<s>``). A composite app
    makes the calls of the first matching ``paths`` entry, in order; its payload
    class is ``label`` on success, else the failed edge's ``on_failure`` (two failures
    combine through ``combined``). ``label is None`` on a composite means "the payload of
    the last call" (productpage shows whatever reviews returned).
    """

    label: str | None = None
    responses: tuple[Response, ...] = (Response(),)
    httpbin: bool = False
    paths: tuple[PathCalls, ...] = ()
    propagate: frozenset[str] = frozenset()  # inbound headers copied onto its calls
    sets_end_user: bool = False  # productpage: ``end-user`` from the session user
    combined: Mapping[frozenset[str], str] = field(default_factory=dict)


@dataclass(frozen=True)
class Service:
    """A Kubernetes Service: its port and, per ``version`` label, how that version behaves."""

    name: str
    port: int
    versions: Mapping[str, Behaviour]


@dataclass(frozen=True)
class Topology:
    """Services, call edges and running instances (key ``<service>-<version>``)."""

    services: Mapping[str, Service]
    edges: tuple[CallEdge, ...]
    instances: Mapping[str, int]
    sources: Mapping[str, Workload] = field(default_factory=dict)
    # Instances that were killed but are still registered as endpoints (a crashed pod
    # before its endpoint is withdrawn): connecting to them fails. Same keys as
    # ``instances``, which counts only the live ones.
    killed: Mapping[str, int] = field(default_factory=dict)
    # Instances (same keys) that outlier detection has ejected before and let back in:
    # their consecutive-error count may already be past the threshold (docs/ISTIO_SEMANTICS.md §7).
    ejected_before: frozenset[str] = frozenset()

    def count(self, service: str, version: str) -> int:
        return self.instances.get(f"{service}-{version}", 0)

    def killed_count(self, service: str, version: str) -> int:
        return self.killed.get(f"{service}-{version}", 0)

    def with_killed(self, service: str, version: str, n: int = 1) -> Topology:
        """A copy where ``n`` of the running instances of ``service-version`` are dead
        but still registered, as right after a kill."""
        key = f"{service}-{version}"
        live = self.instances.get(key, 0)
        if not 0 < n <= live:
            raise ValueError(f"cannot kill {n} of the {live} running instances of {key}")
        return replace(
            self,
            instances={**self.instances, key: live - n},
            killed={**self.killed, key: self.killed.get(key, 0) + n},
        )

    def edge(self, caller: str, version: str, callee: str) -> CallEdge | None:
        for e in self.edges:
            if (e.caller_app, e.callee) == (caller, callee) and e.caller_version in (None, version):
                return e
        return None

    def scaled(self, **instances: int) -> Topology:
        """A copy with some instance counts changed: ``scaled(**{"ratings-v-faulty": 1})``."""
        merged = dict(self.instances)
        merged.update(instances)
        return replace(self, instances=merged)


def _behaviour(app: facts.App, version: facts.Version) -> Behaviour:
    return Behaviour(
        label=version.label,
        responses=version.responses,
        httpbin=version.httpbin,
        paths=version.paths,
        propagate=frozenset(app.propagate),
        sets_end_user=app.end_user_from_session,
        combined=app.combined,
    )


def topology_of(
    apps: Sequence[facts.App],
    calls: Sequence[CallEdge],
    sources: Mapping[str, Workload],
) -> Topology:
    """The oracle's view of ``apps``: every version known, deployed ones with their
    replicas as instances, the others with none."""
    return Topology(
        services={
            a.name: Service(a.name, a.port, {v.name: _behaviour(a, v) for v in a.versions})
            for a in apps
        },
        edges=tuple(calls),
        instances={
            f"{a.name}-{v.name}": v.replicas if v.deployed else 0 for a in apps for v in a.versions
        },
        sources=dict(sources),
    )


# Bookinfo and httpbin, with the instances the local mesh starts (the sample variants at 0
# until scaled).
BOOKINFO = topology_of(facts.APPS, facts.CALLS, {"gateway": INGRESS_GATEWAY, "client": CLIENT})
