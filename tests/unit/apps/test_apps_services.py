"""details, reviews and ratings, each against a fake sidecar."""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import pytest
from apps_fakes import Handler, json_handler, running

from meshchaos.apps import details, ratings, reviews
from meshchaos.apps._outbound import Outbound

RATINGS_OK = json_handler({"id": 0, "ratings": {"Reviewer1": 5, "Reviewer2": 4}})


def get(module: Any, path: str, env: dict[str, str] | None = None,
        routes: dict[str, Handler] | None = None, **kw: Any) -> tuple[int, str]:  # fmt: skip
    async def go() -> tuple[int, str]:
        async with running(module, env, routes, **kw) as (client, _):
            resp = await client.get(path)
            return resp.status, await resp.text()

    return asyncio.run(go())


# -- details -------------------------------------------------------------------------------
def test_details_body_in_key_order() -> None:
    status, text = get(details, "/details/7")
    assert status == 200
    assert text == (
        '{"id":7,"author":"William Shakespeare","year":1595,"type":"paperback","pages":200,'
        '"publisher":"PublisherA","language":"English","ISBN-10":"1234567890",'
        '"ISBN-13":"123-1234567890"}'
    )


def test_details_non_integer_is_400() -> None:
    assert get(details, "/details/abc") == (400, '{"error":"please provide numeric product id"}')
    assert get(details, "/health") == (200, '{"status":"Details is healthy"}')


# -- reviews -------------------------------------------------------------------------------
V1 = {"ENABLE_RATINGS": "false"}
V2 = {"ENABLE_RATINGS": "true", "STAR_COLOR": "black"}
V3 = {"ENABLE_RATINGS": "True", "STAR_COLOR": "red"}


def reviews_call(env: dict[str, str], ratings_handler: Handler,
                 **req: Any) -> tuple[dict[str, Any], list[Any], float]:  # fmt: skip
    async def go() -> tuple[dict[str, Any], list[Any], float]:
        async with running(reviews, env, {"ratings": ratings_handler}) as (client, sidecar):
            t0 = time.monotonic()
            resp = await client.get("/reviews/0", **req)
            elapsed = time.monotonic() - t0
            assert resp.status == 200
            return await resp.json(), sidecar.calls("ratings"), elapsed

    return asyncio.run(go())


def test_reviews_v1_never_calls_ratings() -> None:
    body, calls, _ = reviews_call({**V1, "HOSTNAME": "reviews-v1-0"}, RATINGS_OK)
    assert calls == []
    assert body["id"] == "0"
    assert body["podname"] == "reviews-v1-0"
    assert body["clustername"] == "null"
    assert [r["reviewer"] for r in body["reviews"]] == ["Reviewer1", "Reviewer2"]
    assert all("rating" not in r for r in body["reviews"])


@pytest.mark.parametrize(("env", "color"), [(V2, "black"), (V3, "red")], ids=["v2", "v3"])
def test_reviews_stars(env: dict[str, str], color: str) -> None:
    body, calls, _ = reviews_call({**env, "CLUSTER_NAME": "east"}, RATINGS_OK)
    assert len(calls) == 1
    assert calls[0].path == "/ratings/0"
    assert [r["rating"] for r in body["reviews"]] == [
        {"stars": 5, "color": color},
        {"stars": 4, "color": color},
    ]
    assert body["clustername"] == "east"


@pytest.mark.parametrize(
    "handler",
    [
        pytest.param(json_handler({"error": "Service unavailable"}, 503), id="ratings-503"),
        pytest.param(json_handler("not an object"), id="ratings-garbage"),
    ],
)
def test_reviews_ratings_failure_is_still_200(handler: Handler) -> None:
    body, _, _ = reviews_call(V2, handler)
    unavailable = {"error": "Ratings service is currently unavailable"}
    assert [r["rating"] for r in body["reviews"]] == [unavailable, unavailable]


def test_reviews_missing_reviewer_is_per_review_error() -> None:
    body, _, _ = reviews_call(V3, json_handler({"id": 0, "ratings": {"Reviewer1": 3}}))
    assert body["reviews"][0]["rating"] == {"stars": 3, "color": "red"}
    assert body["reviews"][1]["rating"] == {"error": "Ratings service is currently unavailable"}


@pytest.mark.parametrize(
    ("env", "timeout"),
    [pytest.param(V2, 1.0, id="black-10s"), pytest.param(V3, 0.25, id="red-2.5s")],
)
def test_reviews_ratings_timeout_by_colour(env: dict[str, str], timeout: float) -> None:
    # Scaled by 0.1: 10 s -> 1 s, 2.5 s -> 250 ms. Ratings answers after 500 ms.
    slow = json_handler({"id": 0, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}, delay=0.5)
    body, calls, elapsed = reviews_call({**env, "MESHCHAOS_TIMEOUT_SCALE": "0.1"}, slow)
    assert len(calls) == 1  # no retry
    got = body["reviews"][0]["rating"]
    if timeout > 0.5:
        assert got["stars"] == 5
        assert elapsed >= 0.5
    else:
        assert got == {"error": "Ratings service is currently unavailable"}
        assert timeout * 0.9 <= elapsed < 0.48


