"""The ``chaos`` steps: apply the policy, ask the oracle, size the sample, load, judge.

A scenario reads as those steps::

    def test_ratings_abort(chaos):
        chaos.apply("fault-ratings-abort-50pct-500")
        prediction = chaos.predict(RequestClass(path="/productpage", concurrency=12))
        sizing = chaos.size(prediction)
        observed = chaos.load(prediction.request, sizing)
        chaos.expect(observed).to(matches(prediction), *chaos.counters_match(prediction, observed))

and a parametrized table of :class:`~meshchaos.scenario.spec.Scenario` rows runs exactly
those steps through :meth:`Chaos.run`. Every check goes through ``expect(...).to(...)``,
so it gets its share of the run's alpha, Holm within the scenario, and a place in the
record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from meshchaos.check import (
    Check,
    CheckReport,
    Expectation,
    counter_matches,
    during,
    expect,
    matches,
    unpredicted_at_most,
)
from meshchaos.errors import MeshError
from meshchaos.load import Event, LoadResult, Trigger
from meshchaos.mesh.base import Applied, Mesh
from meshchaos.oracle import predict
from meshchaos.oracle.kill import KillPrediction, predict_kill
from meshchaos.oracle.prediction import Prediction, RequestClass
from meshchaos.scenario.instances import Instances
from meshchaos.scenario.loading import LoadDriver
from meshchaos.scenario.observing import (
    Reading,
    counter_checks,
    counter_deltas,
    inbound_requests,
    read_counters,
    running_topology,
    settled,
    wait_for,
)
from meshchaos.scenario.planning import Sizing, plan_sample
from meshchaos.scenario.policies import PolicyApplier, PolicySource
from meshchaos.scenario.spec import COUNTERS, Mirror, Scenario
from meshchaos.stats import current_alpha

__all__ = ["Chaos", "Observation", "RecordSink"]

# Requests sent within this long after a kill ended still count as around it, not after
# it: the callers' proxies learn of the dead connections from the kernel at once on
# loopback, and this covers their event loops on a loaded 2-core machine.
KILL_SETTLE = 0.05


class RecordSink(Protocol):
    """Where the steps note what they did (the ``record`` fixture)."""

    def set(self, key: str, value: Any) -> None: ...
    def add_result(self, result: LoadResult, label: str = ...) -> None: ...


@dataclass(frozen=True)
class Observation:
    """What one load step saw: the requests, and the proxy counters over the run."""

    request: RequestClass
    result: LoadResult
    counters: Mapping[str, Reading] = field(default_factory=dict)
    sizing: Sizing | None = None

    def event(self, name: str) -> Event:
        """The run's event ``name`` (a trigger's action). A chaos action that failed or
        never fired is the harness's failure, not the mesh's: :class:`MeshError`."""
        for e in self.result.events:
            if e.name == name:
                if e.error is not None:
                    raise MeshError(f"{name} during the load: {e.error}")
                return e
        raise KeyError(f"no event {name!r} in this run")


class Chaos:
    """One scenario's steps on one mesh (the ``chaos`` fixture)."""

    def __init__(
        self,
        mesh: Mesh,
        policies: PolicyApplier,
        driver: LoadDriver,
        record: RecordSink,
        instances: Instances,
        *,
        min_effect: float,
    ) -> None:
        self.mesh = mesh
        self.policies = policies
        self.driver = driver
        self.record = record
        self.instances = instances
        self.min_effect = min_effect
        self._told: list[PolicySource] | None = None
        self._least_sensitive: Sizing | None = None

    # -- 1. apply -------------------------------------------------------------------
    def apply(self, *sources: PolicySource) -> Applied:
        """Apply policies (paths, names or resources); rolled back when the test ends."""
        applied = self.policies(*sources)
        self.record.set("policies", [p.name for p in self.policies.files])
        return applied

    # -- 2. predict -----------------------------------------------------------------
    def predict(
        self,
        request: RequestClass,
        *,
        told: Sequence[PolicySource] | None = None,
        ejected_before: Sequence[str] = (),
    ) -> Prediction:
        """What the oracle expects of ``request`` under the policies in force, or, with
        ``told``, under the baseline plus ``told`` instead (to test the suite itself).
        ``ejected_before`` names workloads that outlier detection ejected and let back in
        earlier in the test."""
        topology = replace(running_topology(self.mesh), ejected_before=frozenset(ejected_before))
        prediction = predict(self._told_resources(told), request, topology)
        self.record.set("request", request)
        self.record.set("prediction", prediction)
        return prediction

    def predict_kill(
        self,
        request: RequestClass,
        workload: str,
        *,
        killed: int = 1,
        told: Sequence[PolicySource] | None = None,
    ) -> KillPrediction:
        """What the oracle expects before and after ``killed`` instances of ``workload`` die
        (``told`` as for :meth:`predict`)."""
        kp = predict_kill(
            self._told_resources(told),
            request,
            running_topology(self.mesh),
            workload=workload,
            killed=killed,
        )
        self.record.set("request", request)
        self.record.set("prediction", kp.after)
        self.record.set("kill_prediction", kp)
        return kp

    def _told_resources(self, told: Sequence[PolicySource] | None) -> list[Any]:
        if told is None:
            return list(self.mesh.resources())
        self._told = list(told)
        return self.policies.told(told)

    # -- 3. size and load ----------------------------------------------------------
    def size(
        self,
        prediction: Prediction,
        *,
        max_requests: int,
        min_requests: int = 60,
        judged: int | None = None,
    ) -> Sizing:
        """The sample that detects ``--min-effect`` at this scenario's alpha, capped.

        ``judged``: how many checks the verdict will judge together; by default those
        of ``matches(prediction)`` and one per default counter. A test that sizes several
        phases records the least sensitive of their samples (a capped one first).
        """
        if judged is None:
            judged = judged_checks(prediction, COUNTERS)
        sizing = plan_sample(
            prediction,
            self.min_effect,
            current_alpha(),
            cap=max_requests,
            floor=min_requests,
            judged=judged,
        )
        if self._least_sensitive is None or sizing.detectable >= self._least_sensitive.detectable:
            self._least_sensitive = sizing
            self.record.set("sizing", sizing)
        return sizing

    def kill(self, workload: str, instance: int = 0, *, after: int, then: int) -> Trigger:
        """A trigger for :meth:`load`: kill ``workload``'s instance number ``instance``
        (resolved to the backend's name for it, :meth:`Mesh.instances`, when the kill
        happens) once ``after`` requests have completed, while the load goes on for
        ``then`` more after the kill ended (plus the settling time); it is restarted when
        the test ends. The record's ``killed`` names the instances killed."""

        def action() -> str:
            name = self.instances.kill(workload, instance)
            self.record.set("killed", list(self.instances.killed))
            return name

        return Trigger(after, action, f"kill {workload}[{instance}]", then=then, settle=KILL_SETTLE)

    def load(
        self,
        request: RequestClass,
        n: int | Sizing,
        *,
        timeout: float = 30.0,
        duration: float = 60.0,
        qps: float | None = None,
        counters: Sequence[str] = COUNTERS,
        triggers: Sequence[Trigger] = (),
    ) -> Observation:
        """Send ``n`` requests of ``request`` and read ``counters`` before and after."""
        sizing = n if isinstance(n, Sizing) else None
        count = n.used if isinstance(n, Sizing) else n
        before = read_counters(self.mesh, counters)
        result = self.driver.send(
            request, count, timeout=timeout, duration=duration, qps=qps, triggers=triggers
        )
        deltas = counter_deltas(before, read_counters(self.mesh, counters))
        self.record.add_result(result, f"load{len(self.driver.results)}")
        self.record.set("counters", _as_record(deltas))
        return Observation(request, result, deltas, sizing)

    def wait_for_counter(
        self, name: str, value: int, *, workloads: Sequence[str] | None = None, deadline: float
    ) -> float:
        """Wait until counter (or gauge) ``name`` reads ``value``; the seconds it took.
        Raises :class:`~meshchaos.errors.MeshError` past ``deadline`` or if unreadable."""
        return wait_for(
            lambda: read_counters(self.mesh, [name], workloads)[name],
            lambda v: v == value,
            deadline=deadline,
            what=f"{name} == {value}",
        )

    # -- 4. judge ------------------------------------------------------------------
    def expect(self, observed: Observation) -> Expectation:
        """``expect(...)`` on the observation, with the policies, sample and counters as
        evidence."""
        __tracebackhide__ = True
        evidence: dict[str, object] = {
            "policy": ", ".join(p.name for p in self.policies.files) or "(none)",
        }
        if self._told is not None:
            evidence["predicted with"] = ", ".join(map(str, self._told)) or "(none)"
        if observed.sizing is not None:
            evidence["sample"] = observed.sizing.describe()
        if observed.counters:
            evidence["proxy counters"] = ", ".join(f"{k}={v}" for k, v in observed.counters.items())
        return expect(observed.result, evidence=evidence)

    def counters_match(self, prediction: Prediction, observed: Observation) -> list[Check]:
        """One check per counter read by :meth:`load`, against the prediction."""
        told = self._told_resources(self._told) if self._told is not None else self.mesh.resources()
        return counter_checks(prediction, observed.counters, observed.result, told)

    def kill_checks(self, kp: KillPrediction, observed: Observation, event: str) -> list[Check]:
        """Before, around and after the kill ``event`` of ``observed``, as ``kp`` says."""
        kill = observed.event(event)
        known = set(kp.before.classes())

        def before(r: LoadResult) -> LoadResult:
            return r.where(kill.is_before, "before the kill")

        def around(r: LoadResult) -> LoadResult:
            return r.where(kill.is_around, "around the kill")

        def after(r: LoadResult) -> LoadResult:
            return r.where(kill.is_after, "after the kill")

        return [
            during("before the kill", before, matches(kp.before)),
            during(
                "around the kill",
                around,
                unpredicted_at_most(known, kp.in_flight, kp.after_failure_bound),
            ),
            during("after the kill", after, matches(kp.after)),
        ]

    # -- a table row ---------------------------------------------------------------
    def run(self, scenario: Scenario) -> CheckReport:
        """Apply, predict, size, load and judge one table row; the :class:`CheckReport`."""
        __tracebackhide__ = True
        if scenario.policies:
            self.apply(*scenario.policies)
        prediction = self.predict(scenario.request, told=scenario.told)
        judged = judged_checks(prediction, scenario.counters, mirror=scenario.mirror is not None)
        sizing = self.size(
            prediction,
            max_requests=scenario.max_requests,
            min_requests=scenario.min_requests,
            judged=judged,
        )
        mirror = _MirrorWatch(self.mesh, scenario.mirror) if scenario.mirror else None
        observed = self.load(
            scenario.request, sizing, timeout=scenario.timeout, counters=scenario.counters
        )
        checks = [matches(prediction), *self.counters_match(prediction, observed)]
        if mirror is not None:
            checks += mirror.checks(prediction, observed, self.record)
        return self.expect(observed).to(*checks)


