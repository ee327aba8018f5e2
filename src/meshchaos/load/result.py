"""What a load run observed: one :class:`Sample` per request, and the run's frame."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace


@dataclass(frozen=True, slots=True)
class Sample:
    """One request as the client saw it.

    ``start`` is the *intended* send time in seconds since the run began (open loop:
    the schedule; closed loop: when the worker was free), and ``latency`` is measured
    from it, so a stalled generator cannot hide latency (no coordinated omission).
    ``status`` is 0 when no response arrived; ``outcome`` is the classifier's class.
    """

    start: float
    latency: float
    status: int
    outcome: str
    overloaded: bool = False  # response carried ``x-envoy-overloaded: true``


@dataclass(frozen=True)
class Event:
    """A trigger's action during a run: when it started and ended, in seconds since the
    run began (the clock of :attr:`Sample.start`), and its error if it failed.

    ``settled`` is ``finished`` plus the trigger's settling time: requests sent before
    it are around the action, those sent from it on are after it.
    """

    name: str
    after: int  # completed requests that set it off
    started: float
    finished: float
    error: str | None = None
    settled: float = -1.0  # defaults to ``finished``

    def __post_init__(self) -> None:
        if self.settled < self.finished:
            object.__setattr__(self, "settled", self.finished)

    def is_before(self, sample: Sample) -> bool:
        """``sample`` completed before the action began."""
        return sample.start + sample.latency <= self.started

    def is_around(self, sample: Sample) -> bool:
        """``sample`` was in flight while the action ran or settled."""
        return not self.is_before(sample) and not self.is_after(sample)

    def is_after(self, sample: Sample) -> bool:
        """``sample`` was sent once the action had ended and settled."""
        return sample.start >= self.settled


@dataclass
class LoadResult:
    """All samples of one run, plus how the run was framed."""

    target: str
    samples: list[Sample]
    duration: float  # wall-clock seconds from first intended send to last completion
    concurrency: int
    qps: float | None = None
    requested: int | None = None  # -n, if given
    stopped_by_deadline: bool = False
    examples: dict[str, str] = field(default_factory=dict)  # outcome -> an excerpt of a response
    events: list[Event] = field(default_factory=list)  # what the plan's triggers did

    @property
    def count(self) -> int:
        return len(self.samples)

    def counts(self) -> Counter[str]:
        return Counter(s.outcome for s in self.samples)

    def status_counts(self) -> Counter[int]:
        return Counter(s.status for s in self.samples)

    def share(self, outcome: str) -> float:
        return self.counts()[outcome] / self.count if self.samples else math.nan

    def latencies(self, outcome: str | None = None) -> list[float]:
        return sorted(s.latency for s in self.samples if outcome is None or s.outcome == outcome)

    def percentile(self, q: float, outcome: str | None = None) -> float:
        """The ``q``-th percentile (0-100) of latency in seconds, nearest-rank."""
        values = self.latencies(outcome)
        if not values:
            return math.nan
        rank = max(1, math.ceil(q / 100 * len(values)))
        return values[rank - 1]

    @property
    def rps(self) -> float:
        return self.count / self.duration if self.duration > 0 else math.nan

    def where(self, keep: Callable[[Sample], bool], label: str) -> LoadResult:
        """The samples ``keep`` selects, as a result of their own (a window of the run)."""
        kept = [s for s in self.samples if keep(s)]
        return replace(self, target=f"{self.target} ({label})", samples=kept)
