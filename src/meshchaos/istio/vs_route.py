"""VirtualService ``http[]`` entries: actions, destinations, mirrors and header operations.

Rules from ``pkg/config/validation/virtualservice.go`` (``validateHTTPRoute``,
``validateHTTPRouteConflict``, ``validateAuthorityRewrite``) and ``validation.go``
(``validateHTTPRouteDestinations``, ``validateDestination``, header operation names).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from meshchaos.istio._fields import Reader
from meshchaos.istio.model import (
    Destination,
    HeaderOperations,
    Headers,
    HTTPDirectResponse,
    HTTPMirrorPolicy,
    HTTPRedirect,
    HTTPRewrite,
    HTTPRoute,
    HTTPRouteDestination,
    PortSelector,
)
from meshchaos.istio.names import (
    check_port,
    check_wildcard_domain,
    is_authority_header,
    is_dns1123_label,
    is_internal_header,
)
from meshchaos.istio.vs_match import parse_http_match
from meshchaos.istio.vs_policy import parse_fault, parse_retries

# validation.go httpHeaderValueRegexp: no control characters but tab.
_BAD_HEADER_VALUE = re.compile("[\x00-\x08\x0a-\x1f\x7f]")


def parse_http_route(value: Any, path: str, r: Reader, *, gateway_bound: bool) -> HTTPRoute | None:
    """One ``http[]`` entry; ``None`` when invalid (every problem is reported)."""
    raw = r.mapping(value, path)
    if raw is None:
        if value is None:
            r.add(path, "http route may not be null")
        return None
    before = r.problems.count
    name = r.string(raw.get("name"), f"{path}.name")
    _check_conflicts(raw, path, r)
    if raw.get("delegate") is not None:
        r.add(f"{path}.delegate", "delegate VirtualServices are not supported by meshchaos")

    matches = []
    for i, item in enumerate(r.seq(raw.get("match"), f"{path}.match")):
        match = parse_http_match(item, f"{path}.match[{i}]", r, gateway_bound=gateway_bound)
        if match is not None:
            matches.append(match)
    route = parse_route_destinations(raw.get("route"), f"{path}.route", r)
    redirect = _parse_redirect(raw.get("redirect"), f"{path}.redirect", r)
    direct = _parse_direct_response(raw.get("directResponse"), f"{path}.directResponse", r)
    rewrite = _parse_rewrite(raw.get("rewrite"), f"{path}.rewrite", r)
    timeout = r.duration(raw.get("timeout"), f"{path}.timeout")
    retries = parse_retries(raw.get("retries"), f"{path}.retries", r)
    fault = parse_fault(raw.get("fault"), f"{path}.fault", r)
    mirror = None
    if raw.get("mirror") is not None:
        mirror = parse_destination(raw.get("mirror"), f"{path}.mirror", r)
    mirror_percentage = _parse_mirror_percentage(raw, path, r)
    mirrors = _parse_mirrors(raw.get("mirrors"), f"{path}.mirrors", r)
    headers = parse_headers(raw.get("headers"), f"{path}.headers", r)
    _check_authority_once(rewrite, headers, f"{path}.headers.request", r)

    if r.problems.count != before:
        return None
    return HTTPRoute(
        name=name,
        match=tuple(matches),
        route=route,
        redirect=redirect,
        direct_response=direct,
        rewrite=rewrite,
        timeout=timeout,
        retries=retries,
        fault=fault,
        mirror=mirror,
        mirror_percentage=mirror_percentage,
        mirrors=mirrors,
        headers=headers,
    )


def _check_conflicts(raw: dict[str, Any], path: str, r: Reader) -> None:
    has_route = bool(raw.get("route"))
    present = {
        k for k in ("redirect", "directResponse", "fault", "rewrite") if raw.get(k) is not None
    }
    if "redirect" in present:
        if has_route:
            r.add(path, "HTTP route cannot contain both route and redirect")
        if "fault" in present:
            r.add(path, "HTTP route cannot contain both fault and redirect")
        if "rewrite" in present:
            r.add(path, "HTTP route rule cannot contain both rewrite and redirect")
    if "directResponse" in present:
        if has_route:
            r.add(path, "HTTP route cannot contain both route and directResponse")
        if "fault" in present:
            r.add(path, "HTTP route cannot contain both fault and directResponse")
        if "redirect" in present:
            r.add(path, "HTTP route rule cannot contain both directResponse and redirect")
    if not has_route and not present & {"redirect", "directResponse"}:
        r.add(path, "HTTP route, redirect or directResponse is required")
    if raw.get("mirror") is not None and raw.get("mirrors"):
        r.add(path, "HTTP route cannot contain both mirror and mirrors")


def parse_destination(value: Any, path: str, r: Reader) -> Destination | None:
    """``validateDestination``: a host (not ``*``), an optional subset label and port."""
    raw = r.mapping(value, path)
    if raw is None:
        if value is None:
            r.add(path, "destination is required")
        return None
    host = r.string(raw.get("host"), f"{path}.host")
    if raw.get("host") is None or host == "":
        r.add(f"{path}.host", "empty domain name not allowed")
    elif host == "*":
        r.add(f"{path}.host", "invalid destination host *")
    elif host is not None:
        problem = check_wildcard_domain(host)
        if problem is not None:
            r.add(f"{path}.host", problem)
    subset = r.string(raw.get("subset"), f"{path}.subset")
    if subset and not is_dns1123_label(subset):
        r.add(f"{path}.subset", f"subset name is invalid: {subset}")
    port = None
    port_raw = r.mapping(raw.get("port"), f"{path}.port")
    if port_raw is not None:
        number = r.integer(port_raw.get("number", 0), f"{path}.port.number")
        if number is not None:
            problem = check_port(number)
            if problem is not None:
                r.add(f"{path}.port.number", problem)
            else:
                port = PortSelector(number)
    if not host:
        return None
    return Destination(host=host, subset=subset or None, port=port)


def parse_route_destinations(value: Any, path: str, r: Reader) -> tuple[HTTPRouteDestination, ...]:
    """``http[].route``: weights are >= 0 and not all 0 when there are several."""
    items = r.seq(value, path)
    out = []
    total = 0
    for i, item in enumerate(items):
        where = f"{path}[{i}]"
        raw = r.mapping(item, where)
        if raw is None:
            if item is None:
                r.add(where, "weight may not be nil")
            continue
        destination = parse_destination(raw.get("destination"), f"{where}.destination", r)
        weight = r.integer(raw.get("weight", 0), f"{where}.weight")
        if weight is not None:
            if weight < 0:
                r.add(f"{where}.weight", "must be >= 0")
            total += weight
        headers = parse_headers(raw.get("headers"), f"{where}.headers", r)
        if destination is not None and weight is not None:
            out.append(HTTPRouteDestination(destination, max(weight, 0), headers))
    # No sum-to-100 rule: istiod only rejects an all-zero split.
    if len(items) > 1 and total == 0:
        r.add(path, "total destination weight = 0")
    return tuple(out)


def parse_headers(value: Any, path: str, r: Reader) -> Headers | None:
    """Request and response header operations, with istiod's header-name rules."""
    raw = r.mapping(value, path)
    if raw is None:
        return None
    request = _parse_header_ops(raw.get("request"), f"{path}.request", r, is_request=True)
    response = _parse_header_ops(raw.get("response"), f"{path}.response", r, is_request=False)
    return Headers(request=request, response=response)


