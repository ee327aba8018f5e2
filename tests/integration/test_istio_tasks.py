"""Istio's traffic-management tasks, end to end through the ``meshchaos`` CLI.

Each test replays one task from https://istio.io/latest/docs/tasks/traffic-management/
with the same YAML the task applies (our copies under ``manifests/istio/``), the way a
user would: ``meshchaos apply -f``, ``meshchaos load ... --json``, ``meshchaos stats``,
``meshchaos delete -f``, all as subprocesses against one ``meshchaos up`` for the module.

Numbers come from the policy and from Bookinfo's hard-coded client timeouts
(docs/BOOKINFO.md §1 and §7): productpage calls reviews with 3 s x 2 attempts, reviews v2
calls ratings with 10 s, v3 with 2.5 s. Latency bands have a tight lower edge (an
injected delay or a timeout cannot end early by more than a few ms: Envoy runs with
precise timers) and a generous upper edge (2 loaded cores). Rates are checked with exact
binomial tests at alpha 1e-4.

``meshchaos load --json`` reports percentiles (nearest rank) and the max but no minimum,
so a lower edge is checked on ``p50``; with ``-n 2`` that *is* the minimum, which is why
the latency-only checks below send two requests.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _local_mesh_helpers import UpOutput, all_gone, recorded_pids

from meshchaos.apps.catalog import DEFAULT_WORKLOADS
from meshchaos.manifests import data_dir
from meshchaos.mesh.local.state import StateDir
from meshchaos.stats import binomial_pvalue, clopper_pearson

pytestmark = pytest.mark.integration

ALPHA = 1e-4
CLI_DEADLINE = 60.0  # any single CLI call (the longest load here takes ~6 s)
SLACK_LOW = 0.005  # an injected delay / a timeout ends at most ~5 ms early
MANIFESTS = data_dir()  # the packaged manifests: the same files users apply
ISTIO = MANIFESTS / "istio"
HTTPBIN_DR_BASELINE = MANIFESTS / "httpbin" / "destination-rule-httpbin.yaml"
# `meshchaos` console script of this interpreter's venv (fall back to the module).
_SCRIPT = Path(sys.executable).with_name("meshchaos")
MESHCHAOS = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "meshchaos.cli"]

HTTPBIN = "http://httpbin:8000"
HTTPBIN_CLUSTER = "outbound|8000||httpbin.default.svc.cluster.local"
HTTPBIN_V1_CLUSTER = "outbound|8000|v1|httpbin.default.svc.cluster.local"
HTTPBIN_V2_CLUSTER = "outbound|8000|v2|httpbin.default.svc.cluster.local"
INBOUND_HTTPBIN = "cluster.inbound|8000||."


# -- the CLI -------------------------------------------------------------------------------


@dataclass
class Cli:
    """Runs ``meshchaos VERB --state-dir DIR ...`` as subprocesses."""

    state_dir: Path

    def argv(self, verb: str, *rest: str) -> list[str]:
        return [*MESHCHAOS, verb, "--state-dir", str(self.state_dir), *rest]

    def run(self, verb: str, *rest: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self.argv(verb, *rest),
            capture_output=True,
            text=True,
            timeout=CLI_DEADLINE,
            check=False,
        )
        if ok:
            assert proc.returncode == 0, _describe(proc)
        return proc

    def run_many(self, calls: Sequence[Sequence[str]]) -> list[subprocess.CompletedProcess[str]]:
        """Run several calls at once (each ``(verb, *rest)``); all must exit 0."""
        procs = [
            subprocess.Popen(
                self.argv(*call), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for call in calls
        ]
        deadline = time.monotonic() + CLI_DEADLINE
        done: list[subprocess.CompletedProcess[str]] = []
        try:
            for proc in procs:
                out, err = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
                done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate(timeout=10)
        for result in done:
            assert result.returncode == 0, _describe(result)
        return done

    # -- verbs
    def apply(self, *files: Path) -> str:
        """``apply -f`` each file; returns the config version it reports."""
        proc = self.run("apply", *_files(files))
        match = re.search(r"synced: config version (\S+) pushed", proc.stdout)
        assert match, _describe(proc)
        return match.group(1)

    def apply_reading(
        self, files: Sequence[Path], *workloads: str, filter: str
    ) -> list[dict[str, int]]:
        """``apply -f`` while reading ``stats`` of ``workloads`` (before any traffic):
        counters do not move while config changes, and it saves a process start."""
        procs = self.run_many(
            [("apply", *_files(files)), *(("stats", w, "--filter", filter) for w in workloads)]
        )
        assert "synced: config version" in procs[0].stdout, _describe(procs[0])
        return [_parse_stats(p.stdout) for p in procs[1:]]

    def delete(self, *files: Path) -> None:
        # The files overlap (all-v1 and reviews-test-v2 both define reviews): as with
        # kubectl, the second deletion of a resource would be NotFound.
        self.run("delete", "--ignore-not-found", *_files(files))

    def load_argv(self, url: str, *opts: str) -> list[str]:
        return ["load", url, *opts, "--json"]

    def load(self, url: str, *opts: str) -> dict[str, Any]:
        return _summary(self.run(*self.load_argv(url, *opts)))

    def loads(self, *calls: Sequence[str]) -> list[dict[str, Any]]:
        """Several loads at once, each ``(url, *opts)``."""
        return [_summary(p) for p in self.run_many([self.load_argv(*c) for c in calls])]

    def stats(self, *workloads: str, filter: str) -> list[dict[str, int]]:
        """``stats WORKLOAD --filter REGEX`` for each workload (in parallel)."""
        procs = self.run_many([("stats", w, "--filter", filter) for w in workloads])
        return [_parse_stats(p.stdout) for p in procs]


def _files(files: Sequence[Path]) -> list[str]:
    return [arg for f in files for arg in ("-f", str(f))]


def _describe(proc: subprocess.CompletedProcess[str]) -> str:
    return (
        f"{' '.join(map(str, proc.args))} exited {proc.returncode}\n"
        f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    )


def _summary(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads(proc.stdout)
    return summary


def _parse_stats(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        name, _, value = line.rpartition(": ")
        out[name] = int(value)
    return out


def _delta(after: dict[str, int], before: dict[str, int], name: str) -> int:
    # Envoy creates some counters (e.g. upstream_rq_200) on first use: absent means 0.
    return after.get(name, 0) - before.get(name, 0)


# -- checks ---------------------------------------------------------------------------------


def _seconds(summary: dict[str, Any], key: str) -> float:
    value = summary["latency_ms"][key]
    assert value is not None, summary
    return float(value) / 1000


def _only(summary: dict[str, Any], outcome: str) -> None:
    """Every request of the run ended as ``outcome``."""
    __tracebackhide__ = True
    n = summary["requests"]
    assert n > 0, summary
    assert summary["outcome_counts"] == {outcome: n}, (
        f"expected all {n} requests to be {outcome!r}, got {summary['outcome_counts']}; "
        f"examples: {json.dumps(summary['examples'], indent=1)[:1500]}"
    )


def _band(summary: dict[str, Any], low: float, high: float) -> None:
    """Latency (s) inside [low, high]: lower edge on p50 (the min for n <= 2), upper on max."""
    __tracebackhide__ = True
    p50, top = _seconds(summary, "p50"), _seconds(summary, "max")
    seen = f"p50 {p50:.3f} s, max {top:.3f} s ({summary['latency_ms']})"
    assert low <= p50, f"latency below the band's lower edge {low:.3f} s: {seen}"
    assert top <= high, f"latency above the band's upper edge {high:.3f} s: {seen}"


def _binomial(k: int, n: int, p0: float, what: str) -> None:
    """``k`` of ``n`` is inside the exact two-sided acceptance region of Bin(n, p0)."""
    __tracebackhide__ = True
    p = binomial_pvalue(k, n, p0)
    lo, hi = clopper_pearson(k, n, 1 - ALPHA)
    assert p >= ALPHA, (
        f"{what}: expected share {p0}, saw {k}/{n} = {k / n:.3f} "
        f"({100 * (1 - ALPHA):g}% CI [{lo:.3f}, {hi:.3f}]), exact p = {p:.2g} < {ALPHA:g}"
    )


def _wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not reached within {timeout:g} s")
        time.sleep(0.05)


# -- the mesh -------------------------------------------------------------------------------


@dataclass
class UpMesh:
    cli: Cli
    up: subprocess.Popen[str]
    output: list[str]  # lines `up` printed so far
    baseline: list[tuple[str, str]]  # (kind, name) of the resources in force at start

    def resources(self) -> list[tuple[str, str]]:
        # Test hygiene only (not a product check): read the state file directly, it is
        # instant where `meshchaos get all` costs a process start per test.
        state = StateDir(self.cli.state_dir).load()
        assert state is not None
        return sorted((r["raw"]["kind"], r["raw"]["metadata"]["name"]) for r in state.resources)


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpMesh]:
    """``meshchaos up`` for the module; ``meshchaos down`` tears it down."""
    state_dir = tmp_path_factory.mktemp("istio-tasks") / "state"
    cli = Cli(state_dir)
    up = subprocess.Popen(
        cli.argv("up"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    out = UpOutput(up)
    output = out.output
    pids: list[tuple[int, int]] = []
    try:
        out.wait_ready()
        state = StateDir(state_dir).load()
        assert state is not None
        pids = recorded_pids(state)
        baseline = sorted((r["raw"]["kind"], r["raw"]["metadata"]["name"]) for r in state.resources)
        yield UpMesh(cli, up, output, baseline)
    finally:
        try:
            down = subprocess.run(
                cli.argv("down"), capture_output=True, text=True, timeout=CLI_DEADLINE, check=False
            )
            assert down.returncode == 0, _describe(down)
            assert up.wait(timeout=15) == 0, "".join(output)
            assert all_gone(pids), "a process the mesh recorded outlived `meshchaos down`"
            left = StateDir(state_dir).load()
            assert left is None or all_gone(recorded_pids(left))
        finally:
            if up.poll() is None:
                os.killpg(up.pid, signal.SIGKILL)
                up.wait(timeout=10)
            out.pump.join(timeout=10)
            if up.stdout is not None:
                up.stdout.close()


@pytest.fixture
def cli(mesh: UpMesh) -> Iterator[Cli]:
    """The CLI bound to the module's mesh; each test must leave the baseline policies."""
    yield mesh.cli
    assert mesh.resources() == mesh.baseline, "a test left policies behind"


