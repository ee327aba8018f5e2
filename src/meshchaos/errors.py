"""The exception hierarchy.

    MeshChaosError                 the harness or its input is wrong
    ├── ConfigInvalid              Istio YAML rejected; carries every problem found
    ├── UnknownWorkload            a workload name that is not in the mesh or topology
    ├── MeshError                  a mesh backend failed (process died, proxy never synced, ...)
    │   ├── StatNotEmitted         a counter that no proxy of the asked workloads emits
    │   └── BackendUnavailable     the chosen backend cannot run here or is not built yet
    │       └── PrerequisiteMissing  a tool it needs (Docker engine, kind, kubectl) is missing
    └── LoadError                  the load generator could not run as asked
    PolicyDeviation (AssertionError)  the system under test deviated from the prediction

A deviation is an ``AssertionError`` so that "the mesh misbehaved" never looks like
"the harness broke" in a pytest report.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


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


class UnknownWorkload(MeshChaosError):
    """A workload was named (``--from``, a stats target) that does not exist; ``known``
    lists the names that do, and the message names both, e.g.
    ``no source workload 'sleep' in the Bookinfo topology; known: client, gateway``."""

    def __init__(
        self, workload: str, known: Iterable[str], what: str = "workload", where: str = ""
    ) -> None:
        self.workload = workload
        self.known = sorted(known)
        place = f" {where}" if where else ""
        names = ", ".join(self.known) or "none"
        super().__init__(f"no {what} {workload!r}{place}; known: {names}")


class MeshError(MeshChaosError):
    """A mesh backend failed to do what was asked."""


class StatNotEmitted(MeshError):
    """A counter that no proxy of the asked workloads emits: the proxies run without the
    stat (a kube sidecar whose ``proxyStatsMatcher`` leaves it out, a cluster with no outlier
    detection configured), so its value is unknown, never zero."""


class BackendUnavailable(MeshError):
    """The requested backend cannot run on this machine, or is not available yet."""


class PrerequisiteMissing(BackendUnavailable):
    """A tool the backend needs is not installed or not running (a Docker engine, kind,
    kubectl). The message is complete as it stands, one entry per missing tool with how
    to install it, and is meant to be shown as is, without a traceback."""


class LoadError(MeshChaosError):
    """The load generator was asked for something it cannot do."""


class PolicyDeviation(AssertionError):
    """Observed behaviour deviates from what the policy predicts."""
