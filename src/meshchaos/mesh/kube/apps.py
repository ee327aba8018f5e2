"""Bookinfo, httpbin and the client pod in a namespace of their own, per run and worker.

The manifests are packaged data (``meshchaos/data/kube/*.yaml``); this module adds what
depends on the run: the namespace (labelled for injection, owned, with a lease), the
ownership labels on every object and pod template, the ``proxy.istio.io/config`` stats
matcher on every pod template (Envoy emits the counters the scenarios read only when
asked at proxy start, KUBE_BACKEND.md T3), and the ConfigMap of the load agent.

:func:`deploy_apps` applies them and waits, under one deadline, until every Deployment
is rolled out and every pod meshchaos measures is Ready with an ``istio-proxy`` container
(an init container on native-sidecar clusters, T14) and the injector's annotation (T13).
A timeout raises :class:`RolloutTimeout` with each waiting pod's container states and
events, so ``ImagePullBackOff`` reads as an infrastructure problem, not a policy one.
"""

from __future__ import annotations

import copy
import importlib
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import tenacity
import yaml

from meshchaos.errors import MeshError
from meshchaos.mesh.kube.api import KubeApi
from meshchaos.mesh.kube.safety import (
    DEFAULT_LEASE_S,
    LEASE_ANNOTATION,
    NAMESPACE_PREFIX,
    check_owned,
    lease_value,
    owned_labels,
)

__all__ = [
    "AGENT_CONFIGMAP",
    "MANIFESTS",
    "PROXY_CONFIG",
    "STATS_REGEXPS",
    "Deployed",
    "RolloutTimeout",
    "SidecarMissing",
    "delete_namespace",
    "deploy_apps",
    "manifests",
    "namespace_name",
    "wait_for_rollouts",
]

MANIFESTS = ("bookinfo.yaml", "httpbin.yaml", "client.yaml")
AGENT_CONFIGMAP = "meshchaos-agent"
SIDECAR = "istio-proxy"
WORKER_LABEL = "meshchaos.io/worker"
# Exactly the stats the scenarios read (Envoy's /stats names; full-string RE2 matches):
# fault filter counters of each HCM, retries / pending overflow / requests and outlier
# ejections of outbound clusters, and requests of inbound clusters (server side).
STATS_REGEXPS = (
    r"http\..*fault\.(delays_injected|aborts_injected)",
    r"cluster\.outbound\|.*\.(upstream_rq_retry|upstream_rq_pending_overflow|upstream_rq_total)",
    r"cluster\.outbound\|.*\.outlier_detection\.(ejections_enforced_total|ejections_active)",
    r"cluster\.inbound\|.*\.upstream_rq_total",
)
PROXY_CONFIG = yaml.safe_dump({"proxyStatsMatcher": {"inclusionRegexps": list(STATS_REGEXPS)}})
_POLL_S = 1.0
_NAME = re.compile(r"[^a-z0-9-]+")


class RolloutTimeout(MeshError):
    """Deployments not rolled out by the deadline; the message carries pod diagnostics."""


class SidecarMissing(MeshError):
    """A running pod without an ``istio-proxy`` sidecar: policies would silently not apply."""


@dataclass(frozen=True)
class Deployed:
    """What :func:`deploy_apps` did: the namespace, the Deployments, how long it took."""

    namespace: str
    deployments: tuple[str, ...]
    seconds: float


def namespace_name(run_id: str, worker: str = "main") -> str:
    """``meshchaos-<run>-<worker>``, a valid DNS label (lowercase, at most 63 chars)."""
    run = _NAME.sub("-", run_id.lower()).strip("-")
    who = _NAME.sub("-", worker.lower()).strip("-") or "main"
    return f"{NAMESPACE_PREFIX}{run}"[: 62 - len(who)].rstrip("-") + f"-{who}"


def _load(name: str) -> list[dict[str, Any]]:
    text = resources.files("meshchaos.data").joinpath("kube", name).read_text()
    return [d for d in yaml.safe_load_all(text) if d]


def _agent_configmap(files: Mapping[str, str]) -> dict[str, Any]:
    bad = [n for n in files if not re.fullmatch(r"[-._a-zA-Z0-9]+", n)]
    if bad:
        raise MeshError(f"load agent file names not valid as ConfigMap keys: {', '.join(bad)}")
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": AGENT_CONFIGMAP},
        "data": dict(files),
    }


