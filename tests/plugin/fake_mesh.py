"""An in-memory Mesh for the plugin's own tests (a fake at the boundary, nothing more).

Used by pytester runs only: it keeps resources in a dict and implements apply/delete
the way the protocol describes, so the ``policy`` fixture's rollback can be observed.
"""

from __future__ import annotations

from collections.abc import Sequence

from meshchaos.errors import StatNotEmitted
from meshchaos.istio.model import Resource, resource_id
from meshchaos.load import LoadPlan, LoadResult, Trigger
from meshchaos.mesh.base import Applied, CounterQuery, MeshClient, ProxyStatus, Startup


class FakeMesh:
    backend = "fake"
    startup: Startup | None = None

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

    def counters(self, queries: Sequence[CounterQuery]) -> dict[CounterQuery, int]:
        raise StatNotEmitted("the fake mesh emits no stats")

    def status(self) -> list[ProxyStatus]:
        return []

    def instances(self, workload: str) -> list[str]:
        return [f"{workload}-0"]

    def kill(self, instance: str) -> None: ...

    def restart(self, instance: str) -> None: ...

    def load_targets(self) -> tuple[str, ...]:
        return ("http://127.0.0.1:1",)

    def run_load(
        self,
        plan: LoadPlan,
        *,
        source: str | None = None,
        triggers: Sequence[Trigger] = (),
        progress: bool = False,
    ) -> LoadResult:
        return LoadResult(target=plan.url, samples=[], duration=0.0, concurrency=1)

    def scale(self, workload: str, replicas: int) -> None: ...

    def close(self) -> None:
        self.closed = True
