"""A Kiali-like service graph of one scenario's hops, as plain inline SVG.

The hops come from the app topology the oracle uses (:data:`meshchaos.oracle.topology.BOOKINFO`,
itself read from :mod:`meshchaos.apps.facts`): from the request's source (the ingress
gateway or the in-mesh client) to the service it asks, then every call that service's
versions make for that path (productpage -> details, reviews; reviews v2/v3 -> ratings).
Each service is a box listing the versions shown (the deployed ones and any a policy
routes or mirrors to), with the share of requests each version answered where the
outcome classes tell it (reviews' star colours).

Each edge is coloured by the share of all requests that failed on that hop, with
Kiali's default tolerances (degraded from 0.1 %, failure from 20 %), read from the
outcome classes: ``details-error`` on productpage -> details, ``reviews-error`` on
productpage -> reviews, ``ratings-unavailable`` on reviews -> ratings, a 5xx or no
answer on the first hop. It is labelled with that share and the policies acting on the
calls into its destination. The layout is a small layered one (columns by call depth,
boxes in the order the calls are made): the graphs here have at most five services.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from html import escape
from typing import Any

from meshchaos.report._graph_policy import PolicyFacts

__all__ = ["Edge", "Graph", "ServiceBox", "build_graph", "graph_svg", "health"]

# Kiali's default HTTP tolerance: degraded at 0.1 % errors, failure at 20 %.
DEGRADED, FAILURE = 0.001, 0.20
COLOURS = {"healthy": "#3f9c35", "degraded": "#ec7a08", "failure": "#cc0000", "idle": "#9a9a9a"}
_BOX_W, _HEAD_H, _ROW_H, _GAP_X, _GAP_Y, _PAD = 122, 20, 16, 128, 18, 8


def health(error_share: float | None) -> str:
    """Kiali's health of a hop from its error share (``idle`` when nothing is known)."""
    if error_share is None:
        return "idle"
    if error_share >= FAILURE:
        return "failure"
    return "degraded" if error_share >= DEGRADED else "healthy"


@dataclass
class ServiceBox:
    name: str
    versions: list[str]
    shares: dict[str, float] = field(default_factory=dict)  # version -> share answered
    mirrored: set[str] = field(default_factory=set)
    layer: int = 0
    x: float = 0.0
    y: float = 0.0

    @property
    def height(self) -> float:
        return _HEAD_H + _ROW_H * max(1, len(self.versions)) + 4


@dataclass
class Edge:
    source: str
    target: str
    errors: dict[str, int] = field(default_factory=dict)  # failure class -> count
    requests: int = 0
    badges: list[str] = field(default_factory=list)

    @property
    def error_share(self) -> float | None:
        return sum(self.errors.values()) / self.requests if self.requests else None


@dataclass
class Graph:
    boxes: dict[str, ServiceBox]
    edges: list[Edge]
    width: float = 0.0
    height: float = 0.0


_SOURCE_NAMES = {"gateway": "istio-ingressgateway", "client": "client"}


def _versions(topology: Any, service: str, facts: PolicyFacts) -> list[str]:
    known = list(topology.services[service].versions)
    named = set(facts.subsets.get(service, set()))
    named |= {s for (svc, s) in facts.weights if svc == service}
    named |= {s for (svc, s, _) in facts.mirrors if svc == service and s}
    # A policy that routes to subsets says which versions take traffic; else every
    # deployed version may.
    shown = [v for v in known if v in named] or [v for v in known if topology.count(service, v)]
    return shown or known[:1]


def _calls(topology: Any, service: str, version: str, path: str) -> tuple[str, ...]:
    behaviour = topology.services[service].versions[version]
    for p in behaviour.paths:
        if path.startswith(p.prefix):
            return tuple(p.calls)
    return ()


def _failed_hop(outcome: str, status_errors: bool) -> tuple[str, str] | None:
    """The hop (caller, callee) an outcome class blames, or ``("", "")`` for the first."""
    from meshchaos.outcomes import Bookinfo

    blame = {
        Bookinfo.DETAILS_ERROR.value: [("productpage", "details")],
        Bookinfo.REVIEWS_ERROR.value: [("productpage", "reviews")],
        Bookinfo.RATINGS_UNAVAILABLE.value: [("reviews", "ratings")],
    }
    if outcome in blame:
        return blame[outcome][0]
    if status_errors:
        return ("", "")
    return None


