"""The Mesh protocol: the one interface every backend implements.

A scenario only talks to a :class:`Mesh`; the same scenario runs unchanged on the
embedded local mesh and on a Kubernetes cluster with Istio.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from meshchaos.istio.model import Resource

if TYPE_CHECKING:
    from meshchaos.load.plan import LoadPlan, Trigger
    from meshchaos.load.result import LoadResult

__all__ = [
    "COUNTER_NAMES",
    "Applied",
    "CounterQuery",
    "Mesh",
    "MeshClient",
    "ProxyStatus",
    "Side",
    "Startup",
]

#: The counters a :class:`CounterQuery` may name, as Envoy names the stat's last part.
#: Every backend answers them in its own stat names (``envoy_stats.counter_total``).
#: ``outlier_detection.ejections_active`` is a gauge, read the same way.
COUNTER_NAMES = (
    "fault.delays_injected",
    "fault.aborts_injected",
    "upstream_rq_retry",
    "upstream_rq_pending_overflow",
    "outlier_detection.ejections_enforced_total",
    "outlier_detection.ejections_active",
    "upstream_rq_total",
)


class Side(StrEnum):
    """Which end of a call a counter is read at."""

    CLIENT = "client"  # the caller's proxy: its outbound clusters (faults, retries, overflow)
    SERVER = "server"  # the callee's sidecar: its inbound cluster (what reached the app)


@dataclass(frozen=True)
class CounterQuery:
    """One counter to read, summed over the replicas of ``workloads``.

    ``CLIENT``: over the outbound side of the proxies of ``workloads`` (``None``: every
    workload and the ingress gateway). ``SERVER``: the inbound cluster of ``workloads``'
    sidecars (``None``: every sidecar), on the app ``port`` if given. On the client side,
    ``port`` keeps the outbound clusters of that service port (fault stats are per
    listener and ignore it).
    """

    name: str
    side: Side = Side.CLIENT
    workloads: tuple[str, ...] | None = None
    port: int | None = None

    def __post_init__(self) -> None:
        if self.name not in COUNTER_NAMES:
            raise ValueError(
                f"unknown counter {self.name!r}; expected one of: {', '.join(COUNTER_NAMES)}"
            )
        if self.workloads is not None and not isinstance(self.workloads, tuple):
            object.__setattr__(self, "workloads", tuple(self.workloads))

    def describe(self) -> str:
        """``upstream_rq_total (server side of httpbin-v1, port 8000)``: for messages."""
        who = ", ".join(self.workloads) if self.workloads is not None else "every proxy"
        port = f", port {self.port}" if self.port is not None else ""
        return f"{self.name} ({self.side.value} side of {who}{port})"


@dataclass(frozen=True)
class Startup:
    """How opening a mesh went (:attr:`Mesh.startup`)."""

    ready_seconds: float  # from the call to the first 200 /productpage through the gateway
    warnings: tuple[str, ...] = ()  # what the backend found but can live with, one line each
    # What the run record keeps of the mesh: versions ("envoy", "istio") and the
    # mesh-wide settings that change outcomes (kube: Istio's retry policy, outbound
    # traffic policy, mTLS mode), so two runs can tell whether they are comparable.
    versions: Mapping[str, str | None] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Applied:
    """What one ``apply`` changed, so that ``delete`` can restore the state before it.

    ``previous`` maps ``Kind namespace/name`` to the resource it replaced, or ``None``
    when the resource did not exist before. ``version``: the config version the proxies
    run. ``warnings``: what the backend cannot honour in the config now in force (valid
    Istio it does not implement, e.g. a host outside the mesh), one line each, as
    ``kubectl apply`` prints warnings; empty when it honours all of it.
    """

    resources: tuple[Resource, ...]
    previous: dict[str, Resource | None] = field(default_factory=dict)
    version: str = ""
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class MeshClient:
    """An in-mesh client workload (the role of Istio's fortio or curl pod).

    Requests sent through ``proxy_url`` (as an HTTP proxy, absolute-form URIs such as
    ``http://reviews:9080/reviews/0``) leave through that workload's sidecar, so routing,
    faults, retries and circuit breakers act in the client sidecar as they do in Istio.
    """

    workload: str
    proxy_url: str

    def service_url(self, host: str, port: int, path: str = "/") -> str:
        """The in-mesh URL of ``host:port`` as an app would write it."""
        return f"http://{host}:{port}{path}"


@dataclass(frozen=True)
class ProxyStatus:
    """One proxy's sync state, like a row of ``istioctl proxy-status``."""

    name: str  # e.g. "reviews-v2-0" or "istio-ingressgateway"
    workload: str
    version: str  # config version the proxy runs
    synced: bool
    alive: bool
    admin_url: str | None = None


@runtime_checkable
class Mesh(Protocol):
    """A service mesh running Bookinfo and httpbin that meshchaos can drive."""

    backend: str
    #: How the start went; ``None`` in a process that attached to a running mesh.
    startup: Startup | None

    def apply(self, resources: Sequence[Resource]) -> Applied:
        """Validate, apply, and return once every affected proxy runs the new config.

        Invalid input raises :class:`meshchaos.errors.ConfigInvalid` and changes nothing.
        """
        ...

    def delete(self, applied: Applied) -> None:
        """Restore the state from before ``applied``, waiting for the proxies."""
        ...

    def resources(self) -> list[Resource]:
        """The Istio resources currently in force."""
        ...

    def gateway_url(self) -> str:
        """Base URL of the ingress gateway, e.g. ``http://127.0.0.1:41234``."""
        ...

    def client(self, workload: str = "client") -> MeshClient:
        """An in-mesh client whose sidecar the load generator sends through."""
        ...

    def proxy_stats(self, workload: str) -> dict[str, int]:
        """Raw Envoy counters and gauges of a workload's sidecars (summed over instances) or
        of the gateway, as the proxy names them: for people (``meshchaos stats``), never
        for scenarios, which use :meth:`counters`. Empty when the proxy emits nothing."""
        ...

    def counters(self, queries: Sequence[CounterQuery]) -> dict[CounterQuery, int]:
        """Each query's value, summed over the live proxies it names. Raises
        :class:`~meshchaos.errors.StatNotEmitted` (naming the stat and the workloads)
        when no such proxy emits a query's stat, and :class:`~meshchaos.errors.MeshError`
        when a proxy's stats could not be read. Never a zero for a missing stat."""
        ...

    def status(self) -> list[ProxyStatus]:
        """Every proxy and the config version it runs."""
        ...

    def instances(self, workload: str) -> list[str]:
        """The instances of ``workload`` as the backend names them, in a stable order
        (local: ``reviews-v1-0``, ``reviews-v1-1``, killed ones included until restarted;
        kube: pod names, which change when a pod is replaced); empty for a workload scaled
        to zero. Raises :class:`~meshchaos.errors.UnknownWorkload` for a workload the mesh
        does not know."""
        ...

    def kill(self, instance: str) -> None:
        """Kill one instance (app and sidecar) abruptly, as a crashing pod would die."""
        ...

    def restart(self, instance: str) -> None:
        """Bring a killed instance back (or wait for its replacement) until it serves."""
        ...

    def scale(self, workload: str, replicas: int) -> None:
        """Run ``replicas`` instances of ``workload`` and wait until the mesh routes to them."""
        ...

    def load_targets(self) -> tuple[str, ...]:
        """The base URLs load may go to from the host: loopback and the gateway address the
        backend reported. :meth:`run_load` refuses any other."""
        ...

    def run_load(
        self,
        plan: LoadPlan,
        *,
        source: str | None = None,
        triggers: Sequence[Trigger] = (),
        progress: bool = False,
    ) -> LoadResult:
        """Run ``plan`` with the load engine and return its per-request samples.

        ``source=None``: from the host to ``plan.url`` (a path joins :meth:`gateway_url`;
        an absolute URL must start with one of :meth:`load_targets`). ``source="client"``:
        in the mesh, through that client workload's sidecar, to the in-mesh URL
        ``plan.url`` (``http://httpbin:8000/get``). Outcome classes come from
        :func:`meshchaos.load.classify.classifier_for_url`. ``triggers`` (not
        ``plan.triggers``) set off chaos on the run's own progress. ``progress``: one
        updating stderr line while a long run goes on, where the backend can show it
        (the host's engine; not in-mesh load on a cluster).
        """
        ...

    def close(self) -> None:
        """Stop and clean up everything this mesh started. Idempotent."""
        ...