def _parse_header_ops(
    value: Any, path: str, r: Reader, *, is_request: bool
) -> HeaderOperations | None:
    raw = r.mapping(value, path)
    if raw is None:
        return None
    set_ = r.str_map(raw.get("set"), f"{path}.set")
    add = r.str_map(raw.get("add"), f"{path}.add")
    remove = r.str_list(raw.get("remove"), f"{path}.remove")
    for op, entries in (("set", set_), ("add", add)):
        for name, header_value in entries.items():
            # Request set/add may carry :authority or Host (ValidateHTTPHeaderWithAuthority
            # OperationName); everything else follows ValidateHTTPHeaderOperationName.
            _check_op_name(name, f"{path}.{op}", r, authority_ok=is_request)
            if _BAD_HEADER_VALUE.search(header_value):
                r.add(f"{path}.{op}.{name}", "header value contains control characters")
    for i, name in enumerate(remove):
        _check_op_name(name, f"{path}.remove[{i}]", r, authority_ok=False)
    return HeaderOperations(set=set_, add=add, remove=remove)


def _check_op_name(name: str, path: str, r: Reader, *, authority_ok: bool) -> None:
    if not name:
        r.add(path, "header name cannot be empty")
    elif authority_ok and is_authority_header(name):
        return
    elif name.lower() == "host":
        r.add(path, f'invalid header "{name}": cannot set Host header')
    elif is_internal_header(name):
        r.add(path, f'invalid header "{name}": header cannot have ":" prefix')


