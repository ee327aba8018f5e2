"""What a comparison of two runs is made of: verdicts, thresholds, and the comparison of
one metric, one scenario and the whole run (computed in :mod:`meshchaos.report.compare`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["Comparison", "MetricComparison", "ScenarioComparison", "Thresholds", "Verdict"]


class Verdict(StrEnum):
    REGRESSED = "REGRESSED"
    IMPROVED = "IMPROVED"
    SAME = "SAME"
    INCONCLUSIVE = "INCONCLUSIVE"


@dataclass(frozen=True)
class Thresholds:
    """The comparison's level and what counts as a material change.

    A share's threshold is ``max(rate_points, rate_relative * min(p, 1 - p))`` with
    ``p`` the baseline share (2 points for an error share, 10 for a 50/50 split); a
    latency quantile's is ``max(latency_relative, latency_floor / baseline)`` relative.
    """

    alpha: float = 0.01
    rate_points: float = 0.02
    rate_relative: float = 0.2
    latency_relative: float = 0.15
    latency_floor: float = 0.002  # seconds
    confidence: float = 0.95  # of the intervals that decide SAME
    power: float = 0.8  # of the detectable change an INCONCLUSIVE metric states

    def __post_init__(self) -> None:
        for name in ("alpha", "confidence", "power"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(f"{name} must be in (0, 1), got {value}")
        for name in ("rate_points", "rate_relative", "latency_relative", "latency_floor"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    def rate(self, baseline_share: float) -> float:
        return max(self.rate_points, self.rate_relative * min(baseline_share, 1 - baseline_share))

    def latency(self, baseline_seconds: float) -> float:
        if baseline_seconds <= 0:
            return self.latency_relative
        return max(self.latency_relative, self.latency_floor / baseline_seconds)


@dataclass
class MetricComparison:
    """One metric of one load: baseline vs current, the change and its verdict.

    For a share, values are shares and ``change``/``low``/``high``/``threshold``/
    ``detectable`` are differences in share (0.1 = 10 points); for a latency quantile,
    values are seconds and the rest are relative changes (0.5 = 50% slower).
    """

    metric: str
    kind: str  # "share" or "latency"
    direction: str  # "increase-bad" or "either"
    baseline: float
    current: float
    baseline_n: int
    current_n: int
    change: float
    low: float
    high: float
    threshold: float
    pvalue: float | None  # None: not tested (too few samples)
    detectable: float | None = None
    shift: float = 0.0  # latency: the run-wide change taken out of ``change`` (relative)
    adjusted: float | None = None
    verdict: Verdict = Verdict.INCONCLUSIVE
    note: str = ""


@dataclass
class ScenarioComparison:
    """One scenario in both runs: comparable or why not, its metrics, its verdict."""

    scenario: str
    baseline_outcome: str | None
    current_outcome: str | None
    reason: str = ""  # why not comparable ("" when comparable)
    metrics: list[MetricComparison] = field(default_factory=list)

    @property
    def comparable(self) -> bool:
        return not self.reason

    @property
    def flip(self) -> str | None:
        """``"passed -> failed"`` when pytest's verdict changed, else None."""
        b, c = self.baseline_outcome, self.current_outcome
        if b is None or c is None or b == c:
            return None
        return f"{b} -> {c}"

    @property
    def flipped_to_failure(self) -> bool:
        return self.baseline_outcome == "passed" and self.current_outcome in ("failed", "error")

    @property
    def verdict(self) -> Verdict | None:
        if not self.comparable:
            return None
        verdicts = {m.verdict for m in self.metrics}
        for v in (Verdict.REGRESSED, Verdict.IMPROVED, Verdict.INCONCLUSIVE):
            if v in verdicts:
                return v
        return Verdict.SAME


@dataclass
class Comparison:
    """The whole comparison of two runs."""

    baseline: Mapping[str, Any]
    current: Mapping[str, Any]
    thresholds: Thresholds
    scenarios: list[ScenarioComparison]
    # per latency metric ("p50 latency"): (run-wide shift, noise in log units, the
    # smallest change that noise lets count), all relative but noise
    latency_noise: dict[str, tuple[float, float, float]] = field(default_factory=dict)

    @property
    def tests(self) -> int:
        return sum(1 for s in self.scenarios for m in s.metrics if m.pvalue is not None)

    def count(self, verdict: Verdict) -> int:
        return sum(1 for s in self.scenarios if s.verdict is verdict)

    @property
    def regressed(self) -> list[ScenarioComparison]:
        return [s for s in self.scenarios if s.verdict is Verdict.REGRESSED]

    @property
    def has_regression(self) -> bool:
        """A material, significant regression, or a scenario that passed and now fails."""
        return bool(self.regressed) or any(s.flipped_to_failure for s in self.scenarios)
