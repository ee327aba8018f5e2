"""Latency splits: how much of a class answers late, where a partial delay decides it.

A partial delay changes no outcome class. A 50 % delay on ratings leaves every page
``reviews-v2-black``; what it changes is the mixture of latencies within the class: half
the pages arrive after the delay, half before. When the branches of a class fall into
latency bands with a gap between them, a request's latency tells which side it took, so
the share of requests at or above the gap is exact and can be tested like any share: a
50 % delay that fires 45 % of the time moves that share by 5 points, which the class's
one band never shows.

The threshold is the slow side's least latency (its delay minus how early the timers may
fire). No slow branch can answer before it; a fast one only in a stall longer than the
gap, which the class's band check already counts.

Under an uneven LEAST_REQUEST balancer the classes' own shares are only bounded, so a
split counts only if its share is the same in every load order (as for conditional
shares, :func:`meshchaos.oracle._balance.conditionals`). The split is looked for first
over all requests (one check; a delay before the balancer's pick splits every class
alike), then within single classes that no such split divides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from meshchaos.oracle.prediction import LatencyBand, LatencySplit, OutcomeShare

__all__ = ["latency_splits"]

# Shares must agree to this precision across load orders to count as exact.
_EXACT = 1e-9

Parts = list[tuple[str, float, LatencyBand]]  # (class, probability, band)


def _parts(outcomes: Mapping[str, OutcomeShare], classes: Sequence[str]) -> Parts:
    out: Parts = []
    for cls in classes:
        o = outcomes.get(cls)
        if o is None:
            continue
        for p, band in o.components or ((o.probability, o.latency),):
            out.append((cls, p, band))
    return out


def _gaps(parts: Parts) -> list[float]:
    """Latencies that no band straddles and that some class has branches on both sides
    of: each is the least latency of the branches at or above it."""
    lows = sorted({b.low for _, _, b in parts if b.low > 0})
    gaps = []
    for at in lows:
        if any(b.low < at <= b.high for _, _, b in parts):
            continue
        classes_below = {c for c, _, b in parts if b.high < at}
        classes_above = {c for c, _, b in parts if b.low >= at}
        if classes_below & classes_above:
            gaps.append(at)
    return gaps


def _share_above(parts: Parts, at: float) -> tuple[float, float]:
    total = sum(p for _, p, _ in parts)
    above = sum(p for _, p, b in parts if b.low >= at)
    return (above / total if total > _EXACT else -1.0), total


def _split(
    runs: Sequence[Mapping[str, OutcomeShare]], classes: Sequence[str], at: float
) -> LatencySplit | None:
    found = [_share_above(_parts(r, classes), at) for r in runs]
    shares = [s for s, _ in found]
    if min(shares) < 0 or max(shares) - min(shares) > _EXACT:
        return None
    if not _EXACT < shares[0] < 1 - _EXACT:
        return None
    return LatencySplit(
        at=at,
        probability=shares[0],
        given=tuple(sorted(classes)),
        given_low=min(total for _, total in found),
    )


def latency_splits(runs: Sequence[Sequence[OutcomeShare]]) -> list[LatencySplit]:
    """The exact latency splits of a prediction.

    ``runs`` are the class summaries (with their latency components) of every load
    order the balancer can take, or the one summary when the split is not balanced;
    every run's classes together make up all requests.
    """
    maps = [{o.outcome: o for o in run} for run in runs]
    classes = sorted({c for m in maps for c in m})
    out: list[LatencySplit] = []
    divided: set[str] = set()
    every = [p for m in maps for p in _parts(m, classes)]
    for at in _gaps(every):
        split = _split(maps, classes, at)
        if split is not None:
            out.append(split)
            divided |= {c for c, _, b in every if b.low >= at} & {
                c for c, _, b in every if b.high < at
            }
    for cls in classes:
        if cls in divided:
            continue
        own = [p for m in maps for p in _parts(m, [cls])]
        for at in _gaps(own):
            split = _split(maps, [cls], at)
            if split is not None:
                out.append(split)
    return out
