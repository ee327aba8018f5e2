"""The load agent against the local mesh, next to the engine on the same policy.

The agent runs as ``python -I -S agent.py`` from a temp dir holding only its files,
as a client pod would run it: in the mesh through the client's sidecar (the in-mesh
path), and from the host to the gateway. Both sides classify with the same code, so
on a 50% abort each share must be within its interval around 0.5 and the two must
agree with each other. Rates are judged with exact intervals at alpha 1e-4.
"""

from __future__ import annotations

import math
import subprocess
import threading
from collections.abc import Iterator

import pytest

from meshchaos.errors import LoadError
from meshchaos.istio.parse import load_file, load_text
from meshchaos.load import LoadPlan, LoadResult, LoadTarget, Trigger, classify_bookinfo, run_load
from meshchaos.load.agent import run_local
from meshchaos.manifests import data_dir
from meshchaos.mesh.local import LocalMesh
from meshchaos.stats import clopper_pearson

pytestmark = pytest.mark.integration

ALPHA = 1e-4
HTTPBIN_ABORT_50 = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [httpbin]
  http:
  - fault:
      abort: {httpStatus: 503, percentage: {value: 50}}
    route:
    - destination: {host: httpbin}
"""


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    with LocalMesh.start(tmp_path_factory.mktemp("mesh") / "state") as m:
        yield m


def assert_half(result: LoadResult, outcome: str) -> None:
    k, n = result.counts()[outcome], result.count
    lo, hi = clopper_pearson(k, n, 1 - ALPHA)
    assert lo <= 0.5 <= hi, f"{result.target}: {outcome} {k}/{n}, interval [{lo:.3f}, {hi:.3f}]"


def assert_agree(agent: LoadResult, engine: LoadResult, outcome: str) -> None:
    """The two shares do not differ beyond chance (two-proportion z test at ALPHA)."""
    p1, p2 = agent.share(outcome), engine.share(outcome)
    pooled = (agent.counts()[outcome] + engine.counts()[outcome]) / (agent.count + engine.count)
    se = math.sqrt(pooled * (1 - pooled) * (1 / agent.count + 1 / engine.count))
    assert abs(p1 - p2) <= 3.9 * se, f"agent {p1:.3f} vs engine {p2:.3f} (se {se:.3f})"


@pytest.fixture
def httpbin_abort(mesh: LocalMesh) -> Iterator[None]:
    applied = mesh.apply(load_text(HTTPBIN_ABORT_50, "httpbin-abort-50.yaml"))
    yield
    mesh.delete(applied)


@pytest.mark.parametrize(
    "plan",
    [
        pytest.param(LoadPlan(concurrency=4, requests=200, timeout=5.0), id="closed-200-c4"),
        pytest.param(
            LoadPlan(concurrency=4, qps=150.0, duration=1.2, timeout=5.0), id="open-150qps"
        ),
    ],
)
def test_in_mesh_abort_shares_match_the_engines(
    mesh: LocalMesh, httpbin_abort: None, plan: LoadPlan
) -> None:
    target = LoadTarget("http://httpbin:8000/get", proxy=mesh.client().proxy_url)
    agent = run_local(target, plan)
    engine = run_load(target, plan)
    for result in (agent, engine):
        assert set(result.counts()) == {"status:200", "status:503"}, result.counts()
        assert result.count == 200 if plan.requests else 180
        assert_half(result, "status:503")
    assert_agree(agent, engine, "status:503")
    if plan.is_open_loop:  # intended send times: the schedule itself
        assert sorted(round(s.start, 4) for s in agent.samples) == [
            round(i / 150, 4) for i in range(180)
        ]
    assert agent.examples["status:503"].startswith("HTTP 503")


def test_gateway_page_classes_match_the_engines(mesh: LocalMesh) -> None:
    applied = mesh.apply(load_file(data_dir() / "istio" / "fault-details-abort-50pct-555.yaml"))
    try:
        target = LoadTarget(mesh.gateway_url().rstrip("/") + "/productpage")
        plan = LoadPlan(concurrency=4, requests=120, timeout=10.0)
        agent = run_local(target, plan, classify_bookinfo)
        engine = run_load(target, plan, classify_bookinfo)
    finally:
        mesh.delete(applied)
    for result in (agent, engine):
        assert result.count == 120
        assert (
            result.counts()["details-error"]
            + sum(result.counts()[c] for c in ("reviews-v1", "reviews-v2-black", "reviews-v3-red"))
            == 120
        ), result.counts()
        assert_half(result, "details-error")
    assert_agree(agent, engine, "details-error")


def test_agent_killed_mid_run_in_the_mesh_is_reported_truncated(mesh: LocalMesh) -> None:
    def kill_soon(proc: subprocess.Popen[bytes]) -> None:
        threading.Timer(0.5, proc.kill).start()

    target = LoadTarget("http://httpbin:8000/get", proxy=mesh.client().proxy_url)
    with pytest.raises(LoadError, match=r"without its end line.*agent exit status -9"):
        run_local(target, LoadPlan(concurrency=2, duration=20.0), on_start=kill_soon)


def test_a_trigger_applies_chaos_from_the_agents_progress(mesh: LocalMesh) -> None:
    applied: list[object] = []

    def abort_half() -> None:
        applied.append(mesh.apply(load_text(HTTPBIN_ABORT_50, "httpbin-abort-50.yaml")))

    trigger = Trigger(after=40, action=abort_half, name="abort-50", then=200, settle=0.2)
    target = LoadTarget("http://httpbin:8000/get", proxy=mesh.client().proxy_url)
    try:
        result = run_local(target, LoadPlan(concurrency=2, requests=60, triggers=(trigger,)))
    finally:
        for done in applied:
            mesh.delete(done)  # type: ignore[arg-type]
    (event,) = result.events
    assert event.error is None
    before = result.where(event.is_before, "before")
    after = result.where(event.is_after, "after")
    assert before.count >= 40 - 2
    assert before.counts() == {"status:200": before.count}  # no chaos before the action
    assert after.count >= 200  # `then` extended the run past its 60 requests
    assert_half(after, "status:503")
