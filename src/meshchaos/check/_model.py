"""What a check is and what it returns; the combinators. Public names live in ``meshchaos.check``.

A :class:`Check` tests one hypothesis "the system behaves as checked" against a
:class:`LoadResult` and returns a :class:`CheckOutcome` carrying an exact p-value:
the evidence *against* that hypothesis. A check fails at level ``alpha`` when its
p-value is at most ``alpha``, so a correct system fails it with probability at most
``alpha``.

Combinators keep that guarantee:

- ``all_of`` passes at alpha when every part passes at ``alpha / k`` (Bonferroni,
  which for "none rejected" is exactly Holm's first step); its p-value is
  ``min(1, k * min p)``.
- ``any_of`` passes when at least one part passes at ``alpha``; it fails only if all
  parts fail, so its p-value is ``max p`` (intersection-union test, no correction).
- ``not_`` passes when its part *fails*: it asks for a detected deviation, so its
  false failures are governed by the part's power, not by alpha, and it has no
  p-value (``nan``). Size the sample with :func:`meshchaos.stats.sample_size`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from meshchaos.load.result import LoadResult

__all__ = ["Check", "CheckOutcome", "all_of", "any_of", "during", "not_"]

Kind = Literal["test", "all", "any", "not"]


@dataclass(frozen=True)
class CheckOutcome:
    """The result of one check: what was expected, what was seen, and the evidence.

    ``interval`` is a human-readable confidence interval for the observed quantity,
    ``detail`` anything else worth a reader's eye. Composite outcomes keep their
    ``parts``.

    The same facts as numbers, for the run record (``None`` where a check has none):
    ``k`` events of ``n`` trials observed, the expected share ``expected_low`` to
    ``expected_high`` (equal for a point prediction), and the confidence interval
    ``interval_low`` to ``interval_high`` for the observed share.
    """

    name: str
    pvalue: float
    expected: str
    observed: str
    interval: str = ""
    detail: str = ""
    kind: Kind = "test"
    parts: tuple[CheckOutcome, ...] = ()
    k: int | None = None
    n: int | None = None
    expected_low: float | None = None
    expected_high: float | None = None
    interval_low: float | None = None
    interval_high: float | None = None

    def passed_at(self, alpha: float) -> bool:
        """Whether the check passes when judged alone at level ``alpha``."""
        if self.kind == "all":
            return all(p.passed_at(alpha / len(self.parts)) for p in self.parts)
        if self.kind == "any":
            return any(p.passed_at(alpha) for p in self.parts)
        if self.kind == "not":
            return not self.parts[0].passed_at(alpha)
        return self.pvalue > alpha

    @property
    def is_test(self) -> bool:
        """True if the p-value is a valid test of conformance (no negation inside)."""
        return not math.isnan(self.pvalue)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready record of this outcome (``pvalue`` is None when undefined)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "pvalue": self.pvalue if self.is_test else None,
            "expected": self.expected,
            "observed": self.observed,
            "interval": self.interval,
            "detail": self.detail,
            "k": self.k,
            "n": self.n,
            "expected_low": self.expected_low,
            "expected_high": self.expected_high,
            "interval_low": self.interval_low,
            "interval_high": self.interval_high,
            "parts": [p.to_dict() for p in self.parts],
        }


Evaluate = Callable[[LoadResult, float], CheckOutcome]


@dataclass(frozen=True)
class Check:
    """A named test of a :class:`LoadResult`.

    Write a custom one as ``Check("name", evaluate)`` with
    ``evaluate(result, alpha) -> CheckOutcome`` returning an exact p-value.

    ``evaluate(result, alpha)`` runs it; ``alpha`` only sets the confidence of the
    reported interval, the verdict is taken later from the p-value. ``evidence``
    holds lines for the deviation message (e.g. the oracle's reasoning).
    """

    name: str
    _evaluate: Evaluate
    evidence: tuple[tuple[str, str], ...] = ()
    kind: Kind = "test"
    parts: tuple[Check, ...] = field(default=())

    def evaluate(self, result: LoadResult, alpha: float) -> CheckOutcome:
        """Run the check on ``result``; intervals are shown at confidence ``1 - alpha``."""
        return self._evaluate(result, alpha)

    def all_evidence(self) -> list[tuple[str, str]]:
        """This check's evidence lines and those of its parts, without repeats."""
        seen: list[tuple[str, str]] = []
        for line in (*self.evidence, *(e for p in self.parts for e in p.all_evidence())):
            if line not in seen:
                seen.append(line)
        return seen

    def leaves(self) -> list[Check]:
        """The checks an AND of this one consists of: ``all_of`` groups are flattened."""
        if self.kind == "all":
            return [leaf for p in self.parts for leaf in p.leaves()]
        return [self]


def _combine(kind: Kind, parts: Sequence[Check], joiner: str) -> Check:
    if not parts:
        raise ValueError(f"{kind}_of needs at least one check")
    name = f" {joiner} ".join(f"({p.name})" if p.kind != "test" else p.name for p in parts)

    def evaluate(result: LoadResult, alpha: float) -> CheckOutcome:
        if kind == "all":
            level = alpha / len(parts)
            outcomes = tuple(p.evaluate(result, level) for p in parts)
        else:
            outcomes = tuple(p.evaluate(result, alpha) for p in parts)
        ps = [o.pvalue for o in outcomes]
        if any(math.isnan(p) for p in ps):
            pvalue = math.nan
        elif kind == "all":
            pvalue = min(1.0, len(ps) * min(ps))
        else:
            pvalue = max(ps)
        return CheckOutcome(
            name=name,
            pvalue=pvalue,
            expected=f" {joiner} ".join(o.expected for o in outcomes),
            observed="; ".join(o.observed for o in outcomes),
            kind=kind,
            parts=outcomes,
        )

    return Check(name, evaluate, kind=kind, parts=tuple(parts))


def all_of(*checks: Check) -> Check:
    """Passes when every check passes (Bonferroni inside; flattened into Holm by ``to``)."""
    return _combine("all", checks, "and")


def any_of(*checks: Check) -> Check:
    """Passes when at least one check passes; fails only when every one fails."""
    return _combine("any", checks, "or")


def not_(check: Check) -> Check:
    """Passes when ``check`` detects a deviation (fails) at the level in force."""

    def evaluate(result: LoadResult, alpha: float) -> CheckOutcome:
        inner = check.evaluate(result, alpha)
        return CheckOutcome(
            name=f"not ({check.name})",
            pvalue=math.nan,
            expected=f"a deviation from: {inner.expected}",
            observed=inner.observed,
            interval=inner.interval,
            detail=f"inner p={inner.pvalue:.3g}" if inner.is_test else "",
            kind="not",
            parts=(inner,),
        )

    return Check(f"not ({check.name})", evaluate, kind="not", parts=(check,))


def during(window: str, select: Callable[[LoadResult], LoadResult], check: Check) -> Check:
    """``check`` judged on the requests ``select`` keeps, e.g. those sent after a kill.

    Distributes over ``all_of`` (each part becomes its own windowed check, so Holm sees
    every part), and names the window in each check's name.
    """
    leaves = check.leaves()

    def windowed(leaf: Check) -> Check:
        def evaluate(result: LoadResult, alpha: float) -> CheckOutcome:
            outcome = leaf.evaluate(select(result), alpha)
            return replace(outcome, name=f"{outcome.name} [{window}]")

        return Check(f"{leaf.name} [{window}]", evaluate, leaf.evidence, leaf.kind, leaf.parts)

    if len(leaves) == 1:
        return windowed(leaves[0])
    return replace(all_of(*(windowed(leaf) for leaf in leaves)), evidence=check.evidence)


def format_evidence_value(value: object) -> str:
    """One evidence value as text: mappings as ``k=v`` pairs, sequences comma-joined."""
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(str(v) for v in value)
    return str(value)
