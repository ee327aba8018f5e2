"""The Kubernetes kinds meshchaos creates, and where each lives in the REST API.

One table, so the API client, the safety checks and the tests agree on every kind's
group, version, plural and scope. Istio kinds use ``networking.istio.io/v1``: served
(and the storage version) since Istio 1.22.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from meshchaos.errors import MeshError

__all__ = ["KINDS", "Kind", "kind_of", "object_ref"]


@dataclass(frozen=True)
class Kind:
    """Where objects of one kind live: ``group`` is ``""`` for the core API."""

    kind: str
    group: str
    version: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def is_custom(self) -> bool:
        """Served by a CRD (read and written through ``CustomObjectsApi``)."""
        return self.group.endswith("istio.io")


KINDS: dict[str, Kind] = {
    k.kind: k
    for k in (
        Kind("Namespace", "", "v1", "namespaces", namespaced=False),
        Kind("ServiceAccount", "", "v1", "serviceaccounts"),
        Kind("Service", "", "v1", "services"),
        Kind("ConfigMap", "", "v1", "configmaps"),
        Kind("Pod", "", "v1", "pods"),
        Kind("Deployment", "apps", "v1", "deployments"),
        Kind("VirtualService", "networking.istio.io", "v1", "virtualservices"),
        Kind("DestinationRule", "networking.istio.io", "v1", "destinationrules"),
        Kind("Gateway", "networking.istio.io", "v1", "gateways"),
    )
}


def kind_of(obj: dict[str, Any]) -> Kind:
    """The :class:`Kind` of a manifest, checking its ``apiVersion`` against the table."""
    name = obj.get("kind")
    kind = KINDS.get(str(name))
    if kind is None:
        raise MeshError(f"meshchaos does not manage kind {name!r}; it manages {', '.join(KINDS)}")
    if obj.get("apiVersion") != kind.api_version:
        raise MeshError(
            f"{kind.kind} {object_ref(obj)}: apiVersion {obj.get('apiVersion')!r}, "
            f"expected {kind.api_version!r}"
        )
    return kind


def object_ref(obj: dict[str, Any]) -> str:
    """``namespace/name`` (or ``name`` for a cluster-scoped object) of a manifest."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name')}" if ns else str(meta.get("name"))
