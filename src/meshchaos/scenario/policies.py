"""Applying Istio policies for one scenario, and always undoing them.

``PolicyApplier("virtual-service-all-v1", "fault-ratings-abort-50pct-500.yaml")`` finds
each file (:func:`meshchaos.manifests.find_policy`: a path, the user's policy dirs,
then the packaged samples), loads and validates all of them together (so every problem
shows, and nothing is applied when any is wrong), applies them with ``mesh.apply``
(which returns once every affected proxy runs the new config) and registers the undo
the moment the apply succeeded. :meth:`PolicyApplier.rollback` undoes every apply in
reverse order, and :meth:`PolicyApplier.drift` tells how the mesh differs from before.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from meshchaos.istio.model import Resource, resource_id
from meshchaos.manifests import find_policy, load_policies, merge
from meshchaos.mesh.base import Applied, Mesh

__all__ = ["PolicyApplier", "PolicySource"]

PolicySource = str | Path | Resource


class PolicyApplier:
    """Applies policies for one scenario and remembers how to undo them."""

    def __init__(self, mesh: Mesh, policy_dirs: Sequence[Path] = ()) -> None:
        self.mesh = mesh
        self.policy_dirs = tuple(policy_dirs)
        self.baseline = {resource_id(r): r for r in mesh.resources()}
        self.applied: list[Applied] = []
        self.files: list[Path] = []  # every file applied, in order, for the record

    def resolve(self, name: str | Path) -> Path:
        """The file a policy name refers to (:func:`meshchaos.manifests.find_policy`)."""
        return find_policy(name, self.policy_dirs)

    def load(self, sources: Sequence[PolicySource]) -> list[Resource]:
        """Parse and validate ``sources``: files are loaded together, all or nothing, so
        every problem (an unknown name, an invalid field) shows at once."""
        names = [s for s in sources if isinstance(s, str | Path)]
        resources = load_policies(names, self.policy_dirs) if names else []
        return resources + [s for s in sources if not isinstance(s, str | Path)]

    def told(self, sources: Sequence[PolicySource]) -> list[Resource]:
        """What the mesh would run had ``sources`` been applied instead of this
        scenario's policies: the baseline plus ``sources`` (for telling the oracle)."""
        return merge(self.baseline.values(), self.load(sources))

    def __call__(self, *sources: PolicySource) -> Applied:
        """Apply ``sources`` (files, names or resources); returns once the proxies run them."""
        files = [self.resolve(s) for s in sources if isinstance(s, str | Path)]
        applied = self.mesh.apply(self.load(sources))
        # Registered before anything else can fail, so the rollback always happens.
        self.applied.append(applied)
        self.files.extend(files)
        return applied

    @property
    def resources(self) -> list[Resource]:
        """Every resource this scenario applied, in order."""
        return [r for a in self.applied for r in a.resources]

    def rollback(self) -> list[str]:
        """Undo every apply in reverse order; returns the problems (all of them)."""
        problems: list[str] = []
        while self.applied:
            applied = self.applied.pop()
            try:
                self.mesh.delete(applied)
            except Exception as exc:  # keep undoing the rest; every failure is reported
                names = ", ".join(resource_id(r) for r in applied.resources)
                problems.append(f"rolling back {names}: {type(exc).__name__}: {exc}")
        return problems

    def drift(self) -> list[str]:
        """How the mesh's resources differ from before the scenario, one line each."""
        now = {resource_id(r): r for r in self.mesh.resources()}
        lines = [f"left behind: {k}" for k in sorted(now.keys() - self.baseline.keys())]
        lines += [f"missing: {k}" for k in sorted(self.baseline.keys() - now.keys())]
        lines += [
            f"changed: {k}"
            for k in sorted(now.keys() & self.baseline.keys())
            if now[k] != self.baseline[k]
        ]
        return lines
