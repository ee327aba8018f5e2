"""KubeMesh against the fake API: apply/sync/rollback, counters, instance chaos, load, close.

The fake sidecars answer with Envoy's own ``/stats`` text and ``config_dump`` JSON, read by
the real parsers (``meshchaos.mesh.envoy_stats``, ``meshchaos.mesh.config_dump``); in-mesh
load streams what the real load agent writes, read by its ``StreamReader``.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import fake_api
import fake_api_mesh
import pytest

from meshchaos.errors import ConfigInvalid, MeshError, UnknownWorkload
from meshchaos.istio import load_text
from meshchaos.load.agent import AGENT_PYTHON_FLAGS, agent_command, write_agent_files
from meshchaos.load.plan import LoadPlan, Trigger
from meshchaos.mesh.base import CounterQuery, Side
from meshchaos.mesh.kube.api import KubeApi
from meshchaos.mesh.kube.apps import deploy_apps
from meshchaos.mesh.kube.errors import KubeApiError
from meshchaos.mesh.kube.kubemesh import KubeMesh
from meshchaos.mesh.kube.safety import NotOwned, owned_labels
from meshchaos.mesh.kube.sync import ConfigNotSynced

NS, RUN = "meshchaos-r1-gw0", "r1"

DR = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
"""
VS_V2 = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v2}
"""
VS_ABORT = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - fault: {abort: {httpStatus: 503, percentage: {value: 50}}}
    route:
    - destination: {host: reviews, subset: v3}
"""


class _Gateway(BaseHTTPRequestHandler):
    hosts: list[str] = []
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        type(self).hosts.append(self.headers.get("Host", ""))
        body = b"<html>Book Reviews</html>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[str]:
    _Gateway.hosts = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[fake_api.Cluster]:
    c = fake_api.Cluster(tmp_path)
    yield c
    c.close()


@pytest.fixture
def sidecars(cluster: fake_api.Cluster) -> fake_api_mesh.Sidecars:
    s = fake_api_mesh.Sidecars(cluster.kube)
    cluster.kube.exec_handler = s
    return s


@pytest.fixture
def mesh(
    cluster: fake_api.Cluster, sidecars: fake_api_mesh.Sidecars, gateway: str
) -> Iterator[KubeMesh]:
    api = KubeApi(cluster.kubeconfig, cluster.context)
    deploy_apps(api, NS, RUN, deadline=10, agent_files={"agent.py": ""}, poll=0.02)
    m = KubeMesh(
        api,
        NS,
        gateway,
        RUN,
        None,
        owner=False,
        backend="kind",
        sync_deadline=1.5,
        poll=0.01,
        wait_deadline=5,
    )
    cluster.kube.log.clear()
    cluster.kube.queries.clear()
    yield m
    m.close()


def _pods(cluster: fake_api.Cluster, prefix: str) -> list[str]:
    return [n for n in cluster.kube.names("pods", NS) if n.startswith(prefix)]


def test_apply_dry_runs_all_then_applies_rules_before_routes_then_waits_for_content(
    mesh: KubeMesh, cluster: fake_api.Cluster, sidecars: fake_api_mesh.Sidecars, gateway: str
) -> None:
    applied = mesh.apply([*load_text(VS_V2), *load_text(DR)])
    writes = [e.replace(f"/namespaces/{NS}", "") for e in cluster.kube.writes()]
    base = "PATCH /apis/networking.istio.io/v1"
    q = "fieldManager=meshchaos&fieldValidation=Strict&force=true"
    assert writes == [
        f"{base}/virtualservices/reviews?dryRun=All&{q}",
        f"{base}/destinationrules/reviews?dryRun=All&{q}",
        f"{base}/destinationrules/reviews?{q}",
        f"{base}/virtualservices/reviews?{q}",
    ]
    execs = [e for e in cluster.kube.log if e.startswith("EXEC")]
    # The callers of reviews (productpage) and the client read their config_dump.
    assert {e.split("/")[1].rsplit("-", 1)[0] for e in execs} == {"productpage-v1", "client"}
    assert applied.previous == {
        "VirtualService default/reviews": None,
        "DestinationRule default/reviews": None,
    }
    stored = cluster.kube.objects[("virtualservices", NS, "reviews")]
    assert owned_labels(RUN).items() <= stored["metadata"]["labels"].items()
    assert _Gateway.hosts, "the probe went through the gateway"


