"""Check the tools a kube backend needs before anything starts.

A missing tool fails the run within seconds, with one message that names every missing
tool and how to install it (:class:`~meshchaos.errors.PrerequisiteMissing`), instead of
a traceback several minutes into a cluster start.

``kind`` needs a container engine (Docker, or Podman with
``KIND_EXPERIMENTAL_PROVIDER=podman``), ``kind`` and ``kubectl``; istioctl is not a
prerequisite, since :func:`meshchaos.mesh.kube.istio.ensure_istioctl` fetches the
pinned one when ``PATH`` has no such version. ``cluster`` needs ``kubectl`` only: it
never installs anything.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

from meshchaos.errors import PrerequisiteMissing
from meshchaos.mesh.kube._runner import CommandNotFound, CommandTimedOut, Runner
from meshchaos.mesh.kube.pins import KIND_VERSION

__all__ = ["Missing", "Tools", "check_prerequisites", "container_engine"]

# Each check is a local call; an engine that does not answer in this time is as good as
# down, and the whole check must stay within seconds.
CHECK_TIMEOUT_S = 8.0

_DOCKER_HOW = (
    "Install Docker Engine (https://docs.docker.com/engine/install/) or Docker Desktop "
    "(https://docs.docker.com/desktop/), start it (`sudo systemctl start docker` on Linux), "
    "and check with `docker info`; Podman works too, with "
    "`export KIND_EXPERIMENTAL_PROVIDER=podman`."
)
_PODMAN_HOW = (
    "Install Podman (https://podman.io/docs/installation) and check with `podman info`, "
    "or unset KIND_EXPERIMENTAL_PROVIDER to use Docker."
)
_KIND_HOW = (
    f"Install kind {KIND_VERSION}: `go install sigs.k8s.io/kind@{KIND_VERSION}`, or the "
    f"release binary from https://github.com/kubernetes-sigs/kind/releases/tag/{KIND_VERSION} "
    "(see https://kind.sigs.k8s.io/docs/user/quick-start/#installation)."
)
_KUBECTL_HOW = (
    "Install kubectl (https://kubernetes.io/docs/tasks/tools/), a release within one "
    "minor version of the cluster's."
)


@dataclass(frozen=True)
class Missing:
    """One missing prerequisite: what, why we think so, and how to get it."""

    what: str
    why: str
    how: str

    def render(self) -> str:
        return f"  - {self.what}: {self.why}\n    {self.how}"


@dataclass(frozen=True)
class Tools:
    """What was found, for the run record: the versions each tool reported."""

    engine: str = ""  # "docker 28.2.2" / "podman 5.4.0"; "" when not needed
    kind: str = ""  # "kind v0.32.0 go1.24.4 linux/amd64"
    kubectl: str = ""  # "v1.36.1"


def container_engine(env: Mapping[str, str] | None = None) -> str:
    """The engine kind will use: ``docker`` unless KIND_EXPERIMENTAL_PROVIDER names another."""
    chosen = (env if env is not None else os.environ).get("KIND_EXPERIMENTAL_PROVIDER", "")
    return chosen.strip() or "docker"


def check_prerequisites(
    runner: Runner, backend: str, *, env: Mapping[str, str] | None = None
) -> Tools:
    """Check every tool ``backend`` (``kind`` or ``cluster``) needs and return their
    versions; raise one :class:`PrerequisiteMissing` naming all that are missing."""
    missing: list[Missing] = []
    engine = kind = ""
    if backend == "kind":
        engine = _check_engine(runner, container_engine(env), missing)
        kind = _check_kind(runner, missing)
    kubectl = _check_kubectl(runner, missing)
    if missing:
        count = len(missing)
        head = (
            f"--backend {backend} cannot start: {count} prerequisite"
            f"{'s are' if count > 1 else ' is'} missing on this machine:"
        )
        tail = "Without them, run on the embedded mesh: --backend local."
        raise PrerequisiteMissing("\n".join([head, *(m.render() for m in missing), tail]))
    return Tools(engine=engine, kind=kind, kubectl=kubectl)


def _check_engine(runner: Runner, engine: str, missing: list[Missing]) -> str:
    how = _PODMAN_HOW if engine == "podman" else _DOCKER_HOW
    name = "Podman" if engine == "podman" else "Docker engine"
    # `info` talks to the engine itself, so it tells "installed" from "running".
    argv = [engine, "info", "--format", "{{.ServerVersion}}"]
    if engine == "podman":
        argv = [engine, "info", "--format", "{{.Version.Version}}"]
    try:
        done = runner.run(argv, timeout=CHECK_TIMEOUT_S)
    except CommandNotFound:
        missing.append(Missing(name, f"the `{engine}` command is not installed.", how))
        return ""
    except CommandTimedOut:
        why = f"`{engine} info` got no answer within {CHECK_TIMEOUT_S:g} s."
        missing.append(Missing(name, why, how))
        return ""
    version = done.text.strip()
    if not done.ok or not version:
        said = _first_line(done.error_text) or f"exit {done.returncode}"
        why = (
            f"the `{engine}` command is installed, but `{engine} info` reached no engine ({said})."
        )
        missing.append(Missing(name, why, how))
        return ""
    return f"{engine} {version}"


def _ask(
    runner: Runner, tool: str, argv: list[str], how: str, missing: list[Missing]
) -> str | None:
    """Run ``argv`` for ``tool``'s version: its output, or None with why in ``missing``."""
    shown = " ".join(argv[:3]) if tool == "kubectl" else " ".join(argv)
    try:
        done = runner.run(argv, timeout=CHECK_TIMEOUT_S)
    except CommandNotFound:
        missing.append(Missing(tool, "not found on PATH.", how))
        return None
    except CommandTimedOut:
        missing.append(Missing(tool, f"`{' '.join(argv[:2])}` did not answer.", how))
        return None
    if not done.ok:
        detail = _first_line(done.error_text) or str(done.returncode)
        missing.append(Missing(tool, f"`{shown}` failed ({detail}).", how))
        return None
    return done.text


def _check_kind(runner: Runner, missing: list[Missing]) -> str:
    text = _ask(runner, "kind", ["kind", "version"], _KIND_HOW, missing)
    return "" if text is None else text.strip()


def _check_kubectl(runner: Runner, missing: list[Missing]) -> str:
    argv = ["kubectl", "version", "--client", "-o", "json"]
    text = _ask(runner, "kubectl", argv, _KUBECTL_HOW, missing)
    return "" if text is None else _kubectl_version(text)


def _kubectl_version(text: str) -> str:
    try:
        data = json.loads(text)
        return str(data["clientVersion"]["gitVersion"])
    except (ValueError, KeyError, TypeError):
        return text.strip()[:80]


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""