def manifests(
    namespace: str,
    run_id: str,
    *,
    agent_files: Mapping[str, str],
    worker: str = "main",
    revision: str | None = None,
    lease_s: float = DEFAULT_LEASE_S,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Every object of a run, in apply order: the namespace first, Deployments last."""
    labels = {**owned_labels(run_id), WORKER_LABEL: _NAME.sub("-", worker)}
    injection = {"istio.io/rev": revision} if revision else {"istio-injection": "enabled"}
    expires = (now or datetime.now(UTC)) + timedelta(seconds=lease_s)
    ns = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": namespace,
            "labels": {**labels, **injection},
            "annotations": {LEASE_ANNOTATION: lease_value(expires)},
        },
    }
    objs = [_agent_configmap(agent_files)]
    for name in MANIFESTS:
        objs += _load(name)
    order = {"ServiceAccount": 0, "ConfigMap": 1, "Service": 2, "Deployment": 3}
    objs.sort(key=lambda o: order[o["kind"]])
    out = [ns]
    for obj in objs:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta["namespace"] = namespace
        meta["labels"] = {**meta.get("labels", {}), **labels}
        if obj["kind"] == "Deployment":
            tmeta = obj["spec"]["template"].setdefault("metadata", {})
            tmeta["labels"] = {**tmeta.get("labels", {}), **labels}
            ann = tmeta.setdefault("annotations", {})
            ann["proxy.istio.io/config"] = PROXY_CONFIG
        out.append(obj)
    return out


def deploy_apps(
    api: KubeApi,
    namespace: str,
    run_id: str,
    *,
    deadline: float,
    worker: str = "main",
    revision: str | None = None,
    agent_files: Mapping[str, str] | None = None,
    poll: float = _POLL_S,
) -> Deployed:
    """Create the run's namespace and apps, and wait until they serve with sidecars.

    ``agent_files``: the load agent's files (default: ``meshchaos.load.agent.agent_files()``).
    A namespace of that name that meshchaos did not create is refused, never reused.
    """
    t0 = time.monotonic()
    if agent_files is None:
        # The load agent (meshchaos.load.agent) is imported only when needed.
        agent_files = importlib.import_module("meshchaos.load.agent").agent_files()
    existing = api.find("Namespace", namespace)
    if existing is not None:
        check_owned({**existing, "kind": "Namespace"}, run_id)
    objs = manifests(namespace, run_id, agent_files=agent_files, worker=worker, revision=revision)
    for obj in objs:
        api.apply(obj)
    deployments = tuple(o["metadata"]["name"] for o in objs if o["kind"] == "Deployment")
    left = deadline - (time.monotonic() - t0)
    wait_for_rollouts(api, namespace, deployments, deadline=left, poll=poll, total=deadline)
    return Deployed(namespace, deployments, time.monotonic() - t0)


# -- waiting ---------------------------------------------------------------------------------
def _sidecar(pod: dict[str, Any]) -> tuple[bool, bool]:
    """(has an istio-proxy container, it is ready), native sidecars included."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    declared = [
        c.get("name") for c in [*spec.get("containers", []), *spec.get("initContainers", [])]
    ]
    states = [*status.get("containerStatuses", []), *status.get("initContainerStatuses", [])]
    ready = any(s.get("name") == SIDECAR and s.get("ready") for s in states)
    return SIDECAR in declared, ready


def is_ready(pod: dict[str, Any]) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def _rolled_out(dep: dict[str, Any]) -> bool:
    """kubectl's rollout-status rule."""
    meta, spec, st = dep.get("metadata", {}), dep.get("spec", {}), dep.get("status") or {}
    want = int(spec.get("replicas", 1))
    return (
        int(meta.get("generation", 0)) <= int(st.get("observedGeneration", -1))
        and int(st.get("updatedReplicas", 0)) == want
        and int(st.get("replicas", 0)) == want
        and int(st.get("availableReplicas", 0)) == want
    )


