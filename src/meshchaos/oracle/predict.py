"""``predict``: the expected outcome mixture of a request class under a set of policies.

Probabilities are exact: the oracle enumerates the finite mixture of routes, weights,
fault draws, retries and app behaviours (no simulation). Latency bands are
``[t - early_slack x timers, t + backoff + overhead]`` per branch, where ``t`` is the
sum of deterministic delays, timeouts and app think times on that branch and ``timers``
counts the timers in ``t`` (each may fire up to ~4 ms early, docs/ARCHITECTURE.md
"Performance facts"). Connection pools and outlier detection give bounds (``_bounds``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace

from meshchaos.istio.model import Resource
from meshchaos.oracle import _balance, _bounds, _split
from meshchaos.oracle._dist import Dist, Resp, counters_plain
from meshchaos.oracle._engine import Caller, Engine
from meshchaos.oracle._match import Request
from meshchaos.oracle.prediction import (
    ConditionalShare,
    LatencyBand,
    LatencySplit,
    OutcomeShare,
    Prediction,
    RequestClass,
)
from meshchaos.oracle.topology import BOOKINFO, CLIENT, INGRESS_GATEWAY, Topology
from meshchaos.outcomes import status_class

__all__ = ["DEFAULT_TIMING", "Timing", "outcome_class", "predict"]


@dataclass(frozen=True)
class Timing:
    """Latency and load allowances of the predictions.

    ``early_slack``: how early one timer may fire (Envoy's coarse clock, ~4 ms).
    ``overhead``: allowance above the structural latency for app and proxy work under
    load. ``proxy_workers``: Envoy worker threads per proxy (Istio sidecars default to 2),
    which loosens circuit breakers (docs/ISTIO_SEMANTICS.md §10).
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
    engine = Engine(resources, topology, user=request.user, concurrency=request.concurrency)
    dist = _run(engine, request, topology)
    outcomes = _summarise(dist, timing, page=request.source == "gateway")
    notes = list(engine.notes)
    counters = counters_plain(dist.counters)
    mirrored = {k: v for k, v in sorted(dist.mirrored.items()) if v}
    unpredictable: set[str] = set()
    conditionals: list[ConditionalShare] = []
    summaries = [outcomes]
    if engine.lb_uneven:
        outcomes, varying, conditionals, summaries = _balance_bounds(
            resources, request, topology, timing, engine, outcomes, notes
        )
        if varying:
            # A rate that depends on the balancer's split is not predictable exactly.
            notes.append(f"not predicted under LEAST_REQUEST bias: {', '.join(sorted(varying))}")
            counters = {k: v for k, v in counters.items() if k not in varying}
            mirrored = {k: v for k, v in mirrored.items() if k not in varying}
            unpredictable |= varying
    counter_bounds: dict[str, tuple[int, int]] = {}
    balanced = outcomes
    outcomes = _bounds.apply(
        resources,
        topology,
        request,
        timing.proxy_workers,
        engine.first_hop,
        outcomes,
        notes,
        counter_bounds,
    )
    # A pool or outlier bound ties the classes' shares to latency: no split is exact.
    splits = _splits(summaries, notes) if outcomes == balanced else []
    return Prediction(
        request=request,
        outcomes=tuple(outcomes),
        reasoning=tuple(notes + _summary_lines(outcomes)),
        mirrored=mirrored,
        counters=counters,
        unpredictable=frozenset(unpredictable),
        counter_bounds=counter_bounds,
        conditionals=tuple(conditionals),
        splits=tuple(splits),
    )


def _splits(summaries: Sequence[Sequence[OutcomeShare]], notes: list[str]) -> list[LatencySplit]:
    splits = _split.latency_splits(summaries)
    for s in splits:
        notes.append(
            f"⇒ answering at {s.at:.3f} s or later among {' | '.join(s.given)}: "
            f"{s.probability:.6g} (latency split; that group at least {s.given_low:.4g} "
            "of the requests)"
        )
    return splits


def _run(engine: Engine, request: RequestClass, topology: Topology) -> Dist:
    headers = {k.lower(): v for k, v in request.headers.items()}
    req = Request(request.path, headers, request.method)
    if request.source == "gateway":
        return engine.from_gateway(req, Caller(INGRESS_GATEWAY.name, INGRESS_GATEWAY.labels))
    src = topology.sources.get(request.source, CLIENT)
    return engine.hop(Caller(request.source, src.labels), request.host, request.port, req)


def _balance_bounds(
    resources: Sequence[Resource],
    request: RequestClass,
    topology: Topology,
    timing: Timing,
    engine: Engine,
    outcomes: list[OutcomeShare],
    notes: list[str],
) -> tuple[list[OutcomeShare], set[str], list[ConditionalShare], list[list[OutcomeShare]]]:
    """Bound each share over the LEAST_REQUEST load orders of the uneven clusters
    (``_balance``): the uniform split stays the point estimate, the orders give the
    interval, and the latency band covers every order's branches. Also returns the
    counters and mirror targets whose expected rate differs between orders, the
    shares that are exact within a group of classes in every order, and each order's
    class summary (the uniform split first)."""
    keys = list(engine.lb_uneven)
    choices = [_balance.orders(engine.lb_uneven[k]) for k in keys]
    combos = 1
    for c in choices:
        combos *= len(c)
    if combos > _balance.MAX_ORDERS:
        notes.append(f"{combos} balancer load orders: too many to bound; shares are estimates")
        return outcomes, set(), [], []
    runs: list[dict[str, OutcomeShare]] = []
    rates: dict[str, set[float]] = {}

    def note_rates(d: Dist) -> None:
        for name, v in [*counters_plain(d.counters).items(), *d.mirrored.items()]:
            rates.setdefault(name, set()).add(round(v, 9))

    for combo in itertools.product(*choices):
        alt = Engine(
            resources,
            topology,
            user=request.user,
            concurrency=request.concurrency,
            lb_weights=dict(zip(keys, combo, strict=True)),
        )
        d = _run(alt, request, topology)
        note_rates(d)
        runs.append({o.outcome: o for o in _summarise(d, timing, request.source == "gateway")})
    out = []
    classes = dict.fromkeys([o.outcome for o in outcomes] + [c for r in runs for c in r])
    base = {o.outcome: o for o in outcomes}
    for cls in classes:
        shares = [r[cls].probability if cls in r else 0.0 for r in runs]
        point = base[cls].probability if cls in base else 0.0
        bands = [r[cls].latency for r in runs if cls in r]
        if cls in base:
            bands.append(base[cls].latency)
        cover = LatencyBand(min(b.low for b in bands), max(b.high for b in bands))
        low, high = min([*shares, point]), max([*shares, point])
        if high - low < 1e-12:
            out.append(replace(base[cls], latency=cover))  # equal in every order
        else:
            comps = base[cls].components if cls in base else ()
            out.append(OutcomeShare(cls, point, cover, low=low, high=high, components=comps))
    out.sort(key=lambda o: (-o.probability, o.outcome))
    notes.append(
        f"LEAST_REQUEST bounds over {len(runs)} load orders of "
        + ", ".join(f"{svc}{'/' + sub if sub else ''}" for svc, sub in keys)
    )
    varying = {name for name, values in rates.items() if len(values) > 1}
    bounded = [o.outcome for o in out if not o.is_exact]
    orders = [{c: o.probability for c, o in r.items()} for r in runs]
    orders.append({o.outcome: o.probability for o in outcomes})
    conditionals = []
    for cls, given, p, low in _balance.conditionals(orders, bounded):
        conditionals.append(ConditionalShare(cls, given, p, low))
        notes.append(
            f"⇒ {cls} among {' | '.join(given)}: {p:.6g} in every load order "
            f"(that group at least {low:.4g} of the requests)"
        )
    summaries = [outcomes, *([*r.values()] for r in runs)]
    return out, varying, conditionals, summaries


def outcome_class(r: Resp, *, page: bool = True) -> str:
    """A Bookinfo class when the app answered with a payload, else ``status:<code>``.

    ``page=False`` for requests from an in-mesh client, which the load generator
    classifies by status alone (it reads pages only through the gateway).
    """
    if page and r.label is not None and r.status == 200:
        return r.label
    return status_class(r.status)


def _band(r: Resp, timing: Timing) -> LatencyBand:
    low = max(0.0, r.t - timing.early_slack * r.timers)
    return LatencyBand(round(low, 9), round(r.t + r.extra + timing.overhead, 9))


def _summarise(dist: Dist, timing: Timing, page: bool) -> list[OutcomeShare]:
    groups: dict[str, dict[LatencyBand, float]] = {}
    for r, p in dist.items():
        bands = groups.setdefault(outcome_class(r, page=page), {})
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
