"""DestinationRule ``loadBalancer`` settings (``validation.go validateLoadBalancer``)."""

from __future__ import annotations

import math
from typing import Any

from meshchaos.istio._fields import Reader
from meshchaos.istio.model import ConsistentHash, LoadBalancerSettings, LoadBalancerSimple

# validateLoadBalancer: Envoy's Maglev table must be a prime below this bound.
MAGLEV_TABLE_SIZE_LIMIT = 5_000_011


def is_prime(x: int) -> bool:
    """Envoy's ``isPrime`` (``source/common/common/utility.cc``), which istiod mirrors."""
    if 0 < x < 4:
        return True
    if x % 2 == 0:
        return False
    return all(x % factor for factor in range(3, math.isqrt(x) + 1, 2))


def parse_load_balancer(value: Any, path: str, r: Reader) -> LoadBalancerSettings | None:
    """``loadBalancer``: ``simple`` or ``consistentHash`` (a oneof), plus warmup."""
    raw = r.mapping(value, path)
    if raw is None:
        return None
    simple = None
    name = r.string(raw.get("simple"), f"{path}.simple")
    if name is not None:
        try:
            simple = LoadBalancerSimple(name)
        except ValueError:
            choices = ", ".join(m.value for m in LoadBalancerSimple)
            r.add(f"{path}.simple", f'unknown load balancer "{name}" (one of {choices})')
    if raw.get("simple") is not None and raw.get("consistentHash") is not None:
        r.add(path, "only one of simple or consistentHash may be set")
    consistent = _parse_consistent_hash(raw.get("consistentHash"), f"{path}.consistentHash", r)
    return LoadBalancerSettings(
        simple=simple,
        consistent_hash=consistent,
        warmup_duration=_parse_warmup(raw, path, r),
    )


def _parse_warmup(raw: dict[str, Any], path: str, r: Reader) -> float | None:
    if raw.get("warmupDurationSecs") is not None:
        return r.duration(raw.get("warmupDurationSecs"), f"{path}.warmupDurationSecs")
    warm = r.mapping(raw.get("warmup"), f"{path}.warmup")
    if warm is None:
        return None
    if warm.get("duration") is None:
        r.add(f"{path}.warmup.duration", "duration is required")
        return None
    minimum = r.percent(warm.get("minimumPercent"), f"{path}.warmup.minimumPercent")
    if minimum is not None and minimum > 100:
        r.add(
            f"{path}.warmup.minimumPercent",
            "minimumPercent value should be less than or equal to 100",
        )
    aggression = r.mapping(warm.get("aggression"), f"{path}.warmup.aggression")
    if aggression is not None:
        level = r.number(aggression.get("value", 0.0), f"{path}.warmup.aggression.value")
        if level is not None and level < 1:
            r.add(f"{path}.warmup.aggression", "aggression should be greater than or equal to 1")
    return r.duration(warm.get("duration"), f"{path}.warmup.duration")


def _parse_consistent_hash(value: Any, path: str, r: Reader) -> ConsistentHash | None:
    raw = r.mapping(value, path)
    if raw is None:
        return None
    cookie_name = None
    cookie_ttl = None
    cookie = r.mapping(raw.get("httpCookie"), f"{path}.httpCookie")
    if cookie is not None:
        cookie_name = r.string(cookie.get("name"), f"{path}.httpCookie.name")
        if not cookie_name:
            r.add(f"{path}.httpCookie.name", "name required for HttpCookie")
        # A ttl of 0s is meaningful for cookies (session cookie), so no 1ms rule here.
        cookie_ttl = r.duration(cookie.get("ttl"), f"{path}.httpCookie.ttl", validate=False)
    ring = r.integer(raw.get("minimumRingSize"), f"{path}.minimumRingSize", minimum=0)
    ring_hash = r.mapping(raw.get("ringHash"), f"{path}.ringHash")
    maglev = r.mapping(raw.get("maglev"), f"{path}.maglev")
    if ring and (ring_hash is not None or maglev is not None):
        r.add(path, "only one of MinimumRingSize or Maglev/Ringhash can be specified")
    if ring_hash is not None:
        ring = r.integer(
            ring_hash.get("minimumRingSize"), f"{path}.ringHash.minimumRingSize", minimum=0
        )
    table = None
    if maglev is not None:
        table = r.integer(maglev.get("tableSize", 0), f"{path}.maglev.tableSize", minimum=0)
        if table is not None:
            where = f"{path}.maglev.tableSize"
            if table == 0:
                r.add(where, "tableSize must be set for maglev")
            elif table >= MAGLEV_TABLE_SIZE_LIMIT:
                r.add(where, f"tableSize must be less than {MAGLEV_TABLE_SIZE_LIMIT} for maglev")
            elif not is_prime(table):
                r.add(where, "tableSize must be a prime number for maglev")
    return ConsistentHash(
        http_header_name=r.string(raw.get("httpHeaderName"), f"{path}.httpHeaderName"),
        http_cookie_name=cookie_name,
        http_cookie_ttl=cookie_ttl,
        use_source_ip=bool(r.boolean(raw.get("useSourceIp"), f"{path}.useSourceIp")),
        http_query_parameter_name=r.string(
            raw.get("httpQueryParameterName"), f"{path}.httpQueryParameterName"
        ),
        minimum_ring_size=ring or None,
        maglev_table_size=table or None,
    )
