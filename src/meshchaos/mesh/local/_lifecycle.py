"""The owner's side of a LocalMesh: start, instance chaos (kill/restart/scale) and teardown.

Start-up spawns every process at once (app hosts first: a Python interpreter importing
aiohttp is the slowest thing to start), then discovers ports, pushes config version "1"
to every proxy and probes ``/productpage`` through the gateway.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import http.client
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from meshchaos.apps.catalog import WorkloadSpec
from meshchaos.errors import MeshError
from meshchaos.istio.parse import load_files
from meshchaos.mesh.local import xds
from meshchaos.mesh.local._launch import (
    discover,
    instance_payload,
    log_tail,
    prepare_proxy,
    spawn_envoy,
)
from meshchaos.mesh.local.admin import EnvoyAdmin
from meshchaos.mesh.local.state import (
    HostRecord,
    MeshState,
    ProxyRecord,
    StateDir,
    is_same_process,
    proc_start_ticks,
)
from meshchaos.mesh.local.supervisor import kill_group, spawn_app_host, sweep

if TYPE_CHECKING:
    from meshchaos.mesh.local.mesh import LocalMesh

GATEWAY = "istio-ingressgateway"
TITLE = b"<title>Simple Bookstore App</title>"

_LIVE: set[LocalMesh] = set()
_registry_lock = threading.Lock()
_hooks_installed = False


# Worker processes of the app host: one per core of the machines we measure on (2).
DEFAULT_APP_WORKERS = 2


def _has_app(spec: WorkloadSpec) -> bool:
    return spec.app != "client"  # the in-mesh client is a bare sidecar


def _spec(state: MeshState, workload: str | None) -> WorkloadSpec:
    for w in state.workloads:
        if w.name == workload:
            return w
    raise MeshError(
        f"unknown workload {workload!r}; known: " + ", ".join(w.name for w in state.workloads)
    )


def start(
    mesh: LocalMesh,
    state_dir: Path | None,
    workloads: tuple[WorkloadSpec, ...],
    *,
    envoy_concurrency: int,
    baseline: Sequence[Path],
    precise_timers: bool,
    app_workers: int,
    timeout: float,
) -> LocalMesh:
    """Bring up ``mesh`` (see :meth:`LocalMesh.start`)."""
    t0 = time.monotonic()
    resources = load_files(list(baseline))  # invalid baseline: fail before starting anything
    user_dir = state_dir is not None
    path = state_dir if state_dir is not None else Path(tempfile.mkdtemp(prefix="meshchaos-"))
    sd = StateDir(path)
    mesh._sd = sd
    mesh._user_dir = user_dir
    with sd.lock():
        old = sd.load()
        if old is not None and is_same_process(old.owner_pid, old.owner_start_ticks):
            raise MeshError(
                f"a local mesh (pid {old.owner_pid}) already runs in {sd.path}; stop it with "
                f"'meshchaos down --state-dir {sd.path}' or use another --state-dir"
            )
        sweep(sd, old)
        sd.clear(remove_dir=False, keep_lock=True)
        state = MeshState(
            owner_pid=os.getpid(),
            owner_start_ticks=proc_start_ticks(os.getpid()) or 0,
            workloads=list(workloads),
            envoy_concurrency=envoy_concurrency,
            user_dir=user_dir,
        )
        state.proxies[GATEWAY] = ProxyRecord(GATEWAY, "gateway", None, 0)
        for w in workloads:
            for i in range(w.replicas):
                state.proxies[f"{w.name}-{i}"] = ProxyRecord(f"{w.name}-{i}", "sidecar", w.name, i)
        _register(mesh)
        try:
            _raise_exited(
                mesh,
                _bring_up(
                    mesh,
                    state,
                    list(state.proxies.values()),
                    app_workers=app_workers,
                    precise_timers=precise_timers,
                    timeout=timeout,
                ),
            )
            mesh.push(state, resources, timeout=timeout, fresh=True)
            _probe_productpage(mesh, state, t0 + timeout)
        except BaseException:
            teardown(mesh)
            raise
    mesh.ready_seconds = time.monotonic() - t0
    return mesh


def _bring_up(
    mesh: LocalMesh,
    state: MeshState,
    recs: list[ProxyRecord],
    *,
    app_workers: int = DEFAULT_APP_WORKERS,
    precise_timers: bool = True,
    timeout: float = 10.0,
    pinned: dict[str, int] | None = None,
    start_apps: bool = True,
) -> list[str]:
    """Start the apps and Envoys of ``recs`` at once; fill in pids, ports and app ports.

    Returns the names of Envoys that exited while starting (none, normally).
    """
    sd = mesh._sd
    specs = {r.name: _spec(state, r.workload) for r in recs if r.workload}
    with_app = [r for r in recs if r.name in specs and _has_app(specs[r.name])]
    to_start = with_app if start_apps else []
    # One host process, forking app_workers workers after a single import of aiohttp
    # and the apps (an import is ~0.4 s of CPU on a mesh start).
    wanted_hosts = 1 if with_app else 0
    while len(mesh._hosts) < wanted_hosts:
        client = spawn_app_host(min(max(app_workers, 1), len(with_app)), state_dir=sd.path)
        proc = client.process
        mesh._hosts.append((proc, client))
        state.hosts.append(HostRecord(len(state.hosts), proc.pid, proc_start_ticks(proc.pid) or 0))
    for rec in with_app:  # the host's workers spread its instances over the cores
        if rec.host is None:
            rec.host = 0
    listeners = {r.name: prepare_proxy(sd, r, state.workloads, pinned=pinned) for r in recs}
    for r in recs:
        mesh._envoys[r.name] = spawn_envoy(
            sd, r, concurrency=state.envoy_concurrency, precise_timers=precise_timers
        )
    sd.save(state)  # pids on disk from now on, so a crash can be swept
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(len(mesh._hosts), 1)) as pool:
        futures = {
            i: pool.submit(
                client.start, [instance_payload(r, specs[r.name]) for r in to_start if r.host == i]
            )
            for i, (_, client) in enumerate(mesh._hosts)
            if any(r.host == i for r in to_start)
        }
        exited = discover(sd, recs, mesh._envoys, listeners, timeout=timeout)
        for i, fut in futures.items():
            try:
                ports = fut.result(timeout=timeout)
            except concurrent.futures.TimeoutError:
                raise MeshError(
                    f"app host {i} did not start its apps within {timeout:.0f} s; "
                    f"its stderr:\n{mesh._hosts[i][1].stderr_tail()}"
                ) from None
            for r in to_start:
                if r.host == i:
                    r.app_port = int(ports[r.name])
    for i, (_, client) in enumerate(mesh._hosts):
        proxies = {
            r.name: f"http://127.0.0.1:{r.listeners['outbound']}" for r in with_app if r.host == i
        }
        if proxies:
            client.set_proxies(proxies)
    sd.save(state)
    return exited


def _raise_exited(mesh: LocalMesh, exited: Sequence[str]) -> None:
    if exited:
        raise MeshError(
            f"Envoy {exited[0]} exited while starting; its log:\n"
            + log_tail(mesh._sd.proxy_dir(exited[0]) / "envoy.log")
        )


def _probe_productpage(mesh: LocalMesh, state: MeshState, deadline: float) -> None:
    """GET /productpage through the gateway until it answers 200 with Bookinfo's title."""
    port = state.proxies[GATEWAY].listeners["http.8080"]
    last = "no answer"
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2.0)
        try:
            conn.request("GET", "/productpage")
            resp = conn.getresponse()
            body = resp.read()
            if resp.status == 200 and TITLE in body:
                return
            last = f"HTTP {resp.status}: {body[:200]!r}"
        except (OSError, http.client.HTTPException) as exc:
            last = str(exc)
        finally:
            conn.close()
        if time.monotonic() >= deadline:
            break
        time.sleep(0.01)
    dead = [n for n, p in mesh._envoys.items() if p.poll() is not None]
    hosts = [i for i, (p, _) in enumerate(mesh._hosts) if p.poll() is not None]
    if dead:
        log = mesh._sd.proxy_dir(dead[0]) / "envoy.log"
        where = f"Envoy {dead[0]} died; its log:\n{log_tail(log)}"
    elif hosts:
        where = f"app host {hosts[0]} died; its stderr:\n{mesh._hosts[hosts[0]][1].stderr_tail()}"
    else:
        where = (
            "gateway log:\n"
            + log_tail(mesh._sd.proxy_dir(GATEWAY) / "envoy.log")
            + "".join(
                f"\napp host {i} stderr:\n{c.stderr_tail()}" for i, (_, c) in enumerate(mesh._hosts)
            )
        )
    raise MeshError(f"/productpage was not served through the gateway (last: {last}); {where}")


