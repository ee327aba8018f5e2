"""productpage v1 (docs/BOOKINFO.md §1): the page, the JSON API, login, metrics.

Backend calls keep Bookinfo's hard-coded client behaviour, which scenarios depend on:
details 3 s x 1 attempt, reviews 3 s x 2 attempts (the second right after a non-200
or a failure), ratings 3 s x 1, where "3 s" bounds connect and each read as
python-requests' ``timeout=3.0`` does. ``/productpage`` always answers 200.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from meshchaos.apps import _common, _pages, _session, facts
from meshchaos.apps._outbound import Outbound, Reply

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


def _b3_headers(request: web.Request) -> dict[str, str]:
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

    # -- backend calls ------------------------------------------------------
    def forward_headers(self, request: web.Request) -> dict[str, str]:
        """The headers sent to details, reviews and ratings for ``request``."""
        headers = _b3_headers(request)
        user = _session.decode(request.cookies.get(_session.COOKIE))
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
    async def index(self, request: web.Request) -> web.Response:
        tree = [
            ("productpage", "details, reviews"),
            ("details", ""),
            ("reviews", "ratings"),
            ("ratings", ""),
        ]
        return web.Response(text=_pages.landing(tree), content_type="text/html")

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(text="Product page is healthy")

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        user = form.get("username")
        response = _redirect(request)
        if isinstance(user, str) and user:
            response.set_cookie(_session.COOKIE, _session.encode(user), path="/", httponly=True)
        return response

    async def logout(self, request: web.Request) -> web.Response:
        response = _redirect(request)
        response.del_cookie(_session.COOKIE, path="/")
        return response

    async def page(self, request: web.Request) -> web.Response:
        product_id = 0  # hard-coded, as in Bookinfo
        headers = self.forward_headers(request)
        details_status, details = await self.details(product_id, headers)
        # Bookinfo's flood helper is async in name only: its calls run one after
        # another, each with the full 2-attempt reviews logic, and count in /metrics.
        for _ in range(self.flood_factor):
            await self.reviews(product_id, headers)
        reviews_status, reviews = await self.reviews(product_id, headers)
        html = _pages.product_page(
            user=_session.decode(request.cookies.get(_session.COOKIE)) or "",
            product=PRODUCTS[product_id],
            details_status=details_status,
            details=details if isinstance(details, dict) else {},
            reviews_status=reviews_status,
            reviews=reviews if isinstance(reviews, dict) else {},
        )
        return web.Response(text=html, content_type="text/html")

    async def api_products(self, request: web.Request) -> web.Response:
        return _common.json_response(PRODUCTS)

    async def api_details(self, request: web.Request) -> web.Response:
        status, body = await self.details(request.match_info["id"], self.forward_headers(request))
        return _common.json_response(body, status)

    async def api_reviews(self, request: web.Request) -> web.Response:
        status, body = await self.reviews(request.match_info["id"], self.forward_headers(request))
        return _common.json_response(body, status)

    async def api_ratings(self, request: web.Request) -> web.Response:
        status, body = await self.ratings(request.match_info["id"], self.forward_headers(request))
        return _common.json_response(body, status)

    async def metrics(self, request: web.Request) -> web.Response:
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
        return web.Response(
            text="\n".join(lines) + "\n", content_type="text/plain", charset="utf-8"
        )


def _redirect(request: web.Request) -> web.Response:
    # Flask redirects to the Referer; without one we go to the product page
    # (Bookinfo's behaviour there is unconfirmed, see docs/BOOKINFO.md).
    target = request.headers.get("Referer") or "/productpage"
    return web.Response(status=302, headers={"Location": target})


def make_app(env: Mapping[str, str], outbound: Outbound) -> web.Application:
    """The productpage app (reads the docs/BOOKINFO.md §1 env vars and ``FLOOD_FACTOR``)."""
    state = _ProductPage(env, outbound)
    app = _common.new_app()
    add = app.router.add_get
    add("/", state.index)
    add("/index.html", state.index)
    add("/health", state.health)
    app.router.add_post("/login", state.login)
    add("/logout", state.logout)
    add("/productpage", state.page)
    add("/api/v1/products", state.api_products)
    add("/api/v1/products/{id}", state.api_details)
    add("/api/v1/products/{id}/reviews", state.api_reviews)
    add("/api/v1/products/{id}/ratings", state.api_ratings)
    add("/metrics", state.metrics)
    app.router.add_static("/static", STATIC_DIR)
    return app
