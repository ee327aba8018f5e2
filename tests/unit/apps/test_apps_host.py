"""The app host as a subprocess, through AppHostClient: start/proxy/stop/records/exit."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from meshchaos.apps.host_client import AppHostClient
from meshchaos.errors import MeshError
from meshchaos.mesh.local.supervisor import spawn_app_host


@pytest.fixture
def host() -> Iterator[AppHostClient]:
    client = spawn_app_host()
    yield client
    client.close()


class _Sidecar(BaseHTTPRequestHandler):
    """Answers any ratings request (absolute-form URI) with two ratings."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = json.dumps({"id": 0, "ratings": {"Reviewer1": 2, "Reviewer2": 1}}).encode()
        status = 200 if self.path.startswith("http://ratings:9080/ratings/") else 404
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def sidecar() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sidecar)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def fetch(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, json.loads(resp.read())


def test_start_proxy_records_stop(host: AppHostClient, sidecar: str) -> None:
    host.ping()
    ports = host.start(
        [
            {"id": "reviews-v2-0", "app": "reviews", "env": {"ENABLE_RATINGS": "true"}},
            {"id": "httpbin-v1-0", "app": "httpbin", "proxy": None},
        ]
    )
    assert set(ports) == {"reviews-v2-0", "httpbin-v1-0"}
    assert len(set(ports.values())) == 2

    # No proxy yet: ratings fails like a connection error.
    _, body = fetch(ports["reviews-v2-0"], "/reviews/0")
    assert body["podname"] == "reviews-v2-0"  # HOSTNAME defaults to the instance id
    assert body["reviews"][0]["rating"] == {"error": "Ratings service is currently unavailable"}

    host.set_proxies({"reviews-v2-0": sidecar})
    _, body = fetch(ports["reviews-v2-0"], "/reviews/0")
    assert body["reviews"][0]["rating"] == {"stars": 2, "color": "black"}

    fetch(ports["httpbin-v1-0"], "/get", {"x-envoy-internal": "true"})
    [record] = host.records("httpbin-v1-0")
    assert record["path"] == "/get"
    assert record["headers"]["x-envoy-internal"] == "true"

    host.stop(["httpbin-v1-0"])
    with pytest.raises(urllib.error.URLError):
        fetch(ports["httpbin-v1-0"], "/get")
    assert len(host.records("httpbin-v1-0")) == 1  # still readable after stop
    assert fetch(ports["reviews-v2-0"], "/health")[0] == 200


def test_stop_resets_in_flight_requests(host: AppHostClient) -> None:
    port = host.start([{"id": "h", "app": "httpbin"}])["h"]
    errors: list[BaseException] = []

    def slow() -> None:
        try:
            fetch(port, "/delay/5")
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=slow)
    thread.start()
    deadline = time.monotonic() + 5
    while not host.records("h") and time.monotonic() < deadline:
        time.sleep(0.01)
    t0 = time.monotonic()
    host.stop(["h"])
    thread.join(5)
    assert time.monotonic() - t0 < 1.0
    assert errors, "the in-flight request should have been cut off"
    assert host.records("h")[0]["status"] is None


def test_bad_commands_answer_errors_and_host_survives(host: AppHostClient) -> None:
    with pytest.raises(MeshError, match="'client' is not an app"):
        host.start([{"id": "client-0", "app": "client"}])
    host.start([{"id": "d", "app": "details"}])
    with pytest.raises(MeshError, match="already running"):
        host.start([{"id": "d", "app": "details"}])
    with pytest.raises(MeshError, match="unknown instance ids"):
        host.stop(["nope"])
    with pytest.raises(MeshError, match="unknown instance ids"):
        host.set_proxies({"nope": "http://127.0.0.1:1"})
    with pytest.raises(MeshError, match="unknown instance id"):
        host.records("nope")
    with pytest.raises(MeshError, match="unknown cmd"):
        host._call({"cmd": "dance"}, None)
    host.ping()


