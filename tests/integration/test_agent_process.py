"""The load agent as a real subprocess (``python -I -S agent.py`` in a temp dir holding
only ``agent_files()``) against a small stdlib HTTP server on loopback: both loops,
proxying, headers and login, timeouts, triggers, and every way a run can stop."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import MappingProxyType

import pytest

from meshchaos.errors import LoadError
from meshchaos.load import LoadPlan, LoadTarget, Trigger, run_load
from meshchaos.load.agent import (
    AGENT_ENTRY,
    AGENT_PYTHON_FLAGS,
    StreamReader,
    agent_files,
    plan_message,
    run_local,
    write_agent_files,
)
from meshchaos.load.classify import classify_status

pytestmark = pytest.mark.integration


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else delayed ACKs pace every keep-alive request
    seen: list[tuple[str, dict[str, str]]]
    lock = threading.Lock()
    count = 0

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        with self.lock:
            type(self).count += 1
            n = type(self).count
            self.seen.append((self.path, dict(self.headers)))
        path = self.path.split("?")[0]
        if path.endswith("/half"):  # every other request fails: exactly half of an even n
            self._answer(503 if n % 2 else 200, b"half")
        elif "/sleep/" in path:
            time.sleep(float(path.rsplit("/", 1)[1]))
            self._answer(200, b"slept")
        elif "/status/" in path:
            self._answer(int(path.rsplit("/", 1)[1]), b"status")
        else:
            self._answer(200, b"ok", {"x-envoy-overloaded": "true"} if "/over" in path else {})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.lock:
            self.seen.append((self.path, dict(self.headers)))
        self._answer(302, b"", {"Set-Cookie": "session=s3cr3t; Path=/", "Location": "/"})

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"seen": [], "count": 0})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}", handler
    srv.shutdown()
    srv.server_close()


def test_closed_loop_counts_equal_the_engines(server: tuple[str, type[_Handler]]) -> None:
    base, _ = server
    plan = LoadPlan(concurrency=4, requests=60)
    agent = run_local(LoadTarget(base + "/half"), plan)
    engine = run_load(LoadTarget(base + "/half"), plan)
    assert agent.counts() == engine.counts() == {"status:503": 30, "status:200": 30}
    assert agent.count == agent.requested == 60
    assert not agent.stopped_by_deadline
    assert agent.examples["status:503"].startswith("HTTP 503")
    assert agent.target == base + "/half"


def test_open_loop_keeps_the_schedule_and_its_count(server: tuple[str, type[_Handler]]) -> None:
    base, _ = server
    result = run_local(LoadTarget(base + "/over"), LoadPlan(concurrency=2, qps=200.0, duration=0.2))
    assert result.count == 40  # duration * qps
    assert result.qps == 200.0
    # Intended send times, not actual ones: exactly the schedule.
    assert sorted(round(s.start, 4) for s in result.samples) == [
        round(i / 200, 4) for i in range(40)
    ]
    assert all(s.overloaded for s in result.samples)


def test_duration_bounds_a_closed_loop(server: tuple[str, type[_Handler]]) -> None:
    base, _ = server
    result = run_local(LoadTarget(base + "/sleep/0.05"), LoadPlan(concurrency=1, duration=0.3))
    assert 3 <= result.count <= 8
    assert result.stopped_by_deadline  # as the engine says it: time ran out, not a count


def test_proxy_headers_and_login_as_the_engine_sends_them(
    server: tuple[str, type[_Handler]],
) -> None:
    base, handler = server
    plan = LoadPlan(
        concurrency=1, requests=3, user="jason", headers=MappingProxyType({"end-user": "jason"})
    )
    result = run_local(LoadTarget("http://httpbin:8000/get", proxy=base), plan)
    assert result.counts() == {"status:200": 3}
    login_path, login_headers = handler.seen[0]
    assert login_path == "http://httpbin:8000/login"  # absolute form, through the proxy
    assert login_headers["Host"] == "httpbin:8000"
    for path, headers in handler.seen[1:]:
        assert path == "http://httpbin:8000/get"
        assert headers["Host"] == "httpbin:8000"
        assert headers["Cookie"] == "session=s3cr3t"
        assert headers["end-user"] == "jason"
        assert headers["User-Agent"] == "meshchaos-load/0.1"


def test_per_request_timeout_and_refused_connection_are_samples(
    server: tuple[str, type[_Handler]],
) -> None:
    base, _ = server
    slow = run_local(
        LoadTarget(base + "/sleep/1"), LoadPlan(concurrency=2, requests=2, timeout=0.2)
    )
    assert slow.counts() == {"error:timeout": 2}
    assert all(0.2 <= s.latency < 0.9 for s in slow.samples)
    refused = run_local(LoadTarget("http://127.0.0.1:1/"), LoadPlan(concurrency=1, requests=2))
    assert refused.counts() == {"error:connect": 2}


def test_trigger_fires_on_the_host_and_then_extends_the_run(
    server: tuple[str, type[_Handler]],
) -> None:
    base, handler = server
    hits_at_fire: list[int] = []

    def slow() -> None:
        hits_at_fire.append(handler.count)
        time.sleep(0.2)  # the action under test takes this long; the load must wait it out

    trigger = Trigger(after=20, action=slow, name="slow", then=30, settle=0.05)
    result = run_local(
        LoadTarget(base + "/ok"), LoadPlan(concurrency=2, requests=25, triggers=(trigger,))
    )
    (event,) = result.events
    assert (event.name, event.after, event.error) == ("slow", 20, None)
    assert hits_at_fire[0] >= 20
    assert event.finished - event.started >= 0.2
    assert event.settled >= event.finished + 0.05
    assert len([s for s in result.samples if event.is_after(s)]) >= 30
    assert len([s for s in result.samples if event.is_before(s)]) >= 20 - 2


def test_a_failing_action_is_the_events_error(server: tuple[str, type[_Handler]]) -> None:
    base, _ = server

    def boom() -> None:
        raise RuntimeError("no such pod")

    plan = LoadPlan(concurrency=1, requests=10, triggers=(Trigger(3, boom, "kill"),))
    (event,) = run_local(LoadTarget(base + "/ok"), plan).events
    assert event.error == "RuntimeError: no such pod"


def start_agent(tmp_path: Path) -> subprocess.Popen[bytes]:
    entry = write_agent_files(tmp_path)
    assert entry.name == AGENT_ENTRY
    assert {p.name for p in tmp_path.iterdir()} == set(agent_files())  # nothing else
    return subprocess.Popen(
        [sys.executable, *AGENT_PYTHON_FLAGS, entry.name],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={},
    )


def send_plan(proc: subprocess.Popen[bytes], url: str, plan: LoadPlan) -> None:
    assert proc.stdin is not None
    proc.stdin.write(
        json.dumps(plan_message(LoadTarget(url), plan, classify_status)).encode() + b"\n"
    )
    proc.stdin.flush()


def read_until_samples(proc: subprocess.Popen[bytes], reader: StreamReader, n: int) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + 10
    while reader.completed < n:
        assert time.monotonic() < deadline, "no samples from the agent within 10 s"
        reader.feed(proc.stdout.read1(1 << 16))


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT, "stop"], ids=str)
def test_agent_stops_cleanly_with_an_interrupted_end_line(
    server: tuple[str, type[_Handler]], tmp_path: Path, how: object
) -> None:
    base, _ = server
    proc = start_agent(tmp_path)
    send_plan(proc, base + "/sleep/0.02", LoadPlan(concurrency=2, duration=20.0))
    reader = StreamReader()
    read_until_samples(proc, reader, 4)
    assert proc.stdin is not None
    if how == "stop":
        proc.stdin.write(b'{"t": "stop"}\n')
        proc.stdin.flush()
    else:
        assert isinstance(how, signal.Signals)
        proc.send_signal(how)
    assert proc.stdout is not None
    assert proc.stderr is not None
    while data := proc.stdout.read1(1 << 16):  # until the agent closes it
        reader.feed(data)
    assert proc.wait(10) == 1
    err = proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    proc.stdin.close()
    end = reader.close()
    assert end.error is not None
    assert end.error.startswith("interrupted: ")
    assert ("the host sent stop" if how == "stop" else "SIG") in end.error
    assert end.sent >= reader.completed >= 4
    assert b"Traceback" not in err  # stderr: diagnostics, never a crash


def test_agent_killed_mid_run_is_a_truncated_stream(server: tuple[str, type[_Handler]]) -> None:
    base, _ = server

    def kill_soon(proc: subprocess.Popen[bytes]) -> None:
        threading.Timer(0.4, proc.kill).start()

    with pytest.raises(LoadError) as info:
        run_local(
            LoadTarget(base + "/sleep/0.01"),
            LoadPlan(concurrency=2, duration=20.0),
            on_start=kill_soon,
        )
    message = str(info.value)
    assert "without its end line: the agent died or the stream was cut" in message
    assert "agent exit status -9" in message


def test_a_bad_plan_is_an_end_line_with_every_problem(tmp_path: Path) -> None:
    proc = start_agent(tmp_path)
    out, _ = proc.communicate(b'{"protocol": 1, "url": "http://127.0.0.1:1/"}\n', timeout=10)
    reader = StreamReader()
    reader.feed(out)
    error = reader.close().error
    assert error is not None
    assert error.startswith("invalid plan message: ")
    assert "concurrency: expected int" in error
    assert "timeout_s: expected int or float" in error
    assert proc.returncode == 1


def test_isolated_interpreter_has_neither_meshchaos_nor_aiohttp(tmp_path: Path) -> None:
    # What makes the runs above proof of a stdlib-only agent: these imports fail there.
    for module in ("meshchaos", "aiohttp"):
        proc = subprocess.run(
            [sys.executable, *AGENT_PYTHON_FLAGS, "-c", f"import {module}"],
            cwd=tmp_path,
            capture_output=True,
            check=False,
        )
        assert proc.returncode != 0, module
        assert b"ModuleNotFoundError" in proc.stderr


def _pythons(*versions: str) -> list[str]:
    """One interpreter per version, from /usr/bin or pyenv (its shims may not resolve)."""
    found = []
    for v in versions:
        pyenv = sorted((Path.home() / ".pyenv" / "versions").glob(f"{v}.*/bin/python{v}"))
        system = [Path(f"/usr/bin/python{v}")] if Path(f"/usr/bin/python{v}").exists() else []
        found += [str(p) for p in (system + pyenv)[:1]]
    return found


@pytest.mark.parametrize(
    "python", _pythons("3.12", "3.13") or [sys.executable], ids=lambda p: Path(p).name
)
def test_agent_runs_on_newer_pythons(server: tuple[str, type[_Handler]], python: str) -> None:
    base, _ = server
    result = run_local(
        LoadTarget(base + "/half"), LoadPlan(concurrency=2, requests=10), python=python
    )
    assert result.counts() == {"status:503": 5, "status:200": 5}


@pytest.mark.skipif(not _pythons("3.10"), reason="no Python 3.10 on this machine")
def test_an_old_python_says_what_it_needs(server: tuple[str, type[_Handler]]) -> None:
    base, _ = server
    with pytest.raises(LoadError, match=r"needs Python >= 3\.11, this is 3\.10"):
        run_local(LoadTarget(base + "/ok"), LoadPlan(requests=2), python=_pythons("3.10")[0])


def test_python_dash_m_runs_the_same_agent(server: tuple[str, type[_Handler]]) -> None:
    base, _ = server
    message = plan_message(LoadTarget(base + "/half"), LoadPlan(requests=4), classify_status)
    proc = subprocess.run(
        [sys.executable, "-m", "meshchaos.load.agent"],
        input=json.dumps(message).encode() + b"\n",
        capture_output=True,
        timeout=30,
        check=False,
    )
    reader = StreamReader()
    assert len(reader.feed(proc.stdout)) == 4
    assert (
        reader.close().error == "interrupted: stdin closed (the host went away)"
        or proc.returncode == 0
    )


def test_unfired_trigger_and_failed_login_come_back_as_the_engine_reports_them(
    server: tuple[str, type[_Handler]],
) -> None:
    base, _ = server
    short = LoadPlan(
        concurrency=1,
        requests=20,
        duration=0.1,
        triggers=(Trigger(19, lambda: None, "late"),),
    )
    (never,) = run_local(LoadTarget(base + "/sleep/0.03"), short).events
    assert never.error is not None
    assert never.error.startswith("never fired: the run completed")
    with pytest.raises(LoadError, match=r"login as 'jason' at http://127\.0\.0\.1:1/login failed"):
        run_local(LoadTarget("http://127.0.0.1:1/productpage"), LoadPlan(requests=2, user="jason"))


def test_a_trigger_whose_host_closed_stdin_is_an_event_error(
    server: tuple[str, type[_Handler]],
) -> None:
    base, _ = server
    plan = LoadPlan(requests=6, concurrency=1, triggers=(Trigger(2, lambda: None, "kill"),))
    message = plan_message(LoadTarget(base + "/ok"), plan, classify_status)
    proc = subprocess.run(
        [sys.executable, "-m", "meshchaos.load.agent"],
        input=json.dumps(message).encode() + b"\n",
        capture_output=True,
        timeout=30,
        check=False,
    )
    reader = StreamReader()
    reader.feed(proc.stdout)
    ((_, event),) = reader.close().events
    assert event.error == "RuntimeError: stdin closed before the host reported the end of 'kill'"


def _catches(pid: int, sig: signal.Signals) -> bool:
    """Whether process ``pid`` has a handler for ``sig`` (Linux: SigCgt in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    return False


def test_sigterm_before_the_plan_still_ends_the_stream(tmp_path: Path) -> None:
    proc = start_agent(tmp_path)
    deadline = time.monotonic() + 10
    while not _catches(proc.pid, signal.SIGTERM):
        assert time.monotonic() < deadline, "the agent never installed its SIGTERM handler"
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    reader = StreamReader()
    reader.feed(out)
    assert reader.close().error == "interrupted: SIGTERM"
    assert proc.returncode == 1


def test_run_local_refuses_what_the_engine_refuses() -> None:
    with pytest.raises(LoadError, match=r"refusing target 'http://example\.com/'"):
        run_local(LoadTarget("http://example.com/"), LoadPlan(requests=1))
