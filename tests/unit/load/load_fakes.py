"""Test doubles for the load generator: a small aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Backend:
    """Routes used by the engine tests; remembers what it saw."""

    hits: int = 0
    stall_once: float = 0.0  # the first /stall request sleeps this long
    stalled: bool = False
    seen_hosts: list[str] = field(default_factory=list)
    seen_paths: list[str] = field(default_factory=list)
    seen_cookies: list[str] = field(default_factory=list)

    async def ok(self, request: web.Request) -> web.Response:
        self.hits += 1
        return web.Response(text="ok")

    async def status(self, request: web.Request) -> web.Response:
        self.hits += 1
        return web.Response(status=int(request.match_info["code"]), text="status")

    async def stall(self, request: web.Request) -> web.Response:
        self.hits += 1
        if not self.stalled and self.stall_once:
            self.stalled = True
            await asyncio.sleep(self.stall_once)
        return web.Response(text="ok")

    async def sleep(self, request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.match_info["s"]))
        return web.Response(text="slept")

    async def overloaded(self, request: web.Request) -> web.Response:
        return web.Response(status=503, text="overflow", headers={"x-envoy-overloaded": "true"})

    async def chunked(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for part in (b"hello ", b"chunked ", b"world"):
            await resp.write(part)
        await resp.write_eof()
        return resp

    async def close(self, request: web.Request) -> web.Response:
        self.hits += 1
        return web.Response(text="bye", headers={"Connection": "close"})

    async def cookie(self, request: web.Request) -> web.Response:
        self.seen_cookies.append(request.headers.get("Cookie", ""))
        return web.Response(text="cookie")

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        resp = web.Response(status=302, headers={"Location": "/productpage"})
        resp.set_cookie("session", f"user-{form.get('username')}")
        return resp

    async def proxy(self, request: web.Request) -> web.Response:
        # A forward proxy sees the absolute-form URI: host and path of the target.
        self.seen_hosts.append(request.headers.get("Host", ""))
        self.seen_paths.append(request.raw_path)
        return web.Response(text=f"proxied {request.host}{request.path}")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ok", self.ok)
        app.router.add_get("/status/{code}", self.status)
        app.router.add_get("/stall", self.stall)
        app.router.add_get("/sleep/{s}", self.sleep)
        app.router.add_get("/overloaded", self.overloaded)
        app.router.add_get("/chunked", self.chunked)
        app.router.add_get("/close", self.close)
        app.router.add_get("/cookie", self.cookie)
        app.router.add_post("/login", self.login)
        return app

    def proxy_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.proxy)
        return app


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port); yield its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
