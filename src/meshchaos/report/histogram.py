"""Latency histograms of the run record: fixed log-spaced bins, so any two runs' histograms
line up bin for bin, and the percentiles kept beside them."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meshchaos.report._errors import RecordError

__all__ = [
    "BINS_PER_DECADE",
    "HISTOGRAM_DECADES",
    "HISTOGRAM_LOW",
    "PERCENTILES",
    "Histogram",
    "bin_edges",
    "bin_of",
    "histogram_of",
    "latency_record",
]

HISTOGRAM_LOW = 1e-4  # seconds: the first bin's lower edge (100 µs)
BINS_PER_DECADE = 100  # each bin is 2.3% wide, finer than any threshold compare uses
HISTOGRAM_DECADES = 7  # 100 µs .. 1000 s; below and above go into the end bins
PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9, 100.0)


def bin_of(latency: float) -> int:
    """The histogram bin of ``latency`` seconds (clamped to the first and last bin)."""
    last = BINS_PER_DECADE * HISTOGRAM_DECADES - 1
    if not latency > HISTOGRAM_LOW:  # also nan
        return 0
    i = math.floor(math.log10(latency / HISTOGRAM_LOW) * BINS_PER_DECADE)
    return min(max(i, 0), last)


def bin_edges(i: int) -> tuple[float, float]:
    """The lower and upper edge, in seconds, of bin ``i``."""
    return (
        HISTOGRAM_LOW * 10 ** (i / BINS_PER_DECADE),
        HISTOGRAM_LOW * 10 ** ((i + 1) / BINS_PER_DECADE),
    )


@dataclass(frozen=True)
class Histogram:
    """Latency counts per log-spaced bin: ``bins`` maps a bin index to its count."""

    bins: Mapping[int, int]

    @property
    def count(self) -> int:
        return sum(self.bins.values())

    def sorted_items(self) -> list[tuple[int, int]]:
        return sorted((i, c) for i, c in self.bins.items() if c)

    def bin_of_rank(self, rank: int) -> int:
        """The bin holding the ``rank``-th smallest latency (1-based)."""
        seen = 0
        items = self.sorted_items()
        for i, c in items:
            seen += c
            if seen >= rank:
                return i
        return items[-1][0]

    def quantile(self, q: float) -> float:
        """The nearest-rank ``q`` quantile (0 < q < 1), at its bin's geometric middle."""
        rank = max(1, math.ceil(q * self.count))
        lo, hi = bin_edges(self.bin_of_rank(rank))
        return math.sqrt(lo * hi)

    def at_most(self, i: int) -> int:
        """How many latencies fall in bins ``0..i``."""
        return sum(c for j, c in self.bins.items() if j <= i)

    def to_json(self) -> dict[str, Any]:
        return {
            "low": HISTOGRAM_LOW,
            "bins_per_decade": BINS_PER_DECADE,
            "counts": [[i, c] for i, c in self.sorted_items()],
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Histogram:
        if data.get("low") != HISTOGRAM_LOW or data.get("bins_per_decade") != BINS_PER_DECADE:
            raise RecordError(
                f"histogram bins low={data.get('low')} per decade={data.get('bins_per_decade')}"
                f" differ from this meshchaos ({HISTOGRAM_LOW}, {BINS_PER_DECADE})"
            )
        return Histogram({int(i): int(c) for i, c in data["counts"]})


def histogram_of(latencies: Iterable[float]) -> Histogram:
    bins: dict[int, int] = {}
    for v in latencies:
        i = bin_of(v)
        bins[i] = bins.get(i, 0) + 1
    return Histogram(bins)


def _nearest_rank(sorted_values: Sequence[float], q: float) -> float:
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def latency_record(latencies: Iterable[float]) -> dict[str, Any]:
    """Histogram and exact nearest-rank percentiles of ``latencies`` (seconds)."""
    values = sorted(latencies)
    return {
        "count": len(values),
        "percentiles": {
            f"p{q:g}": (_nearest_rank(values, q) if values else None) for q in PERCENTILES
        },
        "histogram": histogram_of(values).to_json(),
    }


# ------------------------------------------------------------------ writing
