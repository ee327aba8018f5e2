"""Instance-level chaos that undoes itself: scale, kill and restart workloads."""

from __future__ import annotations

from meshchaos.mesh.base import Mesh

__all__ = ["Instances"]


class Instances:
    """Scale, kill and restart workload instances; :meth:`undo` puts everything back.

    Instances are named as the backend names them (:meth:`Mesh.instances`); an index is
    resolved to a name when the kill happens, so a replaced pod's new name is used.
    Safe to call from a load trigger's helper thread (a kill while load is in flight):
    each call is one mesh operation, and the undo list is appended after it succeeded.
    """

    def __init__(self, mesh: Mesh) -> None:
        self.mesh = mesh
        self._scaled: dict[str, int] = {}  # workload -> replicas before the first scale
        self._killed: list[str] = []  # instance names, in kill order
        #: Every instance killed so far, in order (for the record); never cleared.
        self.killed: list[str] = []

    def replicas(self, workload: str) -> int:
        """How many instances of ``workload`` the mesh runs (alive or killed)."""
        return len(self.mesh.instances(workload))

    def scale(self, workload: str, replicas: int) -> None:
        """Scale ``workload``; the original count is restored by :meth:`undo`."""
        before = self.replicas(workload)
        self.mesh.scale(workload, replicas)
        self._scaled.setdefault(workload, before)

    def kill(self, workload: str, index: int = 0) -> str:
        """Kill ``workload``'s instance number ``index`` (in :meth:`Mesh.instances` order)
        and return its name; :meth:`undo` restarts it unless restarted before."""
        names = self.mesh.instances(workload)
        if not 0 <= index < len(names):
            raise IndexError(
                f"{workload} has {len(names)} instance(s) ({', '.join(names)}); no instance {index}"
            )
        return self.kill_instance(names[index])

    def kill_instance(self, instance: str) -> str:
        """Kill the instance named ``instance``; returns it."""
        self.mesh.kill(instance)
        self._killed.append(instance)
        self.killed.append(instance)
        return instance

    def restart(self, instance: str) -> None:
        """Bring the killed ``instance`` back (it is then not restarted again by undo)."""
        self.mesh.restart(instance)
        if instance in self._killed:
            self._killed.remove(instance)

    def undo(self) -> list[str]:
        """Restart what was killed, then restore replica counts; returns the failures."""
        problems: list[str] = []
        for instance in reversed(self._killed):
            try:
                self.mesh.restart(instance)
            except Exception as exc:  # every undo runs; each failure is reported
                problems.append(f"restart {instance}: {exc}")
        self._killed.clear()
        for workload, replicas in reversed(list(self._scaled.items())):
            try:
                self.mesh.scale(workload, replicas)
            except Exception as exc:
                problems.append(f"scale {workload} back to {replicas}: {exc}")
        self._scaled.clear()
        return problems
