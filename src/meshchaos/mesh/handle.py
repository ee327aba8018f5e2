"""The handle of a running mesh: the small backend-neutral file tools find it by.

A running mesh writes ``mesh.json`` in its state dir (:func:`write_handle`). It names the
backend, the gateway's base URL, the in-mesh clients' proxy URLs and what the backend
needs to attach again (``backend_data``: the local state dir; a kube cluster's
kubeconfig, context and namespace). :func:`meshchaos.mesh.registry.attach` reads it and
hands it to that backend, so no tool reads a backend's own state files.

The file is versioned (:data:`SCHEMA`, :data:`VERSION`): a file of another schema or
version is an error naming the file, what it found and what was expected, never
"no mesh".
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshchaos.errors import MeshError

__all__ = [
    "HANDLE_FILE",
    "SCHEMA",
    "VERSION",
    "MeshHandle",
    "MeshNotRunning",
    "no_mesh_message",
    "read_handle",
    "write_handle",
]

HANDLE_FILE = "mesh.json"
SCHEMA = "meshchaos.mesh-handle"
VERSION = 1


class MeshNotRunning(MeshError):
    """No mesh has been started in the state dir (or it was stopped)."""


@dataclass(frozen=True)
class MeshHandle:
    """What ``mesh.json`` holds."""

    backend: str
    gateway_url: str  # "" when the mesh has no gateway
    clients: dict[str, str] = field(default_factory=dict)  # workload -> HTTP proxy URL
    owner_pid: int | None = None
    backend_data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "version": VERSION,
            "backend": self.backend,
            "gateway_url": self.gateway_url,
            "clients": dict(self.clients),
            "owner_pid": self.owner_pid,
            "backend_data": dict(self.backend_data),
        }


def no_mesh_message(state_dir: Path) -> str:
    """The one message for "nothing runs here", naming the way out."""
    how = f"`meshchaos up --state-dir {state_dir}`"
    return f"no mesh is running in {state_dir}; start one with {how}"


def write_handle(state_dir: Path, handle: MeshHandle) -> Path:
    """Write ``handle`` to ``state_dir/mesh.json`` atomically (a temp file in the same
    dir, then ``os.replace``), so a reader never sees half a file. Returns the path."""
    path = Path(state_dir) / HANDLE_FILE
    fd, tmp = tempfile.mkstemp(prefix=".mesh-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(handle.to_json(), f, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_handle(state_dir: Path, *, check_owner: bool = True) -> MeshHandle:
    """The handle in ``state_dir``; :class:`MeshNotRunning` when there is none, or (with
    ``check_owner``) when the process that wrote it is gone. A damaged file, or one of
    another schema or version, is a :class:`MeshError` naming file, found and expected."""
    path = Path(state_dir) / HANDLE_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise MeshNotRunning(no_mesh_message(state_dir)) from None
    except (OSError, ValueError) as exc:
        raise MeshError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise MeshError(f"{path}: found {type(data).__name__}, expected a JSON object")
    found = (data.get("schema"), data.get("version"))
    if found != (SCHEMA, VERSION):
        raise MeshError(
            f"{path}: found schema {found[0]!r} version {found[1]!r}, expected {SCHEMA!r} "
            f"version {VERSION} (written by another meshchaos version?); stop that mesh "
            f"with the meshchaos that started it, or `meshchaos down --force --state-dir "
            f"{state_dir}`"
        )
    clients = data.get("clients", {})
    backend_data = data.get("backend_data", {})
    if not isinstance(clients, dict) or not isinstance(backend_data, dict):
        raise MeshError(f"{path}: 'clients' and 'backend_data' must be JSON objects")
    backend = data.get("backend")
    if not isinstance(backend, str) or not backend:
        raise MeshError(f"{path}: found backend {backend!r}, expected a backend name")
    owner = data.get("owner_pid")
    if check_owner and isinstance(owner, int) and not _alive(owner):
        raise MeshNotRunning(
            f"the mesh in {state_dir} is not running (its owner, pid {owner}, is gone); "
            f"sweep it with `meshchaos down --state-dir {state_dir}`, then start one with "
            "`meshchaos up`"
        )
    return MeshHandle(
        backend=backend,
        gateway_url=str(data.get("gateway_url") or ""),
        clients={str(k): str(v) for k, v in clients.items()},
        owner_pid=owner if isinstance(owner, int) else None,
        backend_data=backend_data,
    )


def _alive(pid: int) -> bool:
    """``pid`` runs and is not a zombie (an owner killed with SIGKILL may linger as one)."""
    if pid <= 0:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"
