"""Launch the Envoys of proxy records (bootstrap + placeholder xDS), find their ports, and
the readiness probes of a mesh start (``/productpage`` through the gateway, an app behind
its sidecar).

Nothing here waits serially per process: callers spawn everything, then ``discover`` polls
all new Envoys at once until each has written its admin address and bound its listeners.
Every wait has a deadline.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from meshchaos.apps.catalog import WorkloadSpec
from meshchaos.errors import MeshError
from meshchaos.mesh.local.admin import AdminError, EnvoyAdmin
from meshchaos.mesh.local.state import ProxyRecord, StateDir, proc_start_ticks, write_json_atomic
from meshchaos.mesh.local.supervisor import envoy_argv, spawn
from meshchaos.mesh.local.translate import bootstrap
from meshchaos.mesh.local.xds import proxy_spec

_ROUTE_TYPE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
TITLE = b"<title>Simple Bookstore App</title>"


def log_tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file, indented, for error messages."""
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return "    (no log)"
    return "\n".join(f"    {line}" for line in text) or "    (log is empty)"


def prepare_proxy(
    sd: StateDir,
    rec: ProxyRecord,
    workloads: Sequence[WorkloadSpec],
    *,
    pinned: Mapping[str, int] | None = None,
) -> list[str]:
    """Write a proxy's bootstrap and placeholder xDS files; return its listener names.

    ``pinned``: listener name -> port to bind instead of an OS-picked one (a restarted
    instance keeps its endpoint address).
    """
    xds_dir = sd.xds_dir(rec.name)
    xds_dir.mkdir(parents=True, exist_ok=True)
    spec = proxy_spec(rec, workloads)
    boot: dict[str, Any] = bootstrap(spec, xds_dir)
    listeners = boot.get("static_resources", {}).get("listeners", [])
    # Envoy refuses to start when a file-based xDS path does not exist yet, so each gets a
    # placeholder (version "0": no clusters, empty route configs) unless one is there.
    cds = xds_dir / "cds.json"
    if not cds.exists():
        write_json_atomic(cds, {"version_info": "0", "resources": []})
    for lst in listeners:
        if pinned and lst["name"] in pinned:
            lst["address"]["socket_address"]["port_value"] = pinned[lst["name"]]
        for name, path in _rds_sources(lst):
            if not path.exists():
                write_json_atomic(
                    path, {"version_info": "0", "resources": [{"@type": _ROUTE_TYPE, "name": name}]}
                )
    write_json_atomic(sd.proxy_dir(rec.name) / "bootstrap.json", boot)
    return [str(lst["name"]) for lst in listeners]


def _rds_sources(listener: dict[str, Any]) -> list[tuple[str, Path]]:
    """(route config name, file) of every HCM in a bootstrap listener that uses RDS."""
    out = []
    for chain in listener.get("filter_chains", []):
        for f in chain.get("filters", []):
            rds = f.get("typed_config", {}).get("rds")
            if rds:
                path = rds["config_source"]["path_config_source"]["path"]
                out.append((str(rds["route_config_name"]), Path(path)))
    return out


def spawn_envoy(
    sd: StateDir, rec: ProxyRecord, *, concurrency: int, precise_timers: bool
) -> subprocess.Popen[bytes]:
    """Start the Envoy of ``rec`` (its bootstrap must be written) and record its pid."""
    pdir = sd.proxy_dir(rec.name)
    admin_path = pdir / "admin.txt"
    admin_path.unlink(missing_ok=True)
    env = dict(os.environ)
    if precise_timers:
        # libevent's default clock is CLOCK_MONOTONIC_COARSE: timers (fault delays, route
        # timeouts) fire up to ~4 ms early. The precise clock removes that (docs/ARCHITECTURE.md).
        env["EVENT_PRECISE_TIMER"] = "1"
    log = pdir / "envoy.log"
    argv = envoy_argv(pdir / "bootstrap.json", admin_path, log, concurrency=concurrency)
    proc = spawn(argv, log_path=log, env=env)
    rec.pid = proc.pid
    rec.start_ticks = proc_start_ticks(proc.pid) or 0
    rec.admin = ""
    rec.alive = True
    return proc


def discover(
    sd: StateDir,
    recs: Sequence[ProxyRecord],
    procs: Mapping[str, subprocess.Popen[bytes]],
    listeners: Mapping[str, Sequence[str]],
    *,
    timeout: float,
) -> list[str]:
    """Wait until every Envoy of ``recs`` has an admin address and all its listeners bound.

    Fills ``rec.admin`` and ``rec.listeners``. Returns the names of Envoys that exited
    (e.g. a pinned port was taken); raises :class:`MeshError` on timeout.
    """
    pending = {r.name: r for r in recs}
    exited: list[str] = []
    deadline = time.monotonic() + timeout
    delay = 0.002
    while pending:
        for name, rec in list(pending.items()):
            if procs[name].poll() is not None:
                exited.append(name)
                del pending[name]
                continue
            if not rec.admin:
                try:
                    rec.admin = (sd.proxy_dir(name) / "admin.txt").read_text().strip()
                except FileNotFoundError:
                    continue
            try:
                ports = EnvoyAdmin(rec.admin, timeout=1.0).listener_ports()
            except (AdminError, ValueError):
                continue
            if all(n in ports for n in listeners[name]):
                rec.listeners = {n: ports[n] for n in listeners[name]}
                del pending[name]
        if not pending:
            break
        if time.monotonic() >= deadline:
            name = sorted(pending)[0]
            raise MeshError(
                f"Envoy {name} did not bind its listeners within {timeout:.0f} s "
                f"(pending: {', '.join(sorted(pending))}); its log:\n"
                + log_tail(sd.proxy_dir(name) / "envoy.log")
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 0.02)
    return exited


def instance_payload(rec: ProxyRecord, spec: WorkloadSpec) -> dict[str, Any]:
    """The app host's ``start`` entry for one instance (``HOSTNAME`` as in a pod)."""
    return {
        "id": rec.name,
        "app": spec.app,
        "env": {**spec.env, "HOSTNAME": rec.name},
        "proxy": None,
    }


def get_productpage(port: int, deadline: float) -> str | None:
    """GET /productpage on ``port`` until it answers 200 with Bookinfo's title.

    Returns ``None`` once it does, else (at ``deadline``, a ``time.monotonic()`` value;
    at least one attempt) the last answer or error, for the caller's message.
    """
    last = "no answer"
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2.0)
        try:
            conn.request("GET", "/productpage")
            resp = conn.getresponse()
            body = resp.read()
            if resp.status == 200 and TITLE in body:
                return None
            last = f"HTTP {resp.status}: {body[:200]!r}"
        except (OSError, http.client.HTTPException) as exc:
            last = str(exc)
        finally:
            conn.close()
        if time.monotonic() >= deadline:
            return last
        time.sleep(0.01)


def app_answers(port: int) -> bool:
    """True when the app behind the inbound listener on ``port`` answers (any status)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        resp.read()
        # Only a response that came from the app carries the upstream service time.
        return resp.getheader("x-envoy-upstream-service-time") is not None
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def wait_until(what: str, check: Callable[[], bool], timeout: float) -> None:
    """Poll ``check()`` until it returns true, else raise MeshError naming ``what``."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while not check():
        if time.monotonic() >= deadline:
            raise MeshError(f"{what}: not reached within {timeout:.0f} s")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.1)
