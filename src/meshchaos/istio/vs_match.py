"""VirtualService ``http[].match[]``: StringMatch and HTTPMatchRequest.

Rules from ``pkg/config/validation/virtualservice.go validateHTTPRouteMatchRequest`` and
``validation.go validateStringMatch/validateStringMatchRegexp/validateGatewayNames``.
"""

from __future__ import annotations

from typing import Any

from meshchaos.istio._fields import Reader
from meshchaos.istio.model import HTTPMatchRequest, MatchKind, StringMatch
from meshchaos.istio.names import (
    JWT_CLAIM_PREFIX,
    check_fqdn,
    check_labels,
    check_match_header_name,
    check_port,
    check_regex,
    is_dns1123_label,
)

_KINDS = tuple(MatchKind)


def parse_string_match(value: Any, path: str, r: Reader) -> StringMatch | None:
    """An Istio StringMatch; ``{}`` is a presence match (``kind is None``)."""
    raw = r.mapping(value, path)
    if raw is None:
        return None
    present = [k for k in _KINDS if raw.get(k.value) is not None]
    if len(present) > 1:
        r.add(path, "only one of exact, prefix or regex may be set")
        return None
    if not present:
        return StringMatch(None)
    kind = present[0]
    where = f"{path}.{kind.value}"
    text = r.string(raw[kind.value], where)
    if text is None:
        return None
    if kind is MatchKind.PREFIX and text == "":
        r.add(where, "prefix string match should not be empty")
        return None
    if kind is MatchKind.REGEX:
        problem = check_regex(text)
        if problem is not None:
            r.add(where, problem)
            return None
    return StringMatch(kind, text)


def parse_http_match(
    value: Any, path: str, r: Reader, *, gateway_bound: bool
) -> HTTPMatchRequest | None:
    """One ``HTTPMatchRequest``; ``None`` when absent or invalid (problems are reported)."""
    raw = r.mapping(value, path)
    if raw is None:
        return None
    fields: dict[str, StringMatch | None] = {}
    for key in ("uri", "scheme", "method", "authority"):
        match = parse_string_match(raw.get(key), f"{path}.{key}", r)
        # An empty StringMatch on these constrains nothing (a present_match on a header
        # Envoy always has), so it is the same as no match at all.
        fields[key] = None if match is not None and match.kind is None else match
    headers = _header_matches(raw.get("headers"), f"{path}.headers", r, gateway_bound)
    without = _header_matches(raw.get("withoutHeaders"), f"{path}.withoutHeaders", r, gateway_bound)
    query = _query_matches(raw.get("queryParams"), f"{path}.queryParams", r)

    port = r.integer(raw.get("port"), f"{path}.port")
    if port is not None and port != 0:
        _report(r, f"{path}.port", check_port(port))
    source_labels = r.str_map(raw.get("sourceLabels"), f"{path}.sourceLabels")
    for problem in check_labels(source_labels):
        r.add(f"{path}.sourceLabels", problem)
    gateways = r.str_list(raw.get("gateways"), f"{path}.gateways")
    check_gateway_names(gateways, f"{path}.gateways", r)
    source_ns = r.string(raw.get("sourceNamespace"), f"{path}.sourceNamespace")
    if source_ns and not is_dns1123_label(source_ns):
        r.add(f"{path}.sourceNamespace", f'sourceNamespace match "{source_ns}" is invalid')
    return HTTPMatchRequest(
        name=r.string(raw.get("name"), f"{path}.name"),
        uri=fields["uri"],
        scheme=fields["scheme"],
        method=fields["method"],
        authority=fields["authority"],
        headers=headers,
        without_headers=without,
        query_params=query,
        port=port or None,
        source_labels=source_labels,
        gateways=gateways,
        source_namespace=source_ns or None,
        ignore_uri_case=bool(r.boolean(raw.get("ignoreUriCase"), f"{path}.ignoreUriCase")),
    )


def _header_matches(
    value: Any, path: str, r: Reader, gateway_bound: bool
) -> dict[str, StringMatch]:
    raw = r.mapping(value, path)
    out: dict[str, StringMatch] = {}
    for name, match_raw in (raw or {}).items():
        where = f"{path}.{name}"
        if not isinstance(name, str):
            r.add(path, f"header name {name!r} must be a string")
            continue
        if match_raw is None:
            r.add(where, f"header match {name} cannot be null")
            continue
        if name.startswith(JWT_CLAIM_PREFIX):
            if not gateway_bound:
                r.add(where, f"JWT claim based routing (key: {name}) is only supported for gateway")
        else:
            _report(r, where, check_match_header_name(name))
        match = parse_string_match(match_raw, where, r)
        if match is not None:
            out[name] = match
    return out


def _query_matches(value: Any, path: str, r: Reader) -> dict[str, StringMatch]:
    raw = r.mapping(value, path)
    out: dict[str, StringMatch] = {}
    for name, match_raw in (raw or {}).items():
        where = f"{path}.{name}"
        if match_raw is None:
            r.add(where, f"query param match {name} cannot be null")
            continue
        match = parse_string_match(match_raw, where, r)
        if match is not None:
            out[str(name)] = match
    return out


def check_gateway_names(names: tuple[str, ...], path: str, r: Reader) -> None:
    """``validateGatewayNames``: ``mesh``, ``name``, ``ns/name`` or a legacy FQDN."""
    for i, name in enumerate(names):
        where = f"{path}[{i}]"
        ns, slash, gw = name.partition("/")
        if not slash:
            _report(r, where, check_fqdn(name))
            continue
        if not ns or not gw:
            r.add(where, "config namespace and gateway name cannot be empty")
            continue
        if not is_dns1123_label(ns):
            r.add(where, f'invalid value for namespace: "{ns}"')
        if not is_dns1123_label(gw):
            r.add(where, f'invalid value for gateway name: "{gw}"')


def _report(r: Reader, path: str, problem: str | None) -> None:
    if problem is not None:
        r.add(path, problem)
