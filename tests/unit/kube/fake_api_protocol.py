"""Minimal test doubles for the modules other helpers build on other branches.

KubeMesh looks these up when it uses them: ``meshchaos.mesh.envoy_stats`` and
``meshchaos.mesh.config_dump`` (helper P), ``meshchaos.errors.StatNotEmitted`` and
``meshchaos.mesh.base.CounterQuery``/``Side`` (P), ``meshchaos.load.agent`` (helper A).
:func:`install` puts a double in place only where the real one is missing, so once the
lead has merged P and A these tests run against the real modules unchanged. The doubles
read the same input the real ones do: Envoy's ``/stats`` text and ``config_dump`` JSON.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import meshchaos.errors
import meshchaos.mesh.base


class _Side(StrEnum):
    CLIENT = "client"
    SERVER = "server"


@dataclass(frozen=True)
class _CounterQuery:
    name: str
    side: _Side = _Side.CLIENT
    workloads: tuple[str, ...] | None = None
    port: int | None = None


class StatNotEmitted(meshchaos.errors.MeshError):
    pass


# -- envoy_stats -----------------------------------------------------------------------------
def _parse_stats(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, value = line.rpartition(": ")
        if sep and value.strip().lstrip("-").isdigit():
            out[name] = int(value)
    return out


def _counter_total(stats: dict[str, int], query: Any) -> int | None:
    total: int | None = None
    for key, value in stats.items():
        if str(query.side) == "server":
            port = f"{query.port}" if query.port else ""
            hit = key.startswith(f"cluster.inbound|{port}") and key.endswith("." + query.name)
        elif query.name.startswith("fault."):
            hit = key.startswith("http.") and key.endswith("." + query.name)
        else:
            hit = key.startswith("cluster.outbound|") and key.endswith("." + query.name)
        if hit:
            total = (total or 0) + value
    return total


# -- config_dump -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Fault:
    abort_status: int | None = None
    delay_s: float | None = None


@dataclass(frozen=True)
class _Retry:
    num_retries: int


@dataclass(frozen=True)
class _Route:
    clusters: tuple[tuple[str, int], ...]
    timeout_s: float | None
    retry: _Retry | None
    fault: _Fault | None


@dataclass(frozen=True)
class _VHost:
    name: str
    domains: tuple[str, ...]
    routes: tuple[_Route, ...]


@dataclass(frozen=True)
class _RouteConfig:
    name: str
    version: str
    virtual_hosts: tuple[_VHost, ...]


@dataclass(frozen=True)
class _CB:
    max_pending_requests: int | None


@dataclass(frozen=True)
class _Cluster:
    name: str
    version: str
    circuit_breakers: _CB | None
    outlier_detection: dict[str, Any] | None


@dataclass(frozen=True)
class _View:
    routes: dict[str, _RouteConfig]
    clusters: dict[str, _Cluster]


def _secs(text: str | None) -> float | None:
    return None if text is None else float(text.rstrip("s"))


def _route(r: dict[str, Any]) -> _Route:
    action = r.get("route", {})
    if "weighted_clusters" in action:
        clusters = tuple(
            (c["name"], int(c["weight"])) for c in action["weighted_clusters"]["clusters"]
        )
    else:
        clusters = ((action["cluster"], 100),)
    rp = action.get("retry_policy")
    retry = _Retry(int(rp.get("num_retries", 1))) if rp else None
    f = (r.get("typed_per_filter_config") or {}).get("envoy.filters.http.fault")
    fault = None
    if f:
        abort = f.get("abort", {}).get("http_status")
        delay = _secs(f.get("delay", {}).get("fixed_delay"))
        fault = _Fault(abort, delay)
    return _Route(clusters, _secs(action.get("timeout")), retry, fault)


def _parse_config_dump(obj: dict[str, Any]) -> _View:
    routes: dict[str, _RouteConfig] = {}
    clusters: dict[str, _Cluster] = {}
    for cfg in obj.get("configs", []):
        for rc in cfg.get("dynamic_route_configs", []):
            c = rc["route_config"]
            vhs = tuple(
                _VHost(v["name"], tuple(v["domains"]), tuple(_route(r) for r in v["routes"]))
                for v in c.get("virtual_hosts", [])
            )
            routes[c["name"]] = _RouteConfig(c["name"], rc.get("version_info", ""), vhs)
        for dc in cfg.get("dynamic_active_clusters", []):
            c = dc["cluster"]
            th = (c.get("circuit_breakers") or {}).get("thresholds") or []
            cb = _CB(th[0].get("max_pending_requests")) if th else None
            clusters[c["name"]] = _Cluster(
                c["name"], dc.get("version_info", ""), cb, c.get("outlier_detection")
            )
    return _View(routes, clusters)


# -- the load agent ----------------------------------------------------------------------------
class _StreamReader:
    def __init__(self) -> None:
        self._buf = b""
        self.end: dict[str, Any] | None = None

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        out = []
        for line in lines:
            rec = json.loads(line)
            if rec["t"] == "end":
                self.end = rec
            else:
                out.append(rec)
        return out

    def close(self) -> dict[str, Any]:
        if self.end is None:
            raise meshchaos.errors.LoadError("the agent's stream ended without its end record")
        return self.end


def _samples_to_result(
    samples: list[dict[str, Any]], end: dict[str, Any], *, plan: Any, target: str
) -> Any:
    from meshchaos.load.result import LoadResult, Sample

    got = [Sample(s["start"], s["latency"], s["status"], s["outcome"]) for s in samples]
    return LoadResult(target, got, end["elapsed_s"], plan.concurrency)


def _missing(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is None
    except ModuleNotFoundError:
        return True


def install() -> list[str]:
    """Put each missing module or name in place; the names of the doubles installed."""
    installed = []
    if not hasattr(meshchaos.errors, "StatNotEmitted"):
        meshchaos.errors.StatNotEmitted = StatNotEmitted  # type: ignore[attr-defined]
        installed.append("meshchaos.errors.StatNotEmitted")
    if not hasattr(meshchaos.mesh.base, "CounterQuery"):
        meshchaos.mesh.base.CounterQuery = _CounterQuery  # type: ignore[attr-defined]
        meshchaos.mesh.base.Side = _Side  # type: ignore[attr-defined]
        installed.append("meshchaos.mesh.base.CounterQuery")
    doubles = {
        "meshchaos.mesh.envoy_stats": {
            "parse_stats": _parse_stats,
            "counter_total": _counter_total,
        },
        "meshchaos.mesh.config_dump": {"parse_config_dump": _parse_config_dump},
        "meshchaos.load.agent": {
            "agent_command": lambda: ["python", "/opt/meshchaos/agent.py"],
            "agent_files": lambda: {"agent.py": "# the load agent\n"},
            "StreamReader": _StreamReader,
            "samples_to_result": _samples_to_result,
        },
    }
    for name, attrs in doubles.items():
        if _missing(name):
            mod = types.ModuleType(name, "test double (see tests/unit/kube/fake_api_protocol.py)")
            mod.__dict__.update(attrs)
            sys.modules[name] = mod
            installed.append(name)
    return installed


INSTALLED = install()


def _plan_class() -> Any:
    """``LoadPlan`` with P's ``url`` field (where to send load); a subclass adding it
    where this branch's LoadPlan lacks it."""
    from dataclasses import dataclass as _dc
    from dataclasses import fields

    from meshchaos.load.plan import LoadPlan

    if any(f.name == "url" for f in fields(LoadPlan)):
        return LoadPlan

    @_dc(frozen=True)
    class PlanWithUrl(LoadPlan):
        url: str = "/"

    INSTALLED.append("meshchaos.load.plan.LoadPlan.url")
    return PlanWithUrl


LoadPlan: Any = _plan_class()
CounterQuery: Any = meshchaos.mesh.base.CounterQuery  # type: ignore[attr-defined]
Side: Any = meshchaos.mesh.base.Side  # type: ignore[attr-defined]
