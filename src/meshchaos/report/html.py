"""The HTML report of a run: one self-contained ``report.html`` that opens offline.

``render_report(run_dir)`` reads the run through :func:`meshchaos.report.record.read_run`
and writes ``<run_dir>/report.html``: the run's metadata and verdict counts, the
regression verdict against a baseline run when one is given (the same
:class:`~meshchaos.report.compare.Comparison` as ``meshchaos compare``), a status strip
over the last runs of the history file, a scenario table (failures first, filterable
by family) and a collapsible section per scenario with its plots, service graph,
percentiles, checks, counters and policy YAML. Everything is inline: SVG, CSS and a
little vanilla JavaScript; no URL is loaded. Jinja2 templates shipped in the package
(``templates/``), autoescaped; only the SVG this package draws is passed as markup.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from meshchaos.report.history import HISTORY_FILE, History, read_history
from meshchaos.report.html_scenario import (
    scenario_row,
    scenario_view,
    short_name,
    sort_key,
    sparkline_svg,
)
from meshchaos.report.record import RunRecord, read_run

__all__ = ["REPORT_FILE", "STRIP_RUNS", "render_html", "render_report"]

REPORT_FILE = "report.html"
STRIP_RUNS = 14  # runs in the status strip and sparklines


def _environment() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("meshchaos.report", "templates"),
        autoescape=select_autoescape(["html", "j2"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda x, d=1: "" if x is None else f"{100 * float(x):.{d}f}%"
    env.filters["svg"] = _markup
    return env


def _markup(svg: str) -> Any:
    # Only SVG drawn by this package (matplotlib's or ours, with escaped text) is marked safe.
    from markupsafe import Markup

    return Markup(svg)  # noqa: S704


def _metric_text(m: Any, x: float, n: int | None = None) -> str:
    if m.kind == "share":
        return f"{100 * x:.2f}%" + (f" ({round(x * n)}/{n})" if n else "")
    return f"{x * 1000:.4g} ms"


def _change_text(m: Any, x: float) -> str:
    if x != x:  # nan
        return "n/a"
    return f"{100 * x:+.2f} pp" if m.kind == "share" else f"{100 * x:+.1f}%"


def _comparison_view(c: Any) -> dict[str, Any]:
    from meshchaos.report.compare import Verdict

    rows = []
    for verdict in (Verdict.REGRESSED, Verdict.IMPROVED, Verdict.INCONCLUSIVE):
        for s in c.scenarios:
            for m in s.metrics:
                if m.verdict is verdict:
                    rows.append(
                        {
                            "verdict": str(verdict),
                            "scenario": short_name(s.scenario),
                            "metric": m.metric,
                            "baseline": _metric_text(m, m.baseline, m.baseline_n),
                            "current": _metric_text(m, m.current, m.current_n),
                            "change": _change_text(m, m.change),
                            "interval": f"[{_change_text(m, m.low)}, {_change_text(m, m.high)}]",
                            "threshold": "±" + _change_text(m, m.threshold).lstrip("+"),
                            "p": "not tested" if m.adjusted is None else f"{m.adjusted:.2g}",
                            "note": m.note,
                        }
                    )
    flips = sorted(
        (s for s in c.scenarios if s.flip), key=lambda s: (not s.flipped_to_failure, s.scenario)
    )
    return {
        "baseline": c.baseline,
        "counts": {str(v): c.count(v) for v in Verdict},
        "has_regression": c.has_regression,
        "tests": c.tests,
        "alpha": c.thresholds.alpha,
        "flips": [(short_name(s.scenario), s.baseline_outcome, s.current_outcome) for s in flips],
        "rows": rows,
        "not_comparable": [
            (short_name(s.scenario), s.reason) for s in c.scenarios if not s.comparable
        ],
        "verdicts": {s.scenario: str(s.verdict) for s in c.scenarios if s.comparable},
        "noise": [
            (name, f"{100 * shift:+.1f}%", f"{noise:.2f}")
            for name, (shift, noise, _floor) in sorted(c.latency_noise.items())
        ],
    }


def _strip(history: History | None, scenario: str) -> dict[str, Any]:
    if history is None or not history.runs:
        return {}
    outcomes = history.series(scenario, "outcome", STRIP_RUNS)
    p99 = history.series(scenario, "p99", STRIP_RUNS)
    runs = history.last(STRIP_RUNS)
    cells = [
        {"outcome": o or "absent", "title": f"{r.get('run_id')} {r.get('date')}: {o or 'not run'}"}
        for o, r in zip(outcomes, runs, strict=True)
    ]
    return {"cells": cells, "sparkline": sparkline_svg(p99)}


def _history_for(run: RunRecord, history: Path | History | None) -> History | None:
    if isinstance(history, History):
        return history
    path = history
    if path is None:
        env = os.environ.get("MESHCHAOS_HISTORY")
        path = Path(env) if env else run.path.parent / HISTORY_FILE
    return read_history(path) if path.is_file() else None


def render_html(
    run: RunRecord,
    *,
    comparison: Any = None,
    history: History | None = None,
) -> str:
    """The report of ``run`` as HTML text."""
    records = sorted(run.scenarios.values(), key=sort_key)
    rows = [scenario_row(r, i) for i, r in enumerate(records)]
    compare = _comparison_view(comparison) if comparison is not None else None
    verdicts = compare["verdicts"] if compare else {}
    for row in rows:
        row["strip"] = _strip(history, row["id"])
        row["verdict"] = verdicts.get(row["id"], "")

    def sections() -> Iterator[dict[str, Any]]:
        # One scenario's plots at a time, as the template reaches its section.
        for i, r in enumerate(records):
            yield scenario_view(r, i, history=rows[i]["strip"])

    counts: dict[str, int] = {}
    for r in records:
        counts[str(r["outcome"])] = counts.get(str(r["outcome"]), 0) + 1
    families = sorted({row["family"] for row in rows})
    template = _environment().get_template("report.html.j2")
    return str(
        template.render(
            run=run.run,
            run_dir=str(run.path),
            counts=sorted(counts.items(), key=lambda kv: sort_key({"outcome": kv[0], "id": ""})),
            total=len(records),
            rows=rows,
            families=families,
            sections=sections(),
            compare=compare,
            history_runs=[] if history is None else history.last(STRIP_RUNS),
            history_warnings=[] if history is None else history.warnings,
            history_path=None if history is None else str(history.path),
            generated=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            css=_asset("report.css"),
            js=_asset("report.js"),
        )
    )


def _asset(name: str) -> str:
    from importlib.resources import files

    return files("meshchaos.report").joinpath("templates", name).read_text(encoding="utf-8")


def render_report(
    run_dir: Path,
    *,
    baseline: Path | None = None,
    history: Path | History | None = None,
    output: Path | None = None,
) -> Path:
    """Write the report of the run in ``run_dir`` (to ``output``, default
    ``<run_dir>/report.html``) and return its path.

    ``baseline``: a run directory to compare with (the regression verdict section);
    ``history``: a history file (default ``$MESHCHAOS_HISTORY``, else ``history.jsonl``
    beside the run directory, when it exists). Raises
    :class:`~meshchaos.report.record.RecordError` for an unusable run, baseline or history.
    """
    run = read_run(Path(run_dir))
    comparison = None
    if baseline is not None:
        from meshchaos.report.compare import compare_runs

        comparison = compare_runs(read_run(Path(baseline)), run)
    text = render_html(run, comparison=comparison, history=_history_for(run, history))
    target = Path(output) if output is not None else run.path / REPORT_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    return target
