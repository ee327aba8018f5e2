"""What a VirtualService route means once istiod has translated it (docs/ISTIO_SEMANTICS.md
§1-§6): its timeout, retry policy, fault and mirror fractions, destination shares and
whether it exists on a given proxy at all.

Defined once for both users: the local translator (``meshchaos.mesh.local``) renders these
answers as Envoy routes and the oracle (``meshchaos.oracle``) reasons with them, so the two
cannot drift apart. Only istiod's decisions live here; how Envoy then behaves at run time
(which failures a ``retry_on`` token covers, backoff jitter) is the oracle's business.
Cluster-level meaning is :mod:`meshchaos.istio.cluster_policy`, hosts
:mod:`meshchaos.istio.hosts`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from meshchaos.istio.model import (
    Destination,
    HTTPFaultInjection,
    HTTPMatchRequest,
    HTTPRetry,
    HTTPRoute,
    HTTPRouteDestination,
)
from meshchaos.istio.names import GRPC_STATUS_CODES, KNOWN_HTTP_STATUSES

__all__ = [
    "DEFAULT_RETRY_ON",
    "EffectiveFault",
    "FaultAbort",
    "FaultDelay",
    "Fraction",
    "RetryPolicy",
    "destination_port",
    "effective_fault",
    "effective_retry_policy",
    "int_percent_fraction",
    "mirror_fraction",
    "percent_fraction",
    "route_destinations",
    "route_timeout",
    "source_selects",
]


# ------------------------------------------------------------------ timeout, retries (§3, §4)
def route_timeout(route: HTTPRoute | None) -> float | None:
    """The route timeout in seconds; ``None`` is disabled. §3: Istio always writes the field
    (``0s`` when the VirtualService sets none), so Envoy's 15 s default never applies."""
    return route.timeout if route is not None else None


DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
_ATOI = re.compile(r"^[+-]?[0-9]+$")  # Go's strconv.Atoi grammar


@dataclass(frozen=True)
class RetryPolicy:
    """A route's Envoy retry policy, as istiod writes it (§4).

    ``retry_on`` is the exact string istiod emits (it may start with a comma when
    ``retryOn`` held only status codes; Envoy skips empty tokens). ``backoff`` ``None``
    leaves Envoy's 25 ms base interval.
    """

    num_retries: int = 2
    retry_on: str = DEFAULT_RETRY_ON
    retriable_status_codes: tuple[int, ...] = ()
    per_try_timeout: float | None = None
    previous_hosts: bool = True
    host_selection_retry_max_attempts: int = 5
    retry_remote_localities: bool = False
    backoff: float | None = None

    @property
    def conditions(self) -> frozenset[str]:
        """The ``retry_on`` tokens, as Envoy reads them."""
        return frozenset(t for t in self.retry_on.split(",") if t)


def _parse_retry_on(text: str) -> tuple[str, tuple[int, ...]]:
    """§4 ``retryOn`` parsing: split on ``,`` and trim; integers with a known HTTP status
    text become retriable status codes, every other token stays in ``retry_on``."""
    tokens: list[str] = []
    codes: list[int] = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        if _ATOI.match(part) and int(part) in KNOWN_HTTP_STATUSES:
            codes.append(int(part))
        else:
            tokens.append(part)
    return ",".join(tokens), tuple(codes)


def effective_retry_policy(
    retries: HTTPRetry | None, *, consistent_hash: bool = False
) -> RetryPolicy | None:
    """The retry policy of a route with ``retries`` (``None``: unset); ``None`` is no policy.

    §4: unset -> Istio's built-in default (2 retries on connect-failure, refused-stream,
    unavailable, cancelled, retriable-status-codes with no codes, previous_hosts, 5 host
    draws); ``attempts <= 0`` -> no retry policy at all; otherwise the default with the
    user's fields over it. ``consistent_hash``: the route's single destination balances by
    consistent hash, which drops the previous_hosts predicate (a hashed request must stay
    on its host) unless ``retryIgnorePreviousHosts`` asks for it.
    """
    policy = RetryPolicy(previous_hosts=not consistent_hash)
    if retries is None:
        return policy
    if retries.attempts <= 0:
        return None
    retry_on, codes = policy.retry_on, policy.retriable_status_codes
    if retries.retry_on:
        retry_on, codes = _parse_retry_on(retries.retry_on)
        if codes and "retriable-status-codes" not in retry_on:
            retry_on += ",retriable-status-codes"
    previous = policy.previous_hosts
    if retries.retry_ignore_previous_hosts is not None:
        previous = retries.retry_ignore_previous_hosts
    return RetryPolicy(
        num_retries=retries.attempts,
        retry_on=retry_on,
        retriable_status_codes=codes,
        per_try_timeout=retries.per_try_timeout,
        previous_hosts=previous,
        retry_remote_localities=bool(retries.retry_remote_localities),
        backoff=retries.backoff,
    )


# ---------------------------------------------------------------- fractions (§5, §6)
@dataclass(frozen=True)
class Fraction:
    """An Envoy ``FractionalPercent``: ``numerator`` over HUNDRED or MILLION."""

    numerator: int
    denominator: Literal["HUNDRED", "MILLION"]

    @property
    def probability(self) -> float:
        scale = 100 if self.denominator == "HUNDRED" else 1_000_000
        return min(1.0, self.numerator / scale)


