"""The sidecars of the fake cluster: canned answers to exec in ``istio-proxy``.

``pilot-agent request GET config_dump`` answers Envoy-shaped JSON built, like a tiny
istiod, from the VirtualServices and DestinationRules stored in the fake API (routes per
host with clusters, weights, fault, timeout and retries; subset clusters with outlier
detection and pending limits). A pod in :attr:`Sidecars.stale` keeps the dump it had
when it went stale: the proxy that never receives the new config. ``GET stats`` answers
Envoy's text from :attr:`Sidecars.stats` per pod. The client's load agent answers NDJSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from fake_api import FakeKube

FAULT_TYPE = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
PORTS = {"productpage": 9080, "details": 9080, "reviews": 9080, "ratings": 9080, "httpbin": 8000}


def _secs(value: str) -> str:
    return value if value.endswith("s") else f"{value}s"


def _routes(vs: dict[str, Any], host: str, port: int, ns: str) -> list[dict[str, Any]]:
    out = []
    for http in vs["spec"].get("http", []):
        dests = http.get("route", [])
        names = [
            f"outbound|{port}|{d['destination'].get('subset', '')}|"
            f"{d['destination']['host']}.{ns}.svc.cluster.local"
            for d in dests
        ]
        if len(names) == 1:
            action: dict[str, Any] = {"cluster": names[0]}
        else:
            ws = [
                {"name": n, "weight": d.get("weight", 0)} for n, d in zip(names, dests, strict=True)
            ]
            action = {"weighted_clusters": {"clusters": [w for w in ws if w["weight"] > 0]}}
        action["timeout"] = _secs(http.get("timeout", "0s"))
        retries = http.get("retries")
        if retries is None:
            action["retry_policy"] = {"num_retries": 2}
        elif retries.get("attempts", 0) > 0:
            action["retry_policy"] = {"num_retries": retries["attempts"]}
        route: dict[str, Any] = {"match": {"prefix": "/"}, "route": action}
        fault = http.get("fault")
        if fault:
            # As istiod writes it: the typed HTTPFault, percentages per million.
            f: dict[str, Any] = {"@type": FAULT_TYPE}
            for key in ("abort", "delay"):
                if key in fault:
                    pct = fault[key].get("percentage", {}).get("value", 0)
                    f[key] = {
                        "percentage": {"numerator": int(pct * 10000), "denominator": "MILLION"}
                    }
            if "abort" in fault:
                f["abort"]["http_status"] = fault["abort"]["httpStatus"]
            if "delay" in fault:
                f["delay"]["fixed_delay"] = _secs(fault["delay"]["fixedDelay"])
            route["typed_per_filter_config"] = {"envoy.filters.http.fault": f}
        out.append(route)
    return out


def build_dump(kube: FakeKube, ns: str, version: str) -> dict[str, Any]:
    """The config_dump every sidecar of ``ns`` would hold for the stored config now."""
    vss = {
        o["spec"]["hosts"][0]: o
        for (p, s, _), o in kube.objects.items()
        if p == "virtualservices" and s == ns
    }
    drs = [o for (p, s, _), o in kube.objects.items() if p == "destinationrules" and s == ns]
    by_port: dict[int, list[dict[str, Any]]] = {}
    for host, port in PORTS.items():
        fqdn = f"{host}.{ns}.svc.cluster.local"
        vs = vss.get(host)
        routes = (
            _routes(vs, host, port, ns)
            if vs and vs["spec"].get("http")
            else [
                {
                    "match": {"prefix": "/"},
                    "route": {"cluster": f"outbound|{port}||{fqdn}", "timeout": "0s"},
                }
            ]
        )
        vh = {"name": f"{fqdn}:{port}", "domains": [f"{fqdn}:{port}", fqdn, host], "routes": routes}
        by_port.setdefault(port, []).append(vh)
    clusters = []
    for dr in drs:
        host, spec = dr["spec"]["host"], dr["spec"]
        port = PORTS[host]
        tp = spec.get("trafficPolicy", {})
        for subset in spec.get("subsets", []):
            c: dict[str, Any] = {
                "name": f"outbound|{port}|{subset['name']}|{host}.{ns}.svc.cluster.local"
            }
            if "outlierDetection" in tp:
                c["outlier_detection"] = {
                    "consecutive_5xx": tp["outlierDetection"].get("consecutive5xxErrors")
                }
            pending = tp.get("connectionPool", {}).get("http", {}).get("http1MaxPendingRequests")
            if pending is not None:
                c["circuit_breakers"] = {"thresholds": [{"max_pending_requests": pending}]}
            clusters.append({"version_info": version, "cluster": c})
    rcs = [
        {"version_info": version, "route_config": {"name": str(port), "virtual_hosts": vhs}}
        for port, vhs in sorted(by_port.items())
    ]
    return {
        "configs": [
            {
                "@type": "type.googleapis.com/envoy.admin.v3.ClustersConfigDump",
                "dynamic_active_clusters": clusters,
            },
            {
                "@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
                "dynamic_route_configs": rcs,
            },
        ]
    }


@dataclass
class Sidecars:
    kube: FakeKube
    stats: dict[str, str] = field(default_factory=dict)  # pod -> Envoy /stats text
    default_stats: str = ""
    stale: dict[str, dict[str, Any]] = field(default_factory=dict)  # pod -> frozen dump
    agent_lines: list[dict[str, Any]] = field(default_factory=list)
    agent_stdin: list[bytes] = field(default_factory=list)
    reads: int = 0
    unlisted: set[str] = field(default_factory=set)  # pods EDS has not reached yet

    def _clusters(self, ns: str) -> str:
        """Envoy's /clusters text: a ``cx_active`` line per endpoint of each default cluster
        (pods without a sidecar-ready status are still listed, as EDS lags readiness)."""
        lines = []
        for (p, s, _), pod in sorted(self.kube.objects.items()):
            app = (pod.get("metadata", {}).get("labels") or {}).get("app")
            ip = (pod.get("status") or {}).get("podIP")
            if (
                p == "pods"
                and s == ns
                and app in PORTS
                and ip
                and pod["metadata"]["name"] not in self.unlisted
            ):
                port = PORTS[app]
                lines.append(
                    f"outbound|{port}||{app}.{ns}.svc.cluster.local::{ip}:{port}::cx_active::0"
                )
        return "\n".join(lines) + "\n"

    def freeze(self, pod: str, ns: str) -> None:
        """From now on, ``pod`` keeps the config it holds (it never gets new config)."""
        self.stale[pod] = build_dump(self.kube, ns, "old")

    def __call__(
        self, pod: str, container: str, cmd: list[str], stdin: bytes
    ) -> tuple[list[bytes], bytes, int]:
        ns = next(s for (p, s, n) in self.kube.objects if p == "pods" and n == pod)
        if container == "istio-proxy" and cmd == ["pilot-agent", "request", "GET", "config_dump"]:
            self.reads += 1
            dump = self.stale.get(pod) or build_dump(self.kube, ns, f"v{len(self.kube.log)}")
            return [json.dumps(dump).encode()], b"", 0
        if container == "istio-proxy" and cmd == ["pilot-agent", "request", "GET", "clusters"]:
            return [self._clusters(ns).encode()], b"", 0
        if container == "istio-proxy" and cmd == ["pilot-agent", "request", "GET", "stats"]:
            return [self.stats.get(pod, self.default_stats).encode()], b"", 0
        if container == "client" and cmd[0] == "python":
            self.agent_stdin.append(stdin)
            return [(json.dumps(line) + "\n").encode() for line in self.agent_lines], b"", 0
        return [], f"unexpected exec {container} {cmd}\n".encode(), 127
