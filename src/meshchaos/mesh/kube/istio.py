"""Istio for the kube backends: the pinned istioctl, the install (kind only), and what runs.

``kind``: :func:`ensure_istioctl` (PATH if it is the pinned release, else the verified
download of :mod:`._download`), :func:`install_istio` with ``manifests/istio-install/
meshchaos.yaml``, then :func:`wait_for_istio`: istiod and the ingress gateway rolled out,
and every validation webhook of istiod switched to ``failurePolicy: Fail`` (a fresh
install starts with ``Ignore``, so until istiod flips it an invalid resource would be
admitted silently).

Both backends then :func:`read_istio_info` (the version and the mesh-wide settings that
change outcomes) and :func:`judge_istio`: refuse what the catalogue's predictions cannot
hold for, warn about what they may not. ``cluster`` never installs anything.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from tenacity import Retrying, retry_if_exception_type, wait_fixed

from meshchaos.errors import MeshError
from meshchaos.manifests import data_dir
from meshchaos.mesh.kube._download import cache_dir, download_istioctl
from meshchaos.mesh.kube._kubectl import Deadline, Kube
from meshchaos.mesh.kube._runner import CommandNotFound, CommandTimedOut, Runner
from meshchaos.mesh.kube.pins import GATEWAY_NODE_PORT, ISTIO_VERSION, MIN_ISTIO_MINOR

__all__ = [
    "GATEWAY_DEPLOYMENT",
    "ISTIO_NAMESPACE",
    "IstioInfo",
    "IstioUnsupported",
    "check_overlay",
    "ensure_istioctl",
    "install_istio",
    "judge_istio",
    "overlay_path",
    "read_istio_info",
    "wait_for_istio",
    "wait_for_validation",
    "webhook_policies",
]

ISTIO_NAMESPACE = "istio-system"
GATEWAY_DEPLOYMENT = "istio-ingressgateway"
READINESS_S = 300  # istioctl's own default readiness timeout per component
WEBHOOK_S = 120.0
_POLL_S = 2.0
_ASK_S = 30.0


class IstioUnsupported(MeshError):
    """The mesh runs an Istio, or settings, the catalogue cannot judge."""


@dataclass(frozen=True)
class IstioInfo:
    """The control plane a run was measured on, recorded with its results."""

    version: str  # "1.30.5"
    revision: str = "default"
    # meshConfig.defaultHttpRetryPolicy; None: Istio's stock default (2 attempts).
    default_retry_policy: dict[str, Any] | None = None
    outbound_traffic_policy: str = "ALLOW_ANY"  # meshConfig.outboundTrafficPolicy.mode
    mtls_mode: str = "PERMISSIVE"  # the mesh-wide PeerAuthentication's, in the root namespace
    root_namespace: str = ISTIO_NAMESPACE
    mesh_envoy_filters: tuple[str, ...] = ()  # EnvoyFilters in the root namespace
    warnings: tuple[str, ...] = field(default=())

    @property
    def minor(self) -> tuple[int, int]:
        return _minor(self.version)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mesh_envoy_filters"] = list(self.mesh_envoy_filters)
        data["warnings"] = list(self.warnings)
        return data


def overlay_path() -> Path:
    """``manifests/istio-install/meshchaos.yaml`` as packaged."""
    return data_dir() / "istio-install" / "meshchaos.yaml"


def check_overlay(doc: Any) -> list[str]:
    """Problems of the install overlay: the settings the suite relies on, each by path."""
    if not isinstance(doc, dict):
        return ["not a mapping"]
    problems: list[str] = []
    if doc.get("apiVersion") != "install.istio.io/v1alpha1" or doc.get("kind") != "IstioOperator":
        problems.append("apiVersion/kind: must be install.istio.io/v1alpha1 IstioOperator")
    spec = doc.get("spec") or {}
    mesh = spec.get("meshConfig") or {}
    proxy = mesh.get("defaultConfig") or {}
    want = {
        "spec.profile": (spec.get("profile"), "default"),
        "spec.meshConfig.accessLogFile": (mesh.get("accessLogFile"), ""),
        "spec.meshConfig.defaultConfig.concurrency": (proxy.get("concurrency"), 2),
        "spec.meshConfig.defaultConfig.holdApplicationUntilProxyStarts": (
            proxy.get("holdApplicationUntilProxyStarts"),
            True,
        ),
    }
    problems += [f"{k}: must be {w!r} (is {v!r})" for k, (v, w) in want.items() if v != w]
    if "defaultHttpRetryPolicy" in mesh:
        problems.append("spec.meshConfig.defaultHttpRetryPolicy: must stay Istio's default")
    gateways = (spec.get("components") or {}).get("ingressGateways") or []
    gw = [g for g in gateways if isinstance(g, dict) and g.get("name") == GATEWAY_DEPLOYMENT]
    service = ((gw[0].get("k8s") or {}).get("service") or {}) if gw else {}
    ports = {p.get("name"): p for p in service.get("ports") or [] if isinstance(p, dict)}
    if not gw or not gw[0].get("enabled"):
        problems.append(f"spec.components.ingressGateways: {GATEWAY_DEPLOYMENT} must be enabled")
    elif service.get("type") != "NodePort" or ports.get("http2", {}).get("nodePort") != (
        GATEWAY_NODE_PORT
    ):
        problems.append(
            f"spec.components.ingressGateways[{GATEWAY_DEPLOYMENT}].k8s.service: must be "
            f"type NodePort with port http2 on nodePort {GATEWAY_NODE_PORT}"
        )
    return problems


def ensure_istioctl(
    runner: Runner,
    *,
    version: str = ISTIO_VERSION,
    env: Mapping[str, str] | None = None,
    download: Callable[[str, Path], Path] = download_istioctl,
) -> str:
    """The istioctl to run: ``istioctl`` on PATH when it is ``version``, else the cached
    download of that release, fetched and verified first if it is not cached yet."""
    if _istioctl_version(runner, "istioctl") == version:
        return "istioctl"
    cached = cache_dir(version, env) / "istioctl"
    if cached.exists() and _istioctl_version(runner, str(cached)) == version:
        return str(cached)
    path = download(version, cached.parent)
    found = _istioctl_version(runner, str(path))
    if found != version:
        raise MeshError(f"{path}: the downloaded istioctl says {found!r}, not {version!r}")
    return str(path)


def _istioctl_version(runner: Runner, istioctl: str) -> str | None:
    """What ``istioctl version --remote=false --short`` says (``1.30.5``, or
    ``client version: 1.30.5``), or None when it cannot run."""
    try:
        done = runner.run([istioctl, "version", "--remote=false", "--short"], timeout=_ASK_S)
    except (CommandNotFound, CommandTimedOut):
        return None
    if not done.ok:
        return None
    text = done.text.strip()
    return text.rsplit(":", 1)[-1].strip() if text else None


def install_istio(
    kube: Kube, istioctl: str, *, deadline: Deadline, overlay: Path | None = None
) -> None:
    """``istioctl install`` the overlay (checked first) on ``kube``'s cluster."""
    path = overlay or overlay_path()
    problems = check_overlay(yaml.safe_load(path.read_text(encoding="utf-8")))
    if problems:
        raise MeshError(f"{path}: " + "; ".join(problems))
    argv = kube.istioctl_argv(
        istioctl, "install", "-y", "-f", str(path), f"--readiness-timeout={READINESS_S}s"
    )
    # istioctl waits for each component; allow it that, plus its own start and CRDs.
    timeout = deadline.left(2 * READINESS_S + 60)
    kube.runner.run(argv, timeout=timeout).check(f"installing Istio {ISTIO_VERSION}")


