"""Bounded load through a mesh: to its gateway, or from an in-mesh client's sidecar.

Every run is bounded by a request count AND a duration, and neither can exceed the hard
caps below, whatever a scenario asks for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from meshchaos.load import (
    Classifier,
    LoadPlan,
    LoadResult,
    LoadTarget,
    Trigger,
    classify_bookinfo,
    classify_status,
    run_load,
)
from meshchaos.mesh.base import Mesh
from meshchaos.oracle.prediction import RequestClass

__all__ = ["MAX_DURATION", "MAX_REQUESTS", "LoadDriver"]

# Hard caps of one load run in a scenario: the suite's time budget depends on them.
MAX_REQUESTS = 20_000
MAX_DURATION = 60.0


class LoadDriver:
    """Load bound to one mesh; every result is kept in ``results``, in order."""

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
        to the gateway for ``source="gateway"`` (classified as Bookinfo pages), else from
        that in-mesh workload's sidecar to ``host:port`` (classified by status)."""
        if request.source == "gateway":
            url = self.mesh.gateway_url().rstrip("/") + request.path
            target, classifier = LoadTarget(url), classify_bookinfo
        else:
            proxy = self.mesh.client(request.source).proxy_url
            url = f"http://{request.host}:{request.port}{request.path}"
            target, classifier = LoadTarget(url, proxy=proxy), classify_status
        return self._run(
            target,
            classifier,
            requests=requests,
            concurrency=request.concurrency,
            duration=duration,
            headers=request.headers,
            user=request.user,
            qps=qps,
            timeout=timeout,
            triggers=tuple(triggers),
        )

    def _run(
        self,
        target: LoadTarget,
        classifier: Classifier,
        *,
        requests: int,
        concurrency: int,
        duration: float,
        headers: Mapping[str, str],
        user: str | None,
        qps: float | None,
        timeout: float,
        triggers: tuple[Trigger, ...] = (),
    ) -> LoadResult:
        plan = LoadPlan(
            concurrency=concurrency,
            requests=min(requests, MAX_REQUESTS),
            duration=min(duration, MAX_DURATION),
            qps=qps,
            headers=MappingProxyType(dict(headers)),
            user=user,
            timeout=timeout,
            max_requests=MAX_REQUESTS,
            max_duration=MAX_DURATION,
            triggers=triggers,
        )
        result = run_load(target, plan, classifier)
        self.results.append(result)
        return result
