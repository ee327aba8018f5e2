"""productpage v1 (docs/BOOKINFO.md §1): the page, the JSON API, login, metrics.

Backend calls keep Bookinfo's hard-coded client behaviour, which scenarios depend on:
details 3 s x 1 attempt, reviews 3 s x 2 attempts (the second right after a non-200
or a failure), ratings 3 s x 1, where "3 s" bounds connect and each read as
python-requests' ``timeout=3.0`` does. ``/productpage`` always answers 200.
"""

from __future__ import annotations

import mimetypes
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshchaos.apps import _common, _pages, _session, facts
from meshchaos.apps._outbound import Outbound, Reply
from meshchaos.apps._routing import (
    HTML,
    TEXT,
    Request,
    Response,
    Routes,
    json_response,
    not_found,
    text,
)

if TYPE_CHECKING:
    from aiohttp import web

CLIENT_TIMEOUT_S = facts.PRODUCTPAGE_TIMEOUT_S
REVIEWS_ATTEMPTS = facts.PRODUCTPAGE_REVIEWS_ATTEMPTS
STATIC_DIR = Path(__file__).with_name("static")

PRODUCTS: list[dict[str, Any]] = [
    {
        "id": 0,
        "title": "The Comedy of Errors",
        "descriptionHtml": (
            '<a href="https://en.wikipedia.org/wiki/The_Comedy_of_Errors">Wikipedia Summary</a>: '
            "The Comedy of Errors is one of <b>William Shakespeare's</b> early plays. It is "
            "his shortest and one of his most farcical comedies, with a major part of the "
            "humour coming from slapstick and mistaken identity, in addition to puns and "
            "word play."
        ),
    }
]

SORRY = {
    "details": {"error": _pages.DETAILS_SORRY},
    "reviews": {"error": _pages.REVIEWS_SORRY},
    "ratings": {"error": "Sorry, product ratings are currently unavailable for this book."},
}

# Headers productpage copies verbatim: its propagated headers but B3, which it re-emits
# (see _b3_headers); end-user comes from the session (docs/BOOKINFO.md §1).
_COPIED = tuple(h for h in facts.PRODUCTPAGE.propagate if not h.startswith("x-b3-"))
_TRACE_ID = re.compile(r"^([0-9a-f]{32}|[0-9a-f]{16})$")
_SPAN_ID = re.compile(r"^[0-9a-f]{16}$")
_SAMPLED = frozenset({"1", "True", "true", "d"})
# What aiohttp's del_cookie(COOKIE, path="/") sent before.
_DELETED_COOKIE = f'{_session.COOKIE}=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/'


def _b3_headers(request: Request) -> dict[str, str]:
    # Bookinfo extracts B3 with OpenTelemetry's B3MultiFormat and injects it again:
    # same trace and span ids (trace id padded to 32 hex), x-b3-sampled 1/0, and
    # nothing at all when the inbound ids are missing or malformed.
    h = request.headers
    trace_id = h.get("x-b3-traceid", "")
    span_id = h.get("x-b3-spanid", "")
    if not _TRACE_ID.match(trace_id) or not _SPAN_ID.match(span_id):
        return {}
    if int(trace_id, 16) == 0 or int(span_id, 16) == 0:
        return {}
    sampled = h.get("x-b3-sampled") in _SAMPLED or h.get("x-b3-flags") == "1"
    return {
        "x-b3-traceid": trace_id.rjust(32, "0"),
        "x-b3-spanid": span_id,
        "x-b3-sampled": "1" if sampled else "0",
    }


