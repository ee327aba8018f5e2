"""KindBackend and ClusterBackend: the exact commands, then the hand-over, and every undo.

Commands go through the recorded runner; helper K's parts (KubeApi, deploy_apps,
KubeMesh, sweep_leftovers, delete_namespace) and the agent's files are small fakes that
log what they were called with, in one list with the commands' order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from recorded_runner import RecordedRunner, Step, step

from meshchaos.errors import BackendUnavailable, MeshError
from meshchaos.mesh.kube.backend import ClusterBackend, KindBackend, KubeParts, namespace_for
from meshchaos.mesh.kube.existing import ContextRefused
from meshchaos.mesh.kube.istio import IstioInfo, overlay_path
from meshchaos.mesh.kube.kind import KindRefused, cluster_config_path
from meshchaos.mesh.kube.pins import GATEWAY_NODE_PORT, KIND_NODE_IMAGE


@dataclass(frozen=True)
class Options:
    """The fields of registry.BackendOptions, plus gateway_url."""

    state_dir: Path
    run_id: str = "r1"
    worker: str = "main"
    envoy_concurrency: int | None = None
    kube_context: str | None = None
    allow_context: bool = False
    reuse_cluster: bool = False
    keep_cluster: bool = False
    kubeconfig: Path | None = None
    gateway_url: str | None = None
    deadline_s: float = 900.0


@dataclass
class FakeMesh:
    args: tuple[Any, ...]
    kw: dict[str, Any]
    log: list[Any]
    backend: str = "kind"
    startup: Any = None
    after_close: list[Any] = field(default_factory=list)

    def apply(self, resources: list[Any]) -> None:
        self.log.append(("mesh.apply", resources))

    def close(self) -> None:  # as KubeMesh: its namespace, then the backend's after_close
        self.log.append("mesh.close")
        for action in self.after_close:
            action()

    def gateway_url(self) -> str:
        return str(self.args[2])


@dataclass
class Parts:
    log: list[Any] = field(default_factory=list)
    handles: dict[Path, dict[str, Any]] = field(default_factory=dict)
    fail_deploy: bool = False

    def build(self) -> KubeParts:
        def kube_api(kubeconfig: Path, context: str) -> str:
            self.log.append(("KubeApi", kubeconfig, context))
            return "api"

        def deploy_apps(api: Any, namespace: str, run_id: str, **kw: Any) -> None:
            self.log.append(("deploy_apps", api, namespace, run_id, sorted(kw)))
            assert kw["agent_files"] == {"agent.py": "print()"}
            assert 0 < kw["deadline"] <= 900
            if self.fail_deploy:
                raise MeshError("rollout of reviews-v3 timed out")

        def kube_mesh(*args: Any, **kw: Any) -> FakeMesh:
            self.log.append(("KubeMesh", args[1], args[2], args[3], kw))
            return FakeMesh(args, kw, self.log)

        def sweep(api: Any) -> list[str]:
            self.log.append(("sweep_leftovers", api))
            return []

        def delete_namespace(api: Any, namespace: str, *, deadline: float) -> None:
            self.log.append(("delete_namespace", namespace))

        def write_handle(state_dir: Path, data: dict[str, Any]) -> None:
            self.log.append(("write_handle", state_dir))
            self.handles[state_dir] = data

        def read_handle(state_dir: Path) -> dict[str, Any] | None:
            return self.handles.get(state_dir)

        return KubeParts(
            kube_api=kube_api,
            deploy_apps=deploy_apps,
            kube_mesh=kube_mesh,
            sweep_leftovers=sweep,
            delete_namespace=delete_namespace,
            agent_files=lambda: {"agent.py": "print()"},
            write_handle=write_handle,
            read_handle=read_handle,
            make_down=lambda **kw: ("Down", kw),
            baseline=lambda: ["bookinfo-gateway", "destination-rules"],
        )


# ------------------------------------------------------------------ the commands


def prereqs_kind() -> list[Step]:
    return [
        step("docker", "info", "--format", "{{.ServerVersion}}", stdout="28.2.2\n"),
        step("kind", "version", stdout="kind v0.32.0 go1.24.4 linux/amd64\n"),
        kubectl_client(),
    ]


def kubectl_client() -> Step:
    out = json.dumps({"clientVersion": {"gitVersion": "v1.36.1"}})
    return step("kubectl", "version", "--client", "-o", "json", stdout=out)


def k(kc: Path, ctx: str, *args: str, **kw: Any) -> Step:
    return step("kubectl", "--kubeconfig", str(kc), "--context", ctx, *args, **kw)


def istio_ready(kc: Path, ctx: str) -> list[Step]:
    hooks = {
        "items": [
            {
                "metadata": {"name": "istio-validator-istio-system"},
                "webhooks": [{"name": "rev.validation.istio.io", "failurePolicy": "Fail"}],
            }
        ]
    }
    return [
        k(
            kc,
            ctx,
            "-n",
            "istio-system",
            "rollout",
            "status",
            "deployment/istiod",
            "--timeout=300s",
        ),
        k(
            kc,
            ctx,
            "-n",
            "istio-system",
            "rollout",
            "status",
            "deployment/istio-ingressgateway",
            "--timeout=300s",
        ),
        k(
            kc,
            ctx,
            "get",
            "validatingwebhookconfigurations",
            "-l",
            "app=istiod",
            "-o",
            "json",
            stdout=json.dumps(hooks),
        ),
    ]


def istio_info(kc: Path, ctx: str, version: str = "1.30.5") -> list[Step]:
    istiod = {
        "metadata": {"name": "istiod", "labels": {"app": "istiod"}},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "discovery", "image": f"registry.istio.io/release/pilot:{version}"}
                    ]
                }
            }
        },
    }
    empty = json.dumps({"items": []})
    return [
        k(
            kc,
            ctx,
            "get",
            "-n",
            "istio-system",
            "deployments",
            "-l",
            "app=istiod",
            "-o",
            "json",
            stdout=json.dumps({"items": [istiod]}),
        ),
        k(
            kc,
            ctx,
            "get",
            "-n",
            "istio-system",
            "configmap",
            "istio",
            "-o",
            "json",
            stdout=json.dumps({"data": {"mesh": yaml.safe_dump({"accessLogFile": ""})}}),
        ),
        k(
            kc,
            ctx,
            "get",
            "-n",
            "istio-system",
            "peerauthentications.security.istio.io",
            "-o",
            "json",
            stdout=empty,
        ),
        k(
            kc,
            ctx,
            "get",
            "-n",
            "istio-system",
            "envoyfilters.networking.istio.io",
            "-o",
            "json",
            stdout=empty,
        ),
    ]


def kind_cold(kc: Path) -> list[Step]:
    ctx = "kind-meshchaos"
    return [
        *prereqs_kind(),
        step("kind", "get", "clusters", stderr="No kind clusters found.\n"),
        step(
            "kind",
            "create",
            "cluster",
            "--name",
            "meshchaos",
            "--config",
            str(cluster_config_path()),
            "--image",
            KIND_NODE_IMAGE,
            "--kubeconfig",
            str(kc),
            "--wait",
            "180s",
        ),
        k(kc, ctx, "wait", "--for=condition=Ready", "node", "--all", "--timeout=120s"),
        step("istioctl", "version", "--remote=false", "--short", stdout="1.30.5\n"),
        step(
            "istioctl",
            "install",
            "-y",
            "-f",
            str(overlay_path()),
            "--readiness-timeout=300s",
            "--kubeconfig",
            str(kc),
            "--context",
            ctx,
        ),
        *istio_ready(kc, ctx),
        *istio_info(kc, ctx),
    ]


def kind_reuse(kc: Path, istio: str = "1.30.5") -> list[Step]:
    ctx = "kind-meshchaos"
    node = "meshchaos-control-plane"
    steps = [
        *prereqs_kind(),
        step("kind", "get", "clusters", stdout="meshchaos\n"),
        step("kind", "get", "nodes", "--name", "meshchaos", stdout=node + "\n"),
        step("docker", "inspect", "--format", "{{.Config.Image}}", node, stdout=KIND_NODE_IMAGE),
        step("docker", "port", node, f"{GATEWAY_NODE_PORT}/tcp", stdout="127.0.0.1:18080\n"),
        step("kind", "export", "kubeconfig", "--name", "meshchaos", "--kubeconfig", str(kc)),
        k(kc, ctx, "wait", "--for=condition=Ready", "node", "--all", "--timeout=120s"),
        *istio_info(kc, ctx, istio),
    ]
    return steps


def kind_delete(kc: Path) -> Step:
    return step("kind", "delete", "cluster", "--name", "meshchaos", "--kubeconfig", str(kc))


def kind_backend(
    steps: list[Step], parts: Parts, tmp_path: Path
) -> tuple[KindBackend, RecordedRunner]:
    runner = RecordedRunner(steps)
    env = {"MESHCHAOS_ISTIO_CACHE": str(tmp_path / "cache")}
    return KindBackend(runner, parts=parts.build(), env=env), runner


# ------------------------------------------------------------------ kind


def test_kind_cold_start_then_close_runs_exactly_this(tmp_path: Path) -> None:
    kc = tmp_path / "kubeconfig"
    parts = Parts()
    backend, runner = kind_backend([*kind_cold(kc), kind_delete(kc)], parts, tmp_path)
    mesh = backend.open(Options(state_dir=tmp_path))
    assert len(runner.calls) == len(runner.steps) - 1  # all but the delete, so far
    ns = "meshchaos-r1-main"
    assert parts.log == [
        ("KubeApi", kc, "kind-meshchaos"),
        ("sweep_leftovers", "api"),
        ("deploy_apps", "api", ns, "r1", ["agent_files", "deadline", "revision", "worker"]),
        (
            "KubeMesh",
            ns,
            "http://127.0.0.1:18080",
            "r1",
            {"owner": True, "backend": "kind", "gateway_host": None},
        ),
        ("mesh.apply", ["bookinfo-gateway", "destination-rules"]),
        ("write_handle", tmp_path),
    ]
    assert parts.handles[tmp_path] == {
        "backend": "kind",
        "gateway_url": "http://127.0.0.1:18080",
        "clients": {},
        "owner_pid": None,
        "backend_data": {
            "cluster": "meshchaos",
            "kubeconfig": str(kc),
            "context": "kind-meshchaos",
            "namespace": ns,
            "run_id": "r1",
            "gateway_host": None,
            "delete_cluster": True,
        },
    }
    assert mesh.gateway_url() == "http://127.0.0.1:18080"  # the mesh's own, forwarded
    mesh.close()
    runner.assert_done()
    assert parts.log[-1] == "mesh.close"  # then the cluster went (the last command)


def test_kind_reuse_with_the_pinned_istio_installs_nothing_and_keeps_the_cluster(
    tmp_path: Path,
) -> None:
    kc = tmp_path / "kubeconfig"
    ctx = "kind-meshchaos"
    parts = Parts()
    steps = [*kind_reuse(kc), *istio_ready(kc, ctx)]
    backend, runner = kind_backend(steps, parts, tmp_path)
    mesh = backend.open(Options(state_dir=tmp_path, reuse_cluster=True))
    mesh.close()
    runner.assert_done()  # no istioctl, no create, no delete
    assert parts.handles[tmp_path]["backend_data"]["delete_cluster"] is False


def test_kind_reuse_with_another_istio_installs_the_pin(tmp_path: Path) -> None:
    kc = tmp_path / "kubeconfig"
    ctx = "kind-meshchaos"
    steps = [
        *kind_reuse(kc, istio="1.29.8"),
        step("istioctl", "version", "--remote=false", "--short", stdout="1.30.5\n"),
        step(
            "istioctl",
            "install",
            "-y",
            "-f",
            str(overlay_path()),
            "--readiness-timeout=300s",
            "--kubeconfig",
            str(kc),
            "--context",
            ctx,
        ),
        *istio_ready(kc, ctx),
        *istio_info(kc, ctx),
    ]
    backend, runner = kind_backend(steps, Parts(), tmp_path)
    backend.open(Options(state_dir=tmp_path, reuse_cluster=True))
    runner.assert_done()


def test_keep_cluster_leaves_the_cluster_on_close(tmp_path: Path) -> None:
    kc = tmp_path / "kubeconfig"
    parts = Parts()
    backend, runner = kind_backend(kind_cold(kc), parts, tmp_path)
    mesh = backend.open(Options(state_dir=tmp_path, keep_cluster=True))
    mesh.close()
    runner.assert_done()  # no delete
    assert parts.handles[tmp_path]["backend_data"]["delete_cluster"] is False


def test_a_failed_deploy_undoes_namespace_then_cluster(tmp_path: Path) -> None:
    kc = tmp_path / "kubeconfig"
    parts = Parts(fail_deploy=True)
    backend, runner = kind_backend([*kind_cold(kc), kind_delete(kc)], parts, tmp_path)
    with pytest.raises(MeshError, match="reviews-v3 timed out"):
        backend.open(Options(state_dir=tmp_path))
    runner.assert_done()  # the cluster was deleted, last
    assert parts.log[-1] == ("delete_namespace", "meshchaos-r1-main")
    assert tmp_path not in parts.handles


def test_a_create_that_fails_half_way_deletes_what_kind_left(tmp_path: Path) -> None:
    kc = tmp_path / "kubeconfig"
    steps = kind_cold(kc)[:5]
    steps[4] = Step(steps[4].argv, timeout=True)
    backend, runner = kind_backend([*steps, kind_delete(kc)], Parts(), tmp_path)
    with pytest.raises(MeshError, match="did not finish"):
        backend.open(Options(state_dir=tmp_path))
    runner.assert_done()


def test_an_existing_cluster_is_refused_and_nothing_is_deleted(tmp_path: Path) -> None:
    steps = [*prereqs_kind(), step("kind", "get", "clusters", stdout="meshchaos\n")]
    backend, runner = kind_backend(steps, Parts(), tmp_path)
    with pytest.raises(KindRefused, match="already exists"):
        backend.open(Options(state_dir=tmp_path))
    runner.assert_done()  # and no `kind delete`


def test_xdist_workers_need_a_reused_cluster(tmp_path: Path) -> None:
    backend, runner = kind_backend(prereqs_kind(), Parts(), tmp_path)
    with pytest.raises(BackendUnavailable, match="--reuse-cluster"):
        backend.open(Options(state_dir=tmp_path, worker="gw1"))
    runner.assert_done()  # the tools were checked, nothing else ran


def test_down_deletes_namespace_cluster_and_handle(tmp_path: Path) -> None:
    kc = tmp_path / "kubeconfig"
    parts = Parts()
    (tmp_path / "mesh.json").write_text("{}")
    parts.handles[tmp_path] = {
        "backend": "kind",
        "gateway_url": "http://127.0.0.1:18080",
        "backend_data": {
            "cluster": "meshchaos",
            "kubeconfig": str(kc),
            "context": "kind-meshchaos",
            "namespace": "meshchaos-r1-main",
            "run_id": "r1",
            "gateway_host": None,
            "delete_cluster": True,
        },
    }
    backend, runner = kind_backend([kind_delete(kc)], parts, tmp_path)
    assert backend.down(tmp_path) == ("Down", {"found": True, "unreadable": ""})
    runner.assert_done()
    assert parts.log == [
        ("KubeApi", kc, "kind-meshchaos"),
        ("delete_namespace", "meshchaos-r1-main"),
    ]
    assert not (tmp_path / "mesh.json").exists()


def test_down_with_no_handle_is_not_an_error(tmp_path: Path) -> None:
    backend, runner = kind_backend([], Parts(), tmp_path)
    assert backend.down(tmp_path) == ("Down", {"found": False})
    assert runner.calls == []


def test_namespace_names_are_valid_dns_labels() -> None:
    assert namespace_for("20261202-1601_ab", "gw0") == "meshchaos-20261202-1601-ab-gw0"
    assert len(namespace_for("x" * 80, "main")) <= 63


# ------------------------------------------------------------------ cluster


def cluster_steps(kc: Path, gateway: bool = True) -> list[Step]:
    svc = {
        "spec": {"ports": [{"name": "http2", "port": 80}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}},
    }
    hooks = {
        "items": [
            {
                "metadata": {"name": "istio-validator-istio-system"},
                "webhooks": [{"name": "rev.validation.istio.io", "failurePolicy": "Fail"}],
            }
        ]
    }
    steps = [
        kubectl_client(),
        step(
            "kubectl",
            "config",
            "view",
            "--minify",
            "--flatten",
            "--raw",
            "--context",
            "staging",
            stdout="apiVersion: v1\n",
        ),
        *istio_info(kc, "staging"),
        k(
            kc,
            "staging",
            "get",
            "validatingwebhookconfigurations",
            "-l",
            "app=istiod",
            "-o",
            "json",
            stdout=json.dumps(hooks),
        ),
    ]
    if gateway:
        steps.append(
            k(
                kc,
                "staging",
                "get",
                "-n",
                "istio-system",
                "service",
                "istio-ingressgateway",
                "-o",
                "json",
                stdout=json.dumps(svc),
            )
        )
    return steps


def test_cluster_open_runs_exactly_this_and_installs_nothing(tmp_path: Path) -> None:
    kc = tmp_path / "kubeconfig"
    parts = Parts()
    runner = RecordedRunner(cluster_steps(kc))
    backend = ClusterBackend(runner, parts=parts.build(), env={})
    backend.open(Options(state_dir=tmp_path, kube_context="staging", allow_context=True))
    runner.assert_done()
    assert not [a for a in runner.argvs if a[0] in ("istioctl", "kind")]
    kw = parts.log[3][4]
    assert kw == {"owner": True, "backend": "cluster", "gateway_host": "203.0.113.7"}
    data = parts.handles[tmp_path]
    assert data["gateway_url"] == "http://203.0.113.7:80"
    assert data["backend_data"]["cluster"] is None
    assert data["backend_data"]["context"] == "staging"


def test_cluster_with_an_explicit_gateway_url_does_not_look_it_up(tmp_path: Path) -> None:
    kc = tmp_path / "kubeconfig"
    parts = Parts()
    runner = RecordedRunner(cluster_steps(kc, gateway=False))
    backend = ClusterBackend(
        runner, parts=parts.build(), env={"MESHCHAOS_ALLOW_CONTEXT": "staging"}
    )
    backend.open(Options(state_dir=tmp_path, kube_context="staging", gateway_url="http://gw:8080"))
    runner.assert_done()
    assert parts.handles[tmp_path]["backend_data"]["gateway_host"] == "gw"


def test_a_refused_context_runs_no_command_at_all(tmp_path: Path) -> None:
    runner = RecordedRunner([])
    backend = ClusterBackend(runner, parts=Parts().build(), env={})
    with pytest.raises(ContextRefused, match="'prod'"):
        backend.open(Options(state_dir=tmp_path, kube_context="prod"))
    assert runner.calls == []


def test_an_old_istio_on_the_cluster_is_refused_before_anything_is_created(
    tmp_path: Path,
) -> None:
    kc = tmp_path / "kubeconfig"
    steps = cluster_steps(kc)[:2]
    steps += istio_info(kc, "staging", version="1.21.6")
    parts = Parts()
    runner = RecordedRunner(steps)
    backend = ClusterBackend(runner, parts=parts.build(), env={})
    with pytest.raises(MeshError, match=r"Istio 1\.21\.6 is older than 1\.22"):
        backend.open(Options(state_dir=tmp_path, kube_context="staging", allow_context=True))
    runner.assert_done()
    assert parts.log == []


def test_attach_reads_istio_and_never_owns(tmp_path: Path) -> None:
    kc = tmp_path / "kubeconfig"
    parts = Parts()
    runner = RecordedRunner(istio_info(kc, "staging"))

    @dataclass
    class Handle:
        backend: str = "cluster"
        gateway_url: str = "http://203.0.113.7:80"
        backend_data: dict[str, Any] = field(
            default_factory=lambda: {
                "cluster": None,
                "kubeconfig": str(kc),
                "context": "staging",
                "namespace": "meshchaos-r1-main",
                "run_id": "r1",
                "gateway_host": "203.0.113.7",
            }
        )

    mesh = ClusterBackend(runner, parts=parts.build(), env={}).attach(Handle())
    runner.assert_done()
    assert isinstance(mesh, FakeMesh)
    assert mesh.kw["owner"] is False
    assert isinstance(mesh.args[4], IstioInfo)