# -- 1. request routing ----------------------------------------------------------------------


def test_request_routing_all_v1_then_jason_to_v2(cli: Cli) -> None:
    """istio.io tasks/traffic-management/request-routing.

    ``virtual-service-all-v1`` (with ``destination-rule-all`` as baseline): every page
    shows reviews v1 (no stars). ``virtual-service-reviews-test-v2``: the page for the
    logged-in user jason (``end-user: jason``) shows reviews v2's black stars, and an
    anonymous page still reviews v1.
    """
    all_v1 = ISTIO / "virtual-service-all-v1.yaml"
    test_v2 = ISTIO / "virtual-service-reviews-test-v2.yaml"
    try:
        cli.apply(all_v1)
        _only(cli.load("/productpage", "-c", "4", "-n", "40"), "reviews-v1")
        cli.apply(test_v2)
        jason, anonymous = cli.loads(
            ("/productpage", "--user", "jason", "-c", "4", "-n", "40"),
            ("/productpage", "-c", "4", "-n", "40"),
        )
        _only(jason, "reviews-v2-black")
        _only(anonymous, "reviews-v1")
    finally:
        cli.delete(all_v1, test_v2)


# -- 2. fault injection: delay ----------------------------------------------------------------


def test_fault_injection_delay_7s_for_jason_breaks_his_page_at_6s(cli: Cli) -> None:
    """istio.io tasks/traffic-management/fault-injection, "Injecting an HTTP delay fault".

    all-v1 + reviews-test-v2 + a 7 s ratings delay for jason. Reviews v2 would wait
    10 s for ratings, but productpage gives reviews 3 s per attempt and tries twice:
    jason's page is the reviews error at about 6 s (the task's documented "bug"), in
    [5.99, 7.0] s. Everyone else gets reviews v1 at once, even while jason's requests
    hang.
    """
    files = (
        ISTIO / "virtual-service-all-v1.yaml",
        ISTIO / "virtual-service-reviews-test-v2.yaml",
        ISTIO / "fault-ratings-delay-7s-jason.yaml",
    )
    try:
        cli.apply(*files)
        jason, anonymous = cli.loads(
            ("/productpage", "--user", "jason", "-c", "8", "-n", "8"),
            ("/productpage", "-c", "4", "-n", "40"),
        )
        _only(jason, "reviews-error")
        _band(jason, 2 * 3.0 - 0.01, 7.0)
        _only(anonymous, "reviews-v1")
        assert _seconds(anonymous, "p99") < 1.0, anonymous["latency_ms"]
    finally:
        cli.delete(*files)


