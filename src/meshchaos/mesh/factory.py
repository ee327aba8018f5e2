"""Open a mesh by backend name: the one place that maps ``--backend`` to an implementation."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshchaos.errors import BackendUnavailable, MeshError
from meshchaos.mesh.base import Mesh

__all__ = ["BACKENDS", "DOWN_TIMEOUT", "Stopped", "attach_mesh", "down_mesh", "open_mesh"]

BACKENDS = ("local", "kind", "cluster")
DOWN_TIMEOUT = 10.0  # seconds the owner gets to tear down after SIGTERM


@dataclass(frozen=True)
class Stopped:
    """What :func:`down_mesh` found and did.

    ``running``: a mesh was recorded in the state dir; ``swept``: pids of processes its
    owner left behind (it died without cleaning up) that were killed.
    """

    running: bool
    swept: tuple[int, ...] = ()


def open_mesh(
    backend: str, *, state_dir: Path | None, kube_context: str | None = None, **kw: Any
) -> Mesh:
    """Start a mesh of ``backend`` and return it once it serves.

    ``local``: :meth:`meshchaos.mesh.local.LocalMesh.start` (``kw`` passed through, e.g.
    ``envoy_concurrency``). ``kind`` and ``cluster`` are not available yet and say so,
    rather than pretending with a stand-in.
    """
    if backend == "local":
        from meshchaos.mesh.local import LocalMesh

        return LocalMesh.start(state_dir, **kw)
    if backend in ("kind", "cluster"):
        what = f" (kube context {kube_context!r})" if kube_context else ""
        raise BackendUnavailable(
            f"the kind and cluster backends are not available yet{what}: they land with the "
            "kube backend issue; use --backend local for the embedded Envoy mesh"
        )
    raise MeshError(f"unknown backend {backend!r}; expected one of: {', '.join(BACKENDS)}")


def attach_mesh(state_dir: Path) -> Mesh:
    """The mesh another process runs with its state in ``state_dir``: apply, delete,
    status and stats work on it; instance chaos needs the owner. Only the local backend
    keeps a state dir so far; a dir with no live mesh raises a :class:`MeshError` that
    says how to start one."""
    from meshchaos.mesh.local import LocalMesh

    return LocalMesh.attach(state_dir)


def down_mesh(state_dir: Path, *, timeout: float = DOWN_TIMEOUT) -> Stopped:
    """Stop the mesh recorded in ``state_dir``: ask its owner to stop (SIGTERM) and wait
    up to ``timeout``, then sweep what a dead owner left and clear the state dir.

    A state dir with no mesh is not an error (``Stopped(running=False)``), so ``down``
    is safe to run twice. Only the local backend keeps a state dir so far.
    """
    from meshchaos.mesh.local.state import StateDir, is_same_process
    from meshchaos.mesh.local.supervisor import sweep

    sd = StateDir(state_dir)
    state = sd.load()
    if state is None:
        return Stopped(running=False)
    if is_same_process(state.owner_pid, state.owner_start_ticks):
        os.kill(state.owner_pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while is_same_process(state.owner_pid, state.owner_start_ticks):
            if time.monotonic() >= deadline:
                raise MeshError(
                    f"the mesh owner (pid {state.owner_pid}) did not stop within "
                    f"{timeout:.0f} s of SIGTERM; its children die with it (kill it)"
                )
            time.sleep(0.02)
    killed = sweep(sd, sd.load())  # leftovers of an owner that died without cleaning up
    with sd.lock():
        sd.clear(remove_dir=False)
    return Stopped(running=True, swept=tuple(killed))
