"""Classifiers on hand-written snippets and on the real productpage output."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import web
from load_fakes import serving

from meshchaos.apps import _pages, productpage
from meshchaos.apps._outbound import Outbound, Reply
from meshchaos.load import LoadPlan, LoadTarget, classify_bookinfo, classify_status, drive
from meshchaos.outcomes import Bookinfo

PAGE = b"<html><title>Simple Bookstore App</title><body>%s</body></html>"
STAR = b'<span class="glyphicon glyphicon-star" style="color: %s"></span>'
EMPTY = b'<span class="glyphicon glyphicon-star-empty" style="color: %s"></span>'


def page(inner: bytes) -> bytes:
    return PAGE % inner


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(page(b"<h4>Book Reviews</h4>Reviewer1"), "reviews-v1", id="v1"),
        pytest.param(page(STAR % b"black" * 4 + EMPTY % b"black"), "reviews-v2-black", id="v2"),
        pytest.param(page(STAR % b"red" * 5), "reviews-v3-red", id="v3"),
        pytest.param(page(EMPTY % b"red" * 5), "reviews-v1", id="only-empty-stars"),
        pytest.param(page(STAR % b"blue"), "reviews-stars-blue", id="other-colour"),
        pytest.param(
            page(b"<p>Ratings service is currently unavailable</p>"),
            "ratings-unavailable",
            id="ratings-unavailable",
        ),
        pytest.param(
            page(b"<h4>Error fetching product reviews!</h4>"),
            "reviews-error",
            id="reviews-error-old-template",
        ),
        pytest.param(
            page(b"<h4>Error fetching product details</h4>" + STAR % b"red"),
            "details-error",
            id="details-error",
        ),
        pytest.param(
            page(b"Error fetching product details</h4>Error fetching product reviews"),
            "details-and-reviews-error",
            id="both",
        ),
        pytest.param(b"<html>hello</html>", "status:200", id="other-page"),
    ],
)
def test_bookinfo_snippets(body: bytes, expected: str) -> None:
    assert classify_bookinfo(200, body, {}) == expected


def test_non_200_is_a_status_class() -> None:
    assert classify_bookinfo(503, page(STAR % b"red"), {}) == "status:503"
    assert classify_status(418, b"", {}) == "status:418"


def _reviews(rating: dict[str, Any] | None) -> dict[str, Any]:
    items = []
    for name, stars in (("Reviewer1", 5), ("Reviewer2", 4)):
        item: dict[str, Any] = {"reviewer": name, "text": "fun"}
        if rating is not None:
            item["rating"] = {**rating, "stars": stars} if "color" in rating else rating
        items.append(item)
    return {"id": "0", "podname": "reviews-v2-1", "clustername": "null", "reviews": items}


REVIEWS = {
    "reviews-v1": (200, _reviews(None)),
    "reviews-v2-black": (200, _reviews({"color": "black"})),
    "reviews-v3-red": (200, _reviews({"color": "red"})),
    "ratings-unavailable": (200, _reviews({"error": "Ratings service is currently unavailable"})),
    "reviews-error": (503, {"error": "Sorry, product reviews are currently unavailable."}),
}
DETAILS_OK = (200, {"id": 0, "author": "William Shakespeare", "ISBN-10": "1234567890"})
DETAILS_ERROR = (500, {"error": "Sorry, product details are currently unavailable."})


def _render(details: tuple[int, Any], reviews: tuple[int, Any]) -> bytes:
    html = _pages.product_page(
        user="",
        product=productpage.PRODUCTS[0],
        details_status=details[0],
        details=details[1],
        reviews_status=reviews[0],
        reviews=reviews[1],
    )
    return html.encode()


@pytest.mark.parametrize("variant", sorted(REVIEWS))
def test_rendered_product_page(variant: str) -> None:
    assert classify_bookinfo(200, _render(DETAILS_OK, REVIEWS[variant]), {}) == variant


@pytest.mark.parametrize("variant", sorted(REVIEWS))
def test_rendered_product_page_with_details_error(variant: str) -> None:
    expected = "details-and-reviews-error" if variant == "reviews-error" else "details-error"
    assert classify_bookinfo(200, _render(DETAILS_ERROR, REVIEWS[variant]), {}) == expected


@pytest.mark.parametrize("variant", sorted(set(REVIEWS) - {"reviews-error"}))
def test_reviews_json(variant: str) -> None:
    for separators in ((",", ":"), (", ", ": ")):
        body = json.dumps(REVIEWS[variant][1], separators=separators).encode()
        assert classify_bookinfo(200, body, {}) == variant


class _FakeOutbound(Outbound):
    """productpage's way out, answering from canned replies instead of a sidecar."""

    def __init__(self, details: tuple[int, Any], reviews: tuple[int, Any]) -> None:
        super().__init__(proxy=None)
        self.replies = {"details": details, "reviews": reviews}

    async def get(self, url: str, **kwargs: Any) -> Reply:
        service = url.split("//", 1)[1].split(":", 1)[0]
        status, body = self.replies[service]
        return Reply(status, json.dumps(body).encode())


@pytest.mark.parametrize("variant", sorted(REVIEWS))
def test_load_against_the_real_productpage_app(variant: str) -> None:
    # The real app, served on loopback, driven by the generator end to end.
    async def go() -> dict[str, int]:
        app: web.Application = productpage.make_app({}, _FakeOutbound(DETAILS_OK, REVIEWS[variant]))
        async with serving(app) as base:
            result = await drive(
                LoadTarget(base + "/productpage"),
                LoadPlan(concurrency=2, requests=6),
                classify_bookinfo,
            )
            api = await drive(
                LoadTarget(base + "/api/v1/products/0/reviews"),
                LoadPlan(concurrency=1, requests=2),
                classify_bookinfo,
            )
        return dict(result.counts() + api.counts())

    assert {variant} <= {b.value for b in Bookinfo}
    expected_api = "status:503" if variant == "reviews-error" else variant
    expected = {variant: 6}
    expected[expected_api] = expected.get(expected_api, 0) + 2
    assert asyncio.run(go()) == expected
