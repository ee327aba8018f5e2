"""Bookinfo's and httpbin's facts, written once, as data.

The apps as a client of the mesh sees them: each Service with its port and versions; per
version its container env, its instances and what it answers; every call edge with the
calling app's own timeout and attempts and what a failure turns into; and the headers each
app copies onto its calls. Everything else reads these facts instead of restating them:

* the oracle's topology (``meshchaos.oracle.topology.BOOKINFO``);
* the local mesh's workloads (``meshchaos.apps.catalog``), its gateway and its client;
* the apps' own constants (productpage's client timeout and reviews attempts, reviews'
  ratings timeout, ratings' fault shares and delay, the propagated headers).

What our apps do beyond these facts is their code (``meshchaos.apps.productpage`` and the
others). Standard library only: the app host imports this at start.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from meshchaos.outcomes import Bookinfo

__all__ = [
    "APPS",
    "BOOKINFO_APPS",
    "BOOKINFO_PORT",
    "CALLS",
    "CLIENT",
    "DETAILS",
    "HTTPBIN",
    "HTTPBIN_FAULTY_STATUS",
    "INGRESS_GATEWAY",
    "PRODUCTPAGE",
    "PRODUCTPAGE_REVIEWS_ATTEMPTS",
    "PRODUCTPAGE_TIMEOUT_S",
    "PROPAGATED_HEADERS",
    "RATINGS",
    "RATINGS_DELAYED_SHARE",
    "RATINGS_DELAY_S",
    "RATINGS_FAULTY_SHARE",
    "RATINGS_FAULTY_STATUS",
    "REVIEWS",
    "App",
    "CallEdge",
    "PathCalls",
    "Response",
    "Version",
    "Workload",
    "app",
    "reviews_ratings_timeout",
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
    """A request source that is not a Service version: the ingress gateway or an in-mesh
    client. ``port``: the HTTP port it serves (the gateway's server port); 0 for none."""

    name: str
    labels: Mapping[str, str]
    port: int = 0


@dataclass(frozen=True)
class Version:
    """One version of an app (label ``version``), run as the Deployment ``<app>-<version>``.

    ``env``: the container environment the app reads, as the real image reads it.
    ``replicas``: instances started with the mesh (0: none until scaled up).
    ``deployed``: False for a version Istio's samples name (a DestinationRule subset) but
    that meshchaos does not deploy; it is known, with no instance, and cannot be scaled.
    ``label``: the outcome class of a successful answer, where the answer has its own.
    ``responses``: a leaf app's answers, a finite mixture; ``httpbin``: it answers from
    the request path instead (``/status/<codes>``, ``/delay/<s>``); ``paths``: a composite
    app's calls per path (the first matching prefix).
    """

    name: str
    env: Mapping[str, str] = field(default_factory=dict)
    replicas: int = 1
    deployed: bool = True
    label: str | None = None
    responses: tuple[Response, ...] = (Response(),)
    httpbin: bool = False
    paths: tuple[PathCalls, ...] = ()


@dataclass(frozen=True)
class App:
    """An app: its Kubernetes Service (``name``, also its ``app`` label and the module of
    ``meshchaos.apps`` that implements it), the Service port, which the local app also
    serves on, and its versions.

    ``propagate``: inbound headers it copies onto its calls; ``end_user_from_session``: it
    sets ``end-user`` from the logged-in user; ``combined``: the outcome class of two
    failed calls together (one failure is the failed edge's ``on_failure``).
    """

    name: str
    port: int
    versions: tuple[Version, ...]
    propagate: tuple[str, ...] = ()
    end_user_from_session: bool = False
    combined: Mapping[frozenset[str], str] = field(default_factory=dict)

    def version(self, name: str) -> Version:
        for v in self.versions:
            if v.name == name:
                return v
        raise KeyError(f"{self.name} has no version {name!r}")


# -- Bookinfo ------------------------------------------------------------------------------

# docs/BOOKINFO.md §0, §5: every Bookinfo Service listens on 9080.
BOOKINFO_PORT = 9080

# docs/BOOKINFO.md §3: the headers reviews copies onto its ratings call (details uses the
# identical list, §2); productpage copies the same ones but ``end-user``, §1.
PROPAGATED_HEADERS: tuple[str, ...] = (
    "x-request-id",
    "x-ot-span-context",
    "x-datadog-trace-id",
    "x-datadog-parent-id",
    "x-datadog-sampling-priority",
    "traceparent",
    "tracestate",
    "x-cloud-trace-context",
    "grpc-trace-bin",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "sw8",
    "end-user",
    "user-agent",
    "cookie",
    "authorization",
    "jwt",
)

# docs/BOOKINFO.md §1 "Downstream calls": python-requests ``timeout=3.0`` (connect and each
# read) on every call; reviews is tried twice, the second attempt right after a non-200 or
# an exception.
PRODUCTPAGE_TIMEOUT_S = 3.0
PRODUCTPAGE_REVIEWS_ATTEMPTS = 2


def reviews_ratings_timeout(star_color: str) -> float:
    """reviews' ratings client timeout in seconds (connect and receive): 10 s for black
    stars, 2.5 s for any other colour (docs/BOOKINFO.md §3)."""
    return 10.0 if star_color == "black" else 2.5


# docs/BOOKINFO.md §4: v-faulty answers each request 503 with probability 0.5; v-delayed
# answers each normally, after 7 s with probability 0.5.
RATINGS_FAULTY_SHARE = 0.5
RATINGS_FAULTY_STATUS = 503
RATINGS_DELAYED_SHARE = 0.5
RATINGS_DELAY_S = 7.0

PRODUCTPAGE = App(
    "productpage",
    BOOKINFO_PORT,
    (
        Version(
            "v1",
            # docs/BOOKINFO.md §1: the page calls details, then reviews; each JSON API path
            # calls one service. Product id 0 is hard-coded.
            paths=(
                PathCalls("/productpage", ("details", "reviews")),
                PathCalls("/api/v1/products/0/reviews", ("reviews",)),
                PathCalls("/api/v1/products/0/ratings", ("ratings",), page=False),
                PathCalls("/api/v1/products/0", ("details",), page=False),
            ),
        ),
    ),
    # docs/BOOKINFO.md §1: ``end-user`` comes from the session, not from an inbound header.
    propagate=tuple(h for h in PROPAGATED_HEADERS if h != "end-user"),
    end_user_from_session=True,
    combined={
        frozenset(
            {Bookinfo.DETAILS_ERROR.value, Bookinfo.REVIEWS_ERROR.value}
        ): Bookinfo.BOTH_ERROR.value,
    },
)

DETAILS = App(
    "details",
    BOOKINFO_PORT,
    # docs/BOOKINFO.md §5: subsets v1 and v2; meshchaos deploys v1 only (§2: v2 calls an
    # external book API).
    (Version("v1"), Version("v2", replicas=0, deployed=False)),
    propagate=PROPAGATED_HEADERS,
)


def _reviews(version: str, label: Bookinfo, star_color: str | None) -> Version:
    # docs/BOOKINFO.md §3: v1 never calls ratings; v2 and v3 do, on any path.
    if star_color is None:
        return Version(version, {"ENABLE_RATINGS": "false"}, label=label.value)
    return Version(
        version,
        {"ENABLE_RATINGS": "true", "STAR_COLOR": star_color},
        label=label.value,
        paths=(PathCalls("/", ("ratings",)),),
    )


REVIEWS = App(
    "reviews",
    BOOKINFO_PORT,
    (
        _reviews("v1", Bookinfo.REVIEWS_V1, None),
        _reviews("v2", Bookinfo.REVIEWS_V2, "black"),
        _reviews("v3", Bookinfo.REVIEWS_V3, "red"),
    ),
    propagate=PROPAGATED_HEADERS,
)


def _ratings(version: str, *responses: Response, replicas: int = 1) -> Version:
    return Version(
        version,
        {"SERVICE_VERSION": version},
        replicas=replicas,
        responses=responses or (Response(),),
    )


RATINGS = App(
    "ratings",
    BOOKINFO_PORT,
    (
        _ratings("v1"),
        # docs/BOOKINFO.md §5: a subset of destination-rule-all.yaml. Database-backed (§4):
        # modelled as answering normally, as with its database in a cluster; not deployed
        # here, where our ratings app has no database and answers v2 GETs with 500.
        Version("v2", replicas=0, deployed=False),
        # Istio's misbehaving variants: not running until a scenario scales them up, so
        # that default routing to ratings is never confounded by them.
        _ratings(
            "v-faulty",
            Response(RATINGS_FAULTY_SHARE, RATINGS_FAULTY_STATUS),
            Response(1.0 - RATINGS_FAULTY_SHARE, 200),
            replicas=0,
        ),
        _ratings(
            "v-delayed",
            Response(RATINGS_DELAYED_SHARE, 200, RATINGS_DELAY_S),
            Response(1.0 - RATINGS_DELAYED_SHARE, 200),
            replicas=0,
        ),
    ),
)

BOOKINFO_APPS: tuple[App, ...] = (PRODUCTPAGE, DETAILS, REVIEWS, RATINGS)

# docs/BOOKINFO.md §1 "Downstream calls" (productpage) and §3 (reviews' ratings timeout by
# star colour, no retry). A failure is what the caller's answer then shows.
CALLS: tuple[CallEdge, ...] = (
    CallEdge(
        "productpage",
        None,
        "details",
        "/details/0",
        PRODUCTPAGE_TIMEOUT_S,
        1,
        Bookinfo.DETAILS_ERROR.value,
    ),
    CallEdge(
        "productpage",
        None,
        "reviews",
        "/reviews/0",
        PRODUCTPAGE_TIMEOUT_S,
        PRODUCTPAGE_REVIEWS_ATTEMPTS,
        Bookinfo.REVIEWS_ERROR.value,
    ),
    CallEdge(
        "productpage", None, "ratings", "/ratings/0", PRODUCTPAGE_TIMEOUT_S, 1, "ratings-error"
    ),
    *(
        CallEdge(
            "reviews",
            v.name,
            "ratings",
            "/ratings/0",
            reviews_ratings_timeout(v.env["STAR_COLOR"]),
            1,
            Bookinfo.RATINGS_UNAVAILABLE.value,
        )
        for v in REVIEWS.versions
        if v.paths
    ),
)

# -- httpbin -------------------------------------------------------------------------------

# docs/BOOKINFO.md §6: Service ``httpbin`` on port 8000, labels app/version. v2 is the
# mirroring task's second Deployment; v-faulty answers every request with this status
# (env ``HTTPBIN_FAIL_ALL``), the bad instance of outlier-detection scenarios.
HTTPBIN_FAULTY_STATUS = 503
HTTPBIN = App(
    "httpbin",
    8000,
    (
        Version("v1", httpbin=True),
        Version("v2", httpbin=True),
        Version(
            "v-faulty",
            {"HTTPBIN_FAIL_ALL": str(HTTPBIN_FAULTY_STATUS)},
            replicas=0,
            responses=(Response(1.0, HTTPBIN_FAULTY_STATUS),),
        ),
    ),
)

APPS: tuple[App, ...] = (*BOOKINFO_APPS, HTTPBIN)

# -- request sources -----------------------------------------------------------------------

# Istio's default ingress gateway Deployment: ``bookinfo-gateway.yaml`` selects it by
# ``istio: ingressgateway`` and serves HTTP on port 8080 (docs/BOOKINFO.md §5).
INGRESS_GATEWAY = Workload(
    "istio-ingressgateway", {"istio": "ingressgateway", "app": "istio-ingressgateway"}, 8080
)
# The in-mesh client (Istio's fortio/curl pod, docs/BOOKINFO.md §6): a sidecar with no
# Service of its own.
CLIENT = Workload("client", {"app": "client", "version": "v1"})


def app(name: str) -> App:
    """The app named ``name`` (``KeyError`` if there is none)."""
    for a in APPS:
        if a.name == name:
            return a
    raise KeyError(f"unknown app {name!r}; known: {', '.join(a.name for a in APPS)}")
