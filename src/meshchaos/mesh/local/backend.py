"""The ``local`` entry of the backend registry: the embedded Envoy mesh on loopback."""

from __future__ import annotations

from pathlib import Path

from meshchaos.errors import MeshError
from meshchaos.mesh.handle import MeshHandle
from meshchaos.mesh.local import _down
from meshchaos.mesh.local.mesh import LocalMesh
from meshchaos.mesh.registry import BackendOptions, Down

__all__ = ["LocalBackend"]


class LocalBackend:
    """Opens, attaches to and stops :class:`~meshchaos.mesh.local.mesh.LocalMesh`."""

    name = "local"

    def open(self, options: BackendOptions) -> LocalMesh:
        """Start a mesh in ``options.state_dir`` (the kube options do not apply here)."""
        concurrency = options.envoy_concurrency if options.envoy_concurrency is not None else 1
        return LocalMesh.start(options.state_dir, envoy_concurrency=concurrency)

    def attach(self, handle: MeshHandle) -> LocalMesh:
        """The mesh whose state dir the handle names (``backend_data["state_dir"]``)."""
        state_dir = handle.backend_data.get("state_dir")
        if handle.backend != self.name or not isinstance(state_dir, str):
            raise MeshError(
                f"not a local mesh handle: backend {handle.backend!r}, backend_data "
                f"{handle.backend_data!r}; expected backend 'local' with a 'state_dir'"
            )
        return LocalMesh.attach(Path(state_dir))

    def down(self, state_dir: Path, *, force: bool = False) -> Down:
        """:func:`meshchaos.mesh.local._down.down`: SIGTERM to a live owner, sweep what a
        dead one left, remove the state; ``force`` also kills by command line."""
        return _down.down(state_dir, force=force)
