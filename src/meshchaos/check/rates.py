"""Rate checks: the share of an outcome class or status code, and "no errors"."""

from __future__ import annotations

from collections.abc import Callable, Collection

from meshchaos.check import _format as fmt
from meshchaos.check._model import Check, CheckOutcome
from meshchaos.load.result import LoadResult
from meshchaos.stats.intervals import binomial_pvalue, bound_pvalue, one_sided_pvalue

__all__ = ["no_errors", "share", "share_among", "status_share", "unpredicted_at_most"]


def _rate_check(
    name: str,
    count: Callable[[LoadResult], int],
    equals: float | None,
    between: tuple[float, float] | None,
    among: Callable[[LoadResult], int] | None = None,
    detail: Callable[[LoadResult], str] | None = None,
) -> Check:
    if (equals is None) == (between is None):
        raise ValueError(f"{name}: give exactly one of equals= or between=")
    if equals is not None and not 0 <= equals <= 1:
        raise ValueError(f"{name}: equals must be in [0, 1], got {equals}")
    if between is not None and not 0 <= between[0] <= between[1] <= 1:
        raise ValueError(f"{name}: between must satisfy 0 <= low <= high <= 1, got {between}")

    def evaluate(result: LoadResult, alpha: float) -> CheckOutcome:
        n = result.count if among is None else among(result)
        k = count(result)
        if equals is not None:
            pvalue = binomial_pvalue(k, n, equals)
            expected = f"{equals:.3f}"
            low, high = equals, equals
        else:
            assert between is not None  # for mypy: validated above
            pvalue = bound_pvalue(k, n, *between)
            expected = f"within [{between[0]:.3f}, {between[1]:.3f}]"
            low, high = between
        bounds = fmt.ci_bounds(k, n, alpha) if n else (None, None)
        return CheckOutcome(
            name=name,
            pvalue=pvalue,
            expected=expected,
            observed=f"{k / n:.3f} ({k}/{n})" if n else "no samples",
            interval=fmt.ci(k, n, alpha) if n else "",
            detail=detail(result) if detail is not None else "",
            k=k,
            n=n,
            expected_low=low,
            expected_high=high,
            interval_low=bounds[0],
            interval_high=bounds[1],
        )

    return Check(name, evaluate)


def share(
    outcome: str, *, equals: float | None = None, between: tuple[float, float] | None = None
) -> Check:
    """The share of requests classed ``outcome`` is ``equals`` (two-sided exact test),
    or lies ``between`` (low, high) (exact test against the nearer edge)."""
    return _rate_check(f"share of {outcome}", lambda r: r.counts()[outcome], equals, between)


def share_among(outcome: str, given: Collection[str], *, equals: float) -> Check:
    """Among the requests classed as one of ``given``, the share classed ``outcome`` is
    ``equals`` (two-sided exact test on that subsample).

    For a share that is exact only within a group (``ConditionalShare``): the group's
    own size varies, which the test conditions on. Stopping after a fixed total leaves
    the count in the group binomial given its size, so the test keeps its level.
    """
    group = frozenset(given)
    if outcome not in group:
        raise ValueError(f"share of {outcome} among {sorted(group)}: the group must contain it")
    name = f"share of {outcome} among {' | '.join(sorted(group))}"

    def among(r: LoadResult) -> int:
        counts = r.counts()
        return sum(counts[c] for c in group)

    return _rate_check(name, lambda r: r.counts()[outcome], equals, None, among)


def status_share(
    code: int, *, equals: float | None = None, between: tuple[float, float] | None = None
) -> Check:
    """The share of responses with HTTP status ``code`` (0: no response), as :func:`share`."""
    return _rate_check(
        f"share of status {code}", lambda r: r.status_counts()[code], equals, between
    )


def no_errors() -> Check:
    """No request got status 0 (no response) or 5xx.

    A zero-probability prediction is refuted by a single occurrence, so this is an
    exact test with p-value 1 or 0; it can only fail a system that really erred.
    """

    def evaluate(result: LoadResult, alpha: float) -> CheckOutcome:
        bad = [s.status for s in result.samples if s.status == 0 or s.status >= 500]
        counts: dict[int, int] = {}
        for code in bad:
            counts[code] = counts.get(code, 0) + 1
        listing = ", ".join(f"status {c}: {m}" for c, m in sorted(counts.items()))
        return CheckOutcome(
            name="no errors",
            pvalue=0.0 if bad else 1.0,
            expected="no status 0 or 5xx",
            observed=f"{len(bad)} of {result.count}" + (f": {listing}" if listing else ""),
            k=len(bad),
            n=result.count,
            expected_low=0.0,
            expected_high=0.0,
        )

    return Check("no errors", evaluate)


def unpredicted_at_most(known: Collection[str], allowance: int, rate: float) -> Check:
    """Requests outside the ``known`` classes number at most ``allowance`` plus a share
    ``rate`` of the others.

    For the requests around an instance kill: up to ``allowance`` of them (those in
    flight when it died) may fail for certain, and each of the rest fails with
    probability at most ``rate``. The excess over ``allowance`` is then stochastically
    below Binomial(n - allowance, rate), so the one-sided exact test of it is
    conservative; with ``rate`` 0 a single excess failure refutes the claim.
    """
    if allowance < 0 or not 0 <= rate <= 1:
        raise ValueError(f"need allowance >= 0 and rate in [0, 1], got {allowance}, {rate}")
    name = "requests outside the predicted classes"
    expected = f"at most {allowance} + {rate:.4g} of the rest"

    def evaluate(result: LoadResult, alpha: float) -> CheckOutcome:
        n = result.count
        k = sum(1 for s in result.samples if s.outcome not in known)
        excess, rest = max(0, k - allowance), max(0, n - allowance)
        pvalue = one_sided_pvalue(excess, rest, rate, "greater") if excess else 1.0
        return CheckOutcome(
            name=name,
            pvalue=pvalue,
            expected=expected,
            observed=f"{k} of {n}",
            detail=f"known classes: {', '.join(sorted(known))}",
            k=k,
            n=n,
            expected_low=0.0,
            expected_high=min(1.0, (allowance + rate * rest) / n) if n else None,
        )

    return Check(name, evaluate)
