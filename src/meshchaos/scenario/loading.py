"""Bounded load through a mesh: to its gateway, or from an in-mesh client's sidecar.

Every run is bounded by a request count AND a duration, and neither can exceed the hard
caps below, whatever a scenario asks for.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType

from meshchaos.load import LoadPlan, LoadResult, Trigger
from meshchaos.mesh.base import Mesh
from meshchaos.oracle.prediction import RequestClass

__all__ = ["MAX_DURATION", "MAX_REQUESTS", "LoadDriver"]

# Hard caps of one load run in a scenario: the suite's time budget depends on them.
MAX_REQUESTS = 20_000
MAX_DURATION = 60.0


class LoadDriver:
    """Load bound to one mesh (:meth:`Mesh.run_load`); every result is kept in
    ``results``, in order."""

    def __init__(self, mesh: Mesh) -> None:
        self.mesh = mesh
        self.results: list[LoadResult] = []

    def send(
        self,
        request: RequestClass,
        requests: int,
        *,
        duration: float = 30.0,
        timeout: float = 30.0,
        qps: float | None = None,
        triggers: Sequence[Trigger] = (),
    ) -> LoadResult:
        """``requests`` requests of ``request``'s class, ``request.concurrency`` at a time:
        to the gateway for ``source="gateway"``, else from that in-mesh workload's sidecar
        to ``host:port``. The backend classifies the responses by URL (Bookinfo pages,
        else status classes)."""
        if request.source == "gateway":
            url, source = request.path, None
        else:
            url, source = f"http://{request.host}:{request.port}{request.path}", request.source
        plan = LoadPlan(
            concurrency=request.concurrency,
            requests=min(requests, MAX_REQUESTS),
            duration=min(duration, MAX_DURATION),
            qps=qps,
            headers=MappingProxyType(dict(request.headers)),
            user=request.user,
            timeout=timeout,
            max_requests=MAX_REQUESTS,
            max_duration=MAX_DURATION,
            url=url,
        )
        result = self.mesh.run_load(plan, source=source, triggers=tuple(triggers))
        self.results.append(result)
        return result
