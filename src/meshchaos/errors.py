"""The exception hierarchy.

    MeshChaosError                 the harness or its input is wrong
    ├── ConfigInvalid              Istio YAML rejected; carries every problem found
    ├── MeshError                  a mesh backend failed (process died, proxy never synced, ...)
    │   └── BackendUnavailable     the chosen backend cannot run here or is not built yet
    └── LoadError                  the load generator could not run as asked
    PolicyDeviation (AssertionError)  the system under test deviated from the prediction

A deviation is an ``AssertionError`` so that "the mesh misbehaved" never looks like
"the harness broke" in a pytest report.
"""

from __future__ import annotations

from collections.abc import Sequence


class MeshChaosError(Exception):
    """Root of every error meshchaos raises on purpose (except deviations)."""


class ConfigInvalid(MeshChaosError):
    """Istio resources failed validation; nothing was applied.

    ``problems`` holds one line per problem, each naming the source, the resource
    and the field path, e.g.
    ``policy.yaml: VirtualService default/reviews: spec.http[0].route[1].weight: must be >= 0``.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} found, nothing applied:"
        super().__init__("\n".join([head, *(f"  {p}" for p in self.problems)]))


class MeshError(MeshChaosError):
    """A mesh backend failed to do what was asked."""


class BackendUnavailable(MeshError):
    """The requested backend cannot run on this machine, or is not available yet."""


class LoadError(MeshChaosError):
    """The load generator was asked for something it cannot do."""


class PolicyDeviation(AssertionError):
    """Observed behaviour deviates from what the policy predicts."""
