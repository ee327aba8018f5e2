"""LocalRuntime: the processes of one local mesh (Envoys and app hosts), owned by this process.

It starts them, kills, restarts and scales instances, and tears everything down on
``close``, at interpreter exit and on SIGTERM. :class:`~meshchaos.mesh.local.mesh.LocalMesh`
composes one when it owns the mesh; an attached LocalMesh has none.

Start-up spawns every process at once (app hosts first: a Python interpreter importing
aiohttp is the slowest thing to start), then discovers ports, pushes the baseline config
to every proxy and probes ``/productpage`` through the gateway.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from meshchaos.apps.catalog import WorkloadSpec
from meshchaos.apps.facts import INGRESS_GATEWAY
from meshchaos.apps.host_client import AppHostClient
from meshchaos.errors import MeshError
from meshchaos.istio.model import Resource
from meshchaos.mesh.local import xds
from meshchaos.mesh.local._exit import close_at_exit, forget_at_exit
from meshchaos.mesh.local._launch import (
    app_answers,
    discover,
    get_productpage,
    instance_payload,
    log_tail,
    prepare_proxy,
    spawn_envoy,
    wait_until,
)
from meshchaos.mesh.local._push import push
from meshchaos.mesh.local.admin import EnvoyAdmin
from meshchaos.mesh.local.service_registry import GATEWAY_LISTENER
from meshchaos.mesh.local.state import (
    HostRecord,
    MeshState,
    ProxyRecord,
    StateDir,
    is_same_process,
    proc_start_ticks,
)
from meshchaos.mesh.local.supervisor import kill_group, spawn_app_host, sweep

__all__ = ["DEFAULT_APP_WORKERS", "LocalRuntime"]

# Worker processes of the app host: one per core of the machines we measure on (2).
DEFAULT_APP_WORKERS = 2
INSTANCE_TIMEOUT = 10.0  # seconds for a restarted or added instance to serve


class LocalRuntime:
    """The owner's processes of one local mesh in ``state_dir``; see the module docstring.

    Build one with :meth:`start`. Every method but :meth:`close` takes the state dir's lock
    itself; none may be called while holding it.
    """

    def __init__(
        self,
        state_dir: StateDir,
        *,
        remove_dir: bool,
        precise_timers: bool = True,
        app_workers: int = DEFAULT_APP_WORKERS,
    ) -> None:
        self._sd = state_dir
        self._remove_dir = remove_dir  # a temp dir we created; a user's dir is only emptied
        self._precise_timers = precise_timers
        self._app_workers = max(app_workers, 1)
        self._envoys: dict[str, subprocess.Popen[bytes]] = {}
        self._hosts: list[AppHostClient] = []
        self._closed = False

    @classmethod
    def start(
        cls,
        state_dir: Path | None,
        workloads: Sequence[WorkloadSpec],
        resources: Sequence[Resource],
        *,
        envoy_concurrency: int = 1,
        precise_timers: bool = True,
        app_workers: int = DEFAULT_APP_WORKERS,
        timeout: float = 10.0,
    ) -> LocalRuntime:
        """Start a mesh running ``resources``; return once the gateway serves /productpage.

        ``state_dir``: a temp dir (removed on close) when ``None``. The parameters are
        those of :meth:`LocalMesh.start`. On any failure everything started is stopped.
        """
        remove_dir = state_dir is None
        path = Path(tempfile.mkdtemp(prefix="meshchaos-")) if state_dir is None else state_dir
        runtime = cls(
            StateDir(path),
            remove_dir=remove_dir,
            precise_timers=precise_timers,
            app_workers=app_workers,
        )
        runtime._start(list(workloads), resources, envoy_concurrency, timeout)
        return runtime

    @property
    def state_dir(self) -> StateDir:
        return self._sd

    @property
    def closed(self) -> bool:
        return self._closed

    def _start(
        self,
        workloads: list[WorkloadSpec],
        resources: Sequence[Resource],
        envoy_concurrency: int,
        timeout: float,
    ) -> None:
        sd = self._sd
        deadline = time.monotonic() + timeout
        with sd.lock():
            old = sd.load()  # an unreadable or foreign state.json raises: never overwrite it
            if old is not None and is_same_process(old.owner_pid, old.owner_start_ticks):
                raise MeshError(
                    f"a local mesh (pid {old.owner_pid}) already runs in {sd.path}; stop it "
                    f"with 'meshchaos down --state-dir {sd.path}' or use another --state-dir"
                )
            sweep(sd, old)
            sd.clear(remove_dir=False, keep_lock=True)
            state = MeshState(
                owner_pid=os.getpid(),
                owner_start_ticks=proc_start_ticks(os.getpid()) or 0,
                workloads=workloads,
                envoy_concurrency=envoy_concurrency,
                user_dir=not self._remove_dir,
            )
            state.proxies[INGRESS_GATEWAY.name] = ProxyRecord(
                INGRESS_GATEWAY.name, "gateway", None, 0
            )
            for w in workloads:
                for i in range(w.replicas):
                    name = f"{w.name}-{i}"
                    state.proxies[name] = ProxyRecord(name, "sidecar", w.name, i)
            close_at_exit(self)
            try:
                exited = self._bring_up(state, list(state.proxies.values()), timeout=timeout)
                self._raise_exited(exited)
                push(sd, state, resources, timeout=timeout, fresh=True)
                self._probe_productpage(state, deadline)
            except BaseException:
                self.close()
                raise

    # -- instance chaos -------------------------------------------------------------------
    def kill(self, name: str) -> None:
        """SIGKILL an instance's Envoy and stop its app; its endpoint stays registered."""
        with self._sd.lock():
            state = self._load("kill")
            rec = _record(state, name)
            if rec.alive:
                self._stop_instance(rec)
            self._sd.save(state)

    def restart(self, name: str) -> None:
        """Start a killed instance again, on its old ports if they are free, and wait for it."""
        with self._sd.lock():
            state = self._load("restart")
            rec = _record(state, name)
            if rec.alive:
                self._stop_instance(rec)
            pinned = dict(rec.listeners)
            resources = xds.resources_of(state)
            if self._bring_up(state, [rec], pinned=pinned):  # a pinned port was taken: OS picks
                rec.listeners = {}
                self._raise_exited(self._bring_up(state, [rec], start_apps=False))
            rec.endpoint = True
            push(self._sd, state, resources)  # new app port, maybe new endpoint
            self._wait_instance(rec)

    def scale(self, workload: str, replicas: int) -> None:
        """Run ``replicas`` instances of ``workload``; waits until the mesh routes accordingly."""
        if replicas < 0:
            raise MeshError(f"replicas must be >= 0, got {replicas}")
        with self._sd.lock():
            state = self._load("scale")
            _spec(state, workload)
            current = sorted(
                (p for p in state.proxies.values() if p.workload == workload),
                key=lambda p: p.instance,
            )
            resources = xds.resources_of(state)
            if replicas > len(current):
                new = [
                    ProxyRecord(f"{workload}-{i}", "sidecar", workload, i)
                    for i in range(len(current), replicas)
                ]
                for rec in new:
                    state.proxies[rec.name] = rec
                self._raise_exited(self._bring_up(state, new))
                push(self._sd, state, resources)
                for rec in new:
                    self._wait_instance(rec)
            elif replicas < len(current):
                victims = current[replicas:]
                for rec in victims:  # withdraw the endpoints first, then stop the instances
                    rec.endpoint = False
                push(self._sd, state, resources)
                for rec in victims:
                    if rec.alive:
                        self._stop_instance(rec)
                    del state.proxies[rec.name]
                    shutil.rmtree(self._sd.proxy_dir(rec.name), ignore_errors=True)
                self._sd.save(state)

    def app_records(self, instance: str) -> list[dict[str, object]]:
        """What app instance ``instance`` (e.g. ``httpbin-v2-0``) recorded."""
        with self._sd.lock():
            rec = self._load("app_records").proxies.get(instance)
        if rec is None or rec.host is None or rec.host >= len(self._hosts):
            raise MeshError(f"no app instance {instance!r}")
        return list(self._hosts[rec.host].records(instance))

    def close(self) -> None:
        """Stop every process and remove (or empty) the state dir. Idempotent."""
        if not self._closed:
            self._closed = True
            self._teardown()

    # -- starting processes -----------------------------------------------------------------
    def _bring_up(
        self,
        state: MeshState,
        recs: list[ProxyRecord],
        *,
        timeout: float = INSTANCE_TIMEOUT,
        pinned: dict[str, int] | None = None,
        start_apps: bool = True,
    ) -> list[str]:
        """Start the apps and Envoys of ``recs`` at once; fill in pids, ports and app ports.

        Returns the names of Envoys that exited while starting (none, normally).
        """
        sd = self._sd
        specs = {r.name: _spec(state, r.workload) for r in recs if r.workload}
        with_app = [r for r in recs if r.name in specs and specs[r.name].app != "client"]
        to_start = with_app if start_apps else []  # the in-mesh client is a bare sidecar
        # One host process, forking app_workers workers after a single import of aiohttp
        # and the apps (an import is ~0.4 s of CPU on a mesh start).
        if with_app and not self._hosts:
            host = spawn_app_host(min(self._app_workers, len(with_app)), state_dir=sd.path)
            self._hosts.append(host)
            pid = host.process.pid
            state.hosts.append(HostRecord(len(state.hosts), pid, proc_start_ticks(pid) or 0))
        for rec in with_app:  # the host's workers spread its instances over the cores
            if rec.host is None:
                rec.host = 0
        listeners = {r.name: prepare_proxy(sd, r, state.workloads, pinned=pinned) for r in recs}
        for r in recs:
            self._envoys[r.name] = spawn_envoy(
                sd, r, concurrency=state.envoy_concurrency, precise_timers=self._precise_timers
            )
        sd.save(state)  # pids on disk from now on, so a crash can be swept
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(len(self._hosts), 1)) as pool:
            futures = {
                i: pool.submit(
                    host.start,
                    [instance_payload(r, specs[r.name]) for r in to_start if r.host == i],
                )
                for i, host in enumerate(self._hosts)
                if any(r.host == i for r in to_start)
            }
            exited = discover(sd, recs, self._envoys, listeners, timeout=timeout)
            for i, fut in futures.items():
                try:
                    ports = fut.result(timeout=timeout)
                except concurrent.futures.TimeoutError:
                    raise MeshError(
                        f"app host {i} did not start its apps within {timeout:.0f} s; "
                        f"its stderr:\n{self._hosts[i].stderr_tail()}"
                    ) from None
                for r in to_start:
                    if r.host == i:
                        r.app_port = int(ports[r.name])
        for i, host in enumerate(self._hosts):
            proxies = {
                r.name: f"http://127.0.0.1:{r.listeners['outbound']}"
                for r in with_app
                if r.host == i
            }
            if proxies:
                host.set_proxies(proxies)
        sd.save(state)
        return exited

    def _raise_exited(self, exited: Sequence[str]) -> None:
        if exited:
            raise MeshError(
                f"Envoy {exited[0]} exited while starting; its log:\n"
                + log_tail(self._sd.proxy_dir(exited[0]) / "envoy.log")
            )

    def _probe_productpage(self, state: MeshState, deadline: float) -> None:
        """GET /productpage through the gateway until it serves Bookinfo, else explain why."""
        port = state.proxies[INGRESS_GATEWAY.name].listeners[GATEWAY_LISTENER]
        last = get_productpage(port, deadline)
        if last is None:
            return
        dead = [n for n, p in self._envoys.items() if p.poll() is not None]
        hosts = [i for i, h in enumerate(self._hosts) if h.process.poll() is not None]
        if dead:
            log = self._sd.proxy_dir(dead[0]) / "envoy.log"
            where = f"Envoy {dead[0]} died; its log:\n{log_tail(log)}"
        elif hosts:
            where = f"app host {hosts[0]} died; its stderr:\n{self._hosts[hosts[0]].stderr_tail()}"
        else:
            where = "gateway log:\n" + log_tail(
                self._sd.proxy_dir(INGRESS_GATEWAY.name) / "envoy.log"
            )
            where += "".join(
                f"\napp host {i} stderr:\n{h.stderr_tail()}" for i, h in enumerate(self._hosts)
            )
        raise MeshError(f"/productpage was not served through the gateway (last: {last}); {where}")

    def _wait_instance(self, rec: ProxyRecord) -> None:
        """Wait until ``rec``'s Envoy runs its files and (with an app) its app answers."""
        admin = EnvoyAdmin(rec.admin)
        expect = {rec.name: xds.written_versions(self._sd.xds_dir(rec.name))}
        if xds.wait_synced({rec.name: admin}, expect, INSTANCE_TIMEOUT):
            raise MeshError(
                f"restarted {rec.name} did not load its config; its log:\n"
                + log_tail(self._sd.proxy_dir(rec.name) / "envoy.log")
            )
        if "inbound" in rec.listeners and rec.host is not None:
            port = rec.listeners["inbound"]
            wait_until(
                f"{rec.name} serving on its inbound listener",
                lambda: app_answers(port),
                INSTANCE_TIMEOUT,
            )

    # -- stopping processes -----------------------------------------------------------------
    def _stop_instance(self, rec: ProxyRecord) -> None:
        proc = self._envoys.pop(rec.name, None)
        kill_group(rec.pid)
        if rec.host is not None and rec.host < len(self._hosts):
            with contextlib.suppress(MeshError):  # the app may already be gone; the Envoy is
                self._hosts[rec.host].stop([rec.name])
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5.0)
        rec.alive = False

    def _teardown(self) -> None:
        """Stop every process of this runtime and remove (or empty) its state dir."""
        forget_at_exit(self)
        # SIGKILL everything at once: Envoys and app hosts hold nothing worth flushing, and
        # a graceful aiohttp shutdown costs ~0.3 s per host.
        for pid in [p.pid for p in self._envoys.values()] + [h.process.pid for h in self._hosts]:
            kill_group(pid)
        for host in self._hosts:  # reaps the host, joins its reader threads, closes pipes
            with contextlib.suppress(Exception):
                host.close(timeout=3.0)
        for proc in self._envoys.values():
            try:
                proc.wait(timeout=3.0)
            except subprocess.TimeoutExpired:
                kill_group(proc.pid)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=2.0)
        self._envoys.clear()
        self._hosts.clear()
        with contextlib.suppress(MeshError):  # an unreadable state: nothing more to sweep
            sweep(self._sd, self._sd.load())  # children this object lost track of (none)
        self._sd.clear(remove_dir=self._remove_dir)

    def _load(self, what: str) -> MeshState:
        if self._closed:
            raise MeshError(f"{what}: the mesh is closed")
        return self._sd.load_running()


def _spec(state: MeshState, workload: str | None) -> WorkloadSpec:
    for w in state.workloads:
        if w.name == workload:
            return w
    raise MeshError(
        f"unknown workload {workload!r}; known: " + ", ".join(w.name for w in state.workloads)
    )


def _record(state: MeshState, name: str) -> ProxyRecord:
    rec = state.proxies.get(name)
    if rec is None or rec.role != "sidecar":
        known = sorted(n for n, p in state.proxies.items() if p.role == "sidecar")
        raise MeshError(f"no instance {name!r}; instances: {', '.join(known)}")
    return rec
