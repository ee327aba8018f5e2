"""What one load run amounts to: counts, shares, latency percentiles and rate.

:func:`load_summary` condenses a :class:`~meshchaos.load.result.LoadResult` (every
sample) into a :class:`LoadSummary` (a few numbers), which ``meshchaos load`` prints as
text or as JSON (:meth:`LoadSummary.to_json`, whose keys scripts rely on).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from meshchaos.load.result import LoadResult

__all__ = ["PERCENTILES", "LoadSummary", "load_summary"]

PERCENTILES = (50.0, 75.0, 90.0, 99.0, 99.9)


@dataclass(frozen=True)
class LoadSummary:
    """A load run in numbers. Latencies are in seconds, ``None`` when there is no sample.

    ``latency`` maps ``min``, ``p50`` ... ``p99.9`` (nearest rank, :data:`PERCENTILES`)
    and ``max`` to a latency, in that order.
    """

    target: str
    requests: int
    duration: float
    rps: float | None
    concurrency: int
    qps: float | None
    stopped_by_deadline: bool
    status_counts: dict[int, int] = field(default_factory=dict)
    outcome_counts: dict[str, int] = field(default_factory=dict)
    overloaded: int = 0  # responses with x-envoy-overloaded: true
    latency: dict[str, float | None] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)  # outcome -> a response excerpt

    @property
    def status_shares(self) -> dict[int, float]:
        return {k: v / self.requests for k, v in self.status_counts.items()}

    @property
    def outcome_shares(self) -> dict[str, float]:
        return {k: v / self.requests for k, v in self.outcome_counts.items()}

    def to_json(self) -> dict[str, Any]:
        """The JSON form (``meshchaos load --json``): keep these keys stable."""
        return {
            "target": self.target,
            "requests": self.requests,
            "duration_s": round(self.duration, 6),
            "rps": None if self.rps is None else round(self.rps, 3),
            "concurrency": self.concurrency,
            "qps": self.qps,
            "stopped_by_deadline": self.stopped_by_deadline,
            "status_counts": {str(k): v for k, v in self.status_counts.items()},
            "status_shares": {str(k): v for k, v in self.status_shares.items()},
            "outcome_counts": dict(self.outcome_counts),
            "outcome_shares": self.outcome_shares,
            "overloaded": self.overloaded,
            "latency_ms": {
                k: None if v is None else round(v * 1000, 3) for k, v in self.latency.items()
            },
            "examples": dict(self.examples),
        }


def _seconds(value: float) -> float | None:
    return None if math.isnan(value) else value


def load_summary(result: LoadResult) -> LoadSummary:
    """Counts and shares per status and outcome class, latency percentiles, rate."""
    n = result.count
    latency: dict[str, float | None] = {"min": result.latencies()[0] if n else None}
    latency |= {f"p{q:g}": _seconds(result.percentile(q)) for q in PERCENTILES}
    latency["max"] = _seconds(result.percentile(100))
    return LoadSummary(
        target=result.target,
        requests=n,
        duration=result.duration,
        rps=result.rps if n and result.duration > 0 else None,
        concurrency=result.concurrency,
        qps=result.qps,
        stopped_by_deadline=result.stopped_by_deadline,
        status_counts=dict(sorted(result.status_counts().items())),
        outcome_counts=dict(sorted(result.counts().items())),
        overloaded=sum(1 for s in result.samples if s.overloaded),
        latency=latency,
        examples=dict(result.examples),
    )
