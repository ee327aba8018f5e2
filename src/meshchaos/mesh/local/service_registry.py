"""The local mesh's service registry: what the translator knows besides the Istio resources.

It stands in for what istiod reads from Kubernetes. ``Endpoint`` is one running instance
of a workload as the mesh addresses it (its sidecar inbound listener on 127.0.0.1, the
local stand-in for a pod IP); ``ProxySpec`` is one Envoy (a sidecar or the ingress
gateway); ``ProxyConfig`` is the xDS that Envoy should run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from meshchaos.apps.catalog import WorkloadSpec
from meshchaos.apps.facts import INGRESS_GATEWAY

__all__ = [
    "GATEWAY_LISTENER",
    "Endpoint",
    "ProxyConfig",
    "ProxySpec",
    "service_ports",
]

# The ingress gateway proxy's one listener and its route config, named as istiod names
# them (``http.<port>``) for the one Gateway server port it serves. The gateway itself (its
# name, labels and port) is ``meshchaos.apps.facts.INGRESS_GATEWAY``.
GATEWAY_LISTENER = f"http.{INGRESS_GATEWAY.port}"


@dataclass(frozen=True)
class Endpoint:
    """One workload instance, addressed by its sidecar's inbound listener port."""

    workload: str  # "reviews-v2"
    instance: int  # 0, 1, ...
    port: int  # that instance's sidecar INBOUND listener port on 127.0.0.1
    labels: Mapping[str, str]
    service: str  # "reviews"
    service_port: int  # 9080


@dataclass(frozen=True)
class ProxySpec:
    """One Envoy of the local mesh: a workload instance's sidecar or the ingress gateway."""

    name: str  # "reviews-v2-0" or "istio-ingressgateway"
    role: Literal["sidecar", "gateway"]
    labels: Mapping[str, str]  # gateway: INGRESS_GATEWAY.labels
    workload: WorkloadSpec | None = None  # None for the gateway
    app_port: int | None = None  # where the app listens; None = no app (a client)

    @property
    def has_inbound(self) -> bool:
        """True when this sidecar fronts an app (so it has an ``inbound`` listener)."""
        if self.role != "sidecar":
            return False
        has_service = self.workload is not None and bool(self.workload.service)
        return self.app_port is not None or has_service

    @property
    def inbound_port(self) -> int:
        """The port in the inbound cluster name ``inbound|<port>||`` (the service port)."""
        if self.workload is not None and self.workload.port:
            return self.workload.port
        return self.app_port or 0


@dataclass(frozen=True)
class ProxyConfig:
    """The xDS resources of one proxy: RouteConfigurations and Clusters as Envoy JSON."""

    route_configs: tuple[dict[str, Any], ...]  # RouteConfiguration resources (each has "name")
    clusters: tuple[dict[str, Any], ...]
    warnings: tuple[str, ...] = ()


def service_ports(workloads: Sequence[WorkloadSpec]) -> dict[str, tuple[int, ...]]:
    """Service FQDN -> its sorted ports, from the workloads that declare a Service."""
    ports: dict[str, set[int]] = {}
    for w in workloads:
        if w.service:
            ports.setdefault(w.fqdn, set()).add(w.port)
    return {fqdn: tuple(sorted(p)) for fqdn, p in sorted(ports.items())}
