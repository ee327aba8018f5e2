"""Outbound HTTP for the apps: one keep-alive session to the instance's own sidecar.

Every app reaches other services the way a pod in Kubernetes does, by name
(``http://reviews:9080/reviews/0``); here the request goes through the sidecar's
outbound listener used as an HTTP proxy, so the sidecar sees an absolute-form URI
and routes by host. The proxy URL is known only once the sidecar has started, so
it can be set after the app is built; until then every call fails as a
connection error would.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp


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


class Outbound:
    """An app instance's way out: HTTP/1.1 GETs through its sidecar, as a proxy."""

    def __init__(self, proxy: str | None = None) -> None:
        self.proxy: str | None = proxy
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created lazily: a ClientSession must be made inside the running loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                # No pool limit: the sidecar, not the app, is where the mesh's
                # connection-pool policy (circuit breaking) must act.
                connector=aiohttp.TCPConnector(limit=0, force_close=False),
                # Cookies are per inbound request (forwarded explicitly), never shared.
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
            )
        return self._session

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
        proxy = self.proxy
        if proxy is None:
            return Reply(None, error="connection refused: sidecar proxy not set yet")
        client_timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        try:
            async with self._client().request(
                method,
                url,
                headers=dict(headers) if headers else None,
                data=body,
                proxy=proxy,
                timeout=client_timeout,
                allow_redirects=False,
            ) as resp:
                data = await resp.read()
                return Reply(resp.status, data)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            return Reply(None, error=f"{type(exc).__name__}: {exc}")

    async def close(self) -> None:
        """Close the session and its keep-alive connections."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