# -- 3. fault injection: abort ----------------------------------------------------------------


def test_fault_injection_abort_500_for_jason_is_immediate(cli: Cli) -> None:
    """istio.io tasks/traffic-management/fault-injection, "Injecting an HTTP abort fault".

    all-v1 + reviews-test-v2 + ratings abort 500 at 100 % for jason: reviews v2 gets a
    500 from its own sidecar and shows "Ratings service is currently unavailable" under
    each review, immediately (p99 < 0.5 s). Anonymous pages stay reviews v1.
    """
    files = (
        ISTIO / "virtual-service-all-v1.yaml",
        ISTIO / "virtual-service-reviews-test-v2.yaml",
        ISTIO / "fault-ratings-abort-500-jason.yaml",
    )
    try:
        (before,) = cli.apply_reading(
            files, "reviews-v2", filter=r"^http\.outbound\.fault\.aborts_injected$"
        )
        jason, anonymous = cli.loads(
            ("/productpage", "--user", "jason", "-c", "4", "-n", "40"),
            ("/productpage", "-c", "4", "-n", "40"),
        )
        (after,) = cli.stats("reviews-v2", filter=r"^http\.outbound\.fault\.aborts_injected$")
        _only(jason, "ratings-unavailable")
        assert _seconds(jason, "p99") < 0.5, jason["latency_ms"]
        _only(anonymous, "reviews-v1")
        # The abort happens in reviews v2's sidecar (client side), once per ratings call.
        assert _delta(after, before, "http.outbound.fault.aborts_injected") == jason["requests"]
    finally:
        cli.delete(*files)


