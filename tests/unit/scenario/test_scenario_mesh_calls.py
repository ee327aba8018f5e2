"""The scenario layer reaches the mesh only through the protocol: typed counter queries
(never a zero for what cannot be read), instance names, and run_load."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from meshchaos.check import Unreadable
from meshchaos.errors import MeshError, StatNotEmitted
from meshchaos.load import LoadPlan, LoadResult, Trigger
from meshchaos.mesh.base import CounterQuery, Side
from meshchaos.oracle.prediction import RequestClass
from meshchaos.scenario import Instances, LoadDriver
from meshchaos.scenario.observing import inbound_requests, read_counters


class CountingMesh:
    """Answers counter queries from a table; a name not in it is not emitted."""

    def __init__(self, values: dict[str, int], *, broken: bool = False) -> None:
        self.values = values
        self.broken = broken
        self.asked: list[list[CounterQuery]] = []
        self.killed: list[str] = []
        self.restarted: list[str] = []
        self.loads: list[tuple[LoadPlan, str | None, tuple[Trigger, ...]]] = []

    def counters(self, queries: Sequence[CounterQuery]) -> dict[CounterQuery, int]:
        self.asked.append(list(queries))
        if self.broken:
            raise MeshError("cannot read the stats of client-0: connection refused")
        for q in queries:
            if q.name not in self.values:
                raise StatNotEmitted(f"no proxy emits {q.describe()}")
        return {q: self.values[q.name] for q in queries}

    def instances(self, workload: str) -> list[str]:
        return [f"{workload}-abc12", f"{workload}-def34"]

    def kill(self, instance: str) -> None:
        self.killed.append(instance)

    def restart(self, instance: str) -> None:
        self.restarted.append(instance)

    def scale(self, workload: str, replicas: int) -> None: ...

    def run_load(
        self,
        plan: LoadPlan,
        *,
        source: str | None = None,
        triggers: Sequence[Trigger] = (),
        progress: bool = False,
    ) -> LoadResult:
        self.loads.append((plan, source, tuple(triggers)))
        return LoadResult(target=plan.url, samples=[], duration=0.0, concurrency=plan.concurrency)


def test_counters_are_client_side_queries_read_at_once() -> None:
    mesh = CountingMesh({"fault.aborts_injected": 3, "upstream_rq_retry": 0})
    got = read_counters(mesh, ["fault.aborts_injected", "upstream_rq_retry"], ["client"])
    assert got == {"fault.aborts_injected": 3, "upstream_rq_retry": 0}
    (asked,) = mesh.asked
    assert asked == [
        CounterQuery("fault.aborts_injected", Side.CLIENT, ("client",)),
        CounterQuery("upstream_rq_retry", Side.CLIENT, ("client",)),
    ]


def test_a_stat_not_emitted_is_unreadable_and_only_that_one() -> None:
    mesh = CountingMesh({"upstream_rq_retry": 2})
    got = read_counters(mesh, ["fault.aborts_injected", "upstream_rq_retry"])
    assert got["upstream_rq_retry"] == 2
    missing = got["fault.aborts_injected"]
    assert isinstance(missing, Unreadable)
    assert "no proxy emits fault.aborts_injected (client side of every proxy)" in missing.reason


def test_stats_that_cannot_be_read_make_every_counter_unreadable() -> None:
    mesh = CountingMesh({"upstream_rq_retry": 2}, broken=True)
    got = read_counters(mesh, ["upstream_rq_retry"])
    reading = got["upstream_rq_retry"]
    assert isinstance(reading, Unreadable)
    assert "connection refused" in reading.reason
    assert isinstance(inbound_requests(mesh, "httpbin-v1"), Unreadable)


def test_inbound_requests_is_the_server_side_query_on_the_app_port() -> None:
    mesh = CountingMesh({"upstream_rq_total": 40})
    assert inbound_requests(mesh, "httpbin-v2", port=8000) == 40
    assert mesh.asked == [[CounterQuery("upstream_rq_total", Side.SERVER, ("httpbin-v2",), 8000)]]


def test_kill_resolves_the_index_to_the_backends_name_and_undo_restarts_it() -> None:
    mesh = CountingMesh({})
    instances = Instances(mesh)
    assert instances.kill("reviews-v1", 1) == "reviews-v1-def34"
    assert mesh.killed == ["reviews-v1-def34"]
    assert instances.killed == ["reviews-v1-def34"]
    with pytest.raises(IndexError, match="reviews-v1 has 2 instance"):
        instances.kill("reviews-v1", 2)
    assert instances.undo() == []
    assert mesh.restarted == ["reviews-v1-def34"]


def test_load_goes_through_run_load_with_the_url_and_source() -> None:
    mesh = CountingMesh({})
    driver = LoadDriver(mesh)
    driver.send(RequestClass(path="/productpage", user="jason", concurrency=4), 50)
    driver.send(
        RequestClass(path="/get", source="client", host="httpbin", port=8000, concurrency=8),
        10**9,
        duration=10**6,
    )
    (gw, gw_source, _), (inmesh, source, _) = mesh.loads
    assert (gw.url, gw_source, gw.user, gw.concurrency, gw.requests) == (
        "/productpage",
        None,
        "jason",
        4,
        50,
    )
    assert (inmesh.url, source) == ("http://httpbin:8000/get", "client")
    assert (inmesh.requests, inmesh.duration) == (20_000, 60.0)  # the scenario caps
    assert len(driver.results) == 2