def test_a_strict_validation_error_changes_nothing(
    mesh: KubeMesh, cluster: fake_api.Cluster
) -> None:
    cluster.kube.unknown_fields = {"subsets"}
    with pytest.raises(KubeApiError, match=r"spec\.subsets: field not declared in schema"):
        mesh.apply([*load_text(VS_V2), *load_text(DR)])
    assert not [w for w in cluster.kube.writes() if "dryRun" not in w]
    assert cluster.kube.names("virtualservices", NS) == []


def test_invalid_input_is_refused_before_any_request(
    mesh: KubeMesh, cluster: fake_api.Cluster
) -> None:
    with pytest.raises(ConfigInvalid, match="given twice in one apply"):
        mesh.apply([*load_text(VS_V2), *load_text(VS_ABORT)])
    assert cluster.kube.log == []


def test_a_sidecar_that_never_shows_the_config_is_named_and_the_apply_rolled_back(
    mesh: KubeMesh, cluster: fake_api.Cluster, sidecars: fake_api_mesh.Sidecars
) -> None:
    mesh.apply(load_text(DR))
    (stuck,) = _pods(cluster, "productpage-v1")
    sidecars.freeze(stuck, NS)
    with pytest.raises(ConfigNotSynced) as info:
        mesh.apply(load_text(VS_ABORT))
    msg = str(info.value)
    assert msg.startswith(f"proxy {NS}/{stuck} does not show VirtualService reviews's routes")
    assert "route 0: clusters ['outbound|9080||reviews" in msg
    assert info.value.__notes__ == ["; rolled back"]
    assert cluster.kube.names("virtualservices", NS) == []  # it did not exist before
    assert cluster.kube.names("destinationrules", NS) == ["reviews"]  # an earlier apply


def test_delete_restores_the_previous_version_then_removes_in_reverse_order(
    mesh: KubeMesh, cluster: fake_api.Cluster
) -> None:
    first = mesh.apply([*load_text(DR), *load_text(VS_V2)])
    second = mesh.apply(load_text(VS_ABORT))
    assert second.previous["VirtualService default/reviews"] is not None
    mesh.delete(second)
    vs = cluster.kube.objects[("virtualservices", NS, "reviews")]
    assert "fault" not in vs["spec"]["http"][0]
    cluster.kube.log.clear()
    mesh.delete(first)
    deletes = [e for e in cluster.kube.log if e.startswith("DELETE")]
    assert deletes == [
        f"DELETE /apis/networking.istio.io/v1/namespaces/{NS}/virtualservices/reviews",
        f"DELETE /apis/networking.istio.io/v1/namespaces/{NS}/destinationrules/reviews",
    ]


def test_counters_are_summed_over_replicas_and_a_missing_stat_is_an_error(
    mesh: KubeMesh, cluster: fake_api.Cluster, sidecars: fake_api_mesh.Sidecars
) -> None:
    mesh.scale("reviews-v1", 2)
    for pod in _pods(cluster, "reviews-v1"):
        sidecars.stats[pod] = (
            "cluster.inbound|9080||.upstream_rq_total: 7\n"
            "cluster.outbound|9080||ratings.x.upstream_rq_retry: 1\n"
        )
    server = CounterQuery("upstream_rq_total", Side.SERVER, ("reviews-v1",), 9080)
    client = CounterQuery("upstream_rq_retry", Side.CLIENT, ("reviews-v1",))
    assert mesh.counters([server, client]) == {server: 14, client: 2}
    missing = CounterQuery("upstream_rq_pending_overflow", Side.CLIENT, ("reviews-v1",))
    with pytest.raises(
        MeshError,
        match=r"no proxy of reviews-v1 emits upstream_rq_pending_overflow \(client side\)",
    ) as info:
        mesh.counters([missing])
    assert type(info.value).__name__ == "StatNotEmitted"


def test_kill_deletes_at_once_and_restart_waits_for_the_replacement(
    mesh: KubeMesh, cluster: fake_api.Cluster
) -> None:
    (before,) = mesh.instances("ratings-v1")
    mesh.kill(before)
    assert f"DELETE /api/v1/namespaces/{NS}/pods/{before}" in cluster.kube.log
    assert cluster.kube.queries[
        cluster.kube.log.index(f"DELETE /api/v1/namespaces/{NS}/pods/{before}")
    ]["gracePeriodSeconds"] == ["0"]
    mesh.restart(before)
    (after,) = mesh.instances("ratings-v1")
    assert after != before
    assert any(
        e.endswith("/istio-proxy pilot-agent request GET clusters") for e in cluster.kube.log
    )
    with pytest.raises(UnknownWorkload, match="no workload 'ratings-v9'"):
        mesh.instances("ratings-v9")


