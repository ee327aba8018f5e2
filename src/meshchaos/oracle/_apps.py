"""The apps' side of a hop: how a composite app combines its calls, go-httpbin's answers,
and the Bookinfo gateway VirtualService (docs/BOOKINFO.md §1-§5). Server side: no
VirtualService applies here (docs/ISTIO_SEMANTICS.md §0)."""

from __future__ import annotations

from meshchaos.istio.model import (
    Destination,
    HTTPMatchRequest,
    HTTPRoute,
    HTTPRouteDestination,
    MatchKind,
    Metadata,
    PortSelector,
    StringMatch,
    VirtualService,
)
from meshchaos.oracle._dist import Dist, Resp
from meshchaos.oracle.topology import Behaviour, CallEdge


def bookinfo_gateway_vs() -> VirtualService:
    """``bookinfo-gateway.yaml``'s VirtualService (docs/BOOKINFO.md §5)."""
    ex, pre = MatchKind.EXACT, MatchKind.PREFIX
    uris = (
        (ex, "/productpage"),
        (pre, "/static"),
        (ex, "/login"),
        (ex, "/logout"),
        (pre, "/api/v1/products"),
    )
    return VirtualService(
        metadata=Metadata("bookinfo"),
        hosts=("*",),
        gateways=("bookinfo-gateway",),
        http=(
            HTTPRoute(
                match=tuple(HTTPMatchRequest(uri=StringMatch(k, v)) for k, v in uris),
                route=(HTTPRouteDestination(Destination("productpage", port=PortSelector(9080))),),
            ),
        ),
    )


def compose(beh: Behaviour, page: bool, calls: list[tuple[CallEdge, Dist]]) -> Dist:
    """Sequential calls of a composite app, combined into its answer."""
    state: Dist = Dist.of(Resp(200, None))
    failures: dict[Resp, tuple[str, ...]] = {}
    for edge, call in calls:
        nxt = Dist()
        nxt.add_expectations(state, 1.0)
        nxt.add_expectations(call, 1.0)
        new_fail: dict[Resp, tuple[str, ...]] = {}
        for a, pa in state.items():
            for b, pb in call.items():
                fails = failures.get(a, ())
                if b.status != 200:
                    fails = (*fails, edge.on_failure)
                status = a.status if a.status != 200 else b.status
                r = Resp(
                    status,
                    b.label if b.status == 200 else a.label,
                    a.t + b.t,
                    a.timers + b.timers,
                    a.extra + b.extra,
                    "|".join(fails),
                )
                nxt.add(r, pa * pb)
                new_fail[r] = fails
        state, failures = nxt, new_fail
    out = Dist()
    out.add_expectations(state, 1.0)
    for r, p in state.items():
        fails = failures.get(r, ())
        if page:
            if not fails:
                label = beh.label or r.label
            elif len(fails) == 1:
                label = fails[0]
            else:
                label = beh.combined.get(frozenset(fails), fails[-1])
            out.add(Resp(200, label, r.t, r.timers, r.extra), p)
        else:
            # docs/BOOKINFO.md §1: the backend's status, or 500 when there was no response.
            out.add(Resp(r.status, None, r.t, r.timers, r.extra), p)
    return out


def httpbin(uri: str) -> Dist:
    """go-httpbin: ``/status/<code>`` or weighted ``/status/200:0.5,503:0.5``, ``/delay/<s>``
    (capped at 10 s), anything else 200."""
    parts = uri.strip("/").split("/")
    out = Dist()
    if len(parts) >= 2 and parts[0] == "status":
        choices: list[tuple[int, float]] = []
        for item in parts[1].split(","):
            code, _, weight = item.partition(":")
            choices.append((int(code), float(weight) if weight else 1.0))
        total = sum(w for _, w in choices)
        for status, w in choices:
            out.add(Resp(status), w / total)
        return out
    if len(parts) >= 2 and parts[0] == "delay":
        seconds = min(float(parts[1]), 10.0)
        return Dist.of(Resp(200, t=seconds, timers=1))
    return Dist.of(Resp(200))
