"""Reading sidecars through exec (``stats``, ``config_dump``), and waiting until they run
given content.

``istioctl proxy-status`` SYNCED only says a proxy acked whatever istiod last sent, not
that our change was in it (KUBE_BACKEND.md T5), so the barrier is content: each affected
sidecar's ``pilot-agent request GET config_dump`` (Envoy admin, through exec in its
``istio-proxy`` container) must satisfy every :class:`~meshchaos.mesh.kube.expect.Expectation`
on :data:`CONVERGE` reads in a row, as Istio's own tests converge. A proxy that never
shows it by the deadline raises :class:`ConfigNotSynced` naming the proxy, the
expectation and what the proxy shows instead.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from meshchaos.errors import MeshError, StatNotEmitted
from meshchaos.mesh.base import CounterQuery, ProxyStatus
from meshchaos.mesh.config_dump import parse_config_dump
from meshchaos.mesh.envoy_stats import counter_total, parse_stats
from meshchaos.mesh.kube.api import KubeApi
from meshchaos.mesh.kube.expect import Expectation

__all__ = [
    "CONVERGE",
    "ConfigNotSynced",
    "config_dump",
    "parse_dump",
    "pod_ips",
    "read_stats",
    "statuses",
    "sum_counters",
    "wait_for_config",
    "wait_for_endpoints",
]

SIDECAR = "istio-proxy"
CONVERGE = 2
POLL_S = 0.2
EXEC_DEADLINE_S = 30.0


class ConfigNotSynced(MeshError):
    """A sidecar did not show the applied content by the deadline."""

    def __init__(self, proxy: str, what: str, shows: str, deadline: float) -> None:
        self.proxy = proxy
        super().__init__(
            f"proxy {proxy} does not show {what} within {deadline:g} s; it shows: {shows}"
        )


def parse_dump(obj: Mapping[str, Any]) -> Any:
    """The one call into the protocol's ``config_dump`` parser."""
    return parse_config_dump(obj)


def read_stats(
    api: KubeApi,
    namespace: str,
    pod: str,
    *,
    only_namespace: str | None = None,
    deadline: float = EXEC_DEADLINE_S,
) -> dict[str, int]:
    """One sidecar's ``/stats``, parsed by :func:`meshchaos.mesh.envoy_stats.parse_stats`.
    ``only_namespace``: drop outbound-cluster stats of services in other namespaces (a
    gateway that serves several runs)."""
    cmd = ["pilot-agent", "request", "GET", "stats"]
    res = api.exec(pod, namespace, SIDECAR, cmd, deadline=deadline)
    if res.returncode != 0:
        why = res.stderr.strip()[-300:]
        raise MeshError(f"stats of {namespace}/{pod}: exit code {res.returncode}: {why}")
    stats: dict[str, int] = parse_stats(res.stdout.decode())
    if only_namespace is None:
        return stats
    mine = f".{only_namespace}.svc."
    return {k: v for k, v in stats.items() if not k.startswith("cluster.outbound|") or mine in k}


def config_dump(
    api: KubeApi, namespace: str, pod: str, *, deadline: float = EXEC_DEADLINE_S
) -> Any:
    """One sidecar's parsed config_dump."""
    cmd = ["pilot-agent", "request", "GET", "config_dump"]
    res = api.exec(pod, namespace, SIDECAR, cmd, deadline=deadline)
    where = f"{namespace}/{pod}"
    if res.returncode != 0:
        raise MeshError(
            f"config_dump of {where}: exit code {res.returncode}: {res.stderr.strip()[-300:]}"
        )
    try:
        obj = json.loads(res.stdout)
    except ValueError as exc:
        raise MeshError(f"config_dump of {where}: not JSON ({exc})") from None
    return parse_dump(obj)


def wait_for_config(
    api: KubeApi,
    namespace: str,
    wanted: Mapping[str, Sequence[Expectation]],
    *,
    deadline: float,
    poll: float = POLL_S,
    converge: int = CONVERGE,
) -> float:
    """Wait until each pod in ``wanted`` (pod name -> expectations) satisfies all of its
    expectations ``converge`` times in a row; the seconds it took."""
    t0 = time.monotonic()
    streak = dict.fromkeys(wanted, 0)
    last: dict[str, tuple[str, str]] = {}
    while True:
        for pod, exps in wanted.items():
            if streak[pod] >= converge:
                continue
            left = max(1.0, deadline - (time.monotonic() - t0))
            view = config_dump(api, namespace, pod, deadline=min(EXEC_DEADLINE_S, left))
            failed = next(((e.what, s) for e in exps if (s := e.check(view)) is not None), None)
            if failed is None:
                streak[pod] += 1
            else:
                streak[pod] = 0
                last[pod] = failed
        if all(n >= converge for n in streak.values()):
            return time.monotonic() - t0
        if time.monotonic() - t0 >= deadline:
            pod = next(p for p, n in streak.items() if n < converge)
            what, shows = last.get(pod, ("the new config", "it only just converged"))
            raise ConfigNotSynced(f"{namespace}/{pod}", what, shows, deadline)
        time.sleep(poll)  # polling the proxies' own state, bounded by the deadline


