"""``matches(prediction)``: a run against everything the oracle predicted."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection

from meshchaos.check._model import Check, CheckOutcome, all_of
from meshchaos.check.latency import late_share, latency_within
from meshchaos.check.rates import share, share_among
from meshchaos.load.result import LoadResult
from meshchaos.oracle.prediction import Prediction

__all__ = ["matches"]


def _unpredicted(predicted: Collection[str], ignore: Collection[str]) -> Check:
    name = "no unpredicted outcomes"

    def evaluate(result: LoadResult, alpha: float) -> CheckOutcome:
        extra = {c: m for c, m in result.counts().items() if c not in predicted and c not in ignore}
        listing = ", ".join(f"{c}: {m}" for c, m in sorted(extra.items()))
        return CheckOutcome(
            name=name,
            pvalue=0.0 if extra else 1.0,
            expected="only " + ", ".join(sorted(predicted)),
            observed=listing or "none",
        )

    return Check(name, evaluate)


def matches(
    prediction: Prediction,
    *,
    latency: bool = True,
    tail_allowance: float = 0.01,
    ignore: Collection[str] = (),
) -> Check:
    """The run matches ``prediction``: every predicted share, no other class, the bands.

    Expands to one check per predicted class (exact share: two-sided exact test;
    bounded share: test against the nearer bound), one per share the oracle can state
    only within a group of classes (:func:`share_among`), one per share of late answers
    where a partial delay splits classes by latency (:func:`late_share`), one check that
    no unpredicted class occurs, and, with ``latency``, one :func:`latency_within` check
    per class with a non-trivial band. ``to`` judges all of them together with Holm.

    An unpredicted class has probability 0, so a single occurrence refutes the
    prediction exactly (no false alarm is possible if the oracle is right); an
    allowance would make the suite blind to rare real bugs such as a stray 503 from a
    misapplied retry. Classes that are harmless but not modelled go in ``ignore``;
    classes the oracle can only bound should come with bounds from the oracle.
    """
    classes: dict[str, list[float]] = {}
    exact: dict[str, bool] = {}
    for o in prediction.outcomes:
        lo, hi = o.bounds
        acc = classes.setdefault(o.outcome, [0.0, 0.0])
        acc[0] += lo
        acc[1] += hi
        exact[o.outcome] = exact.get(o.outcome, True) and o.is_exact
    checks: list[Check] = []
    for cls, (lo, hi) in classes.items():
        if exact[cls]:
            checks.append(share(cls, equals=min(1.0, lo)))
        else:
            checks.append(share(cls, between=(max(0.0, lo), min(1.0, hi))))
    for c in prediction.conditionals:
        checks.append(share_among(c.outcome, c.given, equals=c.probability))
    everything = set(classes)
    for split in prediction.splits:
        among = None if set(split.given) == everything else split.given
        checks.append(late_share(split.at, equals=split.probability, among=among))
    checks.append(_unpredicted(set(classes), set(ignore)))
    if latency:
        for o in prediction.outcomes:
            vacuous = o.latency.low <= 0 and math.isinf(o.latency.high)
            if o.bounds[1] > 0 and not vacuous:
                checks.append(latency_within(o.latency, o.outcome, tail_allowance))
    request = prediction.request
    who = f" as {request.user}" if request.user else ""
    label = f"{request.method} {request.path}{who} from {request.source}"
    evidence: list[tuple[str, str]] = [("request class", label)]
    if prediction.reasoning:
        evidence.append(("prediction reasoning", "\n".join(prediction.reasoning)))
    group = all_of(*checks)
    return dataclasses.replace(
        group, name=f"matches prediction for {label}", evidence=tuple(evidence)
    )
