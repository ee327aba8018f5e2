"""What a scenario is: the policy it applies, the requests it sends, what else it watches.

A :class:`Scenario` is data, so that a catalogue can be a parametrized table; the
:class:`meshchaos.scenario.Chaos` steps run it (``chaos.run(scenario)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meshchaos.oracle.prediction import RequestClass

__all__ = ["COUNTERS", "Mirror", "Scenario", "bookinfo", "httpbin"]

# The proxy counters every scenario compares with what the client saw (oracle names).
COUNTERS = (
    "fault.delays_injected",
    "fault.aborts_injected",
    "upstream_rq_retry",
    "upstream_rq_pending_overflow",
)
# Per-scenario caps on n, a guard against a plan that would outrun the suite's time
# budget (fault_injection <= 60 s, the catalogue <= 3 min on 2 cores); at ~1,000 Bookinfo
# pages/s every planned n fits under them. A scenario that hits its cap says so: the
# record, the failure message and the summary line state what the capped n can detect.
BOOKINFO_CAP = 12000
HTTPBIN_CAP = 4000


@dataclass(frozen=True)
class Mirror:
    """A mirroring policy's two ends: ``primary`` serves every request, ``shadow`` gets
    the copies that the oracle's ``mirrored[key]`` share predicts."""

    primary: str = "httpbin-v1"
    shadow: str = "httpbin-v2"
    key: str = "httpbin/v2"


@dataclass(frozen=True)
class Scenario:
    """One scenario: what to apply, which requests to send, and how many at most.

    ``request`` says where the requests go: through the ingress gateway
    (``source="gateway"``, Bookinfo) or from an in-mesh client workload's sidecar to
    ``host:port`` (httpbin); its ``concurrency`` is the load's. ``told`` replaces
    ``policies`` when asking the oracle: the blindness self-tests use it to tell the
    oracle something other than what was applied. ``mirror`` adds the mirror checks.
    """

    policies: tuple[str, ...]
    request: RequestClass = field(default_factory=lambda: RequestClass(concurrency=12))
    max_requests: int = BOOKINFO_CAP
    min_requests: int = 60
    timeout: float = 30.0
    counters: tuple[str, ...] = COUNTERS
    told: tuple[str, ...] | None = None
    mirror: Mirror | None = None


def httpbin(path: str, *policies: str, concurrency: int = 32, **kw: Any) -> Scenario:
    """A scenario sending ``path`` to httpbin through the in-mesh client's sidecar."""
    request = RequestClass(
        path=path, source="client", host="httpbin", port=8000, concurrency=concurrency
    )
    kw.setdefault("max_requests", HTTPBIN_CAP)
    return Scenario(policies=policies, request=request, **kw)


def bookinfo(
    *policies: str,
    user: str | None = None,
    path: str = "/productpage",
    concurrency: int = 12,
    **kw: Any,
) -> Scenario:
    """A scenario loading Bookinfo's ``path`` through the ingress gateway."""
    # 12 connections saturate 2 cores at ~1,000 pages/s; more only queues in the apps.
    # Delayed pages hold their connection, so delay scenarios raise ``concurrency``.
    request = RequestClass(path=path, user=user, concurrency=concurrency)
    return Scenario(policies=policies, request=request, **kw)