def _ready(pod: dict[str, Any]) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def statuses(api: KubeApi, namespace: str, pods: Sequence[dict[str, Any]]) -> list[ProxyStatus]:
    """A :class:`ProxyStatus` per pod: its workload (``<app>-<version>``, or ``client``),
    the newest route config version its sidecar holds, and whether it is Ready."""
    out: list[ProxyStatus] = []
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        name = pod["metadata"]["name"]
        labels = pod["metadata"].get("labels") or {}
        app = labels.get("app", "")
        workload = app if app == "client" else f"{app}-{labels.get('version')}"
        alive, version = _ready(pod), ""
        if alive:
            try:
                view = config_dump(api, namespace, name)
                version = max((rc.version for rc in view.routes.values()), default="")
            except MeshError:
                alive = False
        out.append(ProxyStatus(name, workload, version, bool(version), alive))
    return out


def sum_counters(
    queries: Sequence[CounterQuery],
    read: Callable[[str], list[dict[str, int]]],
    every_workload: Callable[..., list[str]],
) -> dict[Any, int]:
    """Each query's stat summed over the replicas' stats ``read(workload)`` returns, matched
    by the protocol's ``envoy_stats.counter_total``; ``StatNotEmitted`` when no replica
    of the asked workloads (``every_workload(with_gateway=...)`` when none are named)
    emits it: a missing stat is never a zero (T3)."""
    not_emitted = StatNotEmitted
    out: dict[Any, int] = {}
    for q in queries:
        server = str(getattr(q.side, "value", q.side)) == "server"
        names = (
            list(q.workloads)
            if q.workloads is not None
            else every_workload(with_gateway=not server)
        )
        total: int | None = None
        for workload in names:
            for stats in read(workload):
                value = counter_total(stats, q)
                if value is not None:
                    total = (total or 0) + int(value)
        if total is None:
            raise not_emitted(
                f"no proxy of {', '.join(names) or 'no workload'} emits {q.name} "
                f"({'server' if server else 'client'} side): the sidecars' proxyStatsMatcher "
                "leaves it out, or nothing configures it"
            )
        out[q] = total
    return out


def pod_ips(pods: Sequence[dict[str, Any]]) -> set[str]:
    return {str(p["status"]["podIP"]) for p in pods if (p.get("status") or {}).get("podIP")}


def endpoints(api: KubeApi, namespace: str, pod: str, cluster: str) -> set[str]:
    """The host addresses a sidecar's ``cluster`` has (Envoy admin ``/clusters`` text:
    ``<cluster>::<ip>:<port>::<field>::<value>``)."""
    cmd = ["pilot-agent", "request", "GET", "clusters"]
    res = api.exec(pod, namespace, SIDECAR, cmd, deadline=EXEC_DEADLINE_S)
    if res.returncode != 0:
        raise MeshError(f"clusters of {namespace}/{pod}: exit code {res.returncode}")
    out = set()
    for line in res.stdout.decode().splitlines():
        name, _, rest = line.partition("::")
        if name == cluster and rest:
            out.add(rest.split("::", 1)[0].rpartition(":")[0])
    return out


def wait_for_endpoints(
    api: KubeApi,
    namespace: str,
    pod: str,
    cluster: str,
    *,
    present: set[str],
    absent: set[str],
    deadline: float,
    poll: float = POLL_S,
) -> float:
    """Wait until ``pod``'s sidecar has every address of ``present`` in ``cluster`` and
    none of ``absent`` (EDS follows a scale with its own lag); the seconds it took."""
    t0 = time.monotonic()
    while True:
        got = endpoints(api, namespace, pod, cluster)
        if present <= got and not (absent & got):
            return time.monotonic() - t0
        if time.monotonic() - t0 >= deadline:
            raise MeshError(
                f"{namespace}/{pod}'s sidecar does not list the endpoints of {cluster} within "
                f"{deadline:g} s: missing {sorted(present - got)}, stale {sorted(absent & got)}"
            )
        time.sleep(poll)  # polling the proxy's own state, bounded by the deadline
