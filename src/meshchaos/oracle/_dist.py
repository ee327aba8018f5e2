"""Finite mixtures of responses: the oracle's arithmetic.

A response carries a deterministic latency ``t`` (sum of injected delays, timeouts and
upstream think times on its branch) and how many timers make up ``t``, because each timer
may fire early (docs/ARCHITECTURE.md, "Performance facts": up to ~4 ms). Counters and mirror
shares are expectations per request; they compose by linearity, so they need not be
carried per branch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Resp:
    """One branch's observable answer."""

    status: int
    label: str | None = None  # app payload class (Bookinfo); None for a bare status
    t: float = 0.0
    timers: int = 0
    extra: float = 0.0  # known upper-side additions (retry backoff), seconds
    flag: str = ""  # Envoy response flag of a local reply: NR, NC, UH, UT, FI

    def later(self, seconds: float, timers: int = 0, extra: float = 0.0) -> Resp:
        return replace(
            self, t=self.t + seconds, timers=self.timers + timers, extra=self.extra + extra
        )


@dataclass
class Dist:
    """A mixture of responses with expected counters and mirror shares per request."""

    branches: dict[Resp, float] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    mirrored: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @staticmethod
    def of(resp: Resp) -> Dist:
        d = Dist()
        d.add(resp, 1.0)
        return d

    def add(self, resp: Resp, p: float) -> None:
        if p > 0.0:
            self.branches[resp] = self.branches.get(resp, 0.0) + p

    def absorb(self, other: Dist, weight: float, *, branches: bool = True) -> None:
        """Add ``weight`` x other (its branches, counters and mirrors)."""
        if branches:
            for r, p in other.branches.items():
                self.add(r, weight * p)
        self.add_expectations(other, weight)

    def add_expectations(self, other: Dist, weight: float) -> None:
        for k, v in other.counters.items():
            self.counters[k] += weight * v
        for k, v in other.mirrored.items():
            self.mirrored[k] += weight * v

    def items(self) -> Iterable[tuple[Resp, float]]:
        return list(self.branches.items())

    def total(self) -> float:
        return sum(self.branches.values())


def mixture(parts: Iterable[tuple[float, Dist]]) -> Dist:
    out = Dist()
    for w, d in parts:
        out.absorb(d, w)
    return out


def counters_plain(d: Mapping[str, float]) -> dict[str, float]:
    return {k: v for k, v in sorted(d.items()) if v != 0.0}