def pods_of(api: KubeApi, namespace: str, dep: dict[str, Any]) -> list[dict[str, Any]]:
    """The live (not terminating) pods a Deployment selects."""
    match = dep.get("spec", {}).get("selector", {}).get("matchLabels", {})
    sel = ",".join(f"{k}={v}" for k, v in sorted(match.items()))
    pods = api.list_objects("Pod", namespace, label_selector=sel)
    return [p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")]


def _pending(api: KubeApi, namespace: str, names: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Deployments not yet serving -> their pods. Raises SidecarMissing at once."""
    waiting: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        dep = api.get("Deployment", name, namespace)
        pods = pods_of(api, namespace, dep)
        for pod in pods:
            has, _ = _sidecar(pod)
            if is_ready(pod) and not has:
                raise SidecarMissing(
                    f"pod {namespace}/{pod['metadata']['name']} runs without an {SIDECAR} "
                    "sidecar: is the namespace labelled for injection, and was the injector "
                    "ready when the pod was created?"
                )
        serving = all(is_ready(p) and _sidecar(p)[1] for p in pods)
        if not (_rolled_out(dep) and serving and len(pods) == int(dep["spec"].get("replicas", 1))):
            waiting[name] = pods
    return waiting


def wait_for_rollouts(
    api: KubeApi,
    namespace: str,
    deployments: Sequence[str],
    *,
    deadline: float,
    poll: float = _POLL_S,
    total: float | None = None,
) -> None:
    """Wait until every Deployment is rolled out and its pods are Ready with a ready
    sidecar; :class:`RolloutTimeout` with diagnostics after ``deadline`` seconds
    (``total``: the caller's whole deadline, named in the message instead)."""
    last: dict[str, list[dict[str, Any]]] = {}

    def check() -> None:
        nonlocal last
        last = _pending(api, namespace, deployments)
        if last:
            raise _NotYet(", ".join(sorted(last)))

    try:
        _poll(check, deadline, poll)
    except _NotYet:
        raise RolloutTimeout(_diagnose(api, namespace, last, total or deadline)) from None


class _NotYet(Exception):
    pass


def _container_lines(pod: dict[str, Any]) -> list[str]:
    st = pod.get("status") or {}
    lines = []
    for s in [*st.get("initContainerStatuses", []), *st.get("containerStatuses", [])]:
        state = s.get("state") or {}
        if "waiting" in state:
            w = state["waiting"]
            desc = f"waiting: {w.get('reason', '?')}" + (
                f" ({w['message']})" if w.get("message") else ""
            )
        elif "terminated" in state:
            t = state["terminated"]
            desc = f"terminated: {t.get('reason', '?')}, exit code {t.get('exitCode')}"
        else:
            desc = "running"
        ready = "ready" if s.get("ready") else "not ready"
        lines.append(f"      {s.get('name')}: {desc}, {ready}, restarts {s.get('restartCount', 0)}")
    return lines or [f"      no container started (phase {st.get('phase', '?')})"]


def _diagnose(
    api: KubeApi, namespace: str, waiting: Mapping[str, list[dict[str, Any]]], deadline: float
) -> str:
    lines = [f"not rolled out within {deadline:g} s in namespace {namespace}:"]
    for name, pods in sorted(waiting.items()):
        lines.append(f"  Deployment {name}: {len(pods)} pod(s)")
        for pod in pods:
            pname = pod["metadata"]["name"]
            lines.append(f"    pod {pname}:")
            lines += _container_lines(pod)
            try:
                events = api.events(namespace, pname)
            except MeshError as exc:
                lines.append(f"      events unreadable: {exc}")
                continue
            for ev in events[-5:]:
                kind, why = ev.get("type", ""), ev.get("reason", "")
                lines.append(f"      event {kind} {why}: {ev.get('message', '')}")
    return "\n".join(lines)


def _poll(check: Callable[[], None], deadline: float, poll: float) -> None:
    """Call ``check`` every ``poll`` seconds until it stops raising :class:`_NotYet`,
    for at most ``deadline`` seconds; the last ``_NotYet`` is raised then."""
    tenacity.Retrying(
        stop=tenacity.stop_after_delay(max(deadline, 0.0)),
        wait=tenacity.wait_fixed(poll),
        retry=tenacity.retry_if_exception_type(_NotYet),
        reraise=True,
    )(check)


def delete_namespace(
    api: KubeApi, namespace: str, *, deadline: float, poll: float = _POLL_S
) -> bool:
    """Delete a namespace meshchaos created and wait until it is gone; False if it was
    already gone. Refuses (:class:`NotOwned`) one without our labels."""
    ns = api.find("Namespace", namespace)
    if ns is None:
        return False
    check_owned({**ns, "kind": "Namespace"})
    api.delete("Namespace", namespace)

    def gone() -> None:
        if api.find("Namespace", namespace) is not None:
            raise _NotYet(namespace)

    try:
        _poll(gone, deadline, poll)
    except _NotYet:
        raise MeshError(
            f"namespace {namespace} still exists {deadline:g} s after its deletion"
        ) from None
    return True
