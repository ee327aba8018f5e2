"""The run's namespace and apps: what is sent, in which order, and how a stuck rollout reads.

The load agent's files are injected (``agent_files=``): ``meshchaos.load.agent`` is helper
A's module, not on this branch yet.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import fake_api
import pytest
import yaml

from meshchaos.mesh.kube.api import KubeApi
from meshchaos.mesh.kube.apps import (
    PROXY_CONFIG,
    RolloutTimeout,
    SidecarMissing,
    delete_namespace,
    deploy_apps,
    manifests,
    namespace_name,
)
from meshchaos.mesh.kube.safety import NotOwned, lease_expiry, owned_labels

AGENT = {"agent.py": "print('agent')\n"}
NS = "meshchaos-r1-gw0"
DEPLOYMENTS = [
    "productpage-v1",
    "details-v1",
    "reviews-v1",
    "reviews-v2",
    "reviews-v3",
    "ratings-v1",
    "ratings-v-faulty",
    "ratings-v-delayed",
    "httpbin-v1",
    "httpbin-v2",
    "httpbin-v-faulty",
    "client",
]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[fake_api.Cluster]:
    c = fake_api.Cluster(tmp_path)
    yield c
    c.close()


@pytest.fixture
def api(cluster: fake_api.Cluster) -> KubeApi:
    return KubeApi(cluster.kubeconfig, cluster.context)


def test_namespace_names_are_dns_labels() -> None:
    assert namespace_name("20261202-1600-ab12", "gw0") == "meshchaos-20261202-1600-ab12-gw0"
    assert namespace_name("Run_ID.x", "main") == "meshchaos-run-id-x-main"
    long = namespace_name("r" * 80, "gw12")
    assert len(long) <= 63
    assert long.endswith("-gw12")


def test_every_object_is_owned_and_every_pod_template_asks_for_the_stats() -> None:
    now = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)
    objs = manifests(NS, "r1", agent_files=AGENT, worker="gw0", now=now)
    ns = objs[0]
    assert ns["kind"] == "Namespace"
    assert ns["metadata"]["labels"]["istio-injection"] == "enabled"
    assert lease_expiry(ns) == datetime(2026, 12, 2, 16, 10, tzinfo=UTC)
    for obj in objs:
        assert owned_labels("r1").items() <= obj["metadata"]["labels"].items(), obj["metadata"]
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == NS
    deps = [o for o in objs if o["kind"] == "Deployment"]
    assert sorted(d["metadata"]["name"] for d in deps) == sorted(DEPLOYMENTS)
    for dep in deps:
        tmeta = dep["spec"]["template"]["metadata"]
        assert tmeta["annotations"]["proxy.istio.io/config"] == PROXY_CONFIG
        assert tmeta["labels"]["sidecar.istio.io/inject"] == "true"
        assert owned_labels("r1").items() <= tmeta["labels"].items()
    matcher = yaml.safe_load(PROXY_CONFIG)["proxyStatsMatcher"]["inclusionRegexps"]
    assert len(matcher) == 4
    cm = next(o for o in objs if o["kind"] == "ConfigMap")
    assert cm["data"] == AGENT
    replicas = {d["metadata"]["name"]: d["spec"]["replicas"] for d in deps}
    assert replicas["httpbin-v-faulty"] == 0
    assert replicas["ratings-v-faulty"] == 0
    assert replicas["reviews-v2"] == 1


def test_a_revisioned_mesh_labels_the_namespace_with_the_revision() -> None:
    ns = manifests(NS, "r1", agent_files=AGENT, revision="1-30-5")[0]
    assert ns["metadata"]["labels"]["istio.io/rev"] == "1-30-5"
    assert "istio-injection" not in ns["metadata"]["labels"]


def test_agent_file_names_must_be_configmap_keys() -> None:
    with pytest.raises(Exception, match=r"not valid as ConfigMap keys: meshchaos/load/agent\.py"):
        manifests(NS, "r1", agent_files={"meshchaos/load/agent.py": ""})


def test_deploy_applies_in_order_then_waits_for_every_deployment(
    api: KubeApi, cluster: fake_api.Cluster
) -> None:
    done = deploy_apps(api, NS, "r1", deadline=10, worker="gw0", agent_files=AGENT, poll=0.05)
    assert sorted(done.deployments) == sorted(DEPLOYMENTS)
    writes = [e.split("?")[0] for e in cluster.kube.writes()]
    assert writes[0] == f"PATCH /api/v1/namespaces/{NS}"
    kinds = [w.split("/")[-2] for w in writes[1:]]
    # ServiceAccounts, the agent's ConfigMap, Services, then Deployments.
    assert kinds == sorted(
        kinds, key=["serviceaccounts", "configmaps", "services", "deployments"].index
    )
    assert f"PATCH /api/v1/namespaces/{NS}/configmaps/meshchaos-agent" in writes
    assert cluster.kube.log[0] == f"GET /api/v1/namespaces/{NS}"
    for dep in DEPLOYMENTS:
        assert f"GET /apis/apps/v1/namespaces/{NS}/deployments/{dep}" in cluster.kube.log


def test_a_rollout_timeout_names_the_pods_their_container_states_and_events(
    api: KubeApi, cluster: fake_api.Cluster
) -> None:
    cluster.kube.pod_faults["reviews-v2"] = (
        "ImagePullBackOff",
        'Back-off pulling image "docker.io/istio/examples-bookinfo-reviews-v2:1.20.3"',
    )
    with pytest.raises(RolloutTimeout) as info:
        deploy_apps(api, NS, "r1", deadline=0.5, agent_files=AGENT, poll=0.05)
    msg = str(info.value)
    assert msg.startswith(f"not rolled out within 0.5 s in namespace {NS}:")
    assert "Deployment reviews-v2: 1 pod(s)" in msg
    assert "reviews: waiting: ImagePullBackOff (Back-off pulling image" in msg
    assert "event Warning Failed: Error: ImagePullBackOff" in msg
    assert "reviews-v1" not in msg  # only what is stuck


def test_a_pod_without_a_sidecar_fails_at_once(api: KubeApi, cluster: fake_api.Cluster) -> None:
    cluster.kube.no_sidecar.add("details-v1")
    with pytest.raises(SidecarMissing, match=r"pod meshchaos-r1-gw0/details-v1-\d+ runs without"):
        deploy_apps(api, NS, "r1", deadline=30, agent_files=AGENT, poll=0.05)


def test_a_namespace_we_did_not_create_is_never_reused(
    api: KubeApi, cluster: fake_api.Cluster
) -> None:
    cluster.kube.put(
        "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
    )
    with pytest.raises(NotOwned, match=f"refusing to touch Namespace {NS}"):
        deploy_apps(api, NS, "r1", deadline=5, agent_files=AGENT)
    assert cluster.kube.writes() == []


def test_delete_namespace_deletes_ours_and_refuses_others(
    api: KubeApi, cluster: fake_api.Cluster
) -> None:
    deploy_apps(api, NS, "r1", deadline=10, agent_files=AGENT, poll=0.05)
    assert delete_namespace(api, NS, deadline=5, poll=0.05) is True
    assert cluster.kube.names("namespaces") == []
    assert cluster.kube.names("pods", NS) == []
    assert delete_namespace(api, NS, deadline=5) is False
    cluster.kube.put(
        "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}}
    )
    with pytest.raises(NotOwned):
        delete_namespace(api, "prod", deadline=5)
    assert cluster.kube.names("namespaces") == ["prod"]
