"""The report package's one error."""

from __future__ import annotations

from meshchaos.errors import MeshChaosError

__all__ = ["RecordError"]


class RecordError(MeshChaosError, ValueError):
    """A record that cannot be used: unreadable, damaged, or of another schema."""
