"""The report's plots, drawn with matplotlib's object API to small inline SVG strings.

No pyplot: each plot makes its own :class:`~matplotlib.figure.Figure` and prints it
through :class:`~matplotlib.backends.backend_svg.FigureCanvasSVG`, so nothing global is
left behind. The settings that keep an SVG small and deterministic are applied around
each figure only (``rc_context``): text as ``<text>`` (no embedded glyphs), simplified
paths, a salt per figure so that the ids of several SVGs inlined in one page differ and
the same input gives the same bytes. :func:`compact` then drops the XML prologue,
metadata and comments and rounds coordinates to 0.1 pt.

Plots: predicted against observed shares with intervals (:func:`shares_svg`), the
latency ECDF on a log axis with predicted bands and policy marks (:func:`ecdf_svg`), and
the outcomes over time (:func:`timeline_svg`).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import matplotlib
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator

from meshchaos.report._graph_policy import Mark, seconds_text
from meshchaos.report.histogram import Histogram, bin_edges

__all__ = [
    "MAX_ECDF_POINTS",
    "Band",
    "ShareRow",
    "class_colours",
    "compact",
    "ecdf_points",
    "ecdf_svg",
    "is_failure_class",
    "shares_svg",
    "timeline_svg",
]

MAX_ECDF_POINTS = 400
WIDTH_IN = 5.0  # inches at 72 pt: 360 px wide
_RC: dict[str, Any] = {
    "svg.fonttype": "none",
    "path.simplify": True,
    "path.simplify_threshold": 0.2,
    "font.size": 7.5,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "axes.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "legend.frameon": False,
    "legend.fontsize": 6.5,
    "svg.image_inline": True,
}
_FAILURE = re.compile(r"error|unavailable|timeout|overflow|fail|reset|status:(0|5\d\d)$", re.I)
_GOOD = ("#2b7bba", "#5aa469", "#8e6bbf", "#3aa6a6", "#7f7f7f", "#b5a642")
_BAD = ("#d7301f", "#f08c2e", "#a50f59", "#e5c100", "#8c510a", "#f768a1")


def is_failure_class(outcome: str) -> bool:
    """An outcome class that is a failure (as :mod:`~meshchaos.report.compare` reads it)."""
    return bool(_FAILURE.search(outcome))


def class_colours(classes: Sequence[str]) -> dict[str, str]:
    """A colour per outcome class: warm ones for failures, cool ones for the others."""
    out: dict[str, str] = {}
    good = bad = 0
    for c in sorted(set(classes)):
        if is_failure_class(c):
            out[c] = _BAD[bad % len(_BAD)]
            bad += 1
        else:
            out[c] = _GOOD[good % len(_GOOD)]
            good += 1
    return out


@contextmanager
def _figure(salt: str, height: float) -> Iterator[Figure]:
    settings: Any = {**_RC, "svg.hashsalt": salt}
    with matplotlib.rc_context(settings):
        yield Figure(figsize=(WIDTH_IN, height))


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    canvas: Any = FigureCanvasSVG(fig)  # print_svg is untyped in matplotlib's stubs
    canvas.print_svg(buf, metadata={"Date": None, "Creator": None})
    return compact(buf.getvalue())


_NUMBER = re.compile(r"-?\d+\.\d+")
_GEOMETRY = re.compile(r'\b(d|x|y|x1|x2|y1|y2|width|height|points|transform|viewBox)="([^"]*)"')


def _round(match: re.Match[str]) -> str:
    value = float(match.group(0))
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def compact(svg: str) -> str:
    """An SVG document as an inline ``<svg>`` element: no prologue, metadata, comments or
    unreferenced ids, coordinates rounded to 0.1 pt, no whitespace between tags."""
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    svg = _GEOMETRY.sub(
        lambda m: f'{m.group(1)}="{_NUMBER.sub(_round, " ".join(m.group(2).split()))}"', svg
    )
    # matplotlib names every group (figure_1, axes_1, ...): the same ids in each figure,
    # which collide once several are inlined. Keep only the ids something refers to
    # (clip paths, markers), which the salt made unique.
    used = set(re.findall(r'(?:url\(#|href="#)([^")]+)', svg))
    svg = re.sub(r'\sid="([^"]+)"', lambda m: m.group(0) if m.group(1) in used else "", svg)
    return re.sub(r">\s+<", "><", svg).strip()


# ------------------------------------------------------------------ shares


@dataclass(frozen=True)
class ShareRow:
    """One outcome class: the predicted share and bounds, and the observed share with its
    interval (``None`` where there is none)."""

    outcome: str
    predicted: float | None
    predicted_low: float | None
    predicted_high: float | None
    observed: float
    observed_low: float | None
    observed_high: float | None


def shares_svg(rows: Sequence[ShareRow], salt: str) -> str:
    """Predicted (hollow diamond, shaded bounds) against observed (dot, interval) shares."""
    colours = class_colours([r.outcome for r in rows])
    height = 0.75 + 0.24 * max(1, len(rows))
    with _figure(salt, height) as fig:
        ax = fig.add_axes((0.34, 0.42 / height, 0.6, 1 - 0.55 / height))
        for i, r in enumerate(rows):
            y = len(rows) - 1 - i
            colour = colours[r.outcome]
            if r.predicted_low is not None and r.predicted_high is not None:
                lo, hi = r.predicted_low, r.predicted_high
                if hi - lo > 0.004:
                    ax.barh(y, hi - lo, left=lo, height=0.55, color=colour, alpha=0.18, lw=0)
            if r.predicted is not None:
                ax.plot([r.predicted], [y], marker="D", ms=5, mfc="none", mec="#333", mew=0.8)
            if r.observed_low is not None and r.observed_high is not None:
                ax.plot([r.observed_low, r.observed_high], [y, y], color=colour, lw=1.6)
            ax.plot([r.observed], [y], marker="o", ms=4, color=colour)
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.set_yticks(range(len(rows)), [r.outcome for r in reversed(rows)])
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:.0%}"))
        ax.xaxis.set_major_locator(MaxNLocator(6))
        ax.tick_params(axis="y", length=0)
        ax.grid(axis="x", lw=0.3, color="#ddd")
        ax.set_axisbelow(True)
        return _svg(fig)


# ------------------------------------------------------------------ latency


@dataclass(frozen=True)
class Band:
    """A predicted latency band of one class (``None``: an unbounded edge)."""

    outcome: str
    low: float | None
    high: float | None


def ecdf_points(h: Histogram, max_points: int = MAX_ECDF_POINTS) -> tuple[list[float], list[float]]:
    """The ECDF of a histogram as (x, y) steps at each bin's upper edge, thinned to at most
    ``max_points`` points (the first and last kept)."""
    items = h.sorted_items()
    n = h.count
    if not items or n == 0:
        return [], []
    xs, ys, seen = [bin_edges(items[0][0])[0]], [0.0], 0
    for i, c in items:
        seen += c
        xs.append(bin_edges(i)[1])
        ys.append(seen / n)
    if len(xs) > max_points:
        step = (len(xs) - 1) / (max_points - 1)
        keep = sorted({round(k * step) for k in range(max_points)})
        xs, ys = [xs[k] for k in keep], [ys[k] for k in keep]
    return xs, ys


def _seconds_tick(x: float, _: Any) -> str:
    return seconds_text(x).replace(".0 ", " ")


def ecdf_svg(
    curves: Mapping[str, Histogram],
    bands: Sequence[Band],
    marks: Sequence[Mark],
    salt: str,
) -> str:
    """ECDF per class (``curves``; an ``all`` curve in black when there are several) on a
    log latency axis; each class's predicted band shaded in its colour; the policy's
    delays and timeouts as labelled vertical lines."""
    colours = class_colours([c for c in curves if c != "all"] + [b.outcome for b in bands])
    points = {c: ecdf_points(h) for c, h in curves.items()}
    xs = [x for px, _ in points.values() for x in px if x > 0]
    xs += [m.seconds for m in marks]
    xs += [v for b in bands for v in (b.low, b.high) if v is not None and v > 0]
    lo = min(xs) / 1.5 if xs else 1e-3
    hi = max(xs) * 1.5 if xs else 1.0
    if hi / lo < 10:  # at least a decade, centred
        mid = math.sqrt(lo * hi)
        lo, hi = mid / math.sqrt(10), mid * math.sqrt(10)
    with _figure(salt, 2.3) as fig:
        ax = fig.add_axes((0.09, 0.17, 0.54, 0.78))
        for b in bands:
            left = b.low if b.low is not None and b.low > 0 else lo
            right = b.high if b.high is not None else hi
            if right > left:
                ax.axvspan(left, right, color=colours.get(b.outcome, "#999"), alpha=0.12, lw=0)
        styles = {"delay": "--", "timeout": "-", "perTryTimeout": ":"}
        for m in marks:
            ax.axvline(m.seconds, color="#444", lw=0.8, ls=styles.get(m.kind, "-."), label=m.label)
        for c, (px, py) in points.items():
            colour = "#111" if c == "all" else colours.get(c, "#999")
            n = curves[c].count
            ax.step(px, py, where="post", color=colour, lw=1.1, label=f"{c} (n={n})")
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(0, 1.02)
        decades = math.log10(hi / lo)
        ax.xaxis.set_major_locator(LogLocator(10, subs=(1.0,) if decades > 2.5 else (1, 2, 5)))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(_seconds_tick))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:.0%}"))
        ax.set_xlabel("latency (log scale)", labelpad=1)
        ax.grid(lw=0.3, color="#e2e2e2")
        ax.set_axisbelow(True)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), handlelength=1.6)
        return _svg(fig)


# ------------------------------------------------------------------ over time


def timeline_svg(
    width: float,
    classes: Sequence[str],
    counts: Sequence[Sequence[int]],
    events: Sequence[tuple[str, float]],
    salt: str,
) -> str:
    """Requests per time bin, stacked by class (steps), with the triggers' events."""
    colours = class_colours(classes)
    with _figure(salt, 1.7) as fig:
        ax = fig.add_axes((0.09, 0.22, 0.54, 0.72))
        ts = [i * width for i in range(len(counts) + 1)]
        base = [0.0] * (len(counts) + 1)
        order = sorted(range(len(classes)), key=lambda j: is_failure_class(classes[j]))
        for j in order:
            top = [
                b + (counts[i][j] if i < len(counts) else counts[-1][j]) for i, b in enumerate(base)
            ]
            ax.fill_between(
                ts, base, top, step="post", color=colours[classes[j]], lw=0, label=classes[j]
            )
            base = top
        for name, at in events:
            ax.axvline(at, color="#222", lw=0.8, ls="--")
            ax.annotate(
                name,
                (at, 1),
                xycoords=("data", "axes fraction"),
                fontsize=6,
                rotation=90,
                va="top",
                ha="right",
            )
        ax.set_xlim(0, ts[-1] if len(ts) > 1 else 1)
        ax.set_ylim(0, max(base) * 1.08 if base and max(base) > 0 else 1)
        ax.set_xlabel(f"seconds since the load began (bins of {seconds_text(width)})", labelpad=1)
        ax.set_ylabel("requests", labelpad=1)
        ax.yaxis.set_major_locator(MaxNLocator(4, integer=True))
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), handlelength=1.2)
        return _svg(fig)