# -- 4. request timeouts ----------------------------------------------------------------------


def test_request_timeouts_reviews_half_second(cli: Cli) -> None:
    """istio.io tasks/traffic-management/request-timeouts.

    reviews -> v2 and a 2 s delay on every ratings call: the page shows black stars
    after about 2 s (reviews v2 waits up to 10 s, productpage up to 3 s). Adding a
    0.5 s route timeout on reviews: productpage's call times out (504) at 0.5 s, it
    tries once more, and the page shows the reviews error at about 1 s.
    """
    base = (
        ISTIO / "virtual-service-all-v1.yaml",
        ISTIO / "virtual-service-reviews-v2.yaml",
        ISTIO / "fault-ratings-delay-2s.yaml",
    )
    timeout = ISTIO / "timeout-reviews-0.5s.yaml"
    try:
        cli.apply(*base)
        slow = cli.load("/productpage", "-c", "2", "-n", "2")
        _only(slow, "reviews-v2-black")
        _band(slow, 2.0 - SLACK_LOW, 3.0)
        cli.apply(timeout)
        cut = cli.load("/productpage", "-c", "2", "-n", "2")
        _only(cut, "reviews-error")
        _band(cut, 2 * 0.5 - SLACK_LOW, 2.0)
    finally:
        cli.delete(*base, timeout)


# -- 5. traffic shifting ----------------------------------------------------------------------


def test_traffic_shifting_50_50_then_all_v3(cli: Cli) -> None:
    """istio.io tasks/traffic-management/traffic-shifting.

    reviews v1 50 / v3 50: of 400 pages, the shares of reviews v1 (no stars) and
    reviews v3 (red stars) are each consistent with 0.5 (exact binomial test, alpha
    1e-4), and nothing else is seen. Then reviews -> v3 for everyone: only red stars.
    """
    n = 400
    files = (
        ISTIO / "virtual-service-all-v1.yaml",
        ISTIO / "virtual-service-reviews-v1-50-v3-50.yaml",
    )
    all_v3 = ISTIO / "virtual-service-reviews-v3.yaml"
    try:
        cli.apply(*files)
        split = cli.load("/productpage", "-c", "8", "-n", str(n))
        counts = split["outcome_counts"]
        assert set(counts) <= {"reviews-v1", "reviews-v3-red"}, split["examples"]
        assert split["requests"] == n
        _binomial(counts.get("reviews-v1", 0), n, 0.5, "reviews v1 share at weight 50/100")
        _binomial(counts.get("reviews-v3-red", 0), n, 0.5, "reviews v3 share at weight 50/100")
        cli.apply(all_v3)
        _only(cli.load("/productpage", "-c", "4", "-n", "40"), "reviews-v3-red")
    finally:
        cli.delete(*files, all_v3)


