"""What the oracle predicts for one request class: a mixture of outcome classes."""

from __future__ import annotations

from dataclasses import dataclass, field

from meshchaos.apps.facts import PRODUCTPAGE


@dataclass(frozen=True)
class RequestClass:
    """The requests a prediction is about.

    ``source`` is ``"gateway"`` (through the ingress gateway) or an in-mesh client
    workload name; ``host``/``port`` name the service the request is for (the gateway
    routes ``/productpage`` to productpage).
    """

    path: str = "/productpage"
    user: str | None = None  # Bookinfo login; sets ``end-user`` on productpage's calls
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "GET"
    source: str = "gateway"
    host: str = PRODUCTPAGE.name
    port: int = PRODUCTPAGE.port
    # Load shape, for mechanisms whose outcome depends on it (connection pools,
    # outlier detection). Added compatibly: the defaults describe one request at a time.
    concurrency: int = 1  # requests in flight (closed loop)
    requests: int | None = None  # total requests in the run
    duration: float | None = None  # run length in seconds


@dataclass(frozen=True)
class LatencyBand:
    """Where a class's latency must fall, in seconds. ``high`` may be ``inf``."""

    low: float
    high: float

    def contains(self, latency: float) -> bool:
        return self.low <= latency <= self.high


@dataclass(frozen=True)
class OutcomeShare:
    """One outcome class with its probability and latency band.

    For mechanisms that are only approximately predictable (connection pools, outlier
    detection) the oracle gives bounds: ``low <= share <= high``; otherwise
    ``low == high == probability``.
    """

    outcome: str
    probability: float
    latency: LatencyBand
    low: float | None = None
    high: float | None = None
    # Added compatibly: when branches of different latency merge into this class,
    # each (probability, band) branch; ``latency`` covers them all.
    components: tuple[tuple[float, LatencyBand], ...] = ()

    @property
    def is_exact(self) -> bool:
        return self.low is None and self.high is None

    @property
    def bounds(self) -> tuple[float, float]:
        lo = self.probability if self.low is None else self.low
        hi = self.probability if self.high is None else self.high
        return lo, hi


@dataclass(frozen=True)
class ConditionalShare:
    """An exact share within a group of outcome classes, where the classes' own shares
    are only bounded.

    ``P(outcome | given) == probability``: among the requests whose class is one of
    ``given`` (which includes ``outcome``), that share are ``outcome``. ``given_low`` is
    the least share ``given`` can take, which the sample is sized against. With reviews
    balanced over v1, v2 and v3 and ratings aborted on half of its calls, v1's share is
    only bounded, but half of the v2 and v3 pages show the ratings error.
    """

    outcome: str
    given: tuple[str, ...]
    probability: float
    given_low: float


@dataclass(frozen=True)
class LatencySplit:
    """An exact share of late answers within a group of classes (a partial delay).

    Among the requests whose class is one of ``given``, the share ``probability`` answers
    at ``at`` seconds or later, and the rest before: the group's branches lie in latency
    bands with a gap at ``at``. ``given_low`` is the least share the group takes of all
    requests, which the sample is sized against. With ratings delayed 300 ms on half of
    its calls and reviews pinned to v2, every page is ``reviews-v2-black``, and half of
    them answer at 0.295 s or later.
    """

    at: float
    probability: float
    given: tuple[str, ...]
    given_low: float


@dataclass(frozen=True)
class Prediction:
    """The expected mixture of outcomes; probabilities sum to 1."""

    request: RequestClass
    outcomes: tuple[OutcomeShare, ...]
    reasoning: tuple[str, ...] = ()  # human-readable trail: which route, which fault, ...
    # Share of these requests that a mirror target receives as a copy, keyed by
    # "<service>" or "<service>/<subset>" (e.g. "httpbin/v2": 0.5).
    mirrored: dict[str, float] = field(default_factory=dict)
    # Expected proxy counter relations, e.g. {"fault.aborts_injected": 0.1} per request.
    counters: dict[str, float] = field(default_factory=dict)
    # Counters and mirror targets whose rate the oracle cannot state exactly (e.g. it
    # depends on how Envoy's LEAST_REQUEST balancer splits the load): not to be checked.
    # Any other counter absent from ``counters`` is expected to stay at zero.
    unpredictable: frozenset[str] = frozenset()
    # Counters the oracle can only bound over the whole run, as certain [low, high]
    # counts, e.g. {"outlier_detection.ejections_enforced_total": (1, 3)}.
    counter_bounds: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Exact shares within groups of classes whose own shares are bounded (balancer).
    conditionals: tuple[ConditionalShare, ...] = ()
    # Exact shares of late answers where a partial delay splits classes by latency.
    splits: tuple[LatencySplit, ...] = ()

    def probability(self, outcome: str) -> float:
        return sum(o.probability for o in self.outcomes if o.outcome == outcome)

    def share(self, outcome: str) -> OutcomeShare | None:
        for o in self.outcomes:
            if o.outcome == outcome:
                return o
        return None

    def classes(self) -> list[str]:
        return [o.outcome for o in self.outcomes]
