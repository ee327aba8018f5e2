"""``expect(result).to(...)``: run checks, judge them together, explain a deviation."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from meshchaos.check._model import Check, CheckOutcome, format_evidence_value
from meshchaos.errors import LoadError, PolicyDeviation
from meshchaos.load.result import LoadResult
from meshchaos.stats.multiple import current_alpha, holm_adjusted

__all__ = ["CheckReport", "ChecksFailed", "Expectation", "collect_reports", "expect"]

_MAX_EXAMPLES = 8
_BLOCK_KEYS = frozenset({"sample responses", "prediction reasoning"})  # one item a line
_MAX_EXAMPLE_CHARS = 160


@dataclass(frozen=True)
class CheckReport:
    """Every check outcome of one ``to`` call and its verdict, for the run record.

    ``adjusted`` holds each outcome's Holm-adjusted p-value (``None`` for negations,
    which are judged directly); ``failed[i]`` is the verdict on ``outcomes[i]``.
    """

    alpha: float
    outcomes: tuple[CheckOutcome, ...]
    adjusted: tuple[float | None, ...]
    failed: tuple[bool, ...]
    evidence: tuple[tuple[str, str], ...] = ()

    @property
    def passed(self) -> bool:
        """True when no check failed."""
        return not any(self.failed)

    @property
    def failures(self) -> list[CheckOutcome]:
        """The outcomes that failed, in the order the checks were given."""
        return [o for o, f in zip(self.outcomes, self.failed, strict=True) if f]

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready record: level, verdict, and every outcome with its adjusted p."""
        return {
            "alpha": self.alpha,
            "method": "holm",
            "passed": self.passed,
            "checks": [
                {**o.to_dict(), "adjusted_pvalue": a, "failed": f}
                for o, a, f in zip(self.outcomes, self.adjusted, self.failed, strict=True)
            ],
            "evidence": {k: v for k, v in self.evidence},
        }

    def message(self) -> str:
        """The deviation message: failed checks, then passed ones, then the evidence."""
        n_failed = sum(self.failed)
        total = len(self.outcomes)
        lines = [
            f"policy deviation: {n_failed} of {total} check{'s' if total != 1 else ''} failed "
            f"(alpha {self.alpha:.3g} per scenario, Holm)"
        ]
        rows = list(zip(self.outcomes, self.adjusted, self.failed, strict=True))
        lines += [_line("✗", o, a) for o, a, f in rows if f]
        lines += [_line("✓", o, a) for o, a, f in rows if not f]
        if self.evidence:
            lines.append("evidence:")
            for key, value in self.evidence:
                head, *rest = value.splitlines() or [""]
                if rest or not head or key in _BLOCK_KEYS:
                    lines.append(f"  {key}:")
                    lines += [f"    {v}" for v in (head, *rest) if v]
                else:
                    lines.append(f"  {key}: {head}")
        return "\n".join(lines)


class ChecksFailed(PolicyDeviation):
    """A :class:`PolicyDeviation` raised by ``to``; carries the full :class:`CheckReport`."""

    __module__ = "meshchaos.check"  # where users import it from; shown in pytest's report

    def __init__(self, report: CheckReport) -> None:
        self.report = report
        super().__init__(report.message())


_SINKS: contextvars.ContextVar[tuple[list[CheckReport], ...]] = contextvars.ContextVar(
    "meshchaos_report_sinks", default=()
)


@contextmanager
def collect_reports() -> Iterator[list[CheckReport]]:
    """Collect every :class:`CheckReport` made inside the block, passed or failed.

    For the run record: the pytest plugin wraps each scenario in it.
    """
    sink: list[CheckReport] = []
    token = _SINKS.set((*_SINKS.get(), sink))
    try:
        yield sink
    finally:
        _SINKS.reset(token)


