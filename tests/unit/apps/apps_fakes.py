"""Test doubles for the apps: a fake sidecar that plays the outbound HTTP proxy.

An app sends ``GET http://reviews:9080/reviews/0`` (absolute form) to its sidecar.
``FakeSidecar`` receives it, records it, and answers with the handler registered
for that service name; unknown services get 503 like an Envoy with no cluster.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import ModuleType

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from meshchaos.apps._outbound import Outbound

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    """One request the fake sidecar received."""

    service: str
    path: str
    headers: dict[str, str]
    time: float


@dataclass
class FakeSidecar:
    """Routes absolute-form requests by host name to per-service handlers."""

    routes: dict[str, Handler] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def calls(self, service: str) -> list[Seen]:
        return [s for s in self.seen if s.service == service]

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        service = request.host.split(":")[0]
        self.seen.append(Seen(service, request.path, dict(request.headers), time.monotonic()))
        handler = self.routes.get(service)
        if handler is None:
            return web.Response(status=503, text="no healthy upstream")
        return await handler(request)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app


def json_handler(body: object, status: int = 200, delay: float = 0.0) -> Handler:
    """A handler answering ``body`` as JSON after ``delay`` seconds."""
    import asyncio

    async def handle(request: web.Request) -> web.Response:
        if delay:
            await asyncio.sleep(delay)
        return web.json_response(body, status=status)

    return handle


@asynccontextmanager
async def running(
    module: ModuleType,
    env: Mapping[str, str] | None = None,
    routes: Mapping[str, Handler] | None = None,
    *,
    proxy: bool = True,
    **make_kwargs: object,
) -> AsyncIterator[tuple[TestClient[web.Request, web.Application], FakeSidecar]]:
    """Serve ``module``'s app on 127.0.0.1 with a fake sidecar as its proxy."""
    sidecar = FakeSidecar(dict(routes or {}))
    proxy_server = TestServer(sidecar.app(), host="127.0.0.1")
    await proxy_server.start_server()
    outbound = Outbound(str(proxy_server.make_url("")) if proxy else None)
    app = module.make_app(dict(env or {}), outbound, **make_kwargs)
    client: TestClient[web.Request, web.Application] = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield client, sidecar
    finally:
        await client.close()
        await outbound.close()
        await proxy_server.close()
