"""``predict``: the expected outcome mixture of a request class under a set of policies.

Probabilities are exact: the oracle enumerates the finite mixture of routes, weights,
fault draws, retries and app behaviours (no simulation). Latency bands are
``[t - early_slack x timers, t + backoff + overhead]`` per branch, where ``t`` is the
sum of deterministic delays, timeouts and app think times on that branch and ``timers``
counts the timers in ``t`` (each may fire up to ~4 ms early, ARCHITECTURE.md
"Performance facts"). Connection pools and outlier detection give bounds (``_bounds``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from meshchaos.istio.model import Resource
from meshchaos.oracle import _bounds
from meshchaos.oracle._dist import Dist, Resp, counters_plain
from meshchaos.oracle._engine import Caller, Engine
from meshchaos.oracle._match import Request
from meshchaos.oracle.prediction import LatencyBand, OutcomeShare, Prediction, RequestClass
from meshchaos.oracle.topology import BOOKINFO, CLIENT, GATEWAY, Topology
from meshchaos.outcomes import status_class

__all__ = ["DEFAULT_TIMING", "Timing", "outcome_class", "predict"]


@dataclass(frozen=True)
class Timing:
    """Latency and load allowances of the predictions.

    ``early_slack``: how early one timer may fire (Envoy's coarse clock, ~4 ms).
    ``overhead``: allowance above the structural latency for app and proxy work under
    load. ``proxy_workers``: Envoy worker threads per proxy (Istio sidecars default to 2),
    which loosens circuit breakers (ISTIO_SEMANTICS.md §10).
    """

    early_slack: float = 0.005
    overhead: float = 0.25
    proxy_workers: int = 2


DEFAULT_TIMING = Timing()


def predict(
    resources: Sequence[Resource],
    request: RequestClass,
    topology: Topology = BOOKINFO,
    *,
    timing: Timing = DEFAULT_TIMING,
) -> Prediction:
    """The expected mixture of outcome classes for ``request`` under ``resources``."""
    engine = Engine(resources, topology, user=request.user)
    headers = {k.lower(): v for k, v in request.headers.items()}
    req = Request(request.path, headers, request.method)
    if request.source == "gateway":
        dist = engine.from_gateway(req, Caller(GATEWAY.name, GATEWAY.labels))
    else:
        src = topology.sources.get(request.source, CLIENT)
        caller = Caller(request.source, src.labels)
        dist = engine.hop(caller, request.host, request.port, req)
    outcomes = _summarise(dist, timing)
    notes = list(engine.notes)
    outcomes = _bounds.apply(
        resources, topology, request, timing.proxy_workers, engine.first_hop, outcomes, notes
    )
    return Prediction(
        request=request,
        outcomes=tuple(outcomes),
        reasoning=tuple(notes + _summary_lines(outcomes)),
        mirrored={k: v for k, v in sorted(dist.mirrored.items()) if v},
        counters=counters_plain(dist.counters),
    )


def outcome_class(r: Resp) -> str:
    """A Bookinfo class when the app answered with a payload, else ``status:<code>``."""
    return r.label if r.label is not None and r.status == 200 else status_class(r.status)


def _band(r: Resp, timing: Timing) -> LatencyBand:
    low = max(0.0, r.t - timing.early_slack * r.timers)
    return LatencyBand(round(low, 9), round(r.t + r.extra + timing.overhead, 9))


def _summarise(dist: Dist, timing: Timing) -> list[OutcomeShare]:
    groups: dict[str, dict[LatencyBand, float]] = {}
    for r, p in dist.items():
        bands = groups.setdefault(outcome_class(r), {})
        band = _band(r, timing)
        bands[band] = bands.get(band, 0.0) + p
    out: list[OutcomeShare] = []
    for cls, bands in groups.items():
        total = sum(bands.values())
        cover = LatencyBand(min(b.low for b in bands), max(b.high for b in bands))
        parts = tuple(sorted(((p, b) for b, p in bands.items()), key=lambda x: x[1].low))
        out.append(OutcomeShare(cls, total, cover, components=parts if len(parts) > 1 else ()))
    out.sort(key=lambda o: (-o.probability, o.outcome))
    return out


def _summary_lines(outcomes: Sequence[OutcomeShare]) -> list[str]:
    lines = []
    for o in outcomes:
        bounds = "" if o.is_exact else f" (bounds {o.bounds[0]:.4g}..{o.bounds[1]:.4g})"
        lines.append(
            f"⇒ {o.outcome}: {o.probability:.6g}{bounds} at "
            f"{o.latency.low:.3f}..{o.latency.high:.3f} s"
        )
    return lines