def test_kill_refuses_a_pod_that_is_not_the_runs(mesh: KubeMesh, cluster: fake_api.Cluster) -> None:
    cluster.kube.put("pods", {"kind": "Pod", "metadata": {"name": "intruder", "namespace": NS}})
    with pytest.raises(NotOwned):
        mesh.kill("intruder")
    assert ("pods", NS, "intruder") in cluster.kube.objects


def test_gateway_load_goes_only_to_the_reported_gateway_with_the_run_host(
    mesh: KubeMesh, gateway: str
) -> None:
    mesh.gateway_host = "r1.meshchaos.test"
    result = mesh.run_load(LoadPlan(concurrency=2, requests=6))
    assert result.count == 6
    assert set(_Gateway.hosts) == {"r1.meshchaos.test"}
    assert mesh.load_targets() == (gateway,)
    # Refused before any request is made (192.0.2.0/24 is reserved for documentation).
    with pytest.raises(MeshError, match=r"refusing load to http://192\.0\.2\.1/"):
        mesh.run_load(LoadPlan(requests=1, url="http://192.0.2.1/"))


def test_in_mesh_load_runs_the_agent_in_the_client_pod(
    mesh: KubeMesh, sidecars: fake_api_mesh.Sidecars
) -> None:
    sidecars.agent_lines = [
        {"t": "sample", "start": 0.0, "latency": 0.01, "status": 200, "outcome": "200"},
        {"t": "sample", "start": 0.01, "latency": 0.02, "status": 503, "outcome": "503"},
        {"t": "end", "sent": 2, "elapsed_s": 0.03, "error": None},
    ]
    plan = LoadPlan(concurrency=1, requests=2, url="http://httpbin:8000/get")
    result = mesh.run_load(plan, source="client")
    assert [s.status for s in result.samples] == [200, 503]
    (stdin,) = sidecars.agent_stdin
    assert b'"url": "http://httpbin:8000/get"' in stdin


@pytest.fixture
def real_agent(cluster: fake_api.Cluster, tmp_path: Path) -> None:
    """The client pod's exec runs the real load agent (its shipped files, ``python -I -S``)
    as a local process: the conversation over the exec websocket is the real one."""
    (tmp_path / "agent").mkdir()
    entry = write_agent_files(tmp_path / "agent")

    def process(pod: str, container: str, command: list[str]) -> list[str] | None:
        if container == "client" and command == agent_command():
            return [sys.executable, *AGENT_PYTHON_FLAGS, str(entry)]
        return None

    cluster.kube.exec_process = process


@pytest.mark.usefixtures("real_agent")
def test_in_mesh_load_with_a_trigger_converses_with_the_real_agent(
    mesh: KubeMesh, gateway: str
) -> None:
    fired: list[int] = []
    trigger = Trigger(after=10, action=lambda: fired.append(1), name="kill", then=15)
    plan = LoadPlan(concurrency=2, requests=30, url=gateway + "/get")
    result = mesh.run_load(plan, source="client", triggers=[trigger])
    assert fired == [1]
    (event,) = result.events
    assert event.name == "kill"
    assert event.error is None
    # The agent held on past the kill until the host's "done" line, then ran 15 more.
    assert len([s for s in result.samples if event.is_after(s)]) >= 15
    assert {s.status for s in result.samples} == {200}


def test_only_the_owner_deletes_the_namespace_on_close(
    cluster: fake_api.Cluster, mesh: KubeMesh, gateway: str
) -> None:
    mesh.close()
    assert cluster.kube.names("namespaces") == [NS]
    owner = KubeMesh(mesh.api, NS, gateway, RUN, None, owner=True, backend="kind", poll=0.01)
    owner.close()
    owner.close()  # idempotent
    assert cluster.kube.names("namespaces") == []


def test_the_owner_runs_after_close_once_its_namespace_is_gone(
    cluster: fake_api.Cluster, mesh: KubeMesh, gateway: str
) -> None:
    seen: list[list[str]] = []
    mesh.after_close.append(lambda: seen.append(["attached ran it"]))
    mesh.close()  # attached: runs nothing, deletes nothing
    owner = KubeMesh(mesh.api, NS, gateway, RUN, None, owner=True, backend="kind", poll=0.01)
    owner.after_close.append(lambda: seen.append(cluster.kube.names("namespaces")))
    owner.close()
    owner.close()
    assert seen == [[]]  # once, and after the namespace was deleted


