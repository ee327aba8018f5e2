"""Counter checks: a proxy counter agrees with what the client saw, or with a bound.

A counter that could not be read is never a zero: it comes as :class:`Unreadable`, and
the check that depended on it fails with the reason, in the message and in the record.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshchaos.check import _format as fmt
from meshchaos.check._model import Check, CheckOutcome
from meshchaos.load.result import LoadResult
from meshchaos.stats.intervals import binomial_pvalue

__all__ = ["Unreadable", "counter_between", "counter_matches"]


@dataclass(frozen=True)
class Unreadable:
    """A counter value that could not be read, and why (a proxy down, a stat not emitted)."""

    reason: str

    def __str__(self) -> str:
        return f"unreadable ({self.reason})"


def _unreadable(name: str, expected: str, reading: Unreadable) -> CheckOutcome:
    # p = 0: with no observation the check cannot vouch for the mesh, so it fails.
    return CheckOutcome(name=name, pvalue=0.0, expected=expected, observed=str(reading))


def counter_matches(
    name: str, observed: int | Unreadable, expected_per_request: float, n: int
) -> Check:
    """A proxy counter agrees with the ``n`` requests the client sent.

    Models the counter as one Bernoulli event per request with probability
    ``expected_per_request`` (e.g. ``fault.aborts_injected`` at 0.1), tested two-sided
    exactly. A count above ``n`` is impossible under that model and fails outright.
    Counters that can tick more than once per request (retries) must be scaled to one
    event per request first (see :mod:`meshchaos.scenario.observing`).
    """
    if not 0 <= expected_per_request <= 1:
        raise ValueError(
            f"counter {name}: expected_per_request must be in [0, 1] (one event per request "
            f"at most), got {expected_per_request}"
        )
    if n < 1 or (isinstance(observed, int) and observed < 0):
        raise ValueError(f"counter {name}: need n >= 1 and observed >= 0, got {n}, {observed}")
    title = f"proxy counter {name}"
    expected = f"{expected_per_request:.3f} per request ({expected_per_request * n:g})"

    def evaluate(result: LoadResult, alpha: float) -> CheckOutcome:
        if isinstance(observed, Unreadable):
            return _unreadable(title, expected, observed)
        bounds: tuple[float | None, float | None] = (None, None)
        if observed > n:
            pvalue, interval = 0.0, ""
        else:
            pvalue = binomial_pvalue(observed, n, expected_per_request)
            interval = fmt.ci(observed, n, alpha)
            bounds = fmt.ci_bounds(observed, n, alpha)
        return CheckOutcome(
            name=title,
            pvalue=pvalue,
            expected=expected,
            observed=f"{observed / n:.3f} per request ({observed})",
            interval=interval,
            k=observed,
            n=n,
            expected_low=expected_per_request,
            expected_high=expected_per_request,
            interval_low=bounds[0],
            interval_high=bounds[1],
        )

    return Check(title, evaluate)


def counter_between(
    name: str, observed: int | Unreadable, low: int, high: int, *, why: str = ""
) -> Check:
    """A proxy counter lies in ``[low, high]``, bounds that hold with certainty.

    For counters the oracle can only bound, such as outlier-detection ejections over a
    run: outside a certain bound the mesh deviated, so the test is exact with p-value
    1 inside and 0 outside. ``why`` (the oracle's derivation) goes into the detail.
    """
    if not 0 <= low <= high:
        raise ValueError(f"counter {name}: need 0 <= low <= high, got [{low}, {high}]")
    title = f"proxy counter {name}"
    expected = f"within [{low}, {high}]"

    def evaluate(result: LoadResult, alpha: float) -> CheckOutcome:
        if isinstance(observed, Unreadable):
            return _unreadable(title, expected, observed)
        inside = low <= observed <= high
        return CheckOutcome(
            name=title,
            pvalue=1.0 if inside else 0.0,
            expected=expected,
            observed=str(observed),
            detail=why,
            k=observed,
            expected_low=float(low),
            expected_high=float(high),
        )

    return Check(title, evaluate)