def percent_fraction(value: float) -> Fraction:
    """An Istio ``Percent`` -> MILLION, truncating like Go's ``uint32(value * 10000)`` (§5):
    0.1 % -> 1000/1e6, 0.57 -> 5699 (float64 0.57 x 10000 is 5699.99...)."""
    return Fraction(int(value * 10000), "MILLION")


def int_percent_fraction(value: int) -> Fraction:
    """A deprecated integer percent -> HUNDRED (§5, §6)."""
    return Fraction(value, "HUNDRED")


@dataclass(frozen=True)
class FaultDelay:
    seconds: float
    fraction: Fraction


@dataclass(frozen=True)
class FaultAbort:
    """An abort: ``http_status``, or ``grpc_status`` (numeric; HTTP 200 + grpc-status)."""

    fraction: Fraction
    http_status: int | None = None
    grpc_status: int | None = None
    grpc_name: str | None = None


@dataclass(frozen=True)
class EffectiveFault:
    """The fault a route's fault filter runs; ``dropped`` names what istiod leaves out."""

    delay: FaultDelay | None = None
    abort: FaultAbort | None = None
    dropped: tuple[str, ...] = ()


def effective_fault(fault: HTTPFaultInjection | None) -> EffectiveFault | None:
    """``TranslateFault`` (§5); ``None`` when the route has no fault.

    Delay: ``percentage`` (MILLION) if set, else the deprecated ``percent`` (HUNDRED); with
    neither (or ``percent: 0``) the delay is 0 % and left out, as is a delay without
    ``fixedDelay``. Abort: no ``percentage`` is an explicit 0 % (Envoy reads an unset one
    as 0, never aborting); an abort with no HTTP or gRPC status is dropped by istiod.
    """
    if fault is None:
        return None
    delay = None
    d = fault.delay
    if d is not None and d.fixed_delay is not None:
        if d.percentage is not None:
            delay = FaultDelay(d.fixed_delay, percent_fraction(d.percentage))
        elif d.percent:
            delay = FaultDelay(d.fixed_delay, int_percent_fraction(d.percent))
    abort = None
    dropped: tuple[str, ...] = ()
    a = fault.abort
    if a is not None:
        pct = percent_fraction(a.percentage) if a.percentage is not None else Fraction(0, "HUNDRED")
        if a.http_status is not None:
            abort = FaultAbort(pct, http_status=a.http_status)
        elif a.grpc_status is not None:
            abort = FaultAbort(
                pct, grpc_status=GRPC_STATUS_CODES[a.grpc_status], grpc_name=a.grpc_status
            )
        else:
            dropped = ("fault.abort without httpStatus/grpcStatus is dropped (as istiod)",)
    return EffectiveFault(delay, abort, dropped)


def mirror_fraction(percentage: float | None) -> Fraction | None:
    """A mirror's share (§6): absent -> 100/HUNDRED, explicit 0 -> no mirror, else MILLION."""
    if percentage is None:
        return int_percent_fraction(100)
    if percentage <= 0:
        return None
    return percent_fraction(percentage)


# ------------------------------------------------------------------ proxy selectors (§1)
def source_selects(
    match: HTTPMatchRequest | None,
    proxy_labels: Mapping[str, str],
    proxy_namespace: str,
    gateway_bound: Callable[[str], bool],
) -> bool:
    """Whether the route of ``match`` is generated for a proxy at all (``sourceMatchHTTP``).

    §1: match-level ``gateways``, when given, decide alone (``gateway_bound`` says whether
    the proxy is one of them, as the caller names gateways); otherwise ``sourceLabels`` must
    be a subset of the proxy's labels and ``sourceNamespace``, if set, its namespace.
    """
    if match is None:
        return True
    if match.gateways:
        return any(gateway_bound(g) for g in match.gateways)
    if any(proxy_labels.get(k) != v for k, v in match.source_labels.items()):
        return False
    return match.source_namespace in (None, "", proxy_namespace)


# ------------------------------------------------------------------------ destinations (§2)
def route_destinations(route: HTTPRoute) -> tuple[tuple[HTTPRouteDestination, float], ...]:
    """The route's destinations with their share of requests (§2): one destination takes
    everything whatever its weight; of several, weight-0 entries are skipped and the others
    share by weight / sum (no sum-to-100 rule, Envoy gets the weights unnormalised)."""
    if len(route.route) == 1:
        return ((route.route[0], 1.0),)
    kept = [d for d in route.route if d.weight > 0]
    total = sum(d.weight for d in kept)
    return tuple((d, d.weight / total) for d in kept)


def destination_port(dest: Destination, service_ports: tuple[int, ...], listen_port: int) -> int:
    """The port of a destination's cluster (§2): ``destination.port`` if set, else the
    service's only port, else the port the request came in on."""
    if dest.port is not None:
        return dest.port.number
    if len(service_ports) == 1:
        return service_ports[0]
    return listen_port