def _is_entry_failure(outcome: str) -> bool:
    if outcome.startswith("error:"):
        return True
    if outcome.startswith("status:"):
        code = outcome.removeprefix("status:")
        return code.isdigit() and (int(code) >= 500 or int(code) == 0)
    return False


def build_graph(
    request: Mapping[str, Any] | None, classes: Mapping[str, int], facts: PolicyFacts
) -> Graph | None:
    """The graph of the hops a request of ``request`` (the record's request class) takes,
    with the observed ``classes`` (counts per outcome class over the scenario's loads);
    None when the request's host is not in the topology."""
    from meshchaos.oracle.topology import BOOKINFO
    from meshchaos.outcomes import Bookinfo

    topology = BOOKINFO
    if not request or request.get("host") not in topology.services:
        return None
    source = _SOURCE_NAMES.get(str(request.get("source") or "gateway"), "client")
    host = str(request["host"])
    boxes: dict[str, ServiceBox] = {source: ServiceBox(source, [], layer=0)}
    edges: dict[tuple[str, str], Edge] = {}
    total = sum(classes.values())
    frontier = [(host, str(request.get("path") or "/"), source, 1)]
    while frontier:
        service, path, caller, depth = frontier.pop(0)
        edges.setdefault((caller, service), Edge(caller, service, requests=total))
        if service in boxes:
            boxes[service].layer = max(boxes[service].layer, depth)
            continue
        versions = _versions(topology, service, facts)
        boxes[service] = ServiceBox(service, versions, layer=depth)
        for v in versions:
            for callee in _calls(topology, service, v, path):
                edge = topology.edge(service, v, callee)
                frontier.append((callee, edge.path if edge else "/", service, depth + 1))
    for svc, subset, _ in facts.mirrors:
        if svc in boxes and subset:
            boxes[svc].mirrored.add(subset)
            if subset not in boxes[svc].versions:
                boxes[svc].versions.append(subset)
    # Who answered: a version whose success class is its own label (reviews' stars).
    for box in boxes.values():
        if box.name not in topology.services:
            continue
        for v in box.versions:
            label = topology.services[box.name].versions[v].label
            if label and total:
                box.shares[v] = classes.get(label, 0) / total
    for outcome, count in classes.items():
        if outcome == Bookinfo.BOTH_ERROR.value:
            hops = [("productpage", "details"), ("productpage", "reviews")]
        else:
            hop = _failed_hop(outcome, _is_entry_failure(outcome))
            hops = [] if hop is None else [(source, host) if hop == ("", "") else hop]
        for hop in hops:
            if hop in edges:
                edges[hop].errors[outcome] = edges[hop].errors.get(outcome, 0) + count
    for e in edges.values():
        e.badges = list(facts.badges.get(e.target, []))
    graph = Graph(boxes, list(edges.values()))
    _layout(graph)
    return graph


def _layout(graph: Graph) -> None:
    columns: dict[int, list[ServiceBox]] = {}
    for box in graph.boxes.values():
        columns.setdefault(box.layer, []).append(box)
    heights = {
        k: sum(b.height for b in col) + _GAP_Y * (len(col) - 1) for k, col in columns.items()
    }
    tallest = max(heights.values())
    for k, col in sorted(columns.items()):
        y = _PAD + (tallest - heights[k]) / 2
        for box in col:
            box.x, box.y = _PAD + k * (_BOX_W + _GAP_X), y
            y += box.height + _GAP_Y
    graph.width = _PAD * 2 + max(columns) * (_BOX_W + _GAP_X) + _BOX_W
    graph.height = tallest + _PAD * 2 + 14


