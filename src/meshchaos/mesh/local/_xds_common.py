"""Small Envoy JSON builders shared by the route, cluster and bootstrap translators."""

from __future__ import annotations

from typing import Any

from meshchaos.istio.route_policy import Fraction

TYPE_PREFIX = "type.googleapis.com/"
FAULT_FILTER = "envoy.filters.http.fault"
ROUTER_FILTER = "envoy.filters.http.router"
HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def duration(seconds: float) -> str:
    """Seconds -> a protobuf JSON Duration, at millisecond precision (Istio validates to ms)."""
    ms = round(seconds * 1000)
    if ms % 1000 == 0:
        return f"{ms // 1000}s"
    return f"{ms // 1000}.{ms % 1000:03d}s"


def fractional_percent(fraction: Fraction) -> dict[str, Any]:
    """A FractionalPercent in JSON; which fraction a percentage is lives in
    :mod:`meshchaos.istio.route_policy` (docs/ISTIO_SEMANTICS.md §5, §6)."""
    return {"numerator": fraction.numerator, "denominator": fraction.denominator}


def socket_address(port: int) -> dict[str, Any]:
    """A loopback socket address: the local mesh binds and dials only 127.0.0.1."""
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


def typed(type_name: str, **fields: Any) -> dict[str, Any]:
    """A ``google.protobuf.Any`` in JSON form."""
    return {"@type": TYPE_PREFIX + type_name, **fields}


def cluster_name(port: int, subset: str | None, fqdn: str) -> str:
    """``outbound|<port>|<subset>|<fqdn>`` (Istio ``model.BuildSubsetKey``)."""
    return f"outbound|{port}|{subset or ''}|{fqdn}"