class _ProductPage:
    def __init__(self, env: Mapping[str, str], outbound: Outbound) -> None:
        self.outbound = outbound
        self.timeout = CLIENT_TIMEOUT_S * _common.timeout_scale(env)
        self.flood_factor = int(env.get("FLOOD_FACTOR") or 0)
        self.base = {name: _common.service_base(env, name) for name in SORRY}
        self.results: Counter[tuple[str, int]] = Counter()
        self.static_files = _static_files()

    # -- backend calls ------------------------------------------------------
    def forward_headers(self, request: Request) -> dict[str, str]:
        """The headers sent to details, reviews and ratings for ``request``."""
        headers = _b3_headers(request)
        user = _session.decode(request.cookie(_session.COOKIE))
        if user:
            headers["end-user"] = user
        headers.update(_common.copy_headers(request, _COPIED))
        return headers

    async def _get(self, service: str, product_id: object, headers: dict[str, str]) -> Reply:
        url = f"{self.base[service]}/{service}/{product_id}"
        return await self.outbound.get(url, headers=headers, timeout=self.timeout)

    def _outcome(self, service: str, reply: Reply) -> tuple[int, Any]:
        # Only a 200 with a JSON body is success; otherwise the backend's status if
        # there was an answer, else 500 (timeout, connection error).
        if reply.ok:
            try:
                body = reply.json()
            except ValueError:
                pass
            else:
                self.results[(service, 200)] += 1
                return 200, body
        status = reply.status if reply.status and reply.status != 200 else 500
        self.results[(service, status)] += 1
        return status, SORRY[service]

    async def details(self, product_id: object, headers: dict[str, str]) -> tuple[int, Any]:
        return self._outcome("details", await self._get("details", product_id, headers))

    async def reviews(self, product_id: object, headers: dict[str, str]) -> tuple[int, Any]:
        reply = Reply(None)
        for _ in range(REVIEWS_ATTEMPTS):
            reply = await self._get("reviews", product_id, headers)
            if reply.ok:
                break
        return self._outcome("reviews", reply)

    async def ratings(self, product_id: object, headers: dict[str, str]) -> tuple[int, Any]:
        return self._outcome("ratings", await self._get("ratings", product_id, headers))

    # -- handlers -----------------------------------------------------------
    async def index(self, request: Request) -> Response:
        tree = [
            ("productpage", "details, reviews"),
            ("details", ""),
            ("reviews", "ratings"),
            ("ratings", ""),
        ]
        return text(_pages.landing(tree), content_type=HTML)

    async def health(self, request: Request) -> Response:
        return text("Product page is healthy")

    async def login(self, request: Request) -> Response:
        user = request.form().get("username")
        response = _redirect(request)
        if user:
            # What aiohttp's set_cookie(COOKIE, value, path="/", httponly=True) sent before.
            cookie = f"{_session.COOKIE}={_session.encode(user)}; HttpOnly; Path=/"
            response.headers.append(("Set-Cookie", cookie))
        return response

    async def logout(self, request: Request) -> Response:
        response = _redirect(request)
        response.headers.append(("Set-Cookie", _DELETED_COOKIE))
        return response

    async def page(self, request: Request) -> Response:
        product_id = 0  # hard-coded, as in Bookinfo
        headers = self.forward_headers(request)
        details_status, details = await self.details(product_id, headers)
        # Bookinfo's flood helper is async in name only: its calls run one after
        # another, each with the full 2-attempt reviews logic, and count in /metrics.
        for _ in range(self.flood_factor):
            await self.reviews(product_id, headers)
        reviews_status, reviews = await self.reviews(product_id, headers)
        html = _pages.product_page(
            user=_session.decode(request.cookie(_session.COOKIE)) or "",
            product=PRODUCTS[product_id],
            details_status=details_status,
            details=details if isinstance(details, dict) else {},
            reviews_status=reviews_status,
            reviews=reviews if isinstance(reviews, dict) else {},
        )
        return text(html, content_type=HTML)

    async def api_products(self, request: Request) -> Response:
        return json_response(PRODUCTS)

    async def api_details(self, request: Request) -> Response:
        status, body = await self.details(request.match_info["id"], self.forward_headers(request))
        return json_response(body, status)

    async def api_reviews(self, request: Request) -> Response:
        status, body = await self.reviews(request.match_info["id"], self.forward_headers(request))
        return json_response(body, status)

    async def api_ratings(self, request: Request) -> Response:
        status, body = await self.ratings(request.match_info["id"], self.forward_headers(request))
        return json_response(body, status)

    async def metrics(self, request: Request) -> Response:
        # prometheus_client's exposition of Counter('request_result', ...).
        lines = [
            "# HELP request_result_total Results of requests",
            "# TYPE request_result_total counter",
        ]
        for (app, code), count in sorted(self.results.items()):
            lines.append(
                f'request_result_total{{destination_app="{app}",response_code="{code}"}} '
                f"{float(count)}"
            )
        return text("\n".join(lines) + "\n", content_type=TEXT)

    async def static(self, request: Request) -> Response:
        # Only the files of STATIC_DIR itself, read once (they ship with the package).
        name = request.match_info["name"]
        if name not in self.static_files:
            return not_found()
        content_type, data = self.static_files[name]
        return Response(200, data, content_type)


def _static_files() -> dict[str, tuple[str, bytes]]:
    out: dict[str, tuple[str, bytes]] = {}
    for path in STATIC_DIR.iterdir():
        if path.is_file():
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            out[path.name] = (content_type, path.read_bytes())
    return out


def _redirect(request: Request) -> Response:
    # Flask redirects to the Referer; without one we go to the product page
    # (Bookinfo's behaviour there is unconfirmed, see docs/BOOKINFO.md).
    target = request.headers.get("Referer") or "/productpage"
    return Response(302, headers=[("Location", target)])


def make_routes(env: Mapping[str, str], outbound: Outbound) -> Routes:
    """The productpage app (reads the docs/BOOKINFO.md §1 env vars and ``FLOOD_FACTOR``)."""
    state = _ProductPage(env, outbound)
    routes = Routes()
    add = routes.get
    add("/", state.index)
    add("/index.html", state.index)
    add("/health", state.health)
    routes.add("POST", "/login", state.login)
    add("/logout", state.logout)
    add("/productpage", state.page)
    add("/api/v1/products", state.api_products)
    add("/api/v1/products/{id}", state.api_details)
    add("/api/v1/products/{id}/reviews", state.api_reviews)
    add("/api/v1/products/{id}/ratings", state.api_ratings)
    add("/metrics", state.metrics)
    add("/static/{name}", state.static)
    return routes


def make_app(env: Mapping[str, str], outbound: Outbound) -> web.Application:
    """:func:`make_routes` as an ``aiohttp.web`` application."""
    return make_routes(env, outbound).to_aiohttp()
