"""An in-memory Mesh for the plugin's own tests (a fake at the boundary, nothing more).

Used by pytester runs only: it keeps resources in a dict and implements apply/delete
the way the protocol describes, so the ``policy`` fixture's rollback can be observed.
"""

from __future__ import annotations

from collections.abc import Sequence

from meshchaos.istio.model import Resource, resource_id
from meshchaos.mesh.base import Applied, MeshClient, ProxyStatus


class FakeMesh:
    backend = "fake"

    def __init__(self, baseline: Sequence[Resource] = ()) -> None:
        self.state: dict[str, Resource] = {resource_id(r): r for r in baseline}
        self.fail_delete = False
        self.closed = False
        self.log: list[str] = []

    def apply(self, resources: Sequence[Resource]) -> Applied:
        previous = {resource_id(r): self.state.get(resource_id(r)) for r in resources}
        for r in resources:
            self.state[resource_id(r)] = r
        self.log.append("apply " + ",".join(sorted(previous)))
        return Applied(tuple(resources), previous)

    def delete(self, applied: Applied) -> None:
        if self.fail_delete:
            raise RuntimeError("simulated delete failure")
        for key, old in applied.previous.items():
            if old is None:
                self.state.pop(key, None)
            else:
                self.state[key] = old
        self.log.append("delete " + ",".join(sorted(applied.previous)))

    def resources(self) -> list[Resource]:
        return list(self.state.values())

    def gateway_url(self) -> str:
        return "http://127.0.0.1:1"

    def client(self, workload: str = "client") -> MeshClient:
        return MeshClient(workload, "http://127.0.0.1:2")

    def proxy_stats(self, workload: str) -> dict[str, int]:
        return {}

    def status(self) -> list[ProxyStatus]:
        return []

    def kill(self, workload: str, instance: int = 0) -> None: ...

    def restart(self, workload: str, instance: int = 0) -> None: ...

    def scale(self, workload: str, replicas: int) -> None: ...

    def close(self) -> None:
        self.closed = True