# -- 6. circuit breaking ----------------------------------------------------------------------


def test_circuit_breaking_pending_overflow_matches_overloaded_503s(cli: Cli) -> None:
    """istio.io tasks/traffic-management/circuit-breaking.

    DestinationRule httpbin with maxConnections 1, http1MaxPendingRequests 1,
    maxRequestsPerConnection 1. From the in-mesh client: one connection at a time
    never trips it (no 503 in 50). With 3 and 6 concurrent connections some requests
    overflow: each is a 503 with ``x-envoy-overloaded`` from the client sidecar, and the
    sidecar's ``upstream_rq_pending_overflow`` on ``outbound|8000||httpbin...`` grows by
    exactly the number of them.
    """
    breaker = ISTIO / "destination-rule-httpbin-circuit-breaker.yaml"
    overflow = f"cluster.{HTTPBIN_CLUSTER}.upstream_rq_pending_overflow"

    def pending_overflow() -> int:
        (client,) = cli.stats("client", filter=r"\|\|httpbin\..*\.upstream_rq_pending_overflow$")
        return client.get(overflow, 0)

    url = f"{HTTPBIN}/get"
    try:
        cli.apply(breaker)
        overflow0 = pending_overflow()
        one = cli.load(url, "--from", "client", "-c", "1", "-n", "50")
        three = cli.load(url, "--from", "client", "-c", "3", "-n", "300")
        overflow1 = pending_overflow()
        six = cli.load(url, "--from", "client", "-c", "6", "-n", "300")
        overflow2 = pending_overflow()

        assert one["status_counts"] == {"200": 50}, one["examples"]
        assert one["overloaded"] == 0
        for run in (three, six):
            statuses = run["status_counts"]
            assert set(statuses) <= {"200", "503"}, run["examples"]
            assert run["overloaded"] > 0, f"no overflow at -c {run['concurrency']}: {statuses}"
            assert statuses.get("503", 0) == run["overloaded"], run["examples"]
            assert "reset reason: overflow" in run["examples"]["status:503"]
        assert overflow1 - overflow0 == one["overloaded"] + three["overloaded"]
        assert overflow2 - overflow1 == six["overloaded"]
    finally:
        cli.delete(breaker)
        cli.apply(HTTPBIN_DR_BASELINE)  # the breaker replaced the baseline DR of that name


# -- 7. mirroring -----------------------------------------------------------------------------


def test_mirroring_100_then_50_percent_to_v2(cli: Cli) -> None:
    """istio.io tasks/traffic-management/mirroring.

    httpbin -> v1 with a mirror to v2 at 100 %: the client gets v1's replies only (v1's
    inbound 200s grow by exactly n), and v2 receives a copy of each request (its inbound
    200s grow by n, fire-and-forget, so they are awaited). At 50 %: v1 still serves all
    n; v2's share of copies is consistent with 0.5 (exact binomial, alpha 1e-4), and it
    equals what the client sidecar sent to the v2 cluster.
    """
    inbound_200 = f"{INBOUND_HTTPBIN}upstream_rq_200"
    mirrored = f"cluster.{HTTPBIN_V2_CLUSTER}.upstream_rq_completed"
    v2_busy = (
        f"cluster.{HTTPBIN_V2_CLUSTER}.upstream_rq_active",
        f"cluster.{HTTPBIN_V2_CLUSTER}.upstream_rq_pending_active",
    )
    pattern = (
        r"(^cluster\.inbound\|8000\|\|\.upstream_rq_200|"
        r"\|8000\|v2\|httpbin\.default\.svc\.cluster\.local\.upstream_rq_"
        r"(completed|active|pending_active))$"
    )

    def snapshot() -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        client, v1, v2 = cli.stats("client", "httpbin-v1", "httpbin-v2", filter=pattern)
        return client, v1, v2

    snapshots = [snapshot()]  # each run's settled end is the next run's start

    def mirror_run(n: int) -> tuple[dict[str, Any], int, int, int]:
        """(summary, v1 served, v2 received, client mirrored) once every copy landed."""
        c0, v1_0, v2_0 = snapshots[-1]
        summary = cli.load(f"{HTTPBIN}/get", "--from", "client", "-c", "4", "-n", str(n))
        last: list[tuple[dict[str, int], dict[str, int], dict[str, int]]] = []

        def settled() -> bool:
            c, v1, v2 = snapshot()
            last[:] = [(c, v1, v2)]
            idle = all(c.get(g, 0) == 0 for g in v2_busy)
            return idle and _delta(v2, v2_0, inbound_200) == _delta(c, c0, mirrored)

        _wait_until(settled, 10.0, "mirrored copies reach httpbin-v2")
        c, v1, v2 = last[0]
        snapshots.append(last[0])
        return (
            summary,
            _delta(v1, v1_0, inbound_200),
            _delta(v2, v2_0, inbound_200),
            _delta(c, c0, mirrored),
        )

    full, half = ISTIO / "mirror-httpbin-v2-100pct.yaml", ISTIO / "mirror-httpbin-v2-50pct.yaml"
    try:
        cli.apply(full)
        n = 100
        summary, v1, v2, sent = mirror_run(n)
        assert summary["status_counts"] == {"200": n}, summary["examples"]
        assert (v1, v2, sent) == (n, n, n)

        cli.apply(half)
        n = 400
        summary, v1, v2, sent = mirror_run(n)
        assert summary["status_counts"] == {"200": n}, summary["examples"]
        assert v1 == n
        assert v2 == sent
        _binomial(v2, n, 0.5, "share of requests mirrored to v2 at mirrorPercentage 50")
    finally:
        cli.delete(full, half)


