"""The apps' lean HTTP/1.1 pieces: framing, the server and the outbound pool, over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from meshchaos.apps import _server
from meshchaos.apps._outbound import Outbound
from meshchaos.apps._routing import Request, Response, Routes, json_response
from meshchaos.apps._wire import BodyReader, Framing, WireError, parse_head


def test_parse_request_head_and_keep_alive() -> None:
    buf = bytearray(b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Two: 1\r\nx-two: 2\r\n\r\nrest")
    head = parse_head(buf, response=False)
    assert head is not None
    assert (head.method, head.target, head.keep_alive) == ("GET", "/a?b=1", True)
    assert head.headers == [("host", "x"), ("x-two", "1"), ("x-two", "2")]
    assert (head.framing, head.length, bytes(buf[head.size :])) == (Framing.LENGTH, 0, b"rest")
    close = parse_head(bytearray(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"), response=False)
    assert close is not None
    assert not close.keep_alive
    old = parse_head(bytearray(b"GET / HTTP/1.0\r\n\r\n"), response=False)
    assert old is not None
    assert not old.keep_alive


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"GARBAGE\r\n\r\n", id="no-target"),
        pytest.param(b"GET / SPDY/3\r\n\r\n", id="not-http1"),
        pytest.param(b"GET / HTTP/1.1\r\nbad line\r\n\r\n", id="no-colon"),
        pytest.param(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", id="bad-length"),
        pytest.param(
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            id="two-lengths",
        ),
    ],
)
def test_bad_heads_are_wire_errors(raw: bytes) -> None:
    with pytest.raises(WireError):
        parse_head(bytearray(raw), response=False)


def test_incomplete_head_waits() -> None:
    assert parse_head(bytearray(b"GET / HTTP/1.1\r\nHost: x\r\n"), response=False) is None


def test_chunked_body_in_pieces_with_trailer() -> None:
    reader = BodyReader(Framing.CHUNKED, -1)
    wire = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: y\r\n\r\nNEXT"
    out = None
    for i in range(len(wire)):
        out = reader.feed(wire[i : i + 1])
        if out is not None:
            break
    assert out == b"hello world"
    assert reader.rest == b""  # fed one byte at a time: the next request is not here yet
    whole = BodyReader(Framing.CHUNKED, -1)
    assert whole.feed(b"3\r\nabc\r\n0\r\n\r\nNEXT") == b"abc"
    assert whole.rest == b"NEXT"


def test_response_framing() -> None:
    no_body = parse_head(bytearray(b"HTTP/1.1 204 No Content\r\n\r\n"), response=True)
    assert no_body is not None
    assert (no_body.framing, no_body.length) == (Framing.LENGTH, 0)
    until_close = parse_head(bytearray(b"HTTP/1.1 200 OK\r\n\r\n"), response=True)
    assert until_close is not None
    assert (until_close.framing, until_close.keep_alive) == (Framing.UNTIL_CLOSE, False)


Served = Callable[[Request], Awaitable[Response]]


async def _with_server(
    handler: Served, body: Callable[[_server.LeanApp, int], Awaitable[Any]]
) -> Any:
    routes = Routes()
    routes.add("*", "/{tail:.*}", handler)
    app, server, port = await _server.serve(routes)
    try:
        return await body(app, port)
    finally:
        server.close()
        app.abort()


async def _raw(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    out = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return out


def test_server_pipelined_keep_alive_chunked_and_close() -> None:
    async def echo(request: Request) -> Response:
        return json_response({"path": request.path_qs, "body": request.body.decode()})

    wire = (
        b"POST /one HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nab\r\n0\r\n\r\n"
        b"POST /two?q=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz"
        b"GET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    out = asyncio.run(_with_server(echo, lambda _, port: _raw(port, wire)))
    answers = out.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert len(answers) == 3
    assert answers[0].endswith(b'{"path":"/one","body":"ab"}')
    assert answers[1].endswith(b'{"path":"/two?q=1","body":"xyz"}')
    assert b"Connection: close" in answers[2]
    assert b"Content-Length: 27" in answers[0]


def test_server_answers_400_to_garbage_and_500_to_a_failing_handler() -> None:
    async def boom(request: Request) -> Response:
        raise RuntimeError("bug")

    bad = asyncio.run(_with_server(boom, lambda _, port: _raw(port, b"NONSENSE\r\n\r\n")))
    assert bad.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    failed = asyncio.run(
        _with_server(boom, lambda _, p: _raw(p, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"))
    )
    assert failed.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")


def test_outbound_reuses_connections_and_retries_a_stale_one() -> None:
    async def who(request: Request) -> Response:
        return json_response({"target": request.target})

    async def body(app: _server.LeanApp, port: int) -> tuple[Any, Any, int, int | None]:
        outbound = Outbound(f"http://127.0.0.1:{port}")
        first = await outbound.get("http://svc:9080/a", timeout=2)
        again = await outbound.get("http://svc:9080/b", timeout=2)
        pooled = len(outbound._idle)
        for conn in list(app.connections):  # the server resets the idle keep-alive connection
            conn.abort()
        # The client may not have seen the reset yet: its request on the dead
        # connection fails before a response head and is sent once more, fresh.
        retried = await outbound.get("http://svc:9080/c", timeout=2)
        await outbound.close()
        return first.json(), again.json(), pooled, retried.status

    first, again, pooled, retried = asyncio.run(_with_server(who, body))
    assert first == {"target": "http://svc:9080/a"}  # absolute form, as to a proxy
    assert again == {"target": "http://svc:9080/b"}
    assert pooled == 1  # one keep-alive connection served both calls
    assert retried == 200


def test_outbound_read_timeout_and_no_proxy() -> None:
    async def slow(request: Request) -> Response:
        await asyncio.sleep(1.0)
        return json_response({})

    async def body(_: _server.LeanApp, port: int) -> tuple[Any, Any]:
        outbound = Outbound(f"http://127.0.0.1:{port}")
        timed_out = await outbound.get("http://svc/x", timeout=0.1)
        unset = await Outbound().get("http://svc/x", timeout=0.1)
        await outbound.close()
        return timed_out, unset

    timed_out, unset = asyncio.run(_with_server(slow, body))
    assert timed_out.status is None
    assert timed_out.error.startswith("TimeoutError")
    assert unset.status is None
    assert "not set" in unset.error