def test_reviews_real_timeouts() -> None:
    assert reviews.ratings_timeout("black") == 10.0
    assert reviews.ratings_timeout("red") == 2.5
    assert reviews._Reviews(V3, Outbound()).timeout == 2.5


def test_reviews_propagates_headers() -> None:
    inbound = {
        "x-request-id": "r1",
        "x-b3-traceid": "t",
        "x-b3-spanid": "s",
        "x-b3-parentspanid": "p",
        "end-user": "jason",
        "cookie": "session=abc",
        "x-other": "no",
    }
    _, calls, _ = reviews_call(V2, RATINGS_OK, headers=inbound)
    seen = {k.lower(): v for k, v in calls[0].headers.items()}
    for name, value in inbound.items():
        if name != "x-other":
            assert seen[name] == value
    assert "x-other" not in seen


# -- ratings -------------------------------------------------------------------------------
def test_ratings_v1_get_post_and_errors() -> None:
    async def go() -> None:
        async with running(ratings, {"SERVICE_VERSION": "v1"}) as (client, _):
            resp = await client.get("/ratings/3")
            assert (resp.status, await resp.text()) == (
                200,
                '{"id":3,"ratings":{"Reviewer1":5,"Reviewer2":4}}',
            )
            resp = await client.post("/ratings/3", data=json.dumps({"Reviewer1": 1}))
            assert await resp.json() == {"id": 3, "ratings": {"Reviewer1": 1}}
            assert await (await client.get("/ratings/3")).json() == {
                "id": 3,
                "ratings": {"Reviewer1": 1},
            }
            resp = await client.post("/ratings/3", data=b"{nope")
            assert resp.status == 400
            assert await resp.json() == {"error": "please provide valid ratings JSON"}
            resp = await client.get("/ratings/abc")
            assert resp.status == 400
            assert await resp.json() == {"error": "please provide numeric product ID"}
            resp = await client.get("/health")
            assert await resp.json() == {"status": "Ratings is healthy"}

    asyncio.run(go())


def test_ratings_v_faulty_follows_seeded_rng() -> None:
    async def go() -> list[int]:
        env = {"SERVICE_VERSION": "v-faulty"}
        async with running(ratings, env, rng=random.Random(42)) as (client, _):
            return [(await client.get("/ratings/0")).status for _ in range(200)]

    statuses = asyncio.run(go())
    twin = random.Random(42)
    assert statuses == [503 if twin.random() <= 0.5 else 200 for _ in range(200)]
    assert 60 < statuses.count(503) < 140


def test_ratings_seed_from_env_is_reproducible() -> None:
    async def go() -> list[int]:
        env = {"SERVICE_VERSION": "v-faulty", "MESHCHAOS_SEED": "7"}
        async with running(ratings, env) as (client, _):
            return [(await client.get("/ratings/0")).status for _ in range(30)]

    assert asyncio.run(go()) == asyncio.run(go())


def test_ratings_v_delayed_half_the_requests() -> None:
    async def go() -> list[float]:
        env = {"SERVICE_VERSION": "v-delayed", "MESHCHAOS_TIMEOUT_SCALE": "0.03"}  # 7 s -> 210 ms
        async with running(ratings, env, rng=random.Random(1)) as (client, _):
            out = []
            for _ in range(10):
                t0 = time.monotonic()
                assert (await client.get("/ratings/0")).status == 200
                out.append(time.monotonic() - t0)
            return out

    latencies = asyncio.run(go())
    twin = random.Random(1)
    for latency, delayed in zip(latencies, [twin.random() <= 0.5 for _ in range(10)], strict=True):
        assert (latency >= 0.2) == delayed


@pytest.mark.parametrize(
    ("version", "period"),
    [pytest.param("v-unavailable", 60.0, id="60s"), pytest.param("v-unhealthy", 900.0, id="15m")],
)
def test_ratings_flip_every_period(version: str, period: float) -> None:
    now = [1000.0]

    async def go() -> list[tuple[int, int]]:
        env = {"SERVICE_VERSION": version}
        async with running(ratings, env, clock=lambda: now[0]) as (client, _):
            out = []
            for offset in (0.0, period - 1, period + 1, 2 * period + 1):
                now[0] = 1000.0 + offset
                out.append(
                    ((await client.get("/ratings/0")).status, (await client.get("/health")).status)
                )
            return out

    states = asyncio.run(go())
    health_flips = version == "v-unhealthy"
    down = (503, 500 if health_flips else 200)
    assert states == [(200, 200), (200, 200), down, (200, 200)]


def test_ratings_v2_has_no_database() -> None:
    async def go() -> tuple[int, int]:
        async with running(ratings, {"SERVICE_VERSION": "v2"}) as (client, _):
            get_status = (await client.get("/ratings/0")).status
            post_status = (await client.post("/ratings/0", data=b"{}")).status
            return get_status, post_status

    assert asyncio.run(go()) == (500, 501)
