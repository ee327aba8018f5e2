"""Instance-level chaos that undoes itself: scale, kill and restart workloads."""

from __future__ import annotations

from meshchaos.mesh.base import Mesh

__all__ = ["Instances"]


class Instances:
    """Scale, kill and restart workload instances; :meth:`undo` puts everything back.

    Safe to call from a load trigger's helper thread (a kill while load is in flight):
    each call is one mesh operation, and the undo list is appended after it succeeded.
    """

    def __init__(self, mesh: Mesh) -> None:
        self.mesh = mesh
        self._scaled: dict[str, int] = {}  # workload -> replicas before the first scale
        self._killed: list[tuple[str, int]] = []

    def replicas(self, workload: str) -> int:
        """How many instances of ``workload`` the mesh runs (alive or killed)."""
        return sum(1 for p in self.mesh.status() if p.workload == workload)

    def scale(self, workload: str, replicas: int) -> None:
        """Scale ``workload``; the original count is restored by :meth:`undo`."""
        before = self.replicas(workload)
        self.mesh.scale(workload, replicas)
        self._scaled.setdefault(workload, before)

    def kill(self, workload: str, instance: int = 0) -> None:
        """Kill one instance; :meth:`undo` restarts it unless restarted before."""
        self.mesh.kill(workload, instance)
        self._killed.append((workload, instance))

    def restart(self, workload: str, instance: int = 0) -> None:
        self.mesh.restart(workload, instance)
        if (workload, instance) in self._killed:
            self._killed.remove((workload, instance))

    def undo(self) -> list[str]:
        """Restart what was killed, then restore replica counts; returns the failures."""
        problems: list[str] = []
        for workload, instance in reversed(self._killed):
            try:
                self.mesh.restart(workload, instance)
            except Exception as exc:  # every undo runs; each failure is reported
                problems.append(f"restart {workload}[{instance}]: {exc}")
        self._killed.clear()
        for workload, replicas in reversed(list(self._scaled.items())):
            try:
                self.mesh.scale(workload, replicas)
            except Exception as exc:
                problems.append(f"scale {workload} back to {replicas}: {exc}")
        self._scaled.clear()
        return problems