def _edge_svg(graph: Graph, e: Edge, marker: str) -> str:
    a, b = graph.boxes[e.source], graph.boxes[e.target]
    x1, y1 = a.x + _BOX_W, a.y + a.height / 2
    x2, y2 = b.x - 3, b.y + b.height / 2
    state = health(e.error_share)
    colour = COLOURS[state]
    dx = (x2 - x1) / 2
    share = e.error_share
    label = "no requests" if share is None else f"{100 * share:.3g}% err"
    tip = [f"{e.source} → {e.target}: {e.requests} requests"]
    tip += [f"{k}: {v}" for k, v in sorted(e.errors.items())] or ["no failure seen on this hop"]
    tip += [f"policy: {x}" for x in e.badges]
    mx, my = (x1 + x2) / 2, (y1 + y2) / 2
    parts = [
        f'<g class="g-edge g-{state}"><title>{escape(chr(10).join(tip))}</title>',
        f'<path d="M{x1:.0f} {y1:.0f} C{x1 + dx:.0f} {y1:.0f} {x2 - dx:.0f} {y2:.0f} '
        f'{x2:.0f} {y2:.0f}" stroke="{colour}" stroke-width="{1.5 + 3 * (share or 0):.1f}" '
        f'fill="none" marker-end="url(#{marker})"/>',
        f'<text x="{mx:.0f}" y="{my - 5:.0f}" text-anchor="middle" class="g-label" '
        f'fill="{colour}">{escape(label)}</text>',
    ]
    for i, badge in enumerate(e.badges[:4]):
        parts.append(
            f'<text x="{mx:.0f}" y="{my + 11 + 11 * i:.0f}" text-anchor="middle" '
            f'class="g-badge">{escape(badge)}</text>'
        )
    parts.append("</g>")
    return "".join(parts)


def _box_svg(box: ServiceBox, state: str) -> str:
    colour = COLOURS[state] if state != "idle" else "#555"
    parts = [
        f'<g class="g-node"><rect x="{box.x:.0f}" y="{box.y:.0f}" width="{_BOX_W}" '
        f'height="{box.height:.0f}" rx="5" fill="#fff" stroke="{colour}" stroke-width="1.5"/>',
        f'<text x="{box.x + 8:.0f}" y="{box.y + 14:.0f}" class="g-name">{escape(box.name)}</text>',
    ]
    for i, v in enumerate(box.versions):
        y = box.y + _HEAD_H + _ROW_H * i + 11
        share = f" · {100 * box.shares[v]:.3g}%" if v in box.shares else ""
        mirror = " (mirror)" if v in box.mirrored else ""
        parts.append(
            f'<text x="{box.x + 16:.0f}" y="{y:.0f}" class="g-version">'
            f"{escape(v + share + mirror)}</text>"
        )
    parts.append("</g>")
    return "".join(parts)


def graph_svg(graph: Graph, salt: str) -> str:
    """The graph as an inline ``<svg>`` (ids made unique with ``salt``)."""
    states: dict[str, str] = {}
    order = ["idle", "healthy", "degraded", "failure"]
    for e in graph.edges:
        s = health(e.error_share)
        prev = states.get(e.target, "idle")
        states[e.target] = s if order.index(s) > order.index(prev) else prev
    used = sorted({health(e.error_share) for e in graph.edges})
    defs = "".join(
        f'<marker id="arrow-{salt}-{state}" viewBox="0 0 10 10" refX="9" refY="5" '
        f'markerWidth="9" markerHeight="9" markerUnits="userSpaceOnUse" orient="auto">'
        f'<path d="M0 0L10 5L0 10z" fill="{COLOURS[state]}"/></marker>'
        for state in used
    )
    body = [_edge_svg(graph, e, f"arrow-{salt}-{health(e.error_share)}") for e in graph.edges]
    nodes = [_box_svg(b, states.get(b.name, "idle")) for b in graph.boxes.values()]
    return (
        f'<svg class="graph" xmlns="http://www.w3.org/2000/svg" width="{graph.width:.0f}" '
        f'height="{graph.height:.0f}" viewBox="0 0 {graph.width:.0f} {graph.height:.0f}" '
        f'role="img" aria-label="service graph"><defs>{defs}</defs>'
        f"{''.join(body)}{''.join(nodes)}</svg>"
    )