def _stop_instance(mesh: LocalMesh, rec: ProxyRecord) -> None:
    proc = mesh._envoys.pop(rec.name, None)
    kill_group(rec.pid)
    if rec.host is not None and rec.host < len(mesh._hosts):
        with contextlib.suppress(Exception):  # the app may already be gone; the Envoy is
            mesh._hosts[rec.host][1].stop([rec.name])
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5.0)
    rec.alive = False


def kill(mesh: LocalMesh, state: MeshState, name: str) -> None:
    """SIGKILL an instance's Envoy and stop its app; its endpoint stays registered."""
    rec = _record(state, name)
    if rec.alive:
        _stop_instance(mesh, rec)
    mesh._sd.save(state)


def restart(mesh: LocalMesh, state: MeshState, name: str) -> None:
    """Start a killed instance again, on its old ports if they are free, and wait for it."""
    rec = _record(state, name)
    if rec.alive:
        _stop_instance(mesh, rec)
    pinned = dict(rec.listeners)
    resources = xds.resources_of(state)
    if _bring_up(mesh, state, [rec], pinned=pinned):  # a pinned port was taken: OS picks
        rec.listeners = {}
        _raise_exited(mesh, _bring_up(mesh, state, [rec], start_apps=False))
    rec.endpoint = True
    mesh.push(state, resources)  # new app port, maybe new endpoint: update who changed
    _wait_instance(mesh, rec)