def _raw_host() -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "meshchaos.apps.host"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_raw_protocol_and_eof_exit() -> None:
    proc = _raw_host()
    try:
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.write('{"cmd":"ping"}\nnot json\n{"cmd":"start","instances":[]}\n')
        proc.stdin.flush()
        answers = [json.loads(proc.stdout.readline()) for _ in range(3)]
        assert answers[0] == {"ok": True}
        assert answers[1]["ok"] is False
        assert "bad JSON" in answers[1]["error"]
        assert answers[2]["ok"] is False
        proc.stdin.close()
        assert proc.wait(5) == 0
    finally:
        proc.kill()
        proc.wait(5)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


def test_sigterm_exits_promptly(host: AppHostClient) -> None:
    host.start([{"id": "r", "app": "ratings"}])
    t0 = time.monotonic()
    host.process.terminate()
    host.process.wait(5)
    assert time.monotonic() - t0 < 2.0


def test_a_fresh_host_answers_and_serves_an_app_on_loopback() -> None:
    """Its start-up time is measured by ``benchmarks/startup.py``, not asserted here."""
    client = spawn_app_host()
    try:
        client.ping()
        port = client.start([{"id": "p", "app": "productpage"}])["p"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as answer:
            assert answer.status == 200
    finally:
        client.close()


def test_silent_host_times_out_with_stderr_tail() -> None:
    script = (
        "import sys, time; sys.stderr.write('stuck here\\n'); sys.stderr.flush(); time.sleep(30)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    client = AppHostClient(proc, timeout=0.5)
    try:
        deadline = time.monotonic() + 10
        while "stuck here" not in client.stderr_tail() and time.monotonic() < deadline:
            time.sleep(0.01)  # polling for the host's line, bounded by the deadline
        with pytest.raises(MeshError, match=r"(?s)no answer within 0.5 s.*stuck here"):
            client.ping()
        with pytest.raises(MeshError, match="unusable"):
            client.ping()
    finally:
        client.close(timeout=0.5)
    assert proc.returncode is not None


def test_dead_host_raises() -> None:
    script = "import sys; sys.stderr.write('boom\\n'); sys.exit(3)"
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    client = AppHostClient(proc)
    try:
        proc.wait(5)
        with pytest.raises(MeshError, match=r"(?s)(exited|cannot write).*boom"):
            client.ping()
    finally:
        client.close()


class _Router(BaseHTTPRequestHandler):
    """A fake sidecar that forwards absolute-form requests to the host's instances."""

    protocol_version = "HTTP/1.1"
    ports: dict[str, int] = {}

    def do_GET(self) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        service = (parsed.hostname or "").split(".")[0]
        port = self.ports[service]
        fwd = {k: v for k, v in self.headers.items() if k.lower() in ("end-user", "x-request-id")}
        req = urllib.request.Request(f"http://127.0.0.1:{port}{parsed.path}", headers=fwd)
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, body = resp.status, resp.read()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_bookinfo_chain_through_one_host(host: AppHostClient) -> None:
    ports = host.start(
        [
            {"id": "productpage-v1-0", "app": "productpage"},
            {"id": "details-v1-0", "app": "details"},
            {"id": "reviews-v3-0", "app": "reviews", "env": {"ENABLE_RATINGS": "true",
                                                              "STAR_COLOR": "red"}},
            {"id": "ratings-v1-0", "app": "ratings", "env": {"SERVICE_VERSION": "v1"}},
        ]
    )  # fmt: skip
    _Router.ports = {name.split("-")[0]: port for name, port in ports.items()}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Router)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        proxy = f"http://127.0.0.1:{server.server_address[1]}"
        host.set_proxies({name: proxy for name in ports})
        url = f"http://127.0.0.1:{ports['productpage-v1-0']}/productpage"
        with urllib.request.urlopen(url, timeout=10) as resp:
            html = resp.read().decode()
        assert html.count('<span class="glyphicon glyphicon-star" style="color: red">') == 9
        assert "Reviews served by:" in html
        assert "reviews-v3-0" in html
        assert "PublisherA" in html
        assert [r["path"] for r in host.records("ratings-v1-0")] == ["/ratings/0"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
