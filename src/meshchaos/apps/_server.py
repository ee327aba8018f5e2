"""The app host's HTTP/1.1 server: an asyncio Protocol per connection, no web framework.

Why: behind a sidecar, aiohttp.web's per-request objects (request, multidicts, URL,
response, payload writer, middleware chain) were the largest share of the apps' CPU
per Bookinfo page that is not the kernel's socket work (py-spy on the local mesh).
This server does what a hop needs and aiohttp did: keep-alive (HTTP/1.1 default,
``Connection: close`` honoured, pipelined requests answered in order), TCP_NODELAY,
``Content-Length`` and chunked request bodies, a complete answer in one write with
``Content-Length`` (none for 1xx/204/304), ``Date``, and a handler that runs to its
end when the client goes away (aiohttp's default: no handler cancellation).

Every request is recorded as ``_common`` records them, before it is handled, so a
request that never completes is still seen as received.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from collections import deque
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, cast

from meshchaos.apps._routing import Headers, Request, Response, Routes, text
from meshchaos.apps._wire import BodyReader, WireError, parse_head

RECORDS_MAX = 10_000
_RECORDED_HEADERS = ("host", "x-envoy-internal", "x-envoy-attempt-count",
                     "x-forwarded-for", "x-request-id", "end-user")  # fmt: skip
_SERVER = f"Python/{sys.version_info.major}.{sys.version_info.minor} meshchaos-apps"
_REASONS = {s.value: s.phrase for s in HTTPStatus}
_NO_BODY = frozenset({204, 304})


class _Clock:
    """The ``Date`` header value, formatted at most once a second."""

    def __init__(self) -> None:
        self.second = -1
        self.value = ""

    def date(self) -> str:
        now = int(time.time())
        if now != self.second:
            self.second, self.value = now, formatdate(now, usegmt=True)
        return self.value


_CLOCK = _Clock()


class LeanApp:
    """One served app instance: its routes, request records, connections and handlers."""

    def __init__(self, routes: Routes) -> None:
        self.routes = routes
        self.records: deque[dict[str, Any]] = deque(maxlen=RECORDS_MAX)
        self.connections: set[_Conn] = set()
        self.in_flight: set[asyncio.Task[None]] = set()

    def abort(self) -> None:
        """Reset every connection and cancel every handler, as a crashed pod would."""
        for conn in list(self.connections):
            conn.abort()
        for task in list(self.in_flight):
            task.cancel()


def encode_response(resp: Response, *, keep_alive: bool, head: bool) -> bytes:
    """The bytes of ``resp`` on the wire (no body for HEAD; its length still announced)."""
    status = resp.status
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
    if resp.content_type is not None:
        lines.append(f"Content-Type: {resp.content_type}")
    lines += [f"{k}: {v}" for k, v in resp.headers]
    if status >= 200 and status not in _NO_BODY:
        lines.append(f"Content-Length: {len(resp.body)}")
    lines.append(f"Date: {_CLOCK.date()}")
    lines.append(f"Server: {_SERVER}")
    if not keep_alive:
        lines.append("Connection: close")
    out = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if head or status < 200 or status in _NO_BODY:
        return out
    return out + resp.body


class _Conn(asyncio.Protocol):
    """One client connection; requests are handled one after another, in order."""

    def __init__(self, app: LeanApp) -> None:
        self.app = app
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.remote = ""
        self.buf = bytearray()
        self.busy = False  # a handler runs; further bytes wait in buf
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are duck-typed, not asyncio.Transport subclasses.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        self.remote = str(peer[0]) if peer else ""
        self.app.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.app.connections.discard(self)

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self._next()

    def _next(self) -> None:
        """Start the handler of the next complete request in ``buf``, if there is one."""
        if self.closed:
            return
        try:
            head = parse_head(self.buf, response=False)
            if head is None:
                return
            reader = BodyReader(head.framing, head.length)
            body = reader.feed(bytes(self.buf[head.size :]))
        except WireError as exc:
            self._reply_and_close(text(f"400: Bad Request ({exc})", 400))
            return
        if body is None:
            return  # the rest of the body is still on its way: parse again on more data
        self.buf = bytearray(reader.rest)
        request = Request(head.method, head.target, Headers(head.headers), body, self.remote)
        self.busy = True
        task = self.loop.create_task(self._handle(request, head.keep_alive))
        self.app.in_flight.add(task)
        task.add_done_callback(self.app.in_flight.discard)

    async def _handle(self, request: Request, keep_alive: bool) -> None:
        headers = request.headers
        record: dict[str, Any] = {
            "time": time.time(),
            "method": request.method,
            "path": request.path_qs,
            "headers": {h: headers[h] for h in _RECORDED_HEADERS if h in headers},
            "status": None,
        }
        self.app.records.append(record)
        try:
            resp = await self.app.routes.dispatch(request)
        except Exception:  # a handler bug answers 500, as aiohttp does; the record keeps None
            resp = text("500 Internal Server Error\n\nServer got itself in trouble", 500)
        else:
            record["status"] = resp.status
        if self.closed or self.transport is None:
            return
        self.transport.write(
            encode_response(resp, keep_alive=keep_alive, head=request.method == "HEAD")
        )
        if not keep_alive:
            self.transport.close()
            self.closed = True
            return
        self.busy = False
        if self.buf:
            self._next()

    def _reply_and_close(self, resp: Response) -> None:
        if self.transport is not None:
            self.transport.write(encode_response(resp, keep_alive=False, head=False))
            self.transport.close()
        self.closed = True


async def serve(routes: Routes) -> tuple[LeanApp, asyncio.Server, int]:
    """Serve ``routes`` on 127.0.0.1 at an ephemeral port: the app, its server and port."""
    app = LeanApp(routes)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Conn(app), "127.0.0.1", 0, backlog=1024)
    return app, server, int(server.sockets[0].getsockname()[1])
