"""One scenario of the HTML report: what its section shows, plots included.

:func:`scenario_view` turns a scenario record into plain data for the template, drawing
its plots (shares, ECDF, timeline per load) and its service graph as SVG strings. It is
called per scenario as the template reaches it, so a report holds at most one
scenario's figures in memory at a time beyond the finished text.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from meshchaos.report._graph import build_graph, graph_svg
from meshchaos.report._graph_policy import policy_facts, seconds_text
from meshchaos.report.histogram import PERCENTILES, Histogram

__all__ = ["OUTCOME_ORDER", "scenario_row", "scenario_view", "short_name", "sort_key"]

OUTCOME_ORDER = {"failed": 0, "error": 1, "unreadable": 2, "skipped": 3, "passed": 4}


def short_name(scenario_id: str) -> str:
    """``scenarios/test_x.py::test_y[a-b]`` -> ``test_y[a-b]``."""
    return scenario_id.rsplit("::", 1)[-1]


def sort_key(record: Mapping[str, Any]) -> tuple[int, str]:
    """Failures first (failed, error), then skipped, then passed; by id within."""
    return (OUTCOME_ORDER.get(str(record.get("outcome")), 2), str(record.get("id")))


def _wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _checks(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [c for report in record.get("checks", []) for c in report.get("checks", [])]


def _requests(record: Mapping[str, Any]) -> int:
    return sum(int(x.get("count", 0)) for x in record.get("loads", []))


def scenario_row(record: Mapping[str, Any], index: int) -> dict[str, Any]:
    """The scenario table's row: no plots, cheap."""
    checks = _checks(record)
    failed = [c for c in checks if c.get("failed")]
    policies = [str(p.get("name")) for p in record.get("policies", [])]
    return {
        "anchor": f"s{index}",
        "id": record["id"],
        "name": short_name(str(record["id"])),
        "family": record.get("family") or "other",
        "outcome": record.get("outcome"),
        "requests": _requests(record),
        "checks": f"{len(checks) - len(failed)}/{len(checks)}" if checks else "",
        "failed_checks": [str(c.get("name")) for c in failed],
        "policies": ", ".join(policies),
        "duration": f"{float(record.get('duration') or 0):.1f} s",
    }


def _share_rows(record: Mapping[str, Any], load: Mapping[str, Any]) -> list[Any]:
    from meshchaos.report._plots import ShareRow

    n = int(load["count"])
    predicted = {o["outcome"]: o for o in (record.get("prediction") or {}).get("outcomes", [])}
    intervals = {}
    for c in _checks(record):
        name = str(c.get("name", ""))
        known = c.get("interval_low") is not None and c.get("n") == n
        if name.startswith("share of ") and known:
            intervals[name.removeprefix("share of ")] = (c["interval_low"], c["interval_high"])
    rows = []
    for outcome in [*predicted, *sorted(set(load["classes"]) - set(predicted))]:
        k = int(load["classes"].get(outcome, 0))
        lo, hi = intervals.get(outcome) or _wilson(k, n)
        p = predicted.get(outcome)
        rows.append(
            ShareRow(
                outcome,
                None if p is None else p.get("probability"),
                None if p is None else p.get("low"),
                None if p is None else p.get("high"),
                k / n if n else 0.0,
                lo,
                hi,
            )
        )
    return rows


