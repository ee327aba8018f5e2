"""The apps' own request, response and router, served two ways.

Each app module builds a :class:`Routes` of plain ``async (Request) -> Response``
handlers. The app host serves it on the lean server of ``_server`` (no aiohttp
objects per request, the cost that dominated a Bookinfo hop in a py-spy profile);
:meth:`Routes.to_aiohttp` serves the very same handlers as an ``aiohttp.web``
application (what ``make_app`` returns, for tests and any caller that wants one).
Answers for unmatched paths and methods are aiohttp's: ``404: Not Found`` and
``405: Method Not Allowed`` with ``Allow``. A GET route also answers HEAD, as
aiohttp's ``add_get`` does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload
from urllib.parse import parse_qsl, unquote

if TYPE_CHECKING:
    from aiohttp import web

TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"
JSON = "application/json"
_PARAM = re.compile(r"\{(\w+)(?::([^{}]*))?\}")


class Headers:
    """Request headers: names case-insensitive, all values kept in arrival order."""

    __slots__ = ("_first", "items")

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self.items = items  # (lower-cased name, value)
        first: dict[str, str] = {}
        for name, value in items:
            first.setdefault(name, value)
        self._first = first

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...
    def get(self, name: str, default: str | None = None) -> str | None:
        return self._first.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._first

    def __getitem__(self, name: str) -> str:
        return self._first[name.lower()]


@dataclass(slots=True)
class Request:
    """One request as a handler sees it. ``path`` is percent-decoded; ``target`` is raw."""

    method: str
    target: str  # the raw origin-form target: path and query
    headers: Headers
    body: bytes = b""
    remote: str = ""
    match_info: dict[str, str] = field(default_factory=dict)

    @property
    def _origin_form(self) -> str:
        # An absolute-form target (a client talking to us as to a proxy) has its
        # path after the authority, as aiohttp reads it.
        target = self.target
        if target.startswith("/"):
            return target
        _, _, rest = target.partition("://")
        slash = rest.find("/")
        return rest[slash:] if slash >= 0 else "/"

    @property
    def path(self) -> str:
        return unquote(self._origin_form.partition("?")[0])

    @property
    def path_qs(self) -> str:
        """The decoded path and query, as aiohttp's ``path_qs`` gives them."""
        path, sep, query = self._origin_form.partition("?")
        return unquote(path) + (f"?{unquote(query)}" if sep else "")

    @property
    def host(self) -> str:
        return self.headers.get("host") or ""

    @property
    def query(self) -> list[tuple[str, str]]:
        return parse_qsl(self.target.partition("?")[2], keep_blank_values=True)

    @property
    def content_type(self) -> str:
        raw = self.headers.get("content-type") or "application/octet-stream"
        return raw.partition(";")[0].strip().lower()

    def cookie(self, name: str) -> str | None:
        """The value of cookie ``name`` (surrounding quotes dropped), or None."""
        for header in (v for n, v in self.headers.items if n == "cookie"):
            for part in header.split(";"):
                key, sep, value = part.strip().partition("=")
                if sep and key == name:
                    value = value.strip()
                    if len(value) >= 2 and value[0] == value[-1] == '"':
                        value = value[1:-1]
                    return value
        return None

    def form(self) -> dict[str, str]:
        """An ``application/x-www-form-urlencoded`` body (first value per name); else empty."""
        if self.content_type != "application/x-www-form-urlencoded":
            return {}
        out: dict[str, str] = {}
        for key, value in parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True):
            out.setdefault(key, value)
        return out


@dataclass(slots=True)
class Response:
    """A complete answer; ``content_type`` None sends no Content-Type (an empty answer)."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)


def text(body: str, status: int = 200, content_type: str = TEXT) -> Response:
    return Response(status, body.encode(), content_type)


def json_response(obj: object, status: int = 200) -> Response:
    """Compact JSON (key order as given, like the real services emit)."""
    return Response(status, json.dumps(obj, separators=(",", ":")).encode(), JSON)


def not_found() -> Response:
    return text("404: Not Found", 404)


Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class _Route:
    methods: frozenset[str] | None  # None: any method
    path: str  # aiohttp-style pattern, e.g. "/reviews/{id}" or "/ratings/{id:[^/]*}"
    regex: re.Pattern[str] | None  # None: the path is literal
    handler: Handler


def _compile(path: str) -> re.Pattern[str] | None:
    if "{" not in path:
        return None
    pattern, pos = "", 0
    for m in _PARAM.finditer(path):
        pattern += re.escape(path[pos : m.start()])
        pattern += f"(?P<{m.group(1)}>{m.group(2) or '[^{}/]+'})"
        pos = m.end()
    return re.compile(pattern + re.escape(path[pos:]) + r"\Z")


class Routes:
    """An app's routes, tried in the order added (aiohttp's order too)."""

    def __init__(self) -> None:
        self._routes: list[_Route] = []

    def add(self, method: str, path: str, handler: Handler) -> None:
        """Route ``method`` (``"*"``: any) on ``path``; GET also answers HEAD."""
        methods = None
        if method != "*":
            methods = frozenset({method, "HEAD"} if method == "GET" else {method})
        self._routes.append(_Route(methods, path, _compile(path), handler))

    def get(self, path: str, handler: Handler) -> None:
        self.add("GET", path, handler)

    async def dispatch(self, request: Request) -> Response:
        """The answer of the matching handler, or aiohttp's 404 / 405."""
        path = request.path
        allowed: set[str] = set()
        for route in self._routes:
            if route.regex is None:
                if route.path != path:
                    continue
            else:
                match = route.regex.match(path)
                if match is None:
                    continue
                request.match_info = match.groupdict()
            if route.methods is None or request.method in route.methods:
                return await route.handler(request)
            allowed |= route.methods
        if allowed:
            allow = ",".join(sorted(allowed))
            resp = text("405: Method Not Allowed", 405)
            resp.headers.append(("Allow", allow))
            return resp
        return not_found()

    def to_aiohttp(self) -> web.Application:
        """The same handlers as an ``aiohttp.web`` app that records its requests."""
        from aiohttp import web

        from meshchaos.apps import _common

        async def serve(request: web.Request) -> web.StreamResponse:
            body = await request.read() if request.can_read_body else b""
            items = [(k.lower(), v) for k, v in request.headers.items()]
            ours = Request(
                request.method, request.raw_path, Headers(items), body, request.remote or ""
            )
            answer = await self.dispatch(ours)
            headers: dict[str, Any] = {}
            resp = web.Response(status=answer.status, body=answer.body, headers=headers)
            if answer.content_type is not None:
                resp.headers["Content-Type"] = answer.content_type
            for name, value in answer.headers:
                resp.headers.add(name, value)
            return resp

        app = _common.new_app()
        app.router.add_route("*", "/{tail:.*}", serve)
        return app
