"""httpbin: the subset of go-httpbin (``mccutchen/go-httpbin``) the scenarios use.

Answers are shaped like go-httpbin's, so a scenario reads the same JSON on the
local and the kube backends: header names in Go's canonical form, each mapped to a
list of values. Endpoints: ``/``, ``/get``, ``/headers``, ``/ip``, ``/anything[/...]``,
``/status/{codes}``, ``/delay/{duration}``.

* ``/status/200,503`` picks uniformly; ``/status/200:0.9,503:0.1`` picks by weight.
* ``/delay/{d}`` accepts seconds (``1.5``) or a Go duration (``500ms``, ``2s``);
  like go-httpbin, more than 10 s is a 400, not a cap.
* Env ``HTTPBIN_FAIL_ALL=<code>`` answers every request with that status and an
  empty body: the bad instance of outlier-detection scenarios.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from meshchaos.apps import _common
from meshchaos.apps._outbound import Outbound
from meshchaos.apps._routing import HTML, Request, Response, Routes, json_response

if TYPE_CHECKING:
    from aiohttp import web

MAX_DELAY_S = 10.0
_INDEX = (
    b"<!DOCTYPE html>\n<html><head><title>httpbin</title></head><body>\n"
    b"<h1>httpbin (meshchaos)</h1>\n<p>A go-httpbin compatible subset: "
    b"/get /headers /ip /anything /status/{codes} /delay/{seconds}</p>\n"
    b"</body></html>\n"
)
_DURATION = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)(ms|s)?$")
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def canonical_header(name: str) -> str:
    """Go's ``CanonicalMIMEHeaderKey``: ``x-envoy-internal`` -> ``X-Envoy-Internal``."""
    if not _TOKEN.match(name):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def parse_status_choices(spec: str) -> list[tuple[int, float]]:
    """``"200:0.5,503:0.5"`` or ``"200,503"`` -> ``[(code, weight), ...]``.

    Raises ``ValueError`` for a code outside 100-599 or a bad weight.
    """
    choices: list[tuple[int, float]] = []
    for item in spec.split(","):
        code_text, sep, weight_text = item.partition(":")
        code = int(code_text)
        weight = float(weight_text) if sep else 1.0
        if not 100 <= code <= 599 or weight < 0:
            raise ValueError(item)
        choices.append((code, weight))
    if not choices or sum(w for _, w in choices) <= 0:
        raise ValueError(spec)
    return choices


def parse_delay(text: str) -> float:
    """Seconds from ``"1.5"``, ``"1500ms"`` or ``"2s"``; ``ValueError`` if malformed."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(text)
    value = float(match.group(1))
    return value / 1000.0 if match.group(2) == "ms" else value


def _headers(request: Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in request.headers.items:
        out.setdefault(canonical_header(name), []).append(value)
    out["Host"] = [request.host]
    return out


def _origin(request: Request) -> str:
    forwarded = request.headers.get("X-Forwarded-For")
    if forwarded:
        return forwarded.split(",")[0].strip()
    return request.remote or ""


def _args(request: Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in request.query:
        out.setdefault(key, []).append(value)
    return out


def _echo(request: Request) -> dict[str, object]:
    scheme = request.headers.get("X-Forwarded-Proto") or "http"
    return {
        "args": _args(request),
        "headers": _headers(request),
        "method": request.method,
        "origin": _origin(request),
        "url": f"{scheme}://{request.host}{request.path_qs}",
    }


class _Httpbin:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    async def index(self, request: Request) -> Response:
        return Response(200, _INDEX, HTML)

    async def get(self, request: Request) -> Response:
        return json_response(_echo(request))

    async def headers(self, request: Request) -> Response:
        return json_response({"headers": _headers(request)})

    async def ip(self, request: Request) -> Response:
        return json_response({"origin": _origin(request)})

    async def anything(self, request: Request) -> Response:
        body = _echo(request)
        data = request.body
        text = data.decode("utf-8", errors="replace")
        json_body: object = None
        if data and request.content_type == "application/json":
            try:
                json_body = json.loads(data)
            except ValueError:
                json_body = None
        form: dict[str, list[str]] = {}
        if request.content_type == "application/x-www-form-urlencoded":
            for key, value in parse_qsl(text, keep_blank_values=True):
                form.setdefault(key, []).append(value)
        body.update({"data": text, "files": {}, "form": form, "json": json_body})
        return json_response(body)

    async def status(self, request: Request) -> Response:
        try:
            choices = parse_status_choices(request.match_info["codes"])
        except ValueError:
            return json_response(
                {"status_code": 400, "error": "Bad Request", "detail": "invalid status code"},
                400,
            )
        if len(choices) == 1:
            code = choices[0][0]
        else:
            codes, weights = zip(*choices, strict=True)
            code = self.rng.choices(codes, weights=weights)[0]
        response = Response(code)
        if 300 <= code < 400 and code not in (304, 305):
            response.headers.append(("Location", "/redirect/1"))
        return response

    async def delay(self, request: Request) -> Response:
        try:
            seconds = parse_delay(request.match_info["delay"])
        except ValueError:
            return json_response(
                {"status_code": 400, "error": "Bad Request", "detail": "invalid duration"}, 400
            )
        if seconds > MAX_DELAY_S:
            return json_response(
                {"status_code": 400, "error": "Bad Request", "detail": "duration too long"}, 400
            )
        await asyncio.sleep(seconds)
        return json_response(_echo(request))


def _fail_all(code: int) -> Routes:
    async def fail(request: Request) -> Response:
        return Response(code)

    routes = Routes()
    routes.add("*", "/{tail:.*}", fail)
    return routes


def make_routes(
    env: Mapping[str, str], outbound: Outbound, *, rng: random.Random | None = None
) -> Routes:
    """The httpbin app; ``rng`` (default: seeded from ``MESHCHAOS_SEED``) drives /status."""
    del outbound  # httpbin calls nothing
    fail_all = env.get("HTTPBIN_FAIL_ALL")
    if fail_all:
        return _fail_all(int(fail_all))
    state = _Httpbin(rng or _common.make_rng(env))
    routes = Routes()
    add = routes.get
    add("/", state.index)
    add("/get", state.get)
    add("/headers", state.headers)
    add("/ip", state.ip)
    # go-httpbin answers /status for every method.
    routes.add("*", "/status/{codes}", state.status)
    add("/delay/{delay}", state.delay)
    routes.add("*", "/anything", state.anything)
    routes.add("*", "/anything/{tail:.*}", state.anything)
    return routes


def make_app(
    env: Mapping[str, str], outbound: Outbound, *, rng: random.Random | None = None
) -> web.Application:
    """:func:`make_routes` as an ``aiohttp.web`` application."""
    return make_routes(env, outbound, rng=rng).to_aiohttp()
