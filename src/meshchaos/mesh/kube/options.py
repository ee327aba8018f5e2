"""What the kube backends read of the options a run was started with.

:class:`KubeOptions` is the part of :class:`meshchaos.mesh.registry.BackendOptions` that
``kind`` and ``cluster`` use, as a protocol, so these backends depend on the fields and
not on where the dataclass lives. ``gateway_url`` is ``--gateway-url`` (cluster only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

__all__ = ["KubeOptions"]


class KubeOptions(Protocol):
    """The fields of :class:`meshchaos.mesh.registry.BackendOptions` these backends read."""

    @property
    def state_dir(self) -> Path: ...
    @property
    def run_id(self) -> str: ...
    @property
    def worker(self) -> str: ...
    @property
    def kube_context(self) -> str | None: ...
    @property
    def allow_context(self) -> bool: ...
    @property
    def reuse_cluster(self) -> bool: ...
    @property
    def keep_cluster(self) -> bool: ...
    @property
    def kubeconfig(self) -> Path | None: ...
    @property
    def gateway_url(self) -> str | None: ...
    @property
    def deadline_s(self) -> float: ...
