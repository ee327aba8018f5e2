"""Istio resources (meshchaos's typed model) as the objects KubeMesh applies, and back.

A policy file is written for the ``default`` namespace of the local mesh; on a cluster it
goes into the run's namespace, where short hosts (``reviews``) resolve to the run's own
Services. Each object carries the run's ownership labels. With a ``gateway_host`` (several
runs sharing one ingress gateway), the ``*`` hosts of Gateways and of the VirtualServices
bound to them become that host, so each run's gateway routes stay its own.

Order matters (KUBE_BACKEND.md T7): a route to a subset before its DestinationRule gives
503 NC, so DestinationRules go first, Gateways next, VirtualServices last; deletes go in
the reverse order.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

from meshchaos.errors import ConfigInvalid
from meshchaos.istio.model import Resource, VirtualService, resource_id
from meshchaos.istio.parse import parse_resource
from meshchaos.mesh.kube.safety import owned_labels

__all__ = ["APPLY_ORDER", "apply_order", "delete_order", "from_object", "to_object", "validate"]

APPLY_ORDER = ("DestinationRule", "Gateway", "VirtualService")
_SERVER_SET = ("resourceVersion", "uid", "generation", "creationTimestamp", "managedFields")


def apply_order(resources: Iterable[Resource]) -> list[Resource]:
    """DestinationRules, then Gateways, then VirtualServices (stable within a kind)."""
    return sorted(resources, key=lambda r: APPLY_ORDER.index(r.kind))


def delete_order(resources: Iterable[Resource]) -> list[Resource]:
    return list(reversed(apply_order(resources)))


def _mesh_bound(raw: dict[str, Any]) -> bool:
    gateways = (raw.get("spec") or {}).get("gateways") or []
    return not gateways or gateways == ["mesh"]


def to_object(
    resource: Resource, namespace: str, run_id: str, gateway_host: str | None = None
) -> dict[str, Any]:
    """The manifest to apply: the resource as written, in ``namespace``, owned by the run."""
    obj = copy.deepcopy(resource.raw)
    obj["apiVersion"] = "networking.istio.io/v1"
    meta = obj.setdefault("metadata", {})
    for key in _SERVER_SET:
        meta.pop(key, None)
    meta["namespace"] = namespace
    meta["labels"] = {**(meta.get("labels") or {}), **owned_labels(run_id)}
    obj.pop("status", None)
    spec = obj.get("spec") or {}
    if gateway_host:
        if resource.kind == "Gateway":
            for server in spec.get("servers") or []:
                server["hosts"] = [gateway_host if h == "*" else h for h in server.get("hosts", [])]
        elif resource.kind == "VirtualService" and not _mesh_bound(obj):
            spec["hosts"] = [gateway_host if h == "*" else h for h in spec.get("hosts", [])]
    return obj


def from_object(obj: dict[str, Any], source: str) -> Resource:
    """A stored object back as a typed resource (its namespace the run's)."""
    clean = copy.deepcopy(obj)
    meta = clean.setdefault("metadata", {})
    for key in _SERVER_SET:
        meta.pop(key, None)
    clean.pop("status", None)
    return parse_resource(clean, source)


def validate(resources: Sequence[Resource], namespace: str) -> None:
    """Re-check every resource as it will be applied; :class:`ConfigInvalid` listing all
    problems (nothing is applied then). Duplicates of one object are a problem too."""
    problems: list[str] = []
    seen: set[str] = set()
    for r in resources:
        rid = resource_id(r)
        key = f"{r.kind} {r.metadata.name}"
        if key in seen:
            problems.append(f"{r.source}: {rid}: given twice in one apply")
        seen.add(key)
        raw = copy.deepcopy(r.raw)
        raw.setdefault("metadata", {})["namespace"] = namespace
        try:
            parse_resource(raw, r.source)
        except ConfigInvalid as exc:
            problems += exc.problems
        if isinstance(r, VirtualService) and not r.hosts:
            problems.append(f"{r.source}: {rid}: spec.hosts: must not be empty")
    if problems:
        raise ConfigInvalid(problems)
