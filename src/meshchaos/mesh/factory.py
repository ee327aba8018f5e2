"""Open a mesh by backend name: the one place that maps ``--backend`` to an implementation."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from meshchaos.errors import BackendUnavailable, MeshError
from meshchaos.mesh.base import Mesh

if TYPE_CHECKING:
    from meshchaos.mesh.local._down import Down

__all__ = ["BACKENDS", "attach_mesh", "check_backend", "down_mesh", "open_mesh"]

BACKENDS = ("local", "kind", "cluster")


def check_backend(backend: str) -> None:
    """Check, in seconds, that ``backend`` can start on this machine: for ``kind`` and
    ``cluster`` the tools they need (:func:`meshchaos.mesh.kube.prereqs.check_prerequisites`),
    raising one :class:`~meshchaos.errors.PrerequisiteMissing` naming every missing tool
    and how to install it; then :class:`BackendUnavailable` while the backend itself has
    not landed. ``local`` needs nothing."""
    if backend == "local":
        return
    if backend not in BACKENDS:
        raise MeshError(f"unknown backend {backend!r}; expected one of: {', '.join(BACKENDS)}")
    from meshchaos.mesh.kube._runner import SubprocessRunner
    from meshchaos.mesh.kube.prereqs import check_prerequisites

    check_prerequisites(SubprocessRunner(), backend)
    raise BackendUnavailable(
        f"the tools --backend {backend} needs are in place, but the kind and cluster "
        "backends are not available yet; use --backend local for the embedded Envoy mesh"
    )


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
        check_backend(backend)  # raises: a missing tool, else "not available yet"
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


def down_mesh(state_dir: Path, *, force: bool = False) -> Down:
    """Stop the mesh recorded in ``state_dir`` from any process, and remove its state;
    ``force`` also sweeps a mesh whose state is unreadable or another version's, by
    command line. No mesh there is not an error (``Down(found=False)``), so ``down`` is
    safe to run twice. Only the local backend keeps a state dir so far
    (:meth:`meshchaos.mesh.local.LocalMesh.down`)."""
    from meshchaos.mesh.local import LocalMesh

    return LocalMesh.down(state_dir, force=force)
