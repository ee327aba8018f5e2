"""What killing instances of a workload under load should do: before, during, after.

A killed instance (a crashed pod) stays registered as an endpoint until the control
plane withdraws it, so a caller's sidecar keeps picking it, and connecting to it fails
at once (503, response flag UF). Whether a request survives that depends on the retry
policy of the route that picks the host: Istio's default policy retries
``connect-failure`` on another host (``previous_hosts``), so the kill is invisible once
it has happened; with retries off, the killed host's share of picks fails, and under
LEAST_REQUEST it attracts more than its share, because a host that fails at once always
looks least busy (docs/ISTIO_SEMANTICS.md §4, §7).

Requests in flight on the instance when it dies are reset, which no default policy
retries. A closed loop has ``concurrency`` requests in flight at any moment, so when
the kill is otherwise invisible, at most that many requests can fail because of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from meshchaos.istio.model import Resource
from meshchaos.oracle.predict import DEFAULT_TIMING, Timing, predict
from meshchaos.oracle.prediction import Prediction, RequestClass
from meshchaos.oracle.topology import Topology

__all__ = ["KillPrediction", "predict_kill", "split_workload"]


@dataclass(frozen=True)
class KillPrediction:
    """The oracle's answer for a kill of ``killed`` instances of ``workload``.

    ``before`` holds for requests that completed before the kill began, ``after`` for
    requests sent once it is over (the dead instances still registered). Of the requests
    in flight around the kill, at most ``in_flight`` (the closed loop's concurrency) can
    fail by being reset; the others behave as ``after`` says, so beyond ``in_flight``
    the share of failures is bounded by :attr:`after_failure_bound`.
    """

    workload: str
    killed: int
    before: Prediction
    after: Prediction
    in_flight: int
    reasoning: tuple[str, ...]

    @property
    def after_failure_bound(self) -> float:
        """The largest share of requests that ``after`` puts outside ``before``'s classes."""
        known = set(self.before.classes())
        return min(1.0, sum(o.bounds[1] for o in self.after.outcomes if o.outcome not in known))


def split_workload(topology: Topology, workload: str) -> tuple[str, str]:
    """``reviews-v1`` as ``("reviews", "v1")``, checked against the topology."""
    for name, service in topology.services.items():
        prefix = f"{name}-"
        if workload.startswith(prefix) and workload[len(prefix) :] in service.versions:
            return name, workload[len(prefix) :]
    known = sorted(f"{n}-{v}" for n, s in topology.services.items() for v in s.versions)
    raise ValueError(f"unknown workload {workload!r}; known: {', '.join(known)}")


def predict_kill(
    resources: Sequence[Resource],
    request: RequestClass,
    topology: Topology,
    *,
    workload: str,
    killed: int = 1,
    timing: Timing = DEFAULT_TIMING,
) -> KillPrediction:
    """Predict ``request`` before and after ``killed`` instances of ``workload`` die."""
    service, version = split_workload(topology, workload)
    before = predict(resources, request, topology, timing=timing)
    dead = topology.with_killed(service, version, killed)
    after = predict(resources, request, dead, timing=timing)
    kp = KillPrediction(workload, killed, before, after, request.concurrency, ())
    lines = [
        f"kill {killed} instance(s) of {workload}, still registered as endpoints",
        f"in flight at the kill: at most {request.concurrency} requests (the concurrency), "
        "which may fail by being reset (no default retryOn covers a reset)",
        f"after the kill: failures outside the classes before it at most "
        f"{kp.after_failure_bound:.4g} of the requests",
    ]
    return replace(kp, reasoning=(*lines, *after.reasoning))
