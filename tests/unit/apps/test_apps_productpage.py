"""productpage: page markers, the 2-attempt reviews call, API status rules, login, headers."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiohttp import web
from apps_fakes import Handler, json_handler, running

from meshchaos.apps import _session, productpage, reviews
from meshchaos.apps._outbound import Outbound

DETAILS = {"id": 0, "author": "William Shakespeare", "year": 1595, "type": "paperback",
           "pages": 200, "publisher": "PublisherA", "language": "English",
           "ISBN-10": "1234567890", "ISBN-13": "123-1234567890"}  # fmt: skip
FAST = {"MESHCHAOS_TIMEOUT_SCALE": "0.01"}  # 3 s -> 30 ms


def reviews_body(rating: dict[str, Any] | None = None, clustername: str = "null") -> dict[str, Any]:
    items = []
    for name, text in reviews.REVIEWS:
        item: dict[str, Any] = {"reviewer": name, "text": text}
        if rating is not None:
            item["rating"] = rating
        items.append(item)
    return {"id": "0", "podname": "reviews-v9-abc", "clustername": clustername, "reviews": items}


def page(routes: dict[str, Handler], env: dict[str, str] | None = None, **req: Any) -> str:
    async def go() -> str:
        async with running(productpage, env, routes) as (client, _):
            resp = await client.get("/productpage", **req)
            assert resp.status == 200
            return await resp.text()

    return asyncio.run(go())


def filled(html: str, color: str) -> int:
    return html.count(f'<span class="glyphicon glyphicon-star" style="color: {color}">')


def empty(html: str, color: str) -> int:
    return html.count(f'<span class="glyphicon glyphicon-star-empty" style="color: {color}">')


def test_v1_reviews_no_stars() -> None:
    html = page({"details": json_handler(DETAILS), "reviews": json_handler(reviews_body())})
    assert "<title>Simple Bookstore App</title>" in html
    assert "The Comedy of Errors" in html
    assert "Book Details" in html
    assert "PublisherA" in html
    assert "1234567890" in html
    assert "Reviews served by:" in html
    assert "reviews-v9-abc" in html
    assert " on cluster " not in html
    assert "glyphicon" not in html
    assert "Ratings service is currently unavailable" not in html
    assert "Error fetching" not in html
    assert "Sign in" in html
    assert "Sign out" not in html


@pytest.mark.parametrize(
    ("stars", "color"),
    [
        pytest.param(4, "black", id="v2-black"),
        pytest.param(5, "red", id="v3-red"),
    ],
)
def test_stars_counted_and_coloured(stars: int, color: str) -> None:
    body = reviews_body({"stars": stars, "color": color}, clustername="kind-east")
    html = page({"details": json_handler(DETAILS), "reviews": json_handler(body)})
    assert filled(html, color) == 2 * stars
    assert empty(html, color) == 2 * (5 - stars)
    assert "reviews-v9-abc on cluster kind-east" in html


def test_ratings_unavailable_text() -> None:
    body = reviews_body({"error": "Ratings service is currently unavailable"})
    html = page({"details": json_handler(DETAILS), "reviews": json_handler(body)})
    assert html.count("Ratings service is currently unavailable") == 2
    assert "glyphicon" not in html


def test_reviews_error_after_two_timed_out_attempts() -> None:
    async def go() -> tuple[str, int, float]:
        routes = {"details": json_handler(DETAILS), "reviews": json_handler({}, delay=1.0)}
        env = {"MESHCHAOS_TIMEOUT_SCALE": "0.05"}  # 3 s -> 150 ms
        async with running(productpage, env, routes) as (client, sidecar):
            t0 = time.monotonic()
            resp = await client.get("/productpage")
            elapsed = time.monotonic() - t0
            assert resp.status == 200
            return await resp.text(), len(sidecar.calls("reviews")), elapsed

    html, attempts, elapsed = asyncio.run(go())
    assert attempts == 2
    assert 2 * 0.15 * 0.9 <= elapsed < 0.9  # two 150 ms client timeouts, back to back
    assert "Error fetching product reviews" in html
    assert "Sorry, product reviews are currently unavailable for this book." in html
    assert "Book Details" in html


def test_reviews_second_attempt_rescues_first_failure() -> None:
    answers = [web.json_response({}, status=503), web.json_response(reviews_body())]

    async def flaky(request: web.Request) -> web.Response:
        return answers.pop(0)

    async def go() -> tuple[str, int]:
        routes = {"details": json_handler(DETAILS), "reviews": flaky}
        async with running(productpage, {}, routes) as (client, sidecar):
            resp = await client.get("/productpage")
            return await resp.text(), len(sidecar.calls("reviews"))

    html, attempts = asyncio.run(go())
    assert attempts == 2
    assert "Reviews served by:" in html
    assert "Error fetching" not in html


def test_details_error_block_reviews_unaffected() -> None:
    html = page({"details": json_handler({}, 555), "reviews": json_handler(reviews_body())})
    assert "Error fetching product details" in html
    assert "Sorry, product details are currently unavailable for this book." in html
    assert "Reviews served by:" in html


def test_no_proxy_yet_is_a_connection_error() -> None:
    async def go() -> tuple[int, Any, str]:
        async with running(productpage, {}, proxy=False) as (client, _):
            api = await client.get("/api/v1/products/0")
            html = await (await client.get("/productpage")).text()
            return api.status, await api.json(), html

    status, body, html = asyncio.run(go())
    assert status == 500
    assert body == {"error": "Sorry, product details are currently unavailable for this book."}
    assert "Error fetching product details" in html
    assert "Error fetching product reviews" in html


def api(
    path: str, routes: dict[str, Handler], env: dict[str, str] | None = None
) -> tuple[int, Any]:
    async def go() -> tuple[int, Any]:
        async with running(productpage, env, routes) as (client, _):
            resp = await client.get(path)
            return resp.status, await resp.json()

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("path", "routes", "status", "body"),
    [
        pytest.param("/api/v1/products/0", {"details": json_handler(DETAILS)}, 200, DETAILS,
                     id="details-200"),
        pytest.param("/api/v1/products/0", {"details": json_handler({}, 555)}, 555,
                     {"error": "Sorry, product details are currently unavailable for this book."},
                     id="details-555"),
        pytest.param("/api/v1/products/0/reviews", {"reviews": json_handler({}, 503)}, 503,
                     {"error": "Sorry, product reviews are currently unavailable for this book."},
                     id="reviews-503"),
        pytest.param("/api/v1/products/0/reviews", {"reviews": json_handler({}, delay=0.5)}, 500,
                     {"error": "Sorry, product reviews are currently unavailable for this book."},
                     id="reviews-timeout-500"),
        pytest.param("/api/v1/products/0/ratings", {"ratings": json_handler({"id": 0}, 200)}, 200,
                     {"id": 0}, id="ratings-200"),
        pytest.param("/api/v1/products/0/ratings", {"ratings": json_handler({}, 404)}, 404,
                     {"error": "Sorry, product ratings are currently unavailable for this book."},
                     id="ratings-404"),
    ],
)  # fmt: skip
def test_api_status_rules(path: str, routes: dict[str, Handler], status: int, body: Any) -> None:
    assert api(path, routes, FAST) == (status, body)


def test_api_reviews_status_is_last_attempts() -> None:
    answers = [400, 504]

    async def handler(request: web.Request) -> web.Response:
        return web.json_response({}, status=answers.pop(0))

    assert api("/api/v1/products/0/reviews", {"reviews": handler})[0] == 504


def test_api_products_list() -> None:
    status, body = api("/api/v1/products", {})
    assert status == 200
    assert body[0]["id"] == 0
    assert body[0]["title"] == "The Comedy of Errors"
    assert "Wikipedia Summary" in body[0]["descriptionHtml"]


def test_login_session_end_user_and_logout() -> None:
    async def go() -> None:
        routes = {"details": json_handler(DETAILS), "reviews": json_handler(reviews_body())}
        async with running(productpage, {}, routes) as (client, sidecar):
            resp = await client.post(
                "/login",
                data={"username": "jason", "passwd": "x"},
                headers={"Referer": "http://gw/productpage"},
                allow_redirects=False,
            )
            assert resp.status == 302
            assert resp.headers["Location"] == "http://gw/productpage"
            cookie = resp.cookies[_session.COOKIE].value
            assert _session.decode(cookie) == "jason"

            html = await (await client.get("/productpage")).text()
            assert "jason" in html
            assert "Sign out" in html
            for call in sidecar.seen:
                assert call.headers.get("end-user") == "jason"
                assert f"session={cookie}" in call.headers.get("Cookie", "")

            sidecar.seen.clear()
            resp = await client.get("/logout", allow_redirects=False)
            assert resp.status == 302
            assert resp.headers["Location"] == "/productpage"
            html = await (await client.get("/productpage")).text()
            assert "Sign out" not in html
            assert all("end-user" not in c.headers for c in sidecar.seen)

    asyncio.run(go())


def test_forged_session_and_inbound_end_user_are_ignored() -> None:
    forged = _session.encode("jason", key=b"not-the-key")
    html = page(
        {"details": json_handler(DETAILS), "reviews": json_handler(reviews_body())},
        headers={"Cookie": f"session={forged}", "end-user": "jason"},
    )
    assert "Sign out" not in html


def test_headers_propagated() -> None:
    async def go() -> dict[str, str]:
        routes = {"details": json_handler(DETAILS), "reviews": json_handler(reviews_body())}
        async with running(productpage, {}, routes) as (client, sidecar):
            await client.get(
                "/productpage",
                headers={
                    "x-request-id": "rid-1",
                    "traceparent": "00-abc-def-01",
                    "x-b3-traceid": "463ac35c9f6413ad",
                    "x-b3-spanid": "a2fb4a1d1a96d312",
                    "x-b3-parentspanid": "0020000000000001",
                    "x-b3-sampled": "1",
                    "user-agent": "curl/8",
                    "authorization": "Bearer t",
                    "jwt": "j",
                    "x-not-forwarded": "no",
                },
            )
            return {k.lower(): v for k, v in sidecar.calls("reviews")[0].headers.items()}

    seen = asyncio.run(go())
    assert seen["x-request-id"] == "rid-1"
    assert seen["traceparent"] == "00-abc-def-01"
    assert seen["x-b3-traceid"] == "0000000000000000463ac35c9f6413ad"
    assert seen["x-b3-spanid"] == "a2fb4a1d1a96d312"
    assert seen["x-b3-sampled"] == "1"
    assert "x-b3-parentspanid" not in seen
    assert seen["user-agent"] == "curl/8"
    assert seen["authorization"] == "Bearer t"
    assert seen["jwt"] == "j"
    assert "x-not-forwarded" not in seen
    assert "end-user" not in seen


def test_flood_factor_extra_reviews_calls_and_metrics() -> None:
    async def go() -> tuple[int, str]:
        routes = {"details": json_handler(DETAILS), "reviews": json_handler(reviews_body())}
        async with running(productpage, {"FLOOD_FACTOR": "2"}, routes) as (client, sidecar):
            await client.get("/productpage")
            metrics = await (await client.get("/metrics")).text()
            return len(sidecar.calls("reviews")), metrics

    calls, metrics = asyncio.run(go())
    assert calls == 3
    assert 'request_result_total{destination_app="reviews",response_code="200"} 3.0' in metrics
    assert 'request_result_total{destination_app="details",response_code="200"} 1.0' in metrics


@pytest.mark.parametrize(
    ("path", "status", "marker"),
    [
        pytest.param("/", 200, "/productpage?u=normal", id="index"),
        pytest.param("/index.html", 200, "/productpage?u=test", id="index-html"),
        pytest.param("/health", 200, "Product page is healthy", id="health"),
        pytest.param("/static/style.css", 200, "glyphicon-star", id="static"),
    ],
)
def test_simple_pages(path: str, status: int, marker: str) -> None:
    async def go() -> tuple[int, str]:
        async with running(productpage, {}) as (client, _):
            resp = await client.get(path)
            return resp.status, await resp.text()

    got_status, text = asyncio.run(go())
    assert got_status == status
    assert marker in text


def test_real_timeouts_are_bookinfos() -> None:
    assert productpage.CLIENT_TIMEOUT_S == 3.0
    assert productpage.REVIEWS_ATTEMPTS == 2
    state = productpage._ProductPage({}, Outbound())
    assert state.timeout == 3.0
