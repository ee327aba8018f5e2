"""The embedded local mesh: real Envoys on 127.0.0.1 configured from Istio YAML.

``LocalMesh.start()`` owns a mesh (starts and stops every process);
``LocalMesh.attach(state_dir)`` drives one that another process owns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from meshchaos.mesh.local.mesh import LocalMesh

__all__ = ["LocalMesh"]


def __getattr__(name: str) -> Any:
    # Lazy, so importing the translator's modules (service_registry, translate) stays cheap.
    if name in __all__:
        from meshchaos.mesh.local import mesh

        return getattr(mesh, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
