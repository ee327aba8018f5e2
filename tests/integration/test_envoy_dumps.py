"""The stats and config_dump parsers against real Envoy output of the local mesh, and the
typed counters that every backend answers from the same stats text.

``MESHCHAOS_WRITE_FIXTURES=1`` also writes the trimmed dumps the unit tests read
(``tests/unit/mesh/data/``), so the fixtures are always real output of this Envoy.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _local_mesh_helpers import get

from meshchaos.errors import StatNotEmitted
from meshchaos.istio.parse import load_text
from meshchaos.manifests import load_policies
from meshchaos.mesh.base import CounterQuery, Side
from meshchaos.mesh.config_dump import parse_config_dump
from meshchaos.mesh.envoy_stats import counter_total, parse_stats
from meshchaos.mesh.local import LocalMesh
from meshchaos.mesh.local.admin import EnvoyAdmin

pytestmark = pytest.mark.integration

DATA = Path(__file__).parents[1] / "unit" / "mesh" / "data"

REVIEWS = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    fault:
      delay: {percentage: {value: 50}, fixedDelay: 0.05s}
      abort: {percentage: {value: 10}, httpStatus: 503}
    timeout: 2s
    retries: {attempts: 3, perTryTimeout: 0.5s, retryOn: "5xx,connect-failure"}
    route:
    - destination: {host: reviews, subset: v2}
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 80
    - destination: {host: reviews, subset: v3}
      weight: 20
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 7}
      http: {http1MaxPendingRequests: 3, maxRequestsPerConnection: 5, http2MaxRequests: 11,
             maxRetries: 4}
    outlierDetection: {consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 30s,
                       maxEjectionPercent: 50}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
"""
V1 = "outbound|9080|v1|reviews.default.svc.cluster.local"
JASON_REQUESTS = 60
FAILING_REQUESTS = 20  # to httpbin /status/503, retried 3 times each


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    with LocalMesh.start(tmp_path_factory.mktemp("mesh") / "state") as m:
        m.apply([*load_text(REVIEWS), *load_policies(["retries-httpbin-5xx-3"])])
        yield m


@pytest.fixture(scope="module")
def traffic(mesh: LocalMesh) -> dict[str, int]:
    """Sends jason's calls to reviews and failing calls to httpbin from the client."""
    proxy = mesh.client().proxy_url
    statuses: dict[str, int] = {}
    for _ in range(JASON_REQUESTS):
        status, _ = get(
            "http://reviews:9080", "/reviews/0", proxy=proxy, headers={"end-user": "jason"}
        )
        statuses[f"reviews {status}"] = statuses.get(f"reviews {status}", 0) + 1
    for _ in range(FAILING_REQUESTS):
        status, _ = get("http://httpbin:8000", "/status/503", proxy=proxy)
        assert status == 503
    return statuses


def _admin(mesh: LocalMesh, proxy: str) -> EnvoyAdmin:
    url = next(p.admin_url for p in mesh.status() if p.name == proxy)
    assert url is not None
    return EnvoyAdmin(url.removeprefix("http://"))


def test_config_dump_view_shows_the_policy(mesh: LocalMesh) -> None:
    dump = _admin(mesh, "client-0").get_json("/config_dump")
    view = parse_config_dump(dump)
    jason, default = view.routes["outbound"].virtual_host("reviews:9080").routes
    assert jason.match["headers"] == [{"name": "end-user", "string_match": {"exact": "jason"}}]
    assert jason.clusters == (("outbound|9080|v2|reviews.default.svc.cluster.local", 100),)
    assert jason.timeout_s == 2.0
    assert jason.fault is not None
    assert (jason.fault.delay_s, jason.fault.delay_percent) == (0.05, 50.0)
    assert (jason.fault.abort_status, jason.fault.abort_percent) == (503, 10.0)
    assert jason.retry is not None
    assert (jason.retry.retry_on, jason.retry.num_retries) == (("5xx", "connect-failure"), 3)
    assert jason.retry.per_try_timeout_s == 0.5
    assert default.clusters == (
        (V1, 80),
        ("outbound|9080|v3|reviews.default.svc.cluster.local", 20),
    )
    assert default.fault is None
    assert default.timeout_s == 0.0  # Istio's default: no route timeout
    cluster = view.clusters[V1]
    assert cluster.circuit_breakers is not None
    breakers = cluster.circuit_breakers
    assert (breakers.max_connections, breakers.max_pending_requests) == (7, 3)
    assert (breakers.max_requests, breakers.max_retries) == (11, 4)
    assert cluster.max_requests_per_connection == 5
    od = cluster.outlier_detection
    assert od is not None
    assert (od.consecutive_5xx, od.interval_s, od.base_ejection_time_s) == (2, 1.0, 30.0)
    assert od.max_ejection_percent == 50
    if os.environ.get("MESHCHAOS_WRITE_FIXTURES"):
        (DATA / "config_dump.client.json").write_text(json.dumps(_trim_dump(dump), indent=1) + "\n")


