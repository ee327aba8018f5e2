"""``python -m meshchaos.apps.host --workers 2``: one protocol, instances over two forks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from meshchaos.apps.host_client import AppHostClient
from meshchaos.errors import MeshError


def _children(pid: int) -> set[int]:
    """Direct children of ``pid`` (from /proc)."""
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.add(int(entry))
    return out


@pytest.fixture
def host() -> Iterator[tuple[subprocess.Popen[str], AppHostClient]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "meshchaos.apps.host", "--workers", "2"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    client = AppHostClient(proc)
    yield proc, client
    client.close()


def _get(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            status: int = r.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_instances_spread_over_two_workers_behind_one_protocol(
    host: tuple[subprocess.Popen[str], AppHostClient],
) -> None:
    proc, client = host
    client.ping()
    ports = client.start(
        [
            {"id": "details-v1-0", "app": "details", "env": {}},
            {"id": "httpbin-v1-0", "app": "httpbin", "env": {}},
            {"id": "httpbin-v2-0", "app": "httpbin", "env": {}},
        ]
    )
    assert set(ports) == {"details-v1-0", "httpbin-v1-0", "httpbin-v2-0"}
    assert len(_children(proc.pid)) == 2  # two forked workers, each serving some
    assert _get(ports["details-v1-0"], "/details/0") == 200
    assert _get(ports["httpbin-v2-0"], "/status/418") == 418
    # records and stop reach the worker that owns the instance
    assert [r["path"] for r in client.records("httpbin-v2-0")] == ["/status/418"]
    client.stop(["httpbin-v2-0"])
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{ports['httpbin-v2-0']}/get", timeout=2)
    assert _get(ports["httpbin-v1-0"], "/get") == 200  # the other instances live on
    client.set_proxies({"details-v1-0": "http://127.0.0.1:9", "httpbin-v1-0": "http://127.0.0.1:9"})


def test_errors_read_as_from_a_single_host(
    host: tuple[subprocess.Popen[str], AppHostClient],
) -> None:
    _, client = host
    client.start([{"id": "ratings-v1-0", "app": "ratings", "env": {}}])
    with pytest.raises(MeshError, match="unknown instance"):
        client.stop(["nope"])
    with pytest.raises(MeshError, match="client"):
        client.start([{"id": "client-0", "app": "client", "env": {}}])


def test_workers_exit_with_the_host_on_eof() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "meshchaos.apps.host", "--workers", "2"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(json.dumps({"cmd": "ping"}) + "\n")
    proc.stdin.flush()
    assert json.loads(proc.stdout.readline()) == {"ok": True}
    workers = _children(proc.pid)
    assert len(workers) == 2
    proc.stdin.close()
    assert proc.wait(timeout=10) == 0
    deadline = time.monotonic() + 5
    while any(os.path.exists(f"/proc/{w}") for w in workers) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(os.path.exists(f"/proc/{w}") for w in workers)
    proc.stdout.close()
    assert proc.stderr is not None
    proc.stderr.close()
