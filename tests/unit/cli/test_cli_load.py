"""The ``meshchaos load`` verb: target resolution, text output and --json."""

from __future__ import annotations

import argparse
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from cli_fakes import LoadingFakeMesh

from meshchaos.cli import build_parser
from meshchaos.cli.load import UnknownClient, load
from meshchaos.errors import LoadError
from meshchaos.mesh import registry
from meshchaos.mesh.handle import MeshHandle, write_handle


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A loopback aiohttp server in a thread (the verb runs its own loop)."""
    import asyncio

    ready = threading.Event()
    holder: dict[str, object] = {}

    async def handle(request: web.Request) -> web.Response:
        if request.path == "/productpage":
            return web.Response(text="<title>Simple Bookstore App</title>Book Reviews")
        return web.Response(status=503 if request.query.get("fail") else 200, text="x")

    def serve() -> None:
        loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_get("/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        holder["url"] = f"http://127.0.0.1:{runner.addresses[0][1]}"
        holder["loop"] = loop
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield str(holder["url"])
    loop = holder["loop"]
    assert isinstance(loop, asyncio.AbstractEventLoop)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["load", *argv])


def run(*argv: str) -> str:
    out = io.StringIO()
    assert load(args(*argv), stdout=out) == 0
    return out.getvalue()


def test_text_output_like_fortio(server: str) -> None:
    text = run(f"{server}/productpage", "-c", "2", "-n", "50")
    assert f"Target: {server}/productpage" in text
    assert "All done 50 calls in " in text
    assert "qps actual" in text
    assert "Code 200 : 50 (100.0 %)" in text
    assert "reviews-v1 : 50 (100.0 %)" in text
    for p in ("p50", "p75", "p90", "p99", "p99.9", "max"):
        assert f" {p} " in text


def test_no_outcome_histogram_off_bookinfo(server: str) -> None:
    text = run(f"{server}/x?fail=1", "-n", "10", "-c", "1")
    assert "Code 503 : 10 (100.0 %)" in text
    assert "Outcome classes" not in text


def test_json_output(server: str) -> None:
    data = json.loads(run(f"{server}/get", "-n", "20", "-c", "2", "--json", "-H", "x-a: 1"))
    assert data["requests"] == 20
    assert data["status_counts"] == {"200": 20}
    assert data["status_shares"] == {"200": 1.0}
    assert data["outcome_shares"] == {"status:200": 1.0}
    assert set(data["latency_ms"]) == {"min", "p50", "p75", "p90", "p99", "p99.9", "max"}
    assert data["latency_ms"]["min"] <= data["latency_ms"]["p50"] <= data["latency_ms"]["max"]
    assert data["rps"] > 0


def test_duration_flag(server: str) -> None:
    data = json.loads(run(f"{server}/get", "-t", "300ms", "-c", "1", "--json"))
    assert 0.25 < data["duration_s"] < 1.0


def test_path_without_mesh_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match=r"no mesh is running in .*meshchaos up"):
        run("/productpage", "--state-dir", str(tmp_path), "-n", "1")


def test_path_and_from_go_through_the_running_mesh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(registry.BACKENDS, "fake", "cli_fakes:FakeLoadBackend")
    monkeypatch.setattr(LoadingFakeMesh, "asked", [])
    write_handle(tmp_path, MeshHandle("fake", "http://127.0.0.1:4000"))
    run("/productpage", "--state-dir", str(tmp_path), "-n", "1")
    run("http://httpbin:8000/get", "--from", "client", "--state-dir", str(tmp_path), "-n", "1")
    assert LoadingFakeMesh.asked == [
        ("/productpage", None),
        ("http://httpbin:8000/get", "client"),
    ]
    with pytest.raises(UnknownClient, match="no in-mesh client 'sleep'"):
        run("http://httpbin:8000/get", "--from", "sleep", "--state-dir", str(tmp_path))


def test_cli_main_prints_one_line_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from meshchaos.cli import main

    assert main(["load", "/productpage", "--state-dir", str(tmp_path)]) == 1
    assert "no mesh is running" in capsys.readouterr().err
    assert main(["load", "http://10.0.0.1/", "-n", "1"]) == 1
    assert "not loopback" in capsys.readouterr().err
    assert main(["load", "http://127.0.0.1:1/", "-t", "soon"]) == 1
    assert "invalid duration" in capsys.readouterr().err
