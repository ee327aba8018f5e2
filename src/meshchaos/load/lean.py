"""A lean HTTP/1.1 keep-alive client for the generator's hot path.

Why not aiohttp here: against a bare Envoy, aiohttp's per-request machinery
(request objects, header multidicts, timers, stream readers) capped the generator at
about a third of ``hey``'s rate on these 2-core machines, and a second process
only competed with Envoy for the cores. This client does the minimum a load
generator needs: one prebuilt request (bytes), one connection per worker, a
``Content-Length``/chunked/until-close body reader, a timer per request.

Plain ``http://`` only; the engine falls back to aiohttp for anything else.
Proxying is HTTP forward-proxy style, as Envoy sidecars and aiohttp do it:
connect to the proxy and send the absolute-form URI.
"""

from __future__ import annotations

import asyncio
from typing import cast
from urllib.parse import urlsplit

__all__ = ["LeanConnection", "ResponseError", "build_request"]


class ResponseError(ConnectionError):
    """The server closed the connection or sent something that is not HTTP/1.x."""


def build_request(
    method: str, url: str, headers: dict[str, str], *, absolute_form: bool
) -> tuple[bytes, str, int]:
    """The request bytes for ``url``, and the host and port to connect to (sans proxy)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or 80
    origin = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    target = url if absolute_form else origin
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}"]
    lower = {k.lower() for k in headers}
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() != "host"]
    if "host" in lower:
        lines[1] = f"Host: {next(v for k, v in headers.items() if k.lower() == 'host')}"
    if method not in ("GET", "HEAD", "DELETE", "OPTIONS") and "content-length" not in lower:
        lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), host, port


def _dechunk(buf: bytearray, pos: int) -> bytes | None:
    """The decoded chunked body starting at ``pos``, or None while incomplete."""
    out = bytearray()
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";", 1)[0], 16)
        if size == 0:
            # Trailers (rare) end with an empty line; without them "0\r\n\r\n".
            end = buf.find(b"\r\n\r\n", eol)
            return bytes(out) if end >= 0 else None
        start = eol + 2
        if len(buf) < start + size + 2:
            return None
        out += buf[start : start + size]
        pos = start + size + 2


class LeanConnection(asyncio.Protocol):
    """One keep-alive connection; :meth:`request` sends the prebuilt request once."""

    def __init__(self, loop: asyncio.AbstractEventLoop, head_only: bool = False) -> None:
        self.loop = loop
        self.head_only = head_only  # a HEAD response has no body whatever it says
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, dict[str, str], bytes]] | None = None
        self.head_end = -1
        self.status = 0
        self.headers: dict[str, str] = {}
        self.length = -1  # -1 unknown yet, -2 chunked, -3 until close
        self.keep_alive = True

    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only duck-typed.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        waiter = self.waiter
        self.transport = None
        if waiter is not None and not waiter.done():
            if self.head_end >= 0 and self.length == -3:
                waiter.set_result((self.status, self.headers, bytes(self.buf[self.head_end :])))
            else:
                waiter.set_exception(exc or ResponseError("server closed the connection"))

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if self.waiter is None or self.waiter.done():
            return  # nothing asked: stray bytes on an idle connection are dropped at reuse
        if self.head_end < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self._parse_head(bytes(buf[:end]))
            self.head_end = end + 4
            if self.waiter.done():
                return
        if self.length >= 0:
            if len(buf) >= self.head_end + self.length:
                body = bytes(buf[self.head_end : self.head_end + self.length])
                self.waiter.set_result((self.status, self.headers, body))
        elif self.length == -2:
            try:
                chunked = _dechunk(buf, self.head_end)
            except ValueError:
                self.waiter.set_exception(ResponseError("malformed chunked body"))
                return
            if chunked is not None:
                self.waiter.set_result((self.status, self.headers, chunked))

    def _parse_head(self, head: bytes) -> None:
        assert self.waiter is not None
        lines = head.split(b"\r\n")
        first = lines[0]
        if not first.startswith(b"HTTP/1.") or len(first) < 12:
            self.waiter.set_exception(ResponseError(f"not an HTTP/1.x response: {first[:40]!r}"))
            return
        self.status = int(first[9:12])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        self.headers = headers
        self.keep_alive = headers.get("connection", "").lower() != "close" and first[7:8] == b"1"
        if self.head_only or self.status in (204, 304) or 100 <= self.status < 200:
            self.length = 0
        elif "chunked" in headers.get("transfer-encoding", ""):
            self.length = -2
        elif "content-length" in headers:
            self.length = int(headers["content-length"])
        else:
            self.length = -3
            self.keep_alive = False

    def _expire(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(TimeoutError("request timed out"))
        if self.transport is not None:
            self.transport.abort()

    async def request(self, data: bytes, deadline: float) -> tuple[int, dict[str, str], bytes]:
        """Send ``data`` and return (status, lowercase headers, body) by ``deadline``.

        ``deadline`` is on the event loop's clock. Raises ``TimeoutError`` past it
        (and closes the connection), or ``ConnectionError`` when the server hangs up.
        """
        transport = self.transport
        if transport is None or transport.is_closing():
            raise ResponseError("connection is closed")
        self.buf.clear()
        self.head_end = -1
        self.length = -1
        self.keep_alive = True
        waiter = self.waiter = self.loop.create_future()
        timer = self.loop.call_at(deadline, self._expire)
        transport.write(data)
        try:
            result: tuple[int, dict[str, str], bytes] = await waiter
            return result
        finally:
            timer.cancel()
            self.waiter = None
            failed = not waiter.done() or waiter.cancelled() or waiter.exception() is not None
            if (failed or not self.keep_alive) and self.transport is not None:
                self.transport.abort() if failed else self.transport.close()
