"""kind lifecycle: the exact commands of a cold start, a reuse, and each refusal."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from recorded_runner import RecordedRunner, Step, step

from meshchaos.errors import MeshError
from meshchaos.mesh.kube._kubectl import Deadline, DeadlineExpired
from meshchaos.mesh.kube.kind import (
    KindCluster,
    KindLifecycle,
    KindRefused,
    check_cluster_config,
    cluster_config_path,
    same_image,
)
from meshchaos.mesh.kube.pins import GATEWAY_HOST_PORT, GATEWAY_NODE_PORT, KIND_NODE_IMAGE

CONFIG = str(cluster_config_path())


def node_wait(kc: Path) -> tuple[str, ...]:
    return (
        "kubectl",
        "--kubeconfig",
        str(kc),
        "--context",
        "kind-meshchaos",
        "wait",
        "--for=condition=Ready",
        "node",
        "--all",
        "--timeout=120s",
    )


def cold_steps(kc: Path) -> list[Step]:
    return [
        step("kind", "get", "clusters", stderr="No kind clusters found.\n"),
        step(
            "kind",
            "create",
            "cluster",
            "--name",
            "meshchaos",
            "--config",
            CONFIG,
            "--image",
            KIND_NODE_IMAGE,
            "--kubeconfig",
            str(kc),
            "--wait",
            "180s",
        ),
        step(*node_wait(kc), stdout="node/meshchaos-control-plane condition met\n"),
    ]


def reuse_steps(
    kc: Path, image: str = KIND_NODE_IMAGE, port: str = f"127.0.0.1:{GATEWAY_HOST_PORT}\n"
) -> list[Step]:
    return [
        step("kind", "get", "clusters", stdout="other\nmeshchaos\n"),
        step("kind", "get", "nodes", "--name", "meshchaos", stdout="meshchaos-control-plane\n"),
        step(
            "docker",
            "inspect",
            "--format",
            "{{.Config.Image}}",
            "meshchaos-control-plane",
            stdout=image + "\n",
        ),
        step("docker", "port", "meshchaos-control-plane", f"{GATEWAY_NODE_PORT}/tcp", stdout=port),
        step("kind", "export", "kubeconfig", "--name", "meshchaos", "--kubeconfig", str(kc)),
        step(*node_wait(kc)),
    ]


@pytest.fixture
def kc(tmp_path: Path) -> Path:
    return tmp_path / "state" / "kubeconfig"


def deadline() -> Deadline:
    return Deadline(900, "starting the kind cluster")


def test_cold_start_runs_exactly_these_commands(tmp_path: Path) -> None:
    kc = tmp_path / "state" / "kubeconfig"
    runner = RecordedRunner(cold_steps(kc))
    cluster = KindLifecycle(runner).up("meshchaos", kc, reuse=False, deadline=deadline())
    runner.assert_done()
    assert cluster == KindCluster("meshchaos", kc, created=True)
    assert cluster.context == "kind-meshchaos"
    assert cluster.gateway_url == "http://127.0.0.1:18080"
    # Every command bounded, and kind's own create outlasts its --wait.
    assert all(0 < c.timeout <= 600 for c in runner.calls)
    assert runner.calls[1].timeout > 180


def test_reuse_checks_image_and_port_then_exports_its_own_kubeconfig(kc: Path) -> None:
    runner = RecordedRunner(reuse_steps(kc))
    cluster = KindLifecycle(runner).up("meshchaos", kc, reuse=True, deadline=deadline())
    runner.assert_done()
    assert cluster == KindCluster("meshchaos", kc, created=False)
    # No command of a reuse creates or deletes anything.
    assert not [a for a in runner.argvs if "create" in a or "delete" in a]


def test_reuse_of_a_missing_cluster_is_refused_before_anything_runs(kc: Path) -> None:
    runner = RecordedRunner([step("kind", "get", "clusters", stdout="other\n")])
    with pytest.raises(KindRefused, match="no kind cluster named 'meshchaos'") as info:
        KindLifecycle(runner).up("meshchaos", kc, reuse=True, deadline=deadline())
    runner.assert_done()
    assert "without --reuse-cluster" in str(info.value)


def test_reuse_with_another_node_image_is_refused_naming_both(kc: Path) -> None:
    other = "kindest/node:v1.35.0@sha256:452d"
    runner = RecordedRunner(reuse_steps(kc, image=other)[:3])
    with pytest.raises(KindRefused) as info:
        KindLifecycle(runner).up("meshchaos", kc, reuse=True, deadline=deadline())
    runner.assert_done()
    msg = str(info.value)
    assert other in msg
    assert KIND_NODE_IMAGE in msg
    assert "kind delete cluster --name meshchaos" in msg


@pytest.mark.parametrize(
    "published",
    [
        pytest.param("", id="no-mapping"),
        pytest.param("0.0.0.0:18080\n", id="mapped-on-all-interfaces"),
        pytest.param("127.0.0.1:8080\n", id="another-host-port"),
    ],
)
def test_reuse_without_the_loopback_port_mapping_is_refused(published: str, kc: Path) -> None:
    steps = reuse_steps(kc, port=published)[:4]
    if not published:
        steps[3] = Step(steps[3].argv, returncode=1, stderr="Error: No public port '30080/tcp'")
    runner = RecordedRunner(steps)
    with pytest.raises(KindRefused, match=r"does not publish the gateway NodePort 30080/tcp") as i:
        KindLifecycle(runner).up("meshchaos", kc, reuse=True, deadline=deadline())
    runner.assert_done()
    assert "127.0.0.1:18080" in str(i.value)


def test_reuse_of_a_cluster_without_a_control_plane_node_by_our_name_is_refused(kc: Path) -> None:
    steps = reuse_steps(kc)[:2]
    steps[1] = Step(steps[1].argv, stdout="meshchaos-worker\n")
    runner = RecordedRunner(steps)
    with pytest.raises(KindRefused, match="has no node 'meshchaos-control-plane'"):
        KindLifecycle(runner).up("meshchaos", kc, reuse=True, deadline=deadline())


def test_an_existing_cluster_is_never_replaced_without_reuse(kc: Path) -> None:
    runner = RecordedRunner([step("kind", "get", "clusters", stdout="meshchaos\n")])
    with pytest.raises(KindRefused) as info:
        KindLifecycle(runner).up("meshchaos", kc, reuse=False, deadline=deadline())
    runner.assert_done()
    assert "--reuse-cluster" in str(info.value)
    assert "kind delete cluster --name meshchaos" in str(info.value)


def test_a_failed_create_says_what_failed_with_kinds_output(tmp_path: Path) -> None:
    kc = tmp_path / "kubeconfig"
    steps = cold_steps(kc)[:2]
    steps[1] = Step(steps[1].argv, returncode=1, stderr="ERROR: failed to create cluster: boom")
    runner = RecordedRunner(steps)
    with pytest.raises(MeshError, match="creating kind cluster 'meshchaos' failed") as info:
        KindLifecycle(runner).up("meshchaos", kc, reuse=False, deadline=deadline())
    assert "boom" in str(info.value)


def test_the_overall_deadline_bounds_each_command(kc: Path) -> None:
    now = [0.0]
    late = Deadline(10, "starting the kind cluster", clock=lambda: now[0])
    runner = RecordedRunner([])
    now[0] = 11.0
    with pytest.raises(DeadlineExpired, match="did not finish within 10 s"):
        KindLifecycle(runner).up("meshchaos", kc, reuse=False, deadline=late)
    assert runner.calls == []


def test_delete_names_the_cluster_and_its_kubeconfig(kc: Path) -> None:
    argv = ("kind", "delete", "cluster", "--name", "meshchaos", "--kubeconfig", str(kc))
    runner = RecordedRunner([step(*argv)])
    KindLifecycle(runner).delete(KindCluster("meshchaos", kc, created=True))
    runner.assert_done()


def test_the_packaged_config_publishes_the_pinned_ports_on_loopback_only() -> None:
    doc = yaml.safe_load(cluster_config_path().read_text())
    assert check_cluster_config(doc) == []
    mappings = doc["nodes"][0]["extraPortMappings"]
    assert all(m["listenAddress"] == "127.0.0.1" for m in mappings)


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        pytest.param({"kind": "Cluster"}, "kind/apiVersion", id="no-api-version"),
        pytest.param(
            {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "nodes": []},
            "nodes: must list",
            id="no-nodes",
        ),
        pytest.param(
            {
                "kind": "Cluster",
                "apiVersion": "kind.x-k8s.io/v1alpha4",
                "nodes": [
                    {
                        "role": "control-plane",
                        "extraPortMappings": [
                            {"containerPort": 30080, "hostPort": 18080, "protocol": "TCP"}
                        ],
                    }
                ],
            },
            "extraPortMappings: must contain",
            id="mapping-on-all-interfaces",
        ),
    ],
)
def test_config_problems_are_named(doc: object, problem: str) -> None:
    assert any(problem in p for p in check_cluster_config(doc))


def test_the_node_image_is_compared_by_digest() -> None:
    digest = KIND_NODE_IMAGE.split("@", 1)[1]
    assert same_image(KIND_NODE_IMAGE, KIND_NODE_IMAGE)  # docker keeps the reference
    assert same_image(f"docker.io/kindest/node@{digest}", KIND_NODE_IMAGE)  # podman's name
    assert not same_image("kindest/node:v1.36.1", KIND_NODE_IMAGE)  # a tag alone can move
    assert not same_image("docker.io/kindest/node@sha256:" + "0" * 64, KIND_NODE_IMAGE)


def test_reuse_on_podman_asks_podman(kc: Path) -> None:
    digest = KIND_NODE_IMAGE.split("@", 1)[1]
    steps = [
        s if s.argv[0] != "docker" else Step(("podman", *s.argv[1:]), stdout=s.stdout)
        for s in reuse_steps(kc, image=f"docker.io/kindest/node@{digest}")
    ]
    runner = RecordedRunner(steps)
    KindLifecycle(runner, engine="podman").up("meshchaos", kc, reuse=True, deadline=deadline())
    runner.assert_done()
