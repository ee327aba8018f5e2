"""How big a sample a scenario needs: power against ``--min-effect`` at its alpha share."""

from __future__ import annotations

import math
from dataclasses import dataclass

from meshchaos.oracle.prediction import Prediction
from meshchaos.stats import detectable_effect, sample_size

__all__ = ["POWER", "Sizing", "plan_sample"]

POWER = 0.95


@dataclass(frozen=True)
class Sizing:
    """How big the sample was planned, how big it runs, and what that can detect."""

    planned: int  # n needed to detect --min-effect with power 0.95 at the check level
    used: int  # after the scenario's cap and floor
    min_effect: float
    detectable: float  # smallest deviation the used n detects with power 0.95
    alpha: float  # the level each share check is sized for (scenario alpha / checks)

    @property
    def capped(self) -> bool:
        return self.used < self.planned

    def describe(self) -> str:
        """``"300 requests (planned 2684; detects a 0.152 deviation at power 0.95)"``."""
        what = (
            "nothing reliably"
            if math.isinf(self.detectable)
            else f"a {self.detectable:.3f} deviation"
        )
        return f"{self.used} requests (planned {self.planned}; detects {what} at power {POWER})"


def _tested_shares(prediction: Prediction) -> list[list[tuple[float, float, bool]]]:
    """Per share check, the shares it tests, as ``(p, fraction, after_first_wave)``: the
    check sees ``fraction`` of the requests at least (of those after the first wave, if
    the last is true). An exact share; both edges of a bounded
    share (a deviation beyond either is what its one check must catch; an edge at 0 or
    1 cannot be crossed); a share exact only within a group, seen by the group's least
    share of the requests; a share of late answers (latency split), likewise; a mirrored
    share."""
    checks: list[list[tuple[float, float, bool]]] = []
    for o in prediction.outcomes:
        if o.is_exact:
            checks.append([(o.probability, 1.0, False)])
            continue
        edges = [(edge, 1.0, False) for edge in o.bounds if 0.0 < edge < 1.0]
        if edges:
            checks.append(edges)
    checks += [[(c.probability, c.given_low, False)] for c in prediction.conditionals]
    checks += [[(s.probability, s.given_low, True)] for s in prediction.splits]
    checks += [[(p, 1.0, False)] for p in prediction.mirrored.values() if 0.0 < p < 1.0]
    return checks


def plan_sample(
    prediction: Prediction,
    min_effect: float,
    alpha: float,
    *,
    cap: int,
    floor: int,
    judged: int = 0,
) -> Sizing:
    """Size the sample so every tested share's check detects ``min_effect`` (capped).

    ``judged`` is how many checks the verdict judges together (shares, bands, counters):
    Holm's first step tests the smallest p-value at alpha / that many, so a deviation
    that moves one share (and its counter) must clear that level. Sized for the worst
    case: every other check null. A latency split leaves the first wave out (one
    request per connection, :func:`meshchaos.check.late_share`), so its n gets that
    many more.
    """
    checks = _tested_shares(prediction) or [[(1.0, 1.0, False)]]
    level = alpha / max(len(checks), judged)
    shares = [share for check in checks for share in check]
    wave = prediction.request.concurrency
    planned = max(
        math.ceil(sample_size(p, min_effect, level, POWER) / fraction) + (wave if later else 0)
        for p, fraction, later in shares
    )
    used = max(floor, min(planned, cap))
    detectable = max(
        detectable_effect(
            p, max(0, math.floor((used - (wave if later else 0)) * fraction)), level, POWER
        )
        for p, fraction, later in shares
    )
    return Sizing(planned, used, min_effect, detectable, level)
