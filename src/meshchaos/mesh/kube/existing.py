"""``--backend cluster``: the fence around a cluster meshchaos did not create.

It runs only on a kube context that is named (``--kube-context NAME``) **and** allowed
(``--allow-context``, or ``MESHCHAOS_ALLOW_CONTEXT=NAME``); the current context is never
used. The named context is then copied alone into a kubeconfig of meshchaos's own in the
state dir (``kubectl config view --minify --flatten --raw``), so every later command,
even one that forgot ``--context``, can reach that cluster and no other.

Nothing is installed: the gateway is found, not made. Its address is the one ``--gateway-url``
gives, or the LoadBalancer address of ``istio-system/istio-ingressgateway``; that host is
the only non-loopback address any load may be sent to.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

from meshchaos.errors import MeshError
from meshchaos.mesh.kube._kubectl import Deadline, Kube
from meshchaos.mesh.kube._runner import Runner

__all__ = [
    "ALLOW_ENV",
    "ContextRefused",
    "check_context",
    "find_gateway_url",
    "private_kubeconfig",
]

ALLOW_ENV = "MESHCHAOS_ALLOW_CONTEXT"
_ASK_S = 30.0


class ContextRefused(MeshError):
    """``--backend cluster`` was pointed at a context that was not named and allowed."""


def check_context(
    kube_context: str | None, *, allow_context: bool, env: Mapping[str, str] | None = None
) -> str:
    """The context to run on, or :class:`ContextRefused` saying how to allow it."""
    env = os.environ if env is None else env
    if not kube_context:
        raise ContextRefused(
            "--backend cluster needs the cluster named: pass --kube-context NAME (and allow "
            f"it with --allow-context or {ALLOW_ENV}=NAME); meshchaos never runs on the "
            "current context of your kubeconfig"
        )
    if allow_context or env.get(ALLOW_ENV, "").strip() == kube_context:
        return kube_context
    raise ContextRefused(
        f"--backend cluster refuses kube context {kube_context!r}: it is not allowed. "
        f"meshchaos creates namespaces and workloads there (labelled managed-by=meshchaos, "
        f"removed at the end) and touches nothing else; to allow it, pass --allow-context "
        f"with --kube-context {kube_context}, or set {ALLOW_ENV}={kube_context}"
    )


def private_kubeconfig(
    runner: Runner, context: str, dest: Path, *, source: Path | None, deadline: Deadline
) -> Path:
    """Write ``context`` alone (credentials inlined) from the user's kubeconfig (``source``,
    else ``$KUBECONFIG`` or ``~/.kube/config`` as kubectl reads them) to ``dest``."""
    argv = ["kubectl", "config", "view", "--minify", "--flatten", "--raw"]
    argv += ["--context", context]
    if source is not None:
        argv += ["--kubeconfig", str(source)]
    done = runner.run(argv, timeout=deadline.left(_ASK_S))
    if not done.ok:
        where = str(source) if source is not None else "your kubeconfig"
        raise ContextRefused(
            f"kube context {context!r} is not in {where}: {done.error_text.strip()}"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    # It holds credentials: readable by this user only, written without a window where
    # another user could open it.
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(done.stdout)
    return dest


def find_gateway_url(kube: Kube, *, explicit: str | None, deadline: Deadline) -> str:
    """``explicit`` (checked), else ``http://<LoadBalancer address>:<http2 port>`` of the
    ingress gateway Service; :class:`MeshError` saying to pass ``--gateway-url`` when it
    has no address."""
    if explicit:
        parsed = urllib.parse.urlsplit(explicit)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise MeshError(
                f"--gateway-url {explicit!r}: give a base URL such as http://203.0.113.7:80"
            )
        return explicit.rstrip("/")
    svc = kube.get_json(
        "-n",
        "istio-system",
        "service",
        "istio-ingressgateway",
        timeout=deadline.left(_ASK_S),
        what="reading the ingress gateway Service",
    )
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    host = next((i.get("ip") or i.get("hostname") for i in ingress if isinstance(i, dict)), None)
    ports = (svc.get("spec") or {}).get("ports") or []
    port = next((p.get("port") for p in ports if p.get("name") == "http2"), 80)
    if not host:
        raise MeshError(
            "the ingress gateway Service istio-system/istio-ingressgateway has no "
            "LoadBalancer address; pass --gateway-url http://HOST:PORT (the address the "
            "suite may send gateway load to)"
        )
    shown = f"[{host}]" if ":" in str(host) else str(host)
    return f"http://{shown}:{port}"
