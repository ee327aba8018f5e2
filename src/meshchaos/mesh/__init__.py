"""Mesh backends behind one protocol: :class:`meshchaos.mesh.base.Mesh`."""

from meshchaos.mesh.base import Applied, Mesh, MeshClient, ProxyStatus

__all__ = ["Applied", "Mesh", "MeshClient", "ProxyStatus"]