def wait_for_istio(
    kube: Kube,
    *,
    deadline: Deadline,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """istiod and the ingress gateway rolled out, then validation failing closed."""
    for deployment in ("istiod", GATEWAY_DEPLOYMENT):
        kube.kubectl(
            "-n",
            ISTIO_NAMESPACE,
            "rollout",
            "status",
            f"deployment/{deployment}",
            f"--timeout={READINESS_S}s",
            timeout=deadline.left(READINESS_S + 15),
            what=f"waiting for {ISTIO_NAMESPACE}/{deployment} to roll out",
        )
    wait_for_validation(kube, deadline=deadline, sleep=sleep, clock=clock)


class _FailsOpen(Exception):
    def __init__(self, policies: list[str]) -> None:
        self.policies = policies


def webhook_policies(kube: Kube, deadline: Deadline) -> list[str]:
    """``<configuration>/<webhook>: <failurePolicy>`` for each validation webhook of istiod."""
    data = kube.get_json(
        "validatingwebhookconfigurations",
        "-l",
        "app=istiod",
        timeout=deadline.left(_ASK_S),
        what="reading Istio's validation webhooks",
    )
    return [
        f"{item.get('metadata', {}).get('name')}/{hook.get('name')}: {hook.get('failurePolicy')}"
        for item in data.get("items") or []
        for hook in item.get("webhooks") or []
    ]


def wait_for_validation(
    kube: Kube,
    *,
    deadline: Deadline,
    limit_s: float = WEBHOOK_S,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Poll until every validation webhook of istiod has ``failurePolicy: Fail``."""
    end = clock() + min(limit_s, deadline.left(limit_s))

    def poll() -> None:
        policies = webhook_policies(kube, deadline)
        if not policies or not all(p.endswith(": Fail") for p in policies):
            raise _FailsOpen(policies)

    retrying = Retrying(
        stop=lambda _state: clock() >= end,
        wait=wait_fixed(_POLL_S),
        retry=retry_if_exception_type(_FailsOpen),
        sleep=sleep,
        reraise=True,
    )
    try:
        retrying(poll)
    except _FailsOpen as exc:
        found = "; ".join(exc.policies) or "no validation webhook labelled app=istiod"
        raise MeshError(
            f"Istio's validation still fails open after {limit_s:g} s ({found}): until istiod "
            "switches it to failurePolicy Fail, invalid Istio config is admitted silently"
        ) from None


def read_istio_info(kube: Kube, *, deadline: Deadline) -> IstioInfo:
    """The version, revision and mesh-wide settings of the Istio ``kube`` runs."""
    deployments = (
        kube.get_json(
            "-n",
            ISTIO_NAMESPACE,
            "deployments",
            "-l",
            "app=istiod",
            timeout=deadline.left(_ASK_S),
            what="reading istiod",
        ).get("items")
        or []
    )
    if not deployments:
        raise IstioUnsupported(
            f"no istiod in namespace {ISTIO_NAMESPACE} (context {kube.context!r}): "
            "this backend needs Istio installed (sidecar mode)"
        )
    warnings: list[str] = []
    revs = {_labels(d).get("istio.io/rev", "default"): d for d in deployments}
    revision = "default" if "default" in revs else sorted(revs)[0]
    if len(revs) > 1:
        warnings.append(
            f"several Istio revisions run ({', '.join(sorted(revs))}); measured: {revision}"
        )
    version = _image_version(revs[revision])
    configmap = "istio" if revision == "default" else f"istio-{revision}"
    cm = kube.get_json(
        "-n",
        ISTIO_NAMESPACE,
        "configmap",
        configmap,
        timeout=deadline.left(_ASK_S),
        what="reading the mesh config",
    )
    mesh = yaml.safe_load((cm.get("data") or {}).get("mesh") or "") or {}
    root = str(mesh.get("rootNamespace") or ISTIO_NAMESPACE)
    retry = mesh.get("defaultHttpRetryPolicy")
    outbound = str((mesh.get("outboundTrafficPolicy") or {}).get("mode") or "ALLOW_ANY")
    peer = (
        kube.get_json(
            "-n",
            root,
            "peerauthentications.security.istio.io",
            timeout=deadline.left(_ASK_S),
            what="reading mesh-wide PeerAuthentication",
        ).get("items")
        or []
    )
    mtls = "PERMISSIVE"
    for item in peer:
        spec = item.get("spec") or {}
        if not spec.get("selector"):
            mode = str((spec.get("mtls") or {}).get("mode") or "UNSET")
            mtls = mode if mode != "UNSET" else mtls
    filters = (
        kube.get_json(
            "-n",
            root,
            "envoyfilters.networking.istio.io",
            timeout=deadline.left(_ASK_S),
            what="reading mesh-wide EnvoyFilters",
        ).get("items")
        or []
    )
    return IstioInfo(
        version=version,
        revision=revision,
        default_retry_policy=retry if isinstance(retry, dict) else None,
        outbound_traffic_policy=outbound,
        mtls_mode=mtls,
        root_namespace=root,
        mesh_envoy_filters=tuple(sorted(str(_meta(f).get("name")) for f in filters)),
        warnings=tuple(warnings),
    )


def judge_istio(info: IstioInfo, *, min_minor: tuple[int, int] = MIN_ISTIO_MINOR) -> IstioInfo:
    """``info`` with the warnings the run should carry; :class:`IstioUnsupported` for what
    the catalogue cannot judge at all (see docs/KUBE_BACKEND.md, "What it refuses")."""
    if info.minor < min_minor:
        raise IstioUnsupported(
            f"Istio {info.version} is older than {min_minor[0]}.{min_minor[1]}, the oldest "
            "whose networking.istio.io/v1 API the catalogue's policies use"
        )
    if info.default_retry_policy is not None:
        raise IstioUnsupported(
            f"this mesh sets meshConfig.defaultHttpRetryPolicy {info.default_retry_policy}: "
            "the catalogue predicts outcomes under Istio's stock default retries (2 attempts "
            "on connect-failure, refused-stream, unavailable, cancelled), so every route "
            "without its own retries would be judged against the wrong prediction"
        )
    warnings = list(info.warnings)
    if info.mesh_envoy_filters:
        warnings.append(
            f"mesh-wide EnvoyFilters in {info.root_namespace} "
            f"({', '.join(info.mesh_envoy_filters)}) may change any outcome; the catalogue "
            "cannot judge their effect"
        )
    if info.outbound_traffic_policy != "ALLOW_ANY":
        warnings.append(
            f"outboundTrafficPolicy is {info.outbound_traffic_policy}: in-mesh scenarios are "
            "unaffected, traffic to hosts outside the mesh is blocked"
        )
    if info.mtls_mode == "DISABLE":
        warnings.append("mesh-wide mTLS is DISABLE: results are not those of a default mesh")
    return replace(info, warnings=tuple(warnings))


def _minor(version: str) -> tuple[int, int]:
    match = re.match(r"^(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    labels = _meta(obj).get("labels")
    return labels if isinstance(labels, Mapping) else {}


def _image_version(deployment: Mapping[str, Any]) -> str:
    """The Istio version from istiod's image tag (``.../pilot:1.30.5-distroless``)."""
    containers = ((deployment.get("spec") or {}).get("template") or {}).get("spec", {})
    for c in containers.get("containers") or []:
        if c.get("name") == "discovery":
            ref = str(c.get("image", "")).split("@", 1)[0].rsplit("/", 1)[-1]
            match = re.search(r":(\d+\.\d+\.\d+)", ref)
            if match:
                return match.group(1)
            raise IstioUnsupported(
                f"cannot tell the Istio version from istiod's image {c.get('image')!r}"
            )
    raise IstioUnsupported("istiod's deployment has no 'discovery' container")