def test_typed_counters_match_what_the_client_saw(mesh: LocalMesh, traffic: dict[str, int]) -> None:
    client = ("client",)
    q_aborts = CounterQuery("fault.aborts_injected", Side.CLIENT, client)
    q_delays = CounterQuery("fault.delays_injected", Side.CLIENT, client)
    q_retry = CounterQuery("upstream_rq_retry", Side.CLIENT, client, port=8000)
    q_served = CounterQuery("upstream_rq_total", Side.SERVER, ("httpbin-v1",), port=8000)
    got = mesh.counters([q_aborts, q_delays, q_retry, q_served])
    assert got[q_aborts] == traffic.get("reviews 503", 0)  # each abort is one 503 answer
    assert 0 < got[q_delays] < JASON_REQUESTS
    assert got[q_retry] == 3 * FAILING_REQUESTS
    assert got[q_served] >= 4 * FAILING_REQUESTS  # every attempt reached httpbin v1
    # The same numbers from the raw text through the shared parser.
    text = _admin(mesh, "client-0").stats_text()
    stats = parse_stats(text)
    assert counter_total(stats, q_aborts) == got[q_aborts]
    assert counter_total(stats, q_retry) == got[q_retry]
    if os.environ.get("MESHCHAOS_WRITE_FIXTURES"):
        (DATA / "stats.client.txt").write_text(_trim_stats(text))
        server = _admin(mesh, "httpbin-v1-0").stats_text()
        (DATA / "stats.httpbin-v1.txt").write_text(_trim_stats(server))


def test_a_stat_no_proxy_emits_is_an_error_not_zero(mesh: LocalMesh) -> None:
    # Outlier detection is configured for reviews only: httpbin's clusters have no such stat.
    query = CounterQuery(
        "outlier_detection.ejections_enforced_total", Side.CLIENT, ("client",), port=8000
    )
    with pytest.raises(StatNotEmitted, match=r"no proxy emits outlier_detection\.ejections"):
        mesh.counters([query])
    reviews = CounterQuery("outlier_detection.ejections_enforced_total", Side.CLIENT, ("client",))
    assert mesh.counters([reviews])[reviews] == 0  # configured for reviews: emitted, zero


def _trim_dump(dump: dict[str, Any]) -> dict[str, Any]:
    """Routes and clusters of reviews only: the rest of a dump is 140 kB of the same."""
    out = []
    for cfg in dump["configs"]:
        kind = cfg["@type"].rsplit(".", 1)[-1]
        if kind == "RoutesConfigDump":
            rcs = []
            for rc in cfg.get("dynamic_route_configs", []):
                hosts = rc["route_config"].get("virtual_hosts", [])
                kept = [vh for vh in hosts if vh["name"].startswith("reviews")]
                rcs.append({**rc, "route_config": {**rc["route_config"], "virtual_hosts": kept}})
            out.append({**cfg, "dynamic_route_configs": rcs})
        elif kind == "ClustersConfigDump":
            active = [
                c for c in cfg["dynamic_active_clusters"] if "|reviews." in c["cluster"]["name"]
            ]
            out.append({**cfg, "dynamic_active_clusters": active})
    return {"configs": out}


_KEEP = re.compile(r"^(cluster\.(outbound\|\d+\|(v1)?\|(reviews|httpbin)\.|inbound\|)|http\.)")


def _trim_stats(text: str) -> str:
    """The lines of the reviews and httpbin clusters, the inbound cluster and the HCMs."""
    return "".join(line + "\n" for line in text.splitlines() if _KEEP.match(line))
