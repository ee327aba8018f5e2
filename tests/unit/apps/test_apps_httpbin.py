"""httpbin: go-httpbin shapes, /status weights, /delay, HTTPBIN_FAIL_ALL, request records."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from apps_fakes import running

from meshchaos.apps import _common, httpbin


def call(path: str, env: dict[str, str] | None = None, method: str = "GET",
         **kw: Any) -> tuple[int, Any]:  # fmt: skip
    async def go() -> tuple[int, Any]:
        async with running(httpbin, env) as (client, _):
            resp = await client.request(method, path, **kw)
            ctype = resp.headers.get("Content-Type", "")
            body = await resp.json() if "json" in ctype else await resp.text()
            return resp.status, body

    return asyncio.run(go())


def test_get_echoes_request() -> None:
    status, body = call("/get?a=1&a=2", headers={"x-envoy-internal": "true"})
    assert status == 200
    assert body["args"] == {"a": ["1", "2"]}
    assert body["method"] == "GET"
    assert body["headers"]["X-Envoy-Internal"] == ["true"]
    assert body["origin"] == "127.0.0.1"
    assert body["url"].endswith("/get?a=1&a=2")


def test_headers_canonical_lists() -> None:
    status, body = call("/headers", headers={"x-b3-traceid": "abc", "end-user": "jason"})
    assert status == 200
    assert set(body) == {"headers"}
    assert body["headers"]["X-B3-Traceid"] == ["abc"]
    assert body["headers"]["End-User"] == ["jason"]
    assert body["headers"]["Host"][0].startswith("127.0.0.1:")


def test_ip_uses_forwarded_for() -> None:
    assert call("/ip", headers={"X-Forwarded-For": "10.0.0.9, 10.0.0.1"}) == (
        200,
        {"origin": "10.0.0.9"},
    )


def test_anything_echoes_body_and_method() -> None:
    status, body = call("/anything/x", method="PUT", json={"k": 1})
    assert status == 200
    assert body["method"] == "PUT"
    assert body["json"] == {"k": 1}
    assert body["data"] == '{"k": 1}'


def test_index() -> None:
    status, text = call("/")
    assert status == 200
    assert "httpbin" in text


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param("200:0.5,503:0.5", [(200, 0.5), (503, 0.5)], id="weights"),
        pytest.param("200,503,504", [(200, 1.0), (503, 1.0), (504, 1.0)], id="plain"),
        pytest.param("418", [(418, 1.0)], id="single"),
    ],
)
def test_parse_status_choices(spec: str, expected: list[tuple[int, float]]) -> None:
    assert httpbin.parse_status_choices(spec) == expected


@pytest.mark.parametrize("spec", ["abc", "99", "600", "200:x", "200:-1", "200:0", ""])
def test_parse_status_choices_rejects(spec: str) -> None:
    with pytest.raises(ValueError):
        httpbin.parse_status_choices(spec)


def test_status_weights_follow_seeded_rng() -> None:
    async def go(path: str, n: int) -> Counter[int]:
        async with running(httpbin, {}, rng=random.Random(3)) as (client, _):
            return Counter([(await client.get(path)).status for _ in range(n)])

    weighted = asyncio.run(go("/status/200:0.8,503:0.2", 1000))
    assert set(weighted) == {200, 503}
    assert 150 <= weighted[503] <= 250  # 0.2 +- ~4 sigma
    uniform = asyncio.run(go("/status/200,503", 400))
    assert 150 <= uniform[503] <= 250
    assert call("/status/503") == (503, "")
    assert call("/status/nope")[0] == 400
    assert call("/status/503", method="POST")[0] == 503


def test_delay() -> None:
    t0 = time.monotonic()
    status, body = call("/delay/0.05")
    assert status == 200
    assert time.monotonic() - t0 >= 0.05
    assert body["method"] == "GET"
    assert httpbin.parse_delay("250ms") == 0.25
    assert httpbin.parse_delay("2s") == 2.0
    assert call("/delay/11")[0] == 400
    assert call("/delay/soon")[0] == 400


def test_fail_all() -> None:
    env = {"HTTPBIN_FAIL_ALL": "503"}
    assert call("/get", env)[0] == 503
    assert call("/status/200", env)[0] == 503
    assert call("/anything", env, method="POST")[0] == 503


def test_records_requests_received() -> None:
    async def go() -> list[_common.Record]:
        async with running(httpbin, {}) as (client, _):
            await client.get("/get", headers={"x-envoy-internal": "true", "x-request-id": "r"})
            await client.post("/status/503")
            assert isinstance(client.server, TestServer)
            return _common.records(client.server.app)

    first, second = asyncio.run(go())
    assert first["method"] == "GET"
    assert first["path"] == "/get"
    assert first["status"] == 200
    assert first["headers"]["x-envoy-internal"] == "true"
    assert first["headers"]["x-request-id"] == "r"
    assert first["headers"]["host"].startswith("127.0.0.1:")
    assert abs(first["time"] - time.time()) < 60
    assert (second["method"], second["path"], second["status"]) == ("POST", "/status/503", 503)


def test_records_keep_the_last_10000() -> None:
    app = _common.new_app()
    records = app[_common.RECORDS]
    for i in range(10_005):
        records.append({"i": i})
    kept = _common.records(app)
    assert len(kept) == 10_000
    assert kept[0] == {"i": 5}
