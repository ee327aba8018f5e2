"""reviews v1/v2/v3 (docs/BOOKINFO.md §3): two reviews, with stars from ratings when enabled.

Always answers 200: a failed ratings call (non-200, timeout, connection error, a
missing reviewer) turns into ``"rating": {"error": "Ratings service is currently
unavailable"}`` on the affected review, never into a reviews error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from meshchaos.apps import _common, facts
from meshchaos.apps._outbound import Outbound
from meshchaos.apps._routing import JSON, Request, Response, Routes, not_found

if TYPE_CHECKING:
    from aiohttp import web

RATINGS_UNAVAILABLE = "Ratings service is currently unavailable"
REVIEWS = (
    (
        "Reviewer1",
        "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!",
    ),
    (
        "Reviewer2",
        "Absolutely fun and entertaining. The play lacks thematic depth when compared "
        "to other plays by Shakespeare.",
    ),
)


# What aiohttp's Response(text=..., content_type="application/json") sent before.
_JSON_UTF8 = f"{JSON}; charset=utf-8"

# The ratings client timeout in seconds: 10 s for black stars, 2.5 s otherwise.
ratings_timeout = facts.reviews_ratings_timeout


class _Reviews:
    def __init__(self, env: Mapping[str, str], outbound: Outbound) -> None:
        self.outbound = outbound
        self.ratings_enabled = env.get("ENABLE_RATINGS", "false").lower() == "true"
        self.star_color = env.get("STAR_COLOR") or "black"
        self.timeout = ratings_timeout(self.star_color) * _common.timeout_scale(env)
        self.ratings_base = _common.service_base(env, "ratings")
        self.podname = env.get("HOSTNAME", "")
        self.clustername = env.get("CLUSTER_NAME") or "null"

    async def health(self, request: Request) -> Response:
        # The Java service answers with a space after the colon.
        return Response(200, b'{"status": "Reviews is healthy"}', _JSON_UTF8)

    async def _stars(self, request: Request, product_id: int) -> dict[str, int]:
        headers = _common.copy_headers(request, facts.REVIEWS.propagate)
        headers.setdefault("accept", "application/json")
        reply = await self.outbound.get(
            f"{self.ratings_base}/ratings/{product_id}", headers=headers, timeout=self.timeout
        )
        if not reply.ok:
            return {}
        try:
            ratings = reply.json()["ratings"]
            return {name: int(ratings[name]) for name, _ in REVIEWS if name in ratings}
        except (ValueError, KeyError, TypeError):
            return {}

    async def reviews(self, request: Request) -> Response:
        try:
            product_id = int(request.match_info["id"])
        except ValueError:
            # JAX-RS cannot bind a non-integer path parameter: no such resource.
            return not_found()
        stars = await self._stars(request, product_id) if self.ratings_enabled else {}
        reviews: list[dict[str, object]] = []
        for reviewer, text in REVIEWS:
            review: dict[str, object] = {"reviewer": reviewer, "text": text}
            if self.ratings_enabled:
                if reviewer in stars:
                    review["rating"] = {"stars": stars[reviewer], "color": self.star_color}
                else:
                    review["rating"] = {"error": RATINGS_UNAVAILABLE}
            reviews.append(review)
        body = {
            "id": str(product_id),
            "podname": self.podname,
            "clustername": self.clustername,
            "reviews": reviews,
        }
        return Response(200, json.dumps(body).encode(), _JSON_UTF8)


def make_routes(env: Mapping[str, str], outbound: Outbound) -> Routes:
    """The reviews app; ``ENABLE_RATINGS`` and ``STAR_COLOR`` pick v1, v2 or v3."""
    state = _Reviews(env, outbound)
    routes = Routes()
    routes.get("/health", state.health)
    routes.get("/reviews/{id}", state.reviews)
    return routes


def make_app(env: Mapping[str, str], outbound: Outbound) -> web.Application:
    """:func:`make_routes` as an ``aiohttp.web`` application."""
    return make_routes(env, outbound).to_aiohttp()
