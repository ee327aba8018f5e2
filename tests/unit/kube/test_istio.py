"""Istio: the pinned istioctl, the install command, the waits, and what a mesh is judged on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from recorded_runner import RecordedRunner, Step, step

from meshchaos.errors import MeshError
from meshchaos.mesh.kube._kubectl import Deadline, Kube
from meshchaos.mesh.kube.istio import (
    IstioInfo,
    IstioUnsupported,
    check_overlay,
    ensure_istioctl,
    install_istio,
    judge_istio,
    overlay_path,
    read_istio_info,
    wait_for_istio,
)

KC = Path("/state/kubeconfig")
CTX = "kind-meshchaos"
K = ("kubectl", "--kubeconfig", str(KC), "--context", CTX)


def kube(steps: list[Step]) -> tuple[Kube, RecordedRunner]:
    runner = RecordedRunner(steps)
    return Kube(runner, KC, CTX), runner


def deadline() -> Deadline:
    return Deadline(900, "installing Istio")


def version_step(istioctl: str, out: str, **kw: Any) -> Step:
    return step(istioctl, "version", "--remote=false", "--short", stdout=out, **kw)


# ------------------------------------------------------------------ istioctl


def test_istioctl_on_path_is_used_when_it_is_the_pin(tmp_path: Path) -> None:
    runner = RecordedRunner([version_step("istioctl", "1.30.5\n")])
    got = ensure_istioctl(runner, env={"MESHCHAOS_ISTIO_CACHE": str(tmp_path)}, download=_no)
    runner.assert_done()
    assert got == "istioctl"


def test_another_istioctl_on_path_means_the_pinned_download(tmp_path: Path) -> None:
    fetched: list[tuple[str, Path]] = []

    def download(version: str, dest: Path) -> Path:
        fetched.append((version, dest))
        dest.mkdir(parents=True)
        (dest / "istioctl").write_text("x")
        return dest / "istioctl"

    binary = tmp_path / "1.30.5" / "istioctl"
    runner = RecordedRunner(
        [version_step("istioctl", "client version: 1.29.8\n"), version_step(str(binary), "1.30.5")]
    )
    got = ensure_istioctl(runner, env={"MESHCHAOS_ISTIO_CACHE": str(tmp_path)}, download=download)
    runner.assert_done()
    assert got == str(binary)
    assert fetched == [("1.30.5", tmp_path / "1.30.5")]


def test_a_cached_pinned_istioctl_is_used_without_downloading(tmp_path: Path) -> None:
    binary = tmp_path / "1.30.5" / "istioctl"
    binary.parent.mkdir()
    binary.write_text("x")
    runner = RecordedRunner(
        [
            step("istioctl", "version", "--remote=false", "--short", missing=True),
            version_step(str(binary), "1.30.5\n"),
        ]
    )
    got = ensure_istioctl(runner, env={"MESHCHAOS_ISTIO_CACHE": str(tmp_path)}, download=_no)
    assert got == str(binary)


def _no(version: str, dest: Path) -> Path:
    raise AssertionError("no download expected")


# ------------------------------------------------------------------ install and waits


def test_install_is_one_istioctl_command_naming_kubeconfig_and_context() -> None:
    argv = (
        "/cache/istioctl",
        "install",
        "-y",
        "-f",
        str(overlay_path()),
        "--readiness-timeout=300s",
        "--kubeconfig",
        str(KC),
        "--context",
        CTX,
    )
    k, runner = kube([step(*argv, stdout="✔ Installation complete")])
    install_istio(k, "/cache/istioctl", deadline=deadline())
    runner.assert_done()


def webhooks(*policies: str) -> str:
    items = [
        {
            "metadata": {"name": "istio-validator-istio-system"},
            "webhooks": [{"name": "rev.validation.istio.io", "failurePolicy": policies[0]}],
        },
        {
            "metadata": {"name": "istiod-default-validator"},
            "webhooks": [{"name": "validation.istio.io", "failurePolicy": policies[1]}],
        },
    ]
    return json.dumps({"items": items})


ROLLOUT = [
    step(*K, "-n", "istio-system", "rollout", "status", "deployment/istiod", "--timeout=300s"),
    step(
        *K,
        "-n",
        "istio-system",
        "rollout",
        "status",
        "deployment/istio-ingressgateway",
        "--timeout=300s",
    ),
]
WEBHOOKS = (*K, "get", "validatingwebhookconfigurations", "-l", "app=istiod", "-o", "json")


def test_wait_rolls_out_then_polls_until_every_validation_webhook_fails_closed() -> None:
    k, runner = kube(
        [
            *ROLLOUT,
            step(*WEBHOOKS, stdout=webhooks("Ignore", "Ignore")),
            step(*WEBHOOKS, stdout=webhooks("Fail", "Ignore")),
            step(*WEBHOOKS, stdout=webhooks("Fail", "Fail")),
        ]
    )
    slept: list[float] = []
    wait_for_istio(k, deadline=deadline(), sleep=slept.append)
    runner.assert_done()
    assert slept == [2.0, 2.0]


def test_a_webhook_that_never_fails_closed_is_an_error_naming_it() -> None:
    # 120 s of polls every 2 s on a fake clock: 61 reads, then the error.
    k, runner = kube([*ROLLOUT, *[step(*WEBHOOKS, stdout=webhooks("Fail", "Ignore"))] * 61])
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    with pytest.raises(MeshError) as info:
        wait_for_istio(k, deadline=deadline(), sleep=sleep, clock=lambda: now[0])
    runner.assert_done()
    assert now[0] == 120.0
    msg = str(info.value)
    assert "istiod-default-validator/validation.istio.io: Ignore" in msg
    assert "admitted silently" in msg


# ------------------------------------------------------------------ reading the mesh


def istiod(
    image: str = "registry.istio.io/release/pilot:1.30.5-distroless", rev: str | None = None
) -> dict[str, Any]:
    labels = {"app": "istiod", **({"istio.io/rev": rev} if rev else {})}
    return {
        "metadata": {"name": "istiod", "labels": labels},
        "spec": {"template": {"spec": {"containers": [{"name": "discovery", "image": image}]}}},
    }


def info_steps(
    deployments: list[dict[str, Any]],
    mesh: dict[str, Any] | None = None,
    peer: list[dict[str, Any]] = (),  # type: ignore[assignment]
    filters: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> list[Step]:
    cm = {"data": {"mesh": yaml.safe_dump(mesh or {})}}
    root = (mesh or {}).get("rootNamespace", "istio-system")
    return [
        step(
            *K,
            "get",
            "-n",
            "istio-system",
            "deployments",
            "-l",
            "app=istiod",
            "-o",
            "json",
            stdout=json.dumps({"items": deployments}),
        ),
        step(
            *K,
            "get",
            "-n",
            "istio-system",
            "configmap",
            "istio",
            "-o",
            "json",
            stdout=json.dumps(cm),
        ),
        step(
            *K,
            "get",
            "-n",
            root,
            "peerauthentications.security.istio.io",
            "-o",
            "json",
            stdout=json.dumps({"items": list(peer)}),
        ),
        step(
            *K,
            "get",
            "-n",
            root,
            "envoyfilters.networking.istio.io",
            "-o",
            "json",
            stdout=json.dumps({"items": list(filters)}),
        ),
    ]


def test_a_stock_install_reads_as_the_defaults() -> None:
    k, runner = kube(info_steps([istiod()]))
    info = read_istio_info(k, deadline=deadline())
    runner.assert_done()
    assert info == IstioInfo(version="1.30.5")
    assert judge_istio(info).warnings == ()


def test_mesh_wide_settings_are_read_back() -> None:
    mesh = {
        "defaultHttpRetryPolicy": {"attempts": 0},
        "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY"},
    }
    strict = {"metadata": {"name": "default"}, "spec": {"mtls": {"mode": "STRICT"}}}
    scoped = {"metadata": {"name": "one"}, "spec": {"selector": {}, "mtls": {"mode": "DISABLE"}}}
    scoped["spec"]["selector"] = {"matchLabels": {"app": "x"}}
    ef = {"metadata": {"name": "lua-everywhere"}}
    k, _ = kube(info_steps([istiod()], mesh, [strict, scoped], [ef]))
    info = read_istio_info(k, deadline=deadline())
    assert info.default_retry_policy == {"attempts": 0}
    assert info.outbound_traffic_policy == "REGISTRY_ONLY"
    assert info.mtls_mode == "STRICT"
    assert info.mesh_envoy_filters == ("lua-everywhere",)


def test_no_istiod_is_refused_naming_the_context() -> None:
    k, _ = kube(info_steps([])[:1])
    with pytest.raises(
        IstioUnsupported, match=r"no istiod in namespace istio-system \(context 'kind-meshchaos'\)"
    ):
        read_istio_info(k, deadline=deadline())


def test_an_unreadable_image_tag_is_refused() -> None:
    k, _ = kube(info_steps([istiod("example.com/pilot:latest")])[:1])
    with pytest.raises(IstioUnsupported, match="cannot tell the Istio version"):
        read_istio_info(k, deadline=deadline())


def test_an_istio_older_than_the_minimum_is_refused() -> None:
    with pytest.raises(IstioUnsupported, match=r"Istio 1\.21\.6 is older than 1\.22"):
        judge_istio(IstioInfo(version="1.21.6"))


def test_a_mesh_wide_retry_policy_is_refused_saying_why() -> None:
    with pytest.raises(IstioUnsupported, match="defaultHttpRetryPolicy"):
        judge_istio(IstioInfo(version="1.30.5", default_retry_policy={"attempts": 5}))


def test_what_the_catalogue_cannot_judge_is_warned_about() -> None:
    info = IstioInfo(
        version="1.30.5",
        outbound_traffic_policy="REGISTRY_ONLY",
        mtls_mode="DISABLE",
        mesh_envoy_filters=("lua",),
    )
    warnings = judge_istio(info).warnings
    assert len(warnings) == 3
    assert any("EnvoyFilters in istio-system (lua)" in w for w in warnings)


def test_strict_mtls_is_recorded_without_a_warning() -> None:
    assert judge_istio(IstioInfo(version="1.30.5", mtls_mode="STRICT")).warnings == ()


def test_info_serialises_for_the_run_record() -> None:
    data = IstioInfo(version="1.30.5", mesh_envoy_filters=("a",)).as_dict()
    assert json.loads(json.dumps(data))["mesh_envoy_filters"] == ["a"]


# ------------------------------------------------------------------ overlay


def test_the_packaged_overlay_has_what_the_suite_relies_on() -> None:
    assert check_overlay(yaml.safe_load(overlay_path().read_text())) == []


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        (("meshConfig", "accessLogFile"), "/dev/stdout", "accessLogFile"),
        (("meshConfig", "defaultConfig", "concurrency"), 4, "concurrency"),
        (("profile",), "demo", "spec.profile"),
    ],
    ids=["access-log-on", "concurrency-4", "demo-profile"],
)
def test_overlay_changes_the_suite_relies_on_are_caught(
    path: tuple[str, ...], value: object, problem: str
) -> None:
    doc = yaml.safe_load(overlay_path().read_text())
    node = doc["spec"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert any(problem in p for p in check_overlay(doc))


def test_an_overlay_without_the_fixed_node_port_is_caught() -> None:
    doc = yaml.safe_load(overlay_path().read_text())
    gw = doc["spec"]["components"]["ingressGateways"][0]
    gw["k8s"]["service"]["ports"][1]["nodePort"] = 31000
    assert any("nodePort 30080" in p for p in check_overlay(doc))
