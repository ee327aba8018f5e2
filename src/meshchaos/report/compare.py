"""Run-to-run comparison: did a scenario's behaviour change between two runs?

Scenario by scenario, and only where the two records are comparable (the same scenario
id and the same policy files, byte for byte by their sha256), each load of the
scenario is compared metric by metric:

* the share of every failure class (a name with "error", "unavailable", "timeout",
  "overflow", "fail", "reset", or a 5xx/0 status) among all requests, the error share
  (status 0 or 5xx), and, when there are several, the share of each other class among
  the requests of those other classes (routing, so that fewer errors never read as a
  routing change): Fisher's exact test on the 2x2 table, and a Newcombe (hybrid Wilson
  score) interval for the difference current - baseline, in share points;
* the p50 and p99 latency: a quantile test on the histograms (the pooled sample's
  quantile bin as threshold, counts at or below it per run, Fisher's exact test) and
  distribution-free order-statistic intervals per run, widened to the histogram's bin
  edges, giving an interval for the ratio current / baseline. A quantile is tested only
  when each run has at least :data:`MIN_TAIL` samples beyond it.

Latency is also judged against the run-to-run noise of the pair (see
:func:`_between_runs`): net of the run-wide shift, and beyond the spread of the other
scenarios' ratios.

Holm's method runs over every test of the whole comparison at ``alpha`` (family-wise,
a budget of its own, separate from the runs' alpha). A metric is REGRESSED (IMPROVED)
only when its adjusted p-value is at most ``alpha`` AND the change is at least the
material threshold in the bad (good) direction; SAME when the whole interval of the
change lies inside the threshold; INCONCLUSIVE otherwise, with the smallest change the
data could have detected. Routing shares, which have no good direction, count a
material change either way as REGRESSED. Verdict flips (passed -> failed) are listed
apart, first. See ``docs/RECORD.md`` for the defaults and why.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Mapping
from typing import Any

from meshchaos.report._comparison import (
    Comparison,
    MetricComparison,
    ScenarioComparison,
    Thresholds,
    Verdict,
)
from meshchaos.report._statistics import (
    fisher,
    newcombe,
    quantile_interval,
    share_detectable,
    z_score,
)
from meshchaos.report.histogram import Histogram
from meshchaos.report.record import RunRecord
from meshchaos.stats.multiple import holm_adjusted

__all__ = [
    "Comparison",
    "MetricComparison",
    "ScenarioComparison",
    "Thresholds",
    "Verdict",
    "compare_runs",
]

MIN_TAIL = 10  # samples beyond a quantile, per run, before it is tested
# Run-to-run noise of latency (see _between_runs): estimated from the comparison's own
# scenarios when at least NOISE_MIN_METRICS quantiles were tested, else DEFAULT_NOISE.
NOISE_MIN_METRICS = 10
NOISE_QUANTILE = 0.9  # of |log ratio - median|, robust to a few real changes
DEFAULT_NOISE = 0.20  # log-ratio spread of an honest pair measured here (docs/RECORD.md)
QUANTILES = (0.5, 0.99)
_BAD_CLASS = re.compile(r"error|unavailable|timeout|overflow|fail|reset|^(0|5\d\d)$", re.I)


# ------------------------------------------------------------------ statistics


def _direction(outcome: str) -> str:
    return "increase-bad" if _BAD_CLASS.search(outcome) else "either"


def _share_metric(
    name: str, direction: str, k1: int, n1: int, k2: int, n2: int, t: Thresholds
) -> MetricComparison:
    p1, p2 = k1 / n1, k2 / n2
    low, high = newcombe(k1, n1, k2, n2, t.confidence)
    return MetricComparison(
        metric=name,
        kind="share",
        direction=direction,
        baseline=p1,
        current=p2,
        baseline_n=n1,
        current_n=n2,
        change=p2 - p1,
        low=low,
        high=high,
        threshold=t.rate(p1),
        pvalue=fisher(k1, n1, k2, n2),
    )


def _latency_metric(
    name: str, q: float, base: Histogram, cur: Histogram, t: Thresholds
) -> MetricComparison:
    n1, n2 = base.count, cur.count
    b, c = base.quantile(q), cur.quantile(q)
    threshold = t.latency(b)
    # Each run's interval at a Bonferroni half of the miss rate: the ratio's interval
    # then covers with at least the comparison's confidence.
    level = 1 - (1 - t.confidence) / 2
    metric = MetricComparison(
        metric=name,
        kind="latency",
        direction="increase-bad",
        baseline=b,
        current=c,
        baseline_n=n1,
        current_n=n2,
        change=c / b - 1,
        low=math.nan,
        high=math.nan,
        threshold=threshold,
        pvalue=None,
    )
    if min(n1, n2) * (1 - q) < MIN_TAIL:
        metric.note = f"n too small: fewer than {MIN_TAIL} samples above p{q * 100:g} per run"
        return metric
    b_lo, b_hi = quantile_interval(base, q, level)
    c_lo, c_hi = quantile_interval(cur, q, level)
    metric.low, metric.high = c_lo / b_hi - 1, c_hi / b_lo - 1
    pooled = Histogram(
        {i: base.bins.get(i, 0) + cur.bins.get(i, 0) for i in {*base.bins, *cur.bins}}
    )
    cut = pooled.bin_of_rank(max(1, math.ceil(q * pooled.count)))
    metric.pvalue = fisher(base.at_most(cut), n1, cur.at_most(cut), n2)
    metric.detectable = max(metric.high - metric.change, metric.change - metric.low)
    return metric


def _load_metrics(
    prefix: str, base: Mapping[str, Any], cur: Mapping[str, Any], t: Thresholds
) -> list[MetricComparison]:
    out: list[MetricComparison] = []
    n1, n2 = int(base["count"]), int(cur["count"])
    if n1 == 0 or n2 == 0:
        return out
    classes = sorted({*base["classes"], *cur["classes"]})
    bad = [c for c in classes if _direction(c) == "increase-bad"]
    good = [c for c in classes if c not in bad]

    def count(load: Mapping[str, Any], outcome: str) -> int:
        return int(load["classes"].get(outcome, 0))

    for outcome in bad:  # failure classes: a share of all requests, more is worse
        k1, k2 = count(base, outcome), count(cur, outcome)
        out.append(_share_metric(f"{prefix}share of {outcome}", "increase-bad", k1, n1, k2, n2, t))
    # The other classes (routing) as shares of the requests that did not fail, so that
    # fewer errors do not read as a routing change; either direction is a change.
    g1, g2 = sum(count(base, c) for c in good), sum(count(cur, c) for c in good)
    if len(good) > 1 and g1 and g2:
        for outcome in good:
            k1, k2 = count(base, outcome), count(cur, outcome)
            name = f"{prefix}share of {outcome} (of the non-failure classes)"
            out.append(_share_metric(name, "either", k1, g1, k2, g2, t))

    def errors(statuses: Mapping[str, int]) -> int:
        return sum(int(v) for k, v in statuses.items() if int(k) == 0 or int(k) >= 500)

    out.append(
        _share_metric(
            f"{prefix}error share (status 0 or 5xx)",
            "increase-bad",
            errors(base["statuses"]),
            n1,
            errors(cur["statuses"]),
            n2,
            t,
        )
    )
    hb = Histogram.from_json(base["latency"]["histogram"])
    hc = Histogram.from_json(cur["latency"]["histogram"])
    for q in QUANTILES:
        out.append(_latency_metric(f"{prefix}{_quantile_name(q)}", q, hb, hc, t))
    return out


def _quantile_name(q: float) -> str:
    return f"p{q * 100:g} latency"


def _between_runs(
    metrics: list[MetricComparison], t: Thresholds
) -> tuple[float, float, float] | None:
    """Take the run-to-run noise of latency into account, in place.

    The quantile test treats every request as independent, but two runs differ by more
    than sampling: the machine's speed, what else ran, bursts of contention that slow
    one load and not the next. A random-effects view (each scenario's log ratio =
    its real change + a run-level shift + between-run noise) asks two things of a
    latency change before it can count: it is judged net of the run-wide shift (the
    median log ratio over the comparison, shown apart), and it must stand out from the
    spread of the other scenarios' ratios, the noise of this pair of runs: the
    material threshold becomes at least ``exp(z * noise) - 1``, with ``z`` the
    Bonferroni normal quantile over these metrics at ``alpha``. A pair whose other
    scenarios agree closely (a quiet machine, or a record compared with an edited copy
    of itself) keeps the fixed threshold; a noisy pair says what it could not resolve.
    Returns (shift, noise, floor), or None when no quantile was tested.
    """
    if not metrics:
        return None
    logs = [math.log1p(m.change) for m in metrics]
    centre = statistics.median(logs) if len(logs) >= NOISE_MIN_METRICS else 0.0
    if len(logs) >= NOISE_MIN_METRICS:
        spread = sorted(abs(x - centre) for x in logs)
        rank = min(len(spread) - 1, math.ceil(NOISE_QUANTILE * len(spread)) - 1)
        noise = spread[rank] / z_score(0.5 + NOISE_QUANTILE / 2)
    else:
        noise = DEFAULT_NOISE
    z = z_score(1 - t.alpha / (2 * len(metrics)))
    floor = math.expm1(z * noise)
    shift = math.expm1(centre)
    for m in metrics:
        m.shift = shift
        m.change = (1 + m.change) / (1 + shift) - 1
        m.low = (1 + m.low) / (1 + shift) - 1
        m.high = (1 + m.high) / (1 + shift) - 1
        if floor > m.threshold:
            m.threshold = floor
            m.note = m.note or (
                f"threshold widened to the run-to-run noise of this pair (±{noise:.2f} log)"
            )
    return shift, noise, floor


def _policies(record: Mapping[str, Any]) -> dict[str, str]:
    return {str(p["name"]): str(p["sha256"]) for p in record["policies"]}


def _why_not(base: Mapping[str, Any], cur: Mapping[str, Any]) -> str:
    pb, pc = _policies(base), _policies(cur)
    if pb != pc:
        for name in sorted({*pb, *pc}):
            if name not in pc:
                return f"policy {name} only in the baseline"
            if name not in pb:
                return f"policy {name} only in the current run"
            if pb[name] != pc[name]:
                return (
                    f"policy {name} differs (sha256 {pb[name][:12]} in the baseline, "
                    f"{pc[name][:12]} now)"
                )
    labels_b = {x["label"] for x in base["loads"]}
    labels_c = {x["label"] for x in cur["loads"]}
    if not labels_b & labels_c:
        if not labels_b or not labels_c:
            return "no load in " + ("the baseline" if not labels_b else "the current run")
        return "no load in common"
    return ""


def _judge(m: MetricComparison, t: Thresholds, tests: int) -> None:
    if m.pvalue is None or m.adjusted is None:
        m.verdict = Verdict.INCONCLUSIVE
        return
    if m.kind == "share" and m.detectable is None:
        level = t.alpha / max(1, tests)  # Holm's first step: the hardest one to pass
        k1, k2 = round(m.baseline * m.baseline_n), round(m.current * m.current_n)
        m.detectable = share_detectable(k1, m.baseline_n, k2, m.current_n, level, t.power)
    significant = m.adjusted <= t.alpha
    worse = m.change >= m.threshold or (m.direction == "either" and m.change <= -m.threshold)
    better = m.direction == "increase-bad" and m.change <= -m.threshold
    if significant and worse:
        m.verdict = Verdict.REGRESSED
    elif significant and better:
        m.verdict = Verdict.IMPROVED
    elif -m.threshold < m.low and m.high < m.threshold:
        m.verdict = Verdict.SAME
    else:
        m.verdict = Verdict.INCONCLUSIVE


def compare_runs(
    baseline: RunRecord, current: RunRecord, thresholds: Thresholds | None = None
) -> Comparison:
    """Compare ``current`` with ``baseline`` scenario by scenario (see the module doc)."""
    t = thresholds or Thresholds()
    scenarios: list[ScenarioComparison] = []
    for sid in sorted({*baseline.scenarios, *current.scenarios}):
        base, cur = baseline.scenarios.get(sid), current.scenarios.get(sid)
        sc = ScenarioComparison(
            sid,
            None if base is None else str(base["outcome"]),
            None if cur is None else str(cur["outcome"]),
        )
        scenarios.append(sc)
        if base is None:
            sc.reason = "new: not in the baseline"
            continue
        if cur is None:
            sc.reason = "gone: not in the current run"
            continue
        sc.reason = _why_not(base, cur)
        if sc.reason:
            continue
        loads_b = {x["label"]: x for x in base["loads"]}
        loads_c = {x["label"]: x for x in cur["loads"]}
        common = sorted(loads_b.keys() & loads_c.keys())
        for label in common:
            prefix = f"{label}: " if len(common) > 1 else ""
            sc.metrics += _load_metrics(prefix, loads_b[label], loads_c[label], t)
    tested = [m for s in scenarios for m in s.metrics if m.pvalue is not None]
    noise: dict[str, tuple[float, float, float]] = {}
    for q in QUANTILES:
        found = _between_runs([m for m in tested if m.metric.endswith(_quantile_name(q))], t)
        if found is not None:
            noise[_quantile_name(q)] = found
    for m, q in zip(tested, holm_adjusted([m.pvalue or 0.0 for m in tested]), strict=True):
        m.adjusted = q
    for s in scenarios:
        for m in s.metrics:
            _judge(m, t, len(tested))
    return Comparison(baseline.run, current.run, t, scenarios, noise)


# ------------------------------------------------------------------ Markdown
