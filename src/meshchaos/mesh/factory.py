"""Open a mesh by backend name: the one place that maps ``--backend`` to an implementation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meshchaos.errors import BackendUnavailable, MeshError
from meshchaos.mesh.base import Mesh

__all__ = ["BACKENDS", "open_mesh"]

BACKENDS = ("local", "kind", "cluster")


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