def _percentiles(load: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    groups = [("all", load["latency"]), *sorted(load.get("latency_by_class", {}).items())]
    for name, lat in groups:
        ps = lat.get("percentiles", {})
        cells = []
        for q in PERCENTILES:
            v = ps.get(f"p{q:g}")
            cells.append("" if v is None else seconds_text(float(v)))
        rows.append({"name": name, "count": lat.get("count"), "cells": cells})
    return rows


def _load_view(
    record: Mapping[str, Any], load: Mapping[str, Any], salt: str, marks: Any
) -> dict[str, Any]:
    from meshchaos.report._plots import Band, ecdf_svg, shares_svg, timeline_svg

    view: dict[str, Any] = {"label": load["label"], "count": load["count"]}
    view["target"] = load.get("target")
    rows = _share_rows(record, load)
    view["shares_svg"] = shares_svg(rows, f"{salt}s") if rows and load["count"] else ""
    curves = {
        c: Histogram.from_json(v["histogram"])
        for c, v in load.get("latency_by_class", {}).items()
        if v.get("count")
    }
    if len(curves) > 1:
        curves = {**curves, "all": Histogram.from_json(load["latency"]["histogram"])}
    bands = [
        Band(o["outcome"], o.get("latency_low"), o.get("latency_high"))
        for o in (record.get("prediction") or {}).get("outcomes", [])
    ]
    view["ecdf_svg"] = ecdf_svg(curves, bands, marks, f"{salt}e") if curves else ""
    tl = load.get("timeline")
    if tl and tl.get("counts"):
        events = [
            (str(e.get("name")), float(e.get("started") or e.get("after") or 0))
            for e in load.get("events", [])
        ]
        view["timeline_svg"] = timeline_svg(
            float(tl["bin_seconds"]), list(tl["classes"]), tl["counts"], events, f"{salt}t"
        )
    else:
        view["timeline_svg"] = ""
    view["percentiles"] = _percentiles(load)
    view["classes"] = sorted(load["classes"].items(), key=lambda kv: -kv[1])
    view["statuses"] = sorted(load["statuses"].items())
    return view


def _counters(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    prediction = record.get("prediction") or {}
    expected = prediction.get("counters", {})
    bounds = prediction.get("counter_bounds", {})
    loads = record.get("loads", [])
    n = int(loads[-1]["count"]) if loads else 0
    rows = []
    for name in sorted({*record.get("counters", {}), *expected}):
        observed = record.get("counters", {}).get(name)
        if name in bounds:
            lo, hi = bounds[name]
            exp = f"{lo:g} .. {hi:g}"
        elif name in expected:
            exp = f"{float(expected[name]) * n:g} ({float(expected[name]):g} per request)"
        else:
            exp = ""
        rows.append(
            {"name": name, "expected": exp, "observed": "" if observed is None else observed}
        )
    return rows


def scenario_view(
    record: Mapping[str, Any], index: int, *, history: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Everything the scenario's section shows, its SVGs drawn."""
    view = scenario_row(record, index)
    facts = policy_facts(record.get("policies", []))
    view["policy_note"] = facts.note
    view["marks"] = [m.label for m in facts.marks]
    view["loads"] = [
        _load_view(record, load, f"{index}{load['label']}", facts.marks)
        for load in record.get("loads", [])
    ]
    classes: Counter[str] = Counter()
    for load in record.get("loads", []):
        classes.update({k: int(v) for k, v in load["classes"].items()})
    graph = build_graph(record.get("request"), classes, facts)
    view["graph_svg"] = graph_svg(graph, f"g{index}") if graph is not None else ""
    view["checks_table"] = _checks(record)
    view["counters"] = _counters(record)
    prediction = record.get("prediction") or {}
    view["reasoning"] = list(prediction.get("reasoning", []))
    view["policy_texts"] = [(p.get("name"), p.get("text", "")) for p in record.get("policies", [])]
    view["request"] = {
        "method": "GET",
        "host": "",
        "path": "",
        "source": "gateway",
        "user": None,
        **(record.get("request") or {}),
    }
    view["sizing"] = record.get("sizing") or {}
    view["failure"] = record.get("failure")
    view["history"] = history or {}
    return view


def sparkline_svg(values: Sequence[float | None], width: int = 90, height: int = 18) -> str:
    """A tiny inline SVG polyline of ``values`` (gaps where None), the last point marked."""
    points = [(i, v) for i, v in enumerate(values) if v is not None and v > 0]
    if len(points) < 2:
        return ""
    logs = [math.log10(v) for _, v in points]
    lo, hi = min(logs), max(logs)
    span = hi - lo or 1.0
    step = (width - 4) / max(1, len(values) - 1)
    coords = [
        (2 + i * step, height - 2 - (math.log10(v) - lo) / span * (height - 4)) for i, v in points
    ]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    x, y = coords[-1]
    title = " → ".join(seconds_text(v) for _, v in points[-5:])
    return (
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f"<title>p99 over the last runs: {title}</title>"
        f'<polyline points="{path}" fill="none" stroke="#2b7bba" stroke-width="1.2"/>'
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="#d7301f"/></svg>'
    )
