"""What an apply or a delete changed, resource by resource, as ``kubectl`` reports it.

The backend does the work (:meth:`Mesh.apply`, :meth:`Mesh.delete`); these functions
say, for each document given, whether it was created, configured, left unchanged,
deleted or not found, so ``meshchaos apply`` and ``delete`` print what kubectl prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from meshchaos.istio.model import Resource, resource_id
from meshchaos.mesh.base import Applied, Mesh

__all__ = ["Change", "Deleted", "applied_changes", "delete_resources"]


@dataclass(frozen=True)
class Change:
    """One document of an apply: ``action`` is created, configured or unchanged."""

    resource: Resource
    action: str


@dataclass(frozen=True)
class Deleted:
    """The outcome of deleting some resources: what went, and what was not in force."""

    deleted: tuple[Resource, ...]
    missing: tuple[Resource, ...]


def applied_changes(applied: Applied) -> list[Change]:
    """Document by document, as kubectl: a resource in force before the apply, or seen
    earlier in the same apply, is "configured" ("unchanged" if identical)."""
    seen: dict[str, object] = {
        rid: prev.raw for rid, prev in applied.previous.items() if prev is not None
    }
    changes = []
    for r in applied.resources:
        rid = resource_id(r)
        if rid not in seen:
            action = "created"
        elif seen[rid] == r.raw:
            action = "unchanged"
        else:
            action = "configured"
        seen[rid] = r.raw
        changes.append(Change(r, action))
    return changes


def delete_resources(mesh: Mesh, resources: Sequence[Resource]) -> Deleted:
    """Delete those of ``resources`` that are in force and wait for the proxies.

    Like kubectl, a resource named twice is deleted once and then missing.
    """
    present = {resource_id(r) for r in mesh.resources()}
    found: list[Resource] = []
    missing: list[Resource] = []
    for r in resources:
        rid = resource_id(r)
        (found if rid in present else missing).append(r)
        present.discard(rid)
    if found:
        mesh.delete(Applied(tuple(found), {resource_id(r): None for r in found}))
    return Deleted(tuple(found), tuple(missing))
