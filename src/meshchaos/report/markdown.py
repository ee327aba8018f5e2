"""A comparison as Markdown, for CI logs and job summaries: verdict flips first."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from meshchaos.report.compare import Comparison, MetricComparison, ScenarioComparison, Verdict

__all__ = ["to_markdown"]


def _value(m: MetricComparison, x: float, n: int) -> str:
    if m.kind == "share":
        return f"{100 * x:.2f}% ({round(x * n)}/{n})"
    return f"{x * 1000:.4g} ms"


def _change(m: MetricComparison, x: float) -> str:
    if math.isnan(x):
        return "n/a"
    return f"{100 * x:+.2f} pp" if m.kind == "share" else f"{100 * x:+.1f}%"


def _p(x: float | None) -> str:
    return "not tested" if x is None else f"{x:.2g}"


def _run_line(run: Mapping[str, Any]) -> str:
    rev = run.get("git_revision")
    versions = run.get("versions") or {}
    parts = [f"`{run.get('run_id')}`", f"backend {run.get('backend')}"]
    if rev:
        parts.append(f"git {str(rev)[:12]}")
    if versions.get("envoy"):
        parts.append(f"Envoy {versions['envoy']}")
    if versions.get("meshchaos"):
        parts.append(f"meshchaos {versions['meshchaos']}")
    return ", ".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _metric_table(rows: Sequence[tuple[ScenarioComparison, MetricComparison]]) -> list[str]:
    lines = [
        "| scenario | metric | baseline | current | change | interval | threshold | "
        "p (Holm) | could detect |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s, m in rows:
        interval = f"[{_change(m, m.low)}, {_change(m, m.high)}]"
        detect = _change(m, m.detectable).lstrip("+") if m.detectable is not None else ""
        if m.note:
            detect = m.note
        lines.append(
            f"| {_cell(s.scenario)} | {_cell(m.metric)} | "
            f"{_value(m, m.baseline, m.baseline_n)} | {_value(m, m.current, m.current_n)} | "
            f"{_change(m, m.change)} | {interval} | ±{_change(m, m.threshold).lstrip('+')} | "
            f"{_p(m.adjusted)} | {_cell(detect)} |"
        )
    return lines


def to_markdown(c: Comparison) -> str:
    """The comparison as GitHub-flavoured Markdown, for a CI log or job summary."""
    t = c.thresholds
    flips = [s for s in c.scenarios if s.flip]
    counts = {v: c.count(v) for v in Verdict}
    not_comparable = [s for s in c.scenarios if not s.comparable]
    lines = [
        "# meshchaos compare",
        "",
        f"- baseline: {_run_line(c.baseline)}",
        f"- current: {_run_line(c.current)}",
        f"- family-wise alpha {t.alpha:g} over {c.tests} tests (Holm); material change: "
        f"shares max({100 * t.rate_points:g} pp, {t.rate_relative:g} x min(p, 1-p)), "
        f"latency max({100 * t.latency_relative:g}%, {t.latency_floor * 1000:g} ms); "
        f"intervals at {100 * t.confidence:g}%",
    ]
    for name, (shift, noise, floor) in sorted(c.latency_noise.items()):
        lines.append(
            f"- {name}: run-wide shift {100 * shift:+.1f}% (taken out of each scenario's "
            f"change); run-to-run noise ±{noise:.2f} log, so a change below "
            f"{100 * max(floor, t.latency_relative):.0f}% cannot be told from it here"
        )
    if c.baseline.get("backend") != c.current.get("backend"):
        lines.append(
            f"- note: the backends differ ({c.baseline.get('backend')} vs "
            f"{c.current.get('backend')}): differences may be the backends', not the code's"
        )
    lines += [
        "",
        f"**{counts[Verdict.REGRESSED]} regressed, {counts[Verdict.IMPROVED]} improved, "
        f"{counts[Verdict.SAME]} same, {counts[Verdict.INCONCLUSIVE]} inconclusive, "
        f"{len(not_comparable)} not comparable; {len(flips)} verdict "
        f"flip{'s' if len(flips) != 1 else ''}**",
    ]
    if flips:
        lines += ["", "## Verdict flips", "", "| scenario | baseline | current |", "|---|---|---|"]
        flips.sort(key=lambda s: (not s.flipped_to_failure, s.scenario))
        lines += [
            f"| {_cell(s.scenario)} | {s.baseline_outcome} | {s.current_outcome} |" for s in flips
        ]
    for title, verdict in (
        ("Regressions", Verdict.REGRESSED),
        ("Improvements", Verdict.IMPROVED),
        ("Inconclusive", Verdict.INCONCLUSIVE),
    ):
        rows = [(s, m) for s in c.scenarios for m in s.metrics if m.verdict is verdict]
        if rows:
            lines += ["", f"## {title}", "", *_metric_table(rows)]
    if not_comparable:
        lines += ["", "## Not comparable", "", "| scenario | reason |", "|---|---|"]
        lines += [f"| {_cell(s.scenario)} | {_cell(s.reason)} |" for s in not_comparable]
    same = [s for s in c.scenarios if s.verdict is Verdict.SAME]
    if same:
        lines += [
            "",
            f"<details><summary>{len(same)} scenario{'s' if len(same) != 1 else ''} "
            "with no material change</summary>",
            "",
            *[f"- {s.scenario}" for s in same],
            "",
            "</details>",
        ]
    return "\n".join(lines) + "\n"