def scale(mesh: LocalMesh, state: MeshState, workload: str, replicas: int) -> None:
    """Run ``replicas`` instances of ``workload``; waits until the mesh routes accordingly."""
    _spec(state, workload)
    current = sorted(
        (p for p in state.proxies.values() if p.workload == workload), key=lambda p: p.instance
    )
    resources = xds.resources_of(state)
    if replicas > len(current):
        new = [
            ProxyRecord(f"{workload}-{i}", "sidecar", workload, i)
            for i in range(len(current), replicas)
        ]
        for rec in new:
            state.proxies[rec.name] = rec
        _raise_exited(mesh, _bring_up(mesh, state, new))
        mesh.push(state, resources)
        for rec in new:
            _wait_instance(mesh, rec)
    elif replicas < len(current):
        victims = current[replicas:]
        for rec in victims:  # withdraw the endpoints first, then stop the instances
            rec.endpoint = False
        mesh.push(state, resources)
        for rec in victims:
            if rec.alive:
                _stop_instance(mesh, rec)
            del state.proxies[rec.name]
            shutil.rmtree(mesh._sd.proxy_dir(rec.name), ignore_errors=True)
        mesh._sd.save(state)


def _record(state: MeshState, name: str) -> ProxyRecord:
    rec = state.proxies.get(name)
    if rec is None or rec.role != "sidecar":
        known = sorted(n for n, p in state.proxies.items() if p.role == "sidecar")
        raise MeshError(f"no instance {name!r}; instances: {', '.join(known)}")
    return rec


def _wait_instance(mesh: LocalMesh, rec: ProxyRecord) -> None:
    """Wait until ``rec``'s Envoy runs its files and (with an app) its app answers inbound."""
    admin = EnvoyAdmin(rec.admin)
    expect = {rec.name: xds.written_expectation(mesh._sd.xds_dir(rec.name))}
    if xds.wait_synced({rec.name: admin}, expect, 10.0):
        raise MeshError(
            f"restarted {rec.name} did not load its config; its log:\n"
            + log_tail(mesh._sd.proxy_dir(rec.name) / "envoy.log")
        )
    if "inbound" in rec.listeners and rec.host is not None:
        mesh.wait_until(
            f"{rec.name} serving on its inbound listener",
            lambda: _app_answers(rec.listeners["inbound"]),
            10.0,
        )


def _app_answers(port: int) -> bool:
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


def teardown(mesh: LocalMesh) -> None:
    """Stop every process of ``mesh`` and remove (or empty) its state dir."""
    _unregister(mesh)
    # SIGKILL everything at once: Envoys and app hosts hold nothing worth flushing, and a
    # graceful aiohttp shutdown costs ~0.3 s per host.
    pids = [p.pid for p in mesh._envoys.values()] + [p.pid for p, _ in mesh._hosts]
    for pid in pids:
        kill_group(pid)
    for _, client in mesh._hosts:  # reaps the host, joins its reader threads, closes pipes
        with contextlib.suppress(Exception):
            client.close(timeout=3.0)
    for proc in mesh._envoys.values():
        try:
            proc.wait(timeout=3.0)
        except subprocess.TimeoutExpired:
            kill_group(proc.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=2.0)
    mesh._envoys.clear()
    mesh._hosts.clear()
    state = mesh._sd.load()
    if state is not None:
        sweep(mesh._sd, state)  # children this object lost track of (should be none)
    mesh._sd.clear(remove_dir=not mesh._user_dir)


def _close_all() -> None:
    with _registry_lock:
        meshes = list(_LIVE)
    for mesh in meshes:
        with contextlib.suppress(Exception):
            mesh.close()


def _on_sigterm(signum: int, frame: object) -> None:
    # Tear down, then die of SIGTERM as if we had not handled it.
    _close_all()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _register(mesh: LocalMesh) -> None:
    global _hooks_installed
    with _registry_lock:
        _LIVE.add(mesh)
        if _hooks_installed:
            return
        _hooks_installed = True
    atexit.register(_close_all)
    # Only the main thread may set handlers; never replace a handler someone else set.
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _on_sigterm)


def _unregister(mesh: LocalMesh) -> None:
    with _registry_lock:
        _LIVE.discard(mesh)