def judged_checks(prediction: Prediction, counters: Sequence[str], *, mirror: bool = False) -> int:
    """How many checks a table row judges together: those of ``matches(prediction)``, one
    per counter, and with a mirror the primary's served and the shadow's mirrored count."""
    return len(matches(prediction).leaves()) + len(counters) + (2 if mirror else 0)


class _MirrorWatch:
    """Reads the primary's and the shadow's inbound counters around a load."""

    def __init__(self, mesh: Mesh, mirror: Mirror) -> None:
        self.mesh = mesh
        self.mirror = mirror
        self.before = {w: inbound_requests(mesh, w) for w in (mirror.primary, mirror.shadow)}

    def checks(
        self, prediction: Prediction, observed: Observation, record: RecordSink
    ) -> list[Check]:
        m, n = self.mirror, observed.result.count
        delta = counter_deltas(self.before, {w: self._settled(w) for w in self.before})
        record.set("inbound", _as_record(delta))
        out = [counter_matches(f"{m.primary} inbound requests (served)", delta[m.primary], 1.0, n)]
        if m.key not in prediction.unpredictable:
            expected = prediction.mirrored.get(m.key, 0.0)
            name = f"{m.shadow} inbound requests (mirrored)"
            out.append(counter_matches(name, delta[m.shadow], expected, n))
        return out

    def _settled(self, workload: str) -> Reading:
        return settled(lambda: inbound_requests(self.mesh, workload))


def _as_record(readings: Mapping[str, Reading]) -> dict[str, int | str]:
    return {k: v if isinstance(v, int) else str(v) for k, v in readings.items()}