def _check_authority_once(
    rewrite: HTTPRewrite | None, headers: Headers | None, path: str, r: Reader
) -> None:
    """``validateAuthorityRewrite``: the authority may be rewritten in one place only."""
    sources = 1 if rewrite is not None and rewrite.authority else 0
    request = headers.request if headers is not None else None
    if request is not None:
        sources += sum(1 for k in request.set if is_authority_header(k))
        sources += sum(1 for k in request.add if is_authority_header(k))
    if sources > 1:
        r.add(path, "authority header cannot be set multiple times")


def _parse_redirect(value: Any, path: str, r: Reader) -> HTTPRedirect | None:
    raw = r.mapping(value, path)
    if raw is None:
        return None
    uri = r.string(raw.get("uri"), f"{path}.uri")
    authority = r.string(raw.get("authority"), f"{path}.authority")
    r.string(raw.get("scheme"), f"{path}.scheme")
    if not (uri or authority or raw.get("scheme") or raw.get("port") or raw.get("derivePort")):
        r.add(path, "redirect must specify URI, authority, scheme, or port")
    code = r.integer(raw.get("redirectCode"), f"{path}.redirectCode")
    if code and not 300 <= code <= 399:
        r.add(f"{path}.redirectCode", f"{code} is not a valid redirect code, must be 3xx")
    return HTTPRedirect(uri=uri or None, authority=authority or None, redirect_code=code or 301)


def _parse_direct_response(value: Any, path: str, r: Reader) -> HTTPDirectResponse | None:
    raw = r.mapping(value, path)
    if raw is None:
        return None
    status = r.integer(raw.get("status"), f"{path}.status")
    if status is None:
        if raw.get("status") is None:
            r.add(f"{path}.status", "required")
        return None
    if not 200 <= status <= 599:
        r.add(f"{path}.status", "directResponse.status must be between 200 and 599")
    body = None
    body_raw = r.mapping(raw.get("body"), f"{path}.body")
    if body_raw is not None:
        body = r.string(body_raw.get("string"), f"{path}.body.string")
        encoded = r.string(body_raw.get("bytes"), f"{path}.body.bytes")
        if encoded is not None:
            try:
                body = base64.b64decode(encoded, validate=True).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                r.add(f"{path}.body.bytes", "must be base64")
    return HTTPDirectResponse(status=status, body=body)


def _parse_rewrite(value: Any, path: str, r: Reader) -> HTTPRewrite | None:
    raw = r.mapping(value, path)
    if raw is None:
        return None
    uri = r.string(raw.get("uri"), f"{path}.uri")
    authority = r.string(raw.get("authority"), f"{path}.authority")
    regex_rewrite = raw.get("uriRegexRewrite")
    if not uri and not authority and regex_rewrite is None:
        r.add(path, "rewrite must specify URI, authority, or uriRegexRewrite")
    if uri and regex_rewrite is not None:
        r.add(path, "rewrite may only contain one of URI or uriRegexRewrite")
    return HTTPRewrite(uri=uri or None, authority=authority or None)


def _parse_mirror_percentage(raw: dict[str, Any], path: str, r: Reader) -> float | None:
    if raw.get("mirrorPercentage") is not None:
        value = r.percent(raw.get("mirrorPercentage"), f"{path}.mirrorPercentage")
        _check_mirror_value(value, f"{path}.mirrorPercentage.value", r)
        return value
    if raw.get("mirrorPercent") is not None:
        # Deprecated UInt32Value: a plain integer in YAML.
        number = r.integer(raw.get("mirrorPercent"), f"{path}.mirrorPercent", minimum=0)
        if number is not None and number > 100:
            r.add(
                f"{path}.mirrorPercent",
                f"mirror_percent must have a max value of 100 (it has {number})",
            )
            return None
        return None if number is None else float(number)
    return None


def _check_mirror_value(value: float | None, path: str, r: Reader) -> None:
    if value is not None and not 0.0 <= value <= 100.0:
        r.add(path, f"mirror percentage must be within 0-100 (it has {value:g})")


def _parse_mirrors(value: Any, path: str, r: Reader) -> tuple[HTTPMirrorPolicy, ...]:
    out = []
    for i, item in enumerate(r.seq(value, path)):
        where = f"{path}[{i}]"
        raw = r.mapping(item, where)
        if raw is None:
            if item is None:
                r.add(where, "mirror may not be null")
            continue
        destination = parse_destination(raw.get("destination"), f"{where}.destination", r)
        percentage = r.percent(raw.get("percentage"), f"{where}.percentage")
        _check_mirror_value(percentage, f"{where}.percentage.value", r)
        if destination is not None:
            out.append(HTTPMirrorPolicy(destination, percentage))
    return tuple(out)
