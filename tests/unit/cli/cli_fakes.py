"""A mesh the CLI verbs can attach to without Envoy: resources in a dict, canned stats."""

from __future__ import annotations

from collections.abc import Sequence

from meshchaos.errors import MeshError
from meshchaos.istio.model import Resource, resource_id
from meshchaos.mesh.base import Applied, ProxyStatus
from meshchaos.mesh.local.admin import AdminError


class AttachedFakeMesh:
    """What ``LocalMesh.attach`` returns, as far as the mesh verbs use it."""

    backend = "fake"

    def __init__(self) -> None:
        self.state: dict[str, Resource] = {}
        self.warnings: tuple[str, ...] = ()  # what the next apply reports it cannot honour
        self.version = 0
        self.stats = {"reviews-v2": {"http.outbound.fault.aborts_injected": 3, "other": 1}}
        self.dead = {"ratings-v1"}  # a workload whose proxies all died

    def apply(self, resources: Sequence[Resource]) -> Applied:
        previous: dict[str, Resource | None] = {}
        for r in resources:
            previous.setdefault(resource_id(r), self.state.get(resource_id(r)))
            self.state[resource_id(r)] = r
        self.version += 1
        return Applied(tuple(resources), previous, str(self.version), warnings=self.warnings)

    def delete(self, applied: Applied) -> None:
        for key, old in applied.previous.items():
            if old is None:
                self.state.pop(key, None)
            else:
                self.state[key] = old

    def resources(self) -> list[Resource]:
        return list(self.state.values())

    def proxy_stats(self, workload: str) -> dict[str, int]:
        if workload == "details-v1":
            raise AdminError("Envoy admin 127.0.0.1:1/stats?format=json: Connection refused")
        if workload not in self.stats:
            raise MeshError(f"no live proxy of workload {workload!r}")
        return dict(self.stats[workload])

    def status(self) -> list[ProxyStatus]:
        names = [*self.stats, *self.dead, "details-v1"]
        return [
            ProxyStatus(f"{w}-0", w, "1", w not in self.dead, w not in self.dead) for w in names
        ]
