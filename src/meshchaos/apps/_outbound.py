"""Outbound HTTP for the apps: a pool of keep-alive connections to the instance's own sidecar.

Every app reaches other services the way a pod in Kubernetes does, by name
(``http://reviews:9080/reviews/0``); here the request goes through the sidecar's
outbound listener used as an HTTP proxy, so the sidecar sees an absolute-form URI
and routes by host. The proxy URL is known only once the sidecar has started, so
it can be set after the app is built; until then every call fails as a
connection error would.

Why not aiohttp's client: per call it builds request, response, timer and stream
objects that cost more CPU than the rest of a Bookinfo hop (profiled with py-spy on
the local mesh). This client keeps what the apps' calls need and what aiohttp did
that a caller could see: keep-alive reuse, no pool limit (the sidecar, not the app,
is where circuit breaking must act), a timeout on connect and on each read, and one
retry of an idempotent request on a fresh connection when the connection failed
before a response head arrived (RFC 9112 §9.3.1, as aiohttp does).
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from meshchaos.apps._wire import BodyReader, WireError, parse_head

_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


@dataclass(frozen=True, slots=True)
class Reply:
    """What one outbound call turned into.

    ``status`` is None when no response arrived (timeout, refused, reset, no proxy);
    ``error`` then says why.
    """

    status: int | None
    body: bytes = b""
    error: str = ""

    @property
    def ok(self) -> bool:
        """True for a 200 answer, the only status Bookinfo's clients treat as success."""
        return self.status == 200

    def json(self) -> Any:
        """The body parsed as JSON (raises ``ValueError`` if it is not JSON)."""
        return json.loads(self.body)


class _Disconnected(ConnectionError):
    """The connection ended; ``before_head`` says whether any response head had arrived."""

    def __init__(self, message: str, *, before_head: bool) -> None:
        super().__init__(message)
        self.before_head = before_head


class _Conn(asyncio.Protocol):
    """One keep-alive connection to the sidecar; one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.status = 0
        self.body: BodyReader | None = None
        self.reusable = False
        self.closed = False
        self.timeout = 0.0
        self.last_read = 0.0
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are duck-typed, not asyncio.Transport subclasses.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, data: bytes, timeout: float) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None
        self.waiter = self.loop.create_future()
        self.buf.clear()
        self.status = 0
        self.body = None
        self.reusable = False
        self.timeout = timeout
        self.last_read = self.loop.time()
        self.timer = self.loop.call_at(self.last_read + timeout, self._check_timeout)
        self.transport.write(data)
        return self.waiter

    def _check_timeout(self) -> None:
        # The clock restarts on every chunk read (sock_read); re-arm for the rest.
        due = self.last_read + self.timeout
        if self.loop.time() < due:
            self.timer = self.loop.call_at(due, self._check_timeout)
            return
        self.timer = None
        self._fail(TimeoutError(f"no data from the sidecar for {self.timeout:g} s"))

    def data_received(self, data: bytes) -> None:
        self.last_read = self.loop.time()
        waiter = self.waiter
        if waiter is None or waiter.done():
            self._fail(ConnectionError("data from the sidecar with no request in flight"))
            return
        try:
            if self.body is None:
                self.buf += data
                head = parse_head(self.buf, response=True)
                if head is None:
                    return
                self.status = head.status
                self.body = BodyReader(head.framing, head.length)
                self.reusable = head.keep_alive
                data = bytes(self.buf[head.size :])
                self.buf.clear()
            done = self.body.feed(data)
        except WireError as exc:
            self._fail(exc)
            return
        if done is not None:
            self._finish(done)

    def eof_received(self) -> bool | None:
        body = self.body
        if body is not None and body.until_close:
            self.reusable = False
            self._finish(body.close())
        return None

    def _finish(self, body: bytes) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((self.status, body))
        if not self.reusable:
            self.close()

    def _fail(self, exc: BaseException) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        before_head = self.body is None
        why = f"{exc}" if exc else "the sidecar closed the connection"
        self._fail(_Disconnected(why, before_head=before_head))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _request_bytes(
    method: str, url: str, headers: Mapping[str, str] | None, body: bytes | None
) -> bytes:
    netloc = urlsplit(url).netloc
    lines = [f"{method} {url} HTTP/1.1", f"Host: {netloc}"]
    has_accept = False
    for name, value in (headers or {}).items():
        lower = name.lower()
        if lower in ("host", "content-length", "transfer-encoding", "connection"):
            continue
        has_accept = has_accept or lower == "accept"
        lines.append(f"{name}: {value}")
    if not has_accept:
        lines.append("Accept: */*")
    if body is not None or method not in _IDEMPOTENT:
        lines.append(f"Content-Length: {len(body or b'')}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if body else head


class Outbound:
    """An app instance's way out: HTTP/1.1 requests through its sidecar, as a proxy."""

    def __init__(self, proxy: str | None = None) -> None:
        self.proxy: str | None = proxy
        self._idle: list[_Conn] = []
        self._busy: set[_Conn] = set()

    async def _connect(self, timeout: float) -> _Conn:
        proxy = urlsplit(self.proxy or "")
        loop = asyncio.get_running_loop()
        _, conn = await asyncio.wait_for(
            loop.create_connection(
                lambda: _Conn(loop), proxy.hostname or "127.0.0.1", proxy.port or 80
            ),
            timeout,
        )
        return conn

    async def _once(self, data: bytes, timeout: float, *, fresh: bool) -> tuple[int, bytes]:
        conn = None
        while not fresh and self._idle:
            candidate = self._idle.pop()
            if not candidate.closed:
                conn = candidate
                break
        if conn is None:
            conn = await self._connect(timeout)
        self._busy.add(conn)
        try:
            result = await conn.send(data, timeout)
        except BaseException:
            conn.close()
            raise
        finally:
            self._busy.discard(conn)
        if not conn.closed:
            self._idle.append(conn)
        return result

    async def get(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float,
        method: str = "GET",
        body: bytes | None = None,
    ) -> Reply:
        """Send ``method url`` via the sidecar; ``timeout`` bounds connect and each read.

        That is python-requests' ``timeout=t`` (and a Java client's connect plus read
        timeout): the clock restarts on every chunk, there is no total deadline.
        Never raises for network trouble; the ``Reply`` says what happened.
        """
        if self.proxy is None:
            return Reply(None, error="connection refused: sidecar proxy not set yet")
        data = _request_bytes(method, url, headers, body)
        retry = method in _IDEMPOTENT
        fresh = False
        while True:
            try:
                status, payload = await self._once(data, timeout, fresh=fresh)
                return Reply(status, payload)
            except _Disconnected as exc:
                if not (retry and exc.before_head):
                    return Reply(None, error=f"ServerDisconnected: {exc}")
                retry, fresh = False, True
            except (TimeoutError, OSError, WireError, ValueError) as exc:
                return Reply(None, error=f"{type(exc).__name__}: {exc}")

    async def close(self) -> None:
        """Close every connection; calls in flight end as connection errors."""
        for conn in [*self._idle, *self._busy]:
            conn.close()
        self._idle.clear()
