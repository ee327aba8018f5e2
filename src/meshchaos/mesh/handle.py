"""The handle of a running mesh: the small backend-neutral file tools find it by.

A running mesh writes ``mesh.json`` in its state dir (the local backend:
:meth:`meshchaos.mesh.local.state.MeshState.mesh_json`). It names the backend, the
gateway's base URL and the in-mesh clients' proxy URLs, which is all a load needs, so
``meshchaos load`` reads this instead of attaching to the mesh.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from meshchaos.errors import MeshError

__all__ = ["HANDLE_FILE", "MeshHandle", "MeshNotRunning", "no_mesh_message", "read_handle"]

HANDLE_FILE = "mesh.json"


class MeshNotRunning(MeshError):
    """No mesh has been started in the state dir (or it was stopped)."""


@dataclass(frozen=True)
class MeshHandle:
    """What ``mesh.json`` holds."""

    backend: str
    gateway_url: str  # "" when the mesh has no gateway
    clients: dict[str, str] = field(default_factory=dict)  # workload -> HTTP proxy URL
    owner_pid: int | None = None


def no_mesh_message(state_dir: Path) -> str:
    """The one message for "nothing runs here", naming the way out."""
    how = f"`meshchaos up --state-dir {state_dir}`"
    return f"no mesh is running in {state_dir}; start one with {how}"


def read_handle(state_dir: Path) -> MeshHandle:
    """The handle in ``state_dir``; :class:`MeshNotRunning` when there is none."""
    path = Path(state_dir) / HANDLE_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise MeshNotRunning(no_mesh_message(state_dir)) from None
    except (OSError, ValueError) as exc:
        raise MeshError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise MeshError(f"{path} is not a JSON object")
    clients = data.get("clients") or {}
    if not isinstance(clients, dict):
        raise MeshError(f"{path}: 'clients' is not a JSON object")
    owner = data.get("owner_pid")
    if isinstance(owner, int) and not _alive(owner):
        raise MeshNotRunning(
            f"the mesh in {state_dir} is not running (its owner, pid {owner}, is gone); "
            f"sweep it with `meshchaos down --state-dir {state_dir}`, then start one with "
            "`meshchaos up`"
        )
    return MeshHandle(
        backend=str(data.get("backend", "local")),
        gateway_url=str(data.get("gateway_url") or ""),
        clients={str(k): str(v) for k, v in clients.items()},
        owner_pid=owner if isinstance(owner, int) else None,
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