def test_a_namespace_of_another_run_is_refused(mesh: KubeMesh, gateway: str) -> None:
    with pytest.raises(NotOwned, match="belongs to run 'r1', not 'r2'"):
        KubeMesh(mesh.api, NS, gateway, "r2", None, owner=True, backend="cluster")


def test_the_shared_gateway_counts_only_this_runs_clusters(
    mesh: KubeMesh, cluster: fake_api.Cluster, sidecars: fake_api_mesh.Sidecars
) -> None:
    gw = {
        "kind": "Pod",
        "metadata": {
            "name": "gw-1",
            "namespace": "istio-system",
            "labels": {"istio": "ingressgateway"},
        },
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    cluster.kube.put("pods", gw)
    sidecars.stats["gw-1"] = (
        f"cluster.outbound|9080||productpage.{NS}.svc.cluster.local.upstream_rq_total: 5\n"
        "cluster.outbound|9080||productpage.meshchaos-r2.svc.cluster.local.upstream_rq_total: 4\n"
    )
    q = CounterQuery("upstream_rq_total", Side.CLIENT, ("istio-ingressgateway",))
    assert mesh.counters([q]) == {q: 5}
    assert "EXEC istio-system/gw-1/istio-proxy pilot-agent request GET stats" in cluster.kube.log


def test_status_lists_every_sidecar_of_the_run_with_its_config_version(mesh: KubeMesh) -> None:
    rows = mesh.status()
    assert {r.workload for r in rows} >= {"productpage-v1", "reviews-v2", "client"}
    assert all(r.alive and r.synced and r.version for r in rows)


def test_create_deploys_owns_and_applies_the_baseline(
    cluster: fake_api.Cluster, sidecars: fake_api_mesh.Sidecars, gateway: str
) -> None:
    api = KubeApi(cluster.kubeconfig, cluster.context)
    dead = {"name": "meshchaos-dead-main", "labels": owned_labels("r0")}
    dead["annotations"] = {"meshchaos.io/lease-expires": "2026-01-01T00:00:00Z"}
    cluster.kube.put("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": dead})
    m = KubeMesh.create(
        api, RUN, gateway, None, backend="kind", worker="gw0", deadline=10,
        agent_files={"agent.py": ""}, baseline=load_text(DR), poll=0.01, sync_deadline=2,
    )  # fmt: skip
    assert m.namespace == NS
    assert m.swept == ["meshchaos-dead-main"]
    assert m.owner
    assert cluster.kube.names("destinationrules", NS) == ["reviews"]
    m.close()
    assert cluster.kube.names("namespaces") == []


def test_create_removes_the_namespace_when_the_baseline_never_syncs(
    cluster: fake_api.Cluster, sidecars: fake_api_mesh.Sidecars
) -> None:
    api = KubeApi(cluster.kubeconfig, cluster.context)
    with pytest.raises(MeshError, match=r"probe http://127\.0\.0\.1:9/productpage"):
        KubeMesh.create(
            api, RUN, "http://127.0.0.1:9", None, backend="kind", worker="gw0", deadline=10,
            agent_files={"agent.py": ""}, baseline=load_text(DR), poll=0.01, sync_deadline=0.5,
        )  # fmt: skip
    assert cluster.kube.names("namespaces") == []


def test_scale_waits_until_the_client_sidecar_lists_the_new_endpoints(
    mesh: KubeMesh, cluster: fake_api.Cluster, sidecars: fake_api_mesh.Sidecars
) -> None:
    mesh.scale("httpbin-v-faulty", 1)
    assert len(mesh.instances("httpbin-v-faulty")) == 1
    assert any("GET clusters" in e for e in cluster.kube.log)
    mesh.scale("httpbin-v-faulty", 0)
    assert mesh.instances("httpbin-v-faulty") == []
    mesh.wait_deadline = 0.3
    original = cluster.kube._reconcile

    def reconcile_unlisted(dep: dict[str, Any]) -> None:  # new httpbin-v2 pods: EDS lags
        original(dep)
        for p, _s, n in list(cluster.kube.objects):
            if p == "pods" and n.startswith("httpbin-v2-"):
                sidecars.unlisted.add(n)

    cluster.kube._reconcile = reconcile_unlisted  # type: ignore[method-assign]
    with pytest.raises(
        MeshError, match=r"does not list the endpoints of outbound\|8000\|\|httpbin"
    ):
        mesh.scale("httpbin-v2", 2)
