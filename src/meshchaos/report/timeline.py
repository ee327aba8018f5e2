"""Outcomes over time, as the run record keeps them: class counts per time bin of a load.

A load's requests are binned by their intended send time (``Sample.start``, seconds since
the run began: the clock of the triggers' events too), in bins of a round width chosen
so that a load has at most :data:`MAX_BINS` of them. Kept for every load, passing or
not, so the report can show bursts (a kill, an ejection) without raw samples.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

__all__ = ["MAX_BINS", "bin_width", "class_series", "timeline_of"]

MAX_BINS = 60


class _Timed(Protocol):
    @property
    def start(self) -> float: ...

    @property
    def outcome(self) -> str: ...


def bin_width(span: float, max_bins: int = MAX_BINS) -> float:
    """The smallest round width (1, 2 or 5 times a power of ten, at least 1 ms) that
    covers ``span`` seconds in at most ``max_bins`` bins."""
    target = max(span, 0.0) / max_bins
    exponent = max(math.floor(math.log10(target)) if target > 0 else -3, -3)
    for e in (exponent, exponent + 1):
        for m in (1, 2, 5):
            width = round(m * 10.0**e, 6)
            if span / width < max_bins:  # then span // width + 1 bins are at most max_bins
                return width
    raise ValueError(f"no bin width for a span of {span!r} s")  # only for nan or inf


def timeline_of(samples: Iterable[_Timed]) -> dict[str, Any]:
    """``{"bin_seconds": w, "classes": [...], "counts": [[...], ...]}``: one row per bin
    from time 0 to the last request's, each the count of every class in ``classes``
    order."""
    items = [(s.start, s.outcome) for s in samples if math.isfinite(s.start)]
    if not items:
        return {"bin_seconds": 1.0, "classes": [], "counts": []}
    span = max(max(t for t, _ in items), 0.0)
    width = bin_width(span)
    classes = sorted({c for _, c in items})
    column = {c: i for i, c in enumerate(classes)}
    # t / width, not t // width: float floor division puts 5.0 s in the 0.2 s bin 24.
    rows = [[0] * len(classes) for _ in range(math.floor(span / width + 1e-9) + 1)]
    for t, c in items:
        i = min(max(math.floor(t / width + 1e-9), 0), len(rows) - 1)
        rows[i][column[c]] += 1
    return {"bin_seconds": width, "classes": classes, "counts": rows}


def class_series(timeline: Mapping[str, Any]) -> dict[str, list[int]]:
    """A recorded timeline as one count series per class."""
    classes = [str(c) for c in timeline.get("classes", [])]
    rows = timeline.get("counts", [])
    return {c: [int(r[i]) for r in rows] for i, c in enumerate(classes)}
