"""The application topology as data: services, versions, instances and call edges.

The oracle evaluates Istio policy on this graph. Facts come from docs/BOOKINFO.md (§1-§4 for
the apps, §5 for the manifests, §6 for httpbin and the client) and mirror
``meshchaos.apps.catalog``; they are restated here because the oracle must not import
mesh code (docs/ARCHITECTURE.md, "Oracle, load, verdict").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from meshchaos.outcomes import Bookinfo

__all__ = [
    "BOOKINFO",
    "CLIENT",
    "GATEWAY",
    "Behaviour",
    "CallEdge",
    "PathCalls",
    "Response",
    "Service",
    "Topology",
    "Workload",
]


@dataclass(frozen=True)
class Response:
    """One possible answer of a leaf app: with ``probability``, ``status`` after ``seconds``."""

    probability: float = 1.0
    status: int = 200
    seconds: float = 0.0


@dataclass(frozen=True)
class PathCalls:
    """A path of a composite app: which services it calls, in order, to answer.

    ``page``: the answer is a Bookinfo page (always 200, classed by its content); else the
    answer carries the status of the first failed call (500 when there was no response),
    as productpage's JSON API does (docs/BOOKINFO.md §1, "Error-status rule").
    """

    prefix: str
    calls: tuple[str, ...] = ()
    page: bool = True


@dataclass(frozen=True)
class Behaviour:
    """What one version of an app does with a request.

    A leaf app answers from ``responses`` (a finite mixture); ``httpbin`` apps answer
    from the request path instead (``/status/<codes>``, ``/delay/<s>``). A composite app
    makes the calls of the first matching ``paths`` entry, in order; its payload
    class is ``label`` on success, else the failed edge's ``on_failure`` (two failures
    combine through ``combined``). ``label is None`` on a composite means "the payload of
    the last call" (productpage shows whatever reviews returned).
    """

    label: str | None = None
    responses: tuple[Response, ...] = (Response(),)
    httpbin: bool = False
    paths: tuple[PathCalls, ...] = ()
    propagate: frozenset[str] = frozenset()  # inbound headers copied onto its calls
    sets_end_user: bool = False  # productpage: ``end-user`` from the session user
    combined: Mapping[frozenset[str], str] = field(default_factory=dict)


@dataclass(frozen=True)
class Service:
    """A Kubernetes Service: its port and, per ``version`` label, how that version behaves."""

    name: str
    port: int
    versions: Mapping[str, Behaviour]


@dataclass(frozen=True)
class CallEdge:
    """An app's own client call: its timeout per attempt, its attempts, and what a failure
    (non-200 or timeout) turns into in the caller's answer. ``caller_version`` None = all."""

    caller_app: str
    caller_version: str | None
    callee: str
    path: str
    timeout: float
    attempts: int = 1
    on_failure: str = ""


@dataclass(frozen=True)
class Workload:
    """A request source that is not a Service version: the gateway or an in-mesh client."""

    name: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class Topology:
    """Services, call edges and running instances (key ``<service>-<version>``)."""

    services: Mapping[str, Service]
    edges: tuple[CallEdge, ...]
    instances: Mapping[str, int]
    sources: Mapping[str, Workload] = field(default_factory=dict)

    def count(self, service: str, version: str) -> int:
        return self.instances.get(f"{service}-{version}", 0)

    def edge(self, caller: str, version: str, callee: str) -> CallEdge | None:
        for e in self.edges:
            if (e.caller_app, e.callee) == (caller, callee) and e.caller_version in (None, version):
                return e
        return None

    def scaled(self, **instances: int) -> Topology:
        """A copy with some instance counts changed: ``scaled(**{"ratings-v-faulty": 1})``."""
        merged = dict(self.instances)
        merged.update(instances)
        return replace(self, instances=merged)


# Headers both productpage and reviews copy onto their calls (docs/BOOKINFO.md §1, §3).
_TRACE = frozenset(
    {
        "x-request-id",
        "x-ot-span-context",
        "x-datadog-trace-id",
        "x-datadog-parent-id",
        "x-datadog-sampling-priority",
        "traceparent",
        "tracestate",
        "x-cloud-trace-context",
        "grpc-trace-bin",
        "sw8",
        "user-agent",
        "cookie",
        "authorization",
        "jwt",
        "x-b3-traceid",
        "x-b3-spanid",
        "x-b3-parentspanid",
        "x-b3-sampled",
        "x-b3-flags",
    }
)

