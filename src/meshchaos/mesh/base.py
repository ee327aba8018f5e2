"""The Mesh protocol: the one interface every backend implements.

A scenario only talks to a :class:`Mesh`; the same scenario runs unchanged on the
embedded local mesh and on a Kubernetes cluster with Istio.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from meshchaos.istio.model import Resource


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
        """Envoy counters of a workload's sidecars (summed over instances) or of the gateway."""
        ...

    def status(self) -> list[ProxyStatus]:
        """Every proxy and the config version it runs."""
        ...

    def kill(self, workload: str, instance: int = 0) -> None:
        """Kill one instance (app and sidecar) abruptly, as a crashing pod would die."""
        ...

    def restart(self, workload: str, instance: int = 0) -> None:
        """Bring a killed instance back and wait until it serves."""
        ...

    def scale(self, workload: str, replicas: int) -> None:
        """Run ``replicas`` instances of ``workload`` and wait until the mesh routes to them."""
        ...

    def close(self) -> None:
        """Stop and clean up everything this mesh started. Idempotent."""
        ...
