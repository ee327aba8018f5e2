"""The verdict: what a check is, the rate, latency and counter checks, and judging with Holm.

    expect(result, evidence={"policy": path}).to(matches(prediction), p99_below(0.3))

Each check is an exact test returning a p-value (:mod:`meshchaos.check._model` says how
the combinators keep its level). ``to`` judges all checks of a call together with Holm
at the scenario's alpha (:mod:`meshchaos.check._judge`) and raises
:class:`PolicyDeviation` listing every failure, with expected and observed values, the
interval, the p-value and the evidence. The families of checks:

- rates (:mod:`~meshchaos.check.rates`): ``share``, ``status_share``, ``no_errors``,
  ``unpredicted_at_most``;
- latency (:mod:`~meshchaos.check.latency`): ``percentile_below``, ``p50_below``,
  ``p99_below``, ``latency_within``, ``late_share``;
- counters (:mod:`~meshchaos.check.counters`): ``counter_matches``, ``counter_between``;
- the prediction as a whole (:mod:`~meshchaos.check.prediction`): ``matches``;
- windows of a run (:func:`during`): a check on the requests of one phase of the run,
  such as the ones sent after an instance was killed.
"""

from __future__ import annotations

from meshchaos.check._judge import CheckReport, ChecksFailed, Expectation, collect_reports, expect
from meshchaos.check._model import Check, CheckOutcome, all_of, any_of, during, not_
from meshchaos.check.counters import Unreadable, counter_between, counter_matches
from meshchaos.check.latency import (
    late_share,
    latency_within,
    p50_below,
    p99_below,
    percentile_below,
)
from meshchaos.check.prediction import matches
from meshchaos.check.rates import no_errors, share, status_share, unpredicted_at_most

__all__ = [
    "Check",
    "CheckOutcome",
    "CheckReport",
    "ChecksFailed",
    "Expectation",
    "Unreadable",
    "all_of",
    "any_of",
    "collect_reports",
    "counter_between",
    "counter_matches",
    "during",
    "expect",
    "late_share",
    "latency_within",
    "matches",
    "no_errors",
    "not_",
    "p50_below",
    "p99_below",
    "percentile_below",
    "share",
    "status_share",
    "unpredicted_at_most",
]