# -- 8. aborts are not retried ----------------------------------------------------------------


def test_abort_is_never_retried_and_never_reaches_upstream(cli: Cli) -> None:
    """docs/ISTIO_SEMANTICS.md §5.1 (Envoy's fault filter runs before the router).

    httpbin -> v1 with retries (attempts 3, retryOn 5xx) and a fault abort 503 at
    100 %: every response is Envoy's local 503 ``fault filter abort``, the client
    sidecar injects exactly n aborts, retries nothing, and httpbin v1 sees no request.
    """
    policy = ISTIO / "retries-httpbin-5xx-3-abort-100pct.yaml"
    n = 100
    aborts = "http.outbound.fault.aborts_injected"
    retries = f"cluster.{HTTPBIN_V1_CLUSTER}.upstream_rq_retry"
    inbound_total = f"{INBOUND_HTTPBIN}upstream_rq_total"
    pattern = (
        r"(^http\.outbound\.fault\.aborts_injected|httpbin.*\.upstream_rq_retry|"
        r"^cluster\.inbound\|8000\|\|\.upstream_rq_total)$"
    )
    try:
        client0, v1_0 = cli.apply_reading([policy], "client", "httpbin-v1", filter=pattern)
        summary = cli.load(f"{HTTPBIN}/get", "--from", "client", "-c", "4", "-n", str(n))
        client1, v1_1 = cli.stats("client", "httpbin-v1", filter=pattern)
        assert summary["status_counts"] == {"503": n}, summary["examples"]
        assert "fault filter abort" in summary["examples"]["status:503"]
        assert summary["overloaded"] == 0
        assert _delta(client1, client0, aborts) == n
        assert retries in client1, sorted(client1)
        for name in client1:
            if name.endswith(".upstream_rq_retry"):
                assert _delta(client1, client0, name) == 0, name
        assert _delta(v1_1, v1_0, inbound_total) == 0
    finally:
        cli.delete(policy)


# -- 9. delays do not count against the route timeout -----------------------------------------


