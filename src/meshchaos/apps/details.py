"""details v1 (docs/BOOKINFO.md §2): static book details as JSON.

The external-book-service mode of the v2 image (Google Books) is not emulated: the
local mesh has no internet, and no scenario depends on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from meshchaos.apps._outbound import Outbound
from meshchaos.apps._routing import Request, Response, Routes, json_response

if TYPE_CHECKING:
    from aiohttp import web


def book_details(product_id: int) -> dict[str, object]:
    """The details of a book, keys in the order the real service emits them."""
    return {
        "id": product_id,
        "author": "William Shakespeare",
        "year": 1595,
        "type": "paperback",
        "pages": 200,
        "publisher": "PublisherA",
        "language": "English",
        "ISBN-10": "1234567890",
        "ISBN-13": "123-1234567890",
    }


async def _health(request: Request) -> Response:
    return json_response({"status": "Details is healthy"})


async def _details(request: Request) -> Response:
    raw = request.match_info["id"]
    try:
        product_id = int(raw)
    except ValueError:
        return json_response({"error": "please provide numeric product id"}, 400)
    return json_response(book_details(product_id))


def make_routes(env: Mapping[str, str], outbound: Outbound) -> Routes:
    """The details app. ``outbound`` is unused (v1 calls nothing) but kept for a uniform API."""
    del env, outbound
    routes = Routes()
    routes.get("/health", _health)
    routes.get("/details/{id}", _details)
    return routes


def make_app(env: Mapping[str, str], outbound: Outbound) -> web.Application:
    """:func:`make_routes` as an ``aiohttp.web`` application."""
    return make_routes(env, outbound).to_aiohttp()
