"""ratings (docs/BOOKINFO.md §4): stars per reviewer, plus Istio's misbehaving variants.

``SERVICE_VERSION`` selects the behaviour:

* ``v1`` (default): in-memory ratings; POST replaces a product's ratings.
* ``v-faulty``: each GET is, with probability 0.5, a 503 ``{"error":"Service unavailable"}``.
* ``v-delayed``: each GET is, with probability 0.5, answered after 7 s.
* ``v-unavailable``: available for 60 s, then 503 for 60 s, and so on.
* ``v-unhealthy``: every 15 min, /health (500) and availability (503) flip together.
* ``v2``: database-backed in Istio; there is no database here, so GETs answer as the
  MongoDB variant does when it cannot connect (500), and POST is 501.

Draws come from a ``random.Random`` seeded by ``MESHCHAOS_SEED`` when set, so runs
can be replayed; periods start when the app is built.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from meshchaos.apps import _common, facts
from meshchaos.apps._outbound import Outbound
from meshchaos.apps._routing import Request, Response, Routes, json_response

if TYPE_CHECKING:
    from aiohttp import web

DEFAULT_RATINGS: dict[str, object] = {"Reviewer1": 5, "Reviewer2": 4}
DELAY_S = facts.RATINGS_DELAY_S
UNAVAILABLE_PERIOD_S = 60.0
UNHEALTHY_PERIOD_S = 15 * 60.0

_LEADING_INT = re.compile(r"\s*[+-]?\d+")


def _parse_id(raw: str) -> int | None:
    # Node's parseInt: leading digits count ("12abc" -> 12); none at all is NaN.
    match = _LEADING_INT.match(raw)
    return int(match.group()) if match else None


class _Ratings:
    def __init__(
        self,
        env: Mapping[str, str],
        rng: random.Random,
        clock: Callable[[], float],
    ) -> None:
        self.version = env.get("SERVICE_VERSION", "v1")
        scale = _common.timeout_scale(env)
        self.delay = DELAY_S * scale
        self.period = (
            UNHEALTHY_PERIOD_S * scale
            if self.version == "v-unhealthy"
            else UNAVAILABLE_PERIOD_S * scale
        )
        self.rng = rng
        self.clock = clock
        self.started = clock()
        self.stored: dict[int, dict[str, object]] = {}

    def _flipped(self) -> bool:
        # Istio flips a flag with setInterval, starting available/healthy; the phase
        # count since start says the same without a timer task.
        if self.version not in ("v-unavailable", "v-unhealthy"):
            return False
        return int((self.clock() - self.started) / self.period) % 2 == 1

    def _ratings(self, product_id: int) -> dict[str, object]:
        return self.stored.get(product_id) or {"id": product_id, "ratings": DEFAULT_RATINGS}

    async def health(self, request: Request) -> Response:
        # Only v-unhealthy ties health to the flag; v-unavailable stays healthy.
        if self.version == "v-unhealthy" and self._flipped():
            return json_response({"status": "Ratings is not healthy"}, 500)
        return json_response({"status": "Ratings is healthy"})

    async def get(self, request: Request) -> Response:
        product_id = _parse_id(request.match_info["id"])
        if product_id is None:
            return json_response({"error": "please provide numeric product ID"}, 400)
        if self.version == "v2":
            return json_response({"error": "could not connect to ratings database"}, 500)
        if self.version == "v-faulty" and self.rng.random() <= facts.RATINGS_FAULTY_SHARE:
            return json_response({"error": "Service unavailable"}, facts.RATINGS_FAULTY_STATUS)
        if self.version == "v-delayed" and self.rng.random() <= facts.RATINGS_DELAYED_SHARE:
            await asyncio.sleep(self.delay)
        if self._flipped():
            return json_response({"error": "Service unavailable"}, 503)
        return json_response(self._ratings(product_id))

    async def post(self, request: Request) -> Response:
        product_id = _parse_id(request.match_info["id"])
        if product_id is None:
            return json_response({"error": "please provide numeric product ID"}, 400)
        try:
            ratings = json.loads(request.body)
        except ValueError:
            return json_response({"error": "please provide valid ratings JSON"}, 400)
        if self.version == "v2":
            return json_response({"error": "Post not implemented for database backed ratings"}, 501)
        self.stored[product_id] = {"id": product_id, "ratings": ratings}
        return json_response(self._ratings(product_id))


def make_routes(
    env: Mapping[str, str],
    outbound: Outbound,
    *,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Routes:
    """The ratings app. ``rng`` and ``clock`` are injectable for deterministic tests."""
    del outbound  # ratings calls nothing
    state = _Ratings(env, rng or _common.make_rng(env), clock)
    routes = Routes()
    routes.get("/health", state.health)
    routes.get("/ratings/{id:[^/]*}", state.get)
    routes.add("POST", "/ratings/{id:[^/]*}", state.post)
    return routes


def make_app(
    env: Mapping[str, str],
    outbound: Outbound,
    *,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> web.Application:
    """:func:`make_routes` as an ``aiohttp.web`` application."""
    return make_routes(env, outbound, rng=rng, clock=clock).to_aiohttp()