def test_fault_delay_is_outside_the_route_timeout(cli: Cli) -> None:
    """docs/ISTIO_SEMANTICS.md §5.2 (the router starts its timer after the fault filter).

    Fault delay 1.5 s and route timeout 1 s on httpbin: a fast upstream (``/get``)
    answers 200 after the delay, about 1.5 s, in [1.495, 2.5] s — the delay did not
    trip the 1 s timeout. An upstream that takes 1.2 s (``/delay/1.2``) is cut at 1 s
    after the delay: 504 ``upstream request timeout`` at about 2.5 s, in [2.49, 3.5] s.
    """
    policy = ISTIO / "timeout-httpbin-1s-fault-delay-1.5s.yaml"
    delays = "http.outbound.fault.delays_injected"
    try:
        (before,) = cli.apply_reading(
            [policy], "client", filter=r"^http\.outbound\.fault\.delays_injected$"
        )
        fast, slow = cli.loads(
            (f"{HTTPBIN}/get", "--from", "client", "-c", "2", "-n", "2"),
            (f"{HTTPBIN}/delay/1.2", "--from", "client", "-c", "2", "-n", "2"),
        )
        (after,) = cli.stats("client", filter=r"^http\.outbound\.fault\.delays_injected$")
        assert fast["status_counts"] == {"200": 2}, fast["examples"]
        _band(fast, 1.5 - SLACK_LOW, 2.5)
        assert slow["status_counts"] == {"504": 2}, slow["examples"]
        assert "upstream request timeout" in slow["examples"]["status:504"]
        _band(slow, 1.5 + 1.0 - 0.01, 3.5)
        assert _delta(after, before, delays) == 4
    finally:
        cli.delete(policy)


# -- 10. CLI hygiene --------------------------------------------------------------------------

_INVALID = """\
# Two problems istiod's webhook rejects: a 0s timeout and an untrimmed retryOn token.
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: invalid-httpbin
  namespace: default
spec:
  hosts:
  - httpbin
  http:
  - route:
    - destination:
        host: httpbin
        subset: v1
    timeout: 0s
    retries:
      attempts: 3
      retryOn: "5xx, 503"
"""


def test_cli_apply_of_an_invalid_file_names_every_problem_and_changes_nothing(
    mesh: UpMesh,
    cli: Cli,
    tmp_path: Path,
) -> None:
    """docs/ARCHITECTURE.md, CLI contract: ``apply`` of an invalid file exits 1, names every
    problem with its file and field path (like istiod's webhook: all of them, not the
    first), and changes nothing: ``get virtualservices`` lists only the baseline's.
    """
    bad = tmp_path / "invalid.yaml"
    bad.write_text(_INVALID)
    rejected = cli.run("apply", "-f", str(bad), ok=False)
    assert rejected.returncode == 1, _describe(rejected)
    err = rejected.stderr
    assert "Traceback" not in err
    assert "2 problems" in err, err
    assert "nothing applied" in err, err
    problems = [line for line in err.splitlines() if str(bad) in line]
    assert len(problems) == 2, err
    assert any(
        "VirtualService default/invalid-httpbin: spec.http[0].timeout:" in line for line in problems
    ), err
    assert any(
        "VirtualService default/invalid-httpbin: spec.http[0].retries.retryOn:" in line
        for line in problems
    ), err
    table = cli.run("get", "virtualservices").stdout.splitlines()
    assert table[0].split()[:3] == ["KIND", "NAMESPACE", "NAME"], table
    listed = sorted(line.split()[2] for line in table[1:])
    assert listed == sorted(name for kind, name in mesh.baseline if kind == "VirtualService")


def test_cli_status_lists_every_proxy_synced(cli: Cli) -> None:
    """docs/ARCHITECTURE.md, CLI contract: after an apply, ``status`` lists every proxy (each
    workload instance's sidecar and the gateway), alive and SYNCED, like ``istioctl
    proxy-status``. Each shows the newest config version it runs: the proxies the apply
    changed (every sidecar, whose outbound routes include httpbin) show the version
    ``apply`` reported; the gateway, whose routes a mesh VirtualService cannot change,
    keeps its earlier one.
    """
    policy = ISTIO / "httpbin-v1.yaml"
    try:
        version = cli.apply(policy)
        rows = [line.split() for line in cli.run("status").stdout.splitlines()]
    finally:
        cli.delete(policy)
    header, proxies = rows[0], rows[1:]
    assert header[:5] == ["PROXY", "WORKLOAD", "VERSION", "SYNCED", "ALIVE"], rows
    assert len(proxies) == sum(w.replicas for w in DEFAULT_WORKLOADS) + 1  # + gateway
    assert {(r[3], r[4]) for r in proxies} == {("SYNCED", "yes")}, proxies
    sidecars = {r[2] for r in proxies if r[1] != "istio-ingressgateway"}
    assert sidecars == {version}, proxies
    gateway = [r[2] for r in proxies if r[1] == "istio-ingressgateway"]
    assert len(gateway) == 1, proxies
    assert int(gateway[0]) < int(version), proxies
