"""LocalMesh: Bookinfo and httpbin behind real Envoys on 127.0.0.1, configured from Istio YAML.

One process *owns* a mesh (``LocalMesh.start``): it starts and stops every process. Other
processes *attach* to it through its state dir (``LocalMesh.attach``): they can apply and
delete config and read status and stats, but not kill or scale instances, because only the
owner holds the app hosts' pipes. Config pushes are serialised by the state dir's lock.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from meshchaos.apps.catalog import DEFAULT_WORKLOADS, WorkloadSpec
from meshchaos.apps.facts import INGRESS_GATEWAY
from meshchaos.apps.host_client import AppHostClient
from meshchaos.errors import MeshError
from meshchaos.istio.model import Resource, resource_id
from meshchaos.manifests import baseline_paths
from meshchaos.mesh.base import Applied, MeshClient, ProxyStatus
from meshchaos.mesh.local import _lifecycle, xds
from meshchaos.mesh.local._launch import log_tail
from meshchaos.mesh.local.admin import AdminError, EnvoyAdmin
from meshchaos.mesh.local.state import MeshState, StateDir, is_same_process

__all__ = ["LocalMesh"]
SYNC_TIMEOUT = 10.0  # seconds for every proxy to run a pushed config


class LocalMesh:
    """The embedded local mesh (see the module docstring). Implements :class:`Mesh`."""

    backend = "local"

    def __init__(self, state_dir: StateDir, *, owner: bool) -> None:
        self._sd = state_dir
        self._owner = owner
        self._closed = False
        self._user_dir = True  # never remove a dir we did not create
        self._envoys: dict[str, subprocess.Popen[bytes]] = {}
        self._hosts: list[tuple[subprocess.Popen[str], AppHostClient]] = []
        # What the translator could not honour in the last push (e.g. a Gateway port
        # other than 8080); `meshchaos apply` prints them, as kubectl prints warnings.
        self.last_warnings: list[str] = []
        self.ready_seconds: float | None = None  # owner: start() to first 200 /productpage

    # -- construction -------------------------------------------------------------------
    @classmethod
    def start(
        cls,
        state_dir: Path | None = None,
        *,
        workloads: Sequence[WorkloadSpec] = DEFAULT_WORKLOADS,
        envoy_concurrency: int = 1,
        baseline: Sequence[Path] | None = None,
        precise_timers: bool = True,
        app_workers: int = _lifecycle.DEFAULT_APP_WORKERS,
        timeout: float = 10.0,
    ) -> LocalMesh:
        """Start a mesh and return once ``/productpage`` is served through the gateway.

        ``state_dir``: where state, logs and xDS files live; a temp dir (removed on close)
        when ``None``. ``baseline``: Istio YAML in force from the start (default: the
        Bookinfo gateway and the DestinationRules with version subsets). ``precise_timers``
        runs Envoy with ``EVENT_PRECISE_TIMER=1`` so timers do not fire ~4 ms early.
        ``envoy_concurrency``: worker threads per Envoy (1 is fastest on 2 cores; Istio's
        sidecars default to 2, which loosens circuit-breaker limits). ``app_workers``: the
        app host forks this many worker processes after importing the apps once.
        """
        if baseline is None:
            baseline = baseline_paths()
        mesh = cls(StateDir(Path("/nonexistent")), owner=True)  # replaced by _lifecycle.start
        return _lifecycle.start(
            mesh,
            state_dir,
            tuple(workloads),
            envoy_concurrency=envoy_concurrency,
            baseline=list(baseline),
            precise_timers=precise_timers,
            app_workers=app_workers,
            timeout=timeout,
        )

    @classmethod
    def attach(cls, state_dir: Path) -> LocalMesh:
        """Drive the mesh another process owns in ``state_dir`` (apply, status, stats...)."""
        sd = StateDir(state_dir)
        state = sd.load()
        if state is None or not is_same_process(state.owner_pid, state.owner_start_ticks):
            raise MeshError(
                f"no local mesh is running in {sd.path}: start one with "
                f"'meshchaos up --state-dir {state_dir}'"
            )
        return cls(sd, owner=False)

    @property
    def state_dir(self) -> Path:
        return self._sd.path

    @property
    def is_owner(self) -> bool:
        return self._owner

    def __enter__(self) -> LocalMesh:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- config ---------------------------------------------------------------------------
    def apply(self, resources: Sequence[Resource]) -> Applied:
        """Merge ``resources`` into the config in force and wait until every proxy runs it."""
        with self._sd.lock():
            state = self._load()
            current = {resource_id(r): r for r in xds.resources_of(state)}
            previous: dict[str, Resource | None] = {}
            for r in resources:
                rid = resource_id(r)
                previous.setdefault(rid, current.get(rid))
                current[rid] = r
            version = self.push(state, list(current.values()))
        return Applied(tuple(resources), previous, version)

    def delete(self, applied: Applied) -> None:
        """Restore what ``applied`` replaced (or remove what it created), then wait."""
        with self._sd.lock():
            state = self._load()
            current = {resource_id(r): r for r in xds.resources_of(state)}
            for r in applied.resources:
                rid = resource_id(r)
                prev = applied.previous.get(rid)
                if prev is None:
                    current.pop(rid, None)
                else:
                    current[rid] = prev
            self.push(state, list(current.values()))

    def resources(self) -> list[Resource]:
        return xds.resources_of(self._load())

    def push(
        self,
        state: MeshState,
        resources: Sequence[Resource],
        *,
        timeout: float = SYNC_TIMEOUT,
        fresh: bool = False,
    ) -> str:
        """Translate for every proxy, write what changed, wait for it; caller holds the lock.

        On failure the previous files are restored (under a newer version) and a
        :class:`MeshError` names the proxies that did not sync, with their log tails and
        rejection counters. On success ``state`` records ``resources`` and is saved.
        """
        state.version += 1
        version = str(state.version)
        rendered, self.last_warnings = xds.render(state, resources, version)
        admins = self._admins(state)
        # fresh: Envoys that just started have rejected nothing; skip asking each of them.
        rejected_before = {n: 0 for n in admins} if fresh else xds.rejection_counts(admins)
        expect: dict[str, xds.ExpectedVersions] = {}
        previous = {}
        for name, files in rendered.items():
            expect[name], previous[name] = xds.write_changed(self._sd.xds_dir(name), files)
        expect = {n: e for n, e in expect.items() if n in admins}
        missing = xds.wait_synced(admins, expect, timeout, rejected_before)
        if missing:
            detail = self._diagnose(state, missing)
            state.version += 1
            back = {
                name: xds.restore(self._sd.xds_dir(name), prev, str(state.version))
                for name, prev in previous.items()
            }
            self._sd.save(state)  # the version moved on; the resources did not change
            xds.wait_synced(admins, {n: e for n, e in back.items() if n in admins}, timeout)
            raise MeshError(
                f"config version {version} was rejected by or not running on "
                f"{', '.join(missing)} (deadline {timeout:.0f} s); rolled back to the previous "
                f"config.\n{detail}"
            )
        state.resources = [{"source": r.source, "raw": r.raw} for r in resources]
        self._sd.save(state)
        return version

    def _diagnose(self, state: MeshState, names: Sequence[str]) -> str:
        lines = []
        for name in names[:3]:
            rec = state.proxies[name]
            try:
                rejected = EnvoyAdmin(rec.admin).rejections() or "none"
            except AdminError as exc:
                rejected = f"admin unreachable ({exc})"
            lines.append(f"  {name}: update_rejected: {rejected}; log tail:")
            lines.append(log_tail(self._sd.proxy_dir(name) / "envoy.log"))
        return "\n".join(lines)

    # -- queries ----------------------------------------------------------------------------
    def gateway_url(self) -> str:
        url = self._load().mesh_json()["gateway_url"]
        return str(url)

    def client(self, workload: str = "client") -> MeshClient:
        """The in-mesh client ``workload`` (instance 0): its sidecar outbound listener."""
        state = self._load()
        rec = state.proxies.get(f"{workload}-0")
        if rec is None or "outbound" not in rec.listeners:
            known = sorted({p.workload for p in state.proxies.values() if p.workload})
            raise MeshError(f"no running workload {workload!r}; running: {', '.join(known)}")
        return MeshClient(workload, f"http://127.0.0.1:{rec.listeners['outbound']}")

    def proxy_stats(self, workload: str) -> dict[str, int]:
        """Counters summed over the live instances of ``workload`` (or the gateway)."""
        state = self._load()
        recs = [
            p
            for p in state.proxies.values()
            if p.alive
            and (
                p.workload == workload or (workload == INGRESS_GATEWAY.name and p.role == "gateway")
            )
        ]
        if not recs:
            raise MeshError(f"no live proxy of workload {workload!r}")
        total: dict[str, int] = {}
        for rec in recs:
            for name, value in EnvoyAdmin(rec.admin).stats().items():
                total[name] = total.get(name, 0) + value
        return total

    def status(self) -> list[ProxyStatus]:
        """Every proxy, the config version it runs and whether that is the latest written."""
        state = self._load()
        out = []
        for name in sorted(state.proxies):
            rec = state.proxies[name]
            alive = rec.alive and is_same_process(rec.pid, rec.start_ticks)
            version, synced = "", False
            if alive:
                with contextlib.suppress(AdminError, ValueError):
                    admin = EnvoyAdmin(rec.admin, timeout=1.0)
                    version = admin.sync_versions().newest
                    synced = xds.is_synced(admin, xds.written_versions(self._sd.xds_dir(name)))
            out.append(
                ProxyStatus(
                    name,
                    rec.workload or INGRESS_GATEWAY.name,
                    version,
                    synced,
                    alive,
                    rec.admin_url if rec.admin else None,
                )
            )
        return out

    def app_records(self, instance: str) -> list[dict[str, object]]:
        """What app instance ``instance`` (e.g. ``httpbin-v2-0``) recorded (owner only)."""
        rec = self._require_owner("app_records").proxies.get(instance)
        if rec is None or rec.host is None:
            raise MeshError(f"no app instance {instance!r}")
        return list(self._hosts[rec.host][1].records(instance))

    # -- chaos (owner only) -----------------------------------------------------------------
    def kill(self, workload: str, instance: int = 0) -> None:
        with self._sd.lock():
            _lifecycle.kill(self, self._require_owner("kill"), f"{workload}-{instance}")

    def restart(self, workload: str, instance: int = 0) -> None:
        with self._sd.lock():
            _lifecycle.restart(self, self._require_owner("restart"), f"{workload}-{instance}")

    def scale(self, workload: str, replicas: int) -> None:
        if replicas < 0:
            raise MeshError(f"replicas must be >= 0, got {replicas}")
        with self._sd.lock():
            _lifecycle.scale(self, self._require_owner("scale"), workload, replicas)

    def close(self) -> None:
        """Owner: stop every process and remove the state (idempotent). Attached: no-op."""
        if self._closed:
            return
        self._closed = True
        if self._owner:
            _lifecycle.teardown(self)

    # -- helpers shared with _lifecycle ---------------------------------------------------------
    def _load(self) -> MeshState:
        state = self._sd.load()
        if state is None:
            raise MeshError(f"the local mesh in {self._sd.path} is gone (no state.json)")
        return state

    def _require_owner(self, what: str) -> MeshState:
        if not self._owner:
            raise MeshError(
                f"{what} needs the process that started the mesh; this one is attached "
                f"to {self._sd.path}"
            )
        if self._closed:
            raise MeshError(f"{what}: the mesh is closed")
        return self._load()

    def _admins(self, state: MeshState) -> Mapping[str, EnvoyAdmin]:
        return {n: EnvoyAdmin(r.admin) for n, r in state.proxies.items() if r.alive and r.admin}

    def wait_until(self, what: str, check: Callable[[], bool], timeout: float) -> None:
        """Poll ``check()`` until it returns true, else raise MeshError naming ``what``."""
        deadline = time.monotonic() + timeout
        delay = 0.005
        while not check():
            if time.monotonic() >= deadline:
                raise MeshError(f"{what}: not reached within {timeout:.0f} s")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.1)
