"""A mesh the CLI verbs can attach to without Envoy: resources in a dict, canned stats."""

from __future__ import annotations

from collections.abc import Sequence

from meshchaos.errors import MeshError, UnknownWorkload
from meshchaos.istio.model import Resource, resource_id
from meshchaos.load import LoadPlan, LoadResult, Trigger
from meshchaos.mesh.base import Applied, ProxyStatus
from meshchaos.mesh.handle import MeshHandle


class AttachedFakeMesh:
    """What ``registry.attach`` returns, as far as the mesh verbs use it."""

    backend = "fake"

    def __init__(self) -> None:
        self.state: dict[str, Resource] = {}
        self.warnings: tuple[str, ...] = ()  # what the next apply reports it cannot honour
        self.version = 0
        self.stats = {
            "reviews-v2": {"http.outbound.fault.aborts_injected": 3, "other": 1},
            "silent-v1": {},  # a proxy that answers with no stats at all
        }
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
        if workload == "details-v1":  # the backend names the proxy that does not answer
            raise MeshError(
                "cannot read the stats of details-v1-0: Envoy admin 127.0.0.1:1/stats: "
                "Connection refused; see `meshchaos status` for the proxies that are down"
            )
        if workload in self.dead:
            raise MeshError(f"no live proxy of workload {workload!r}")
        if workload not in self.stats:
            known = [*self.stats, *self.dead, "details-v1"]
            raise UnknownWorkload(workload, known, where="in the running mesh")
        return dict(self.stats[workload])

    def status(self) -> list[ProxyStatus]:
        names = [*self.stats, *self.dead, "details-v1"]
        return [
            ProxyStatus(f"{w}-0", w, "1", w not in self.dead, w not in self.dead) for w in names
        ]


class LoadingFakeMesh:
    """A mesh whose ``run_load`` notes what it was asked and answers with no samples."""

    backend = "fake"
    asked: list[tuple[str, str | None]] = []  # (plan.url, source), over every instance

    def run_load(
        self,
        plan: LoadPlan,
        *,
        source: str | None = None,
        triggers: Sequence[Trigger] = (),
        progress: bool = False,
    ) -> LoadResult:
        if source not in (None, "client"):
            raise UnknownWorkload(source, ["client"], "in-mesh client", "in the running mesh")
        self.asked.append((plan.url, source))
        return LoadResult(target=plan.url, samples=[], duration=0.0, concurrency=1)


class FakeLoadBackend:
    """The registry entry of :class:`LoadingFakeMesh` (``BACKENDS["fake"]`` in a test)."""

    name = "fake"

    def attach(self, handle: MeshHandle) -> LoadingFakeMesh:
        return LoadingFakeMesh()