def _line(mark: str, outcome: CheckOutcome, adjusted: float | None) -> str:
    parts = [f"expected {outcome.expected}", f"observed {outcome.observed}"]
    if outcome.interval:
        parts.append(outcome.interval)
    if outcome.is_test:
        p = f"p={outcome.pvalue:.2g}"
        if adjusted is not None and adjusted != outcome.pvalue:
            p += f" (Holm {adjusted:.2g})"
        parts.append(p)
    if outcome.detail:
        parts.append(outcome.detail)
    return f"{mark} {outcome.name}: " + ", ".join(parts)


def _result_evidence(result: LoadResult) -> list[tuple[str, str]]:
    frame = f"{result.count} requests to {result.target}, concurrency {result.concurrency}"
    if result.qps is not None:
        frame += f", {result.qps:g} qps"
    frame += f", {result.duration:.3g} s"
    if result.stopped_by_deadline:
        frame += " (stopped by deadline)"
    lines = [("load", frame)]
    counts = result.counts()
    lines.append(("observed classes", ", ".join(f"{c}={n}" for c, n in counts.most_common())))
    if result.examples:
        shown = list(result.examples.items())[:_MAX_EXAMPLES]
        text = "\n".join(f"{cls}: {_shorten(ex)}" for cls, ex in shown)
        lines.append(("sample responses", text))
    return lines


def _shorten(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _MAX_EXAMPLE_CHARS else flat[: _MAX_EXAMPLE_CHARS - 3] + "..."


def expect(result: LoadResult, *, evidence: Mapping[str, object] | None = None) -> Expectation:
    """Start a verdict on ``result``; ``evidence`` (policy file, proxy stats, ...) goes
    into the deviation message."""
    __tracebackhide__ = True
    return Expectation(result, evidence)


class Expectation:
    """What ``expect(result)`` returns; call :meth:`to` with the checks."""

    def __init__(self, result: LoadResult, evidence: Mapping[str, object] | None = None) -> None:
        self.result = result
        self.evidence = dict(evidence or {})

    def to(self, *checks: Check, alpha: float | None = None) -> CheckReport:
        """Evaluate every check, judge them together with Holm, raise on any failure.

        ``alpha`` defaults to :func:`meshchaos.stats.current_alpha` (the scenario's
        share of the run's budget). ``all_of`` groups, including ``matches``, are
        flattened so that each part is judged and reported on its own. Raises
        :class:`PolicyDeviation` listing every failed check and the evidence;
        returns the :class:`CheckReport` otherwise.
        """
        __tracebackhide__ = True
        if not checks:
            raise ValueError("expect(...).to() needs at least one check")
        if self.result.count == 0:
            # Nothing was measured: a verdict now would be blind, and it is the
            # harness (or the run's framing), not the mesh, that needs fixing.
            raise LoadError(f"no samples in the load result for {self.result.target}")
        level = current_alpha() if alpha is None else alpha
        if not 0 < level < 1:
            raise ValueError(f"alpha must be in (0, 1), got {level}")
        leaves = [leaf for c in checks for leaf in c.leaves()]
        outcomes = tuple(leaf.evaluate(self.result, level) for leaf in leaves)
        tests = [i for i, o in enumerate(outcomes) if o.is_test]
        adjusted_tests = holm_adjusted([outcomes[i].pvalue for i in tests])
        adjusted: list[float | None] = [None] * len(outcomes)
        for i, q in zip(tests, adjusted_tests, strict=True):
            adjusted[i] = q
        failed = tuple(
            (q <= level) if q is not None else not o.passed_at(level)
            for o, q in zip(outcomes, adjusted, strict=True)
        )
        evidence: list[tuple[str, str]] = [
            (k, format_evidence_value(v)) for k, v in self.evidence.items()
        ]
        if any(failed):  # the load summary costs a pass over the samples: only on failure
            evidence += _result_evidence(self.result)
        for c in checks:
            evidence += [e for e in c.all_evidence() if e not in evidence]
        report = CheckReport(level, outcomes, tuple(adjusted), failed, tuple(evidence))
        for sink in _SINKS.get():
            sink.append(report)
        if not report.passed:
            raise ChecksFailed(report)
        return report