_PRODUCTPAGE = Behaviour(
    paths=(
        PathCalls("/productpage", ("details", "reviews")),
        PathCalls("/api/v1/products/0/reviews", ("reviews",)),
        PathCalls("/api/v1/products/0/ratings", ("ratings",), page=False),
        PathCalls("/api/v1/products/0", ("details",), page=False),
    ),
    propagate=_TRACE,
    sets_end_user=True,
    combined={
        frozenset(
            {Bookinfo.DETAILS_ERROR.value, Bookinfo.REVIEWS_ERROR.value}
        ): Bookinfo.BOTH_ERROR.value,
    },
)
_REVIEWS_PROPAGATE = _TRACE | {"end-user"}
_RATINGS_CALL = (PathCalls("/", ("ratings",)),)

_HALF = 0.5
BOOKINFO_SERVICES: dict[str, Service] = {
    "productpage": Service("productpage", 9080, {"v1": _PRODUCTPAGE}),
    "details": Service("details", 9080, {"v1": Behaviour(), "v2": Behaviour()}),
    "reviews": Service(
        "reviews",
        9080,
        {
            "v1": Behaviour(label=Bookinfo.REVIEWS_V1.value),
            "v2": Behaviour(
                label=Bookinfo.REVIEWS_V2.value,
                paths=_RATINGS_CALL,
                propagate=_REVIEWS_PROPAGATE,
            ),
            "v3": Behaviour(
                label=Bookinfo.REVIEWS_V3.value,
                paths=_RATINGS_CALL,
                propagate=_REVIEWS_PROPAGATE,
            ),
        },
    ),
    "ratings": Service(
        "ratings",
        9080,
        {
            "v1": Behaviour(),
            "v2": Behaviour(),
            # docs/BOOKINFO.md §4: each request 50 % -> 503, else normal.
            "v-faulty": Behaviour(responses=(Response(_HALF, 503), Response(_HALF, 200))),
            # docs/BOOKINFO.md §4: each request 50 % -> normal answer after 7 s, else immediate.
            "v-delayed": Behaviour(responses=(Response(_HALF, 200, 7.0), Response(_HALF, 200))),
        },
    ),
    "httpbin": Service(
        "httpbin",
        8000,
        {
            "v1": Behaviour(httpbin=True),
            "v2": Behaviour(httpbin=True),
            # catalog.py: HTTPBIN_FAIL_ALL=503, the bad instance of outlier scenarios.
            "v-faulty": Behaviour(responses=(Response(1.0, 503),)),
        },
    ),
}

# docs/BOOKINFO.md §1 "Downstream calls" and §3 (ratings client timeout by star colour).
BOOKINFO_EDGES: tuple[CallEdge, ...] = (
    CallEdge("productpage", None, "details", "/details/0", 3.0, 1, Bookinfo.DETAILS_ERROR.value),
    CallEdge("productpage", None, "reviews", "/reviews/0", 3.0, 2, Bookinfo.REVIEWS_ERROR.value),
    CallEdge("productpage", None, "ratings", "/ratings/0", 3.0, 1, "ratings-error"),
    CallEdge("reviews", "v2", "ratings", "/ratings/0", 10.0, 1, Bookinfo.RATINGS_UNAVAILABLE.value),
    CallEdge("reviews", "v3", "ratings", "/ratings/0", 2.5, 1, Bookinfo.RATINGS_UNAVAILABLE.value),
)

GATEWAY = Workload(
    "istio-ingressgateway", {"istio": "ingressgateway", "app": "istio-ingressgateway"}
)
CLIENT = Workload("client", {"app": "client", "version": "v1"})

BOOKINFO = Topology(
    services=BOOKINFO_SERVICES,
    edges=BOOKINFO_EDGES,
    # catalog.py replicas: every version 1, the sample variants 0 until scaled.
    instances={
        "productpage-v1": 1,
        "details-v1": 1,
        "details-v2": 0,
        "reviews-v1": 1,
        "reviews-v2": 1,
        "reviews-v3": 1,
        "ratings-v1": 1,
        "ratings-v2": 0,
        "ratings-v-faulty": 0,
        "ratings-v-delayed": 0,
        "httpbin-v1": 1,
        "httpbin-v2": 1,
        "httpbin-v-faulty": 0,
    },
    sources={"gateway": GATEWAY, "client": CLIENT},
)
