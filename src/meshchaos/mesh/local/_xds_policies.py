"""Per-route policy pieces of istiod's route translation: match, retries, timeout, headers,
fault, mirror fraction and hash policy.

Sources (istio/istio 1.29): ``pilot/pkg/networking/core/route/route.go``
(``TranslateRouteMatch``, ``setTimeout``, ``TranslateHeadersOperations``, ``TranslateFault``,
``consistentHashToHashPolicy``). See docs/ISTIO_SEMANTICS.md §1, §3-§6. Which retry policy,
fault fractions and mirror share a route has is :mod:`meshchaos.istio.route_policy`; this
module renders them as Envoy JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meshchaos.istio.model import (
    ConsistentHash,
    HeaderOperations,
    Headers,
    HTTPFaultInjection,
    HTTPMatchRequest,
    MatchKind,
    StringMatch,
)
from meshchaos.istio.route_policy import RetryPolicy, effective_fault
from meshchaos.mesh.local._xds_common import duration, fractional_percent, typed

_PREVIOUS_HOSTS = {
    "name": "envoy.retry_host_predicates.previous_hosts",
    "typed_config": typed("envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"),
}


# ---------------------------------------------------------------- retries, timeout
def retry_policy_json(policy: RetryPolicy) -> dict[str, Any]:
    """An Envoy RetryPolicy; which policy a route has is ``effective_retry_policy`` (§4)."""
    out: dict[str, Any] = {
        "retry_on": policy.retry_on,
        "num_retries": policy.num_retries,
        "host_selection_retry_max_attempts": policy.host_selection_retry_max_attempts,
    }
    if policy.previous_hosts:
        out["retry_host_predicate"] = [_PREVIOUS_HOSTS]
    if policy.retriable_status_codes:
        out["retriable_status_codes"] = list(policy.retriable_status_codes)
    if policy.per_try_timeout is not None:
        out["per_try_timeout"] = duration(policy.per_try_timeout)
    if policy.retry_remote_localities:
        out["retry_priority"] = {
            "name": "envoy.retry_priorities.previous_priorities",
            "typed_config": typed(
                "envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig",
                update_frequency=2,
            ),
        }
    if policy.backoff is not None:
        out["retry_back_off"] = {"base_interval": duration(policy.backoff)}
    return out


def set_timeout(action: dict[str, Any], timeout: float | None) -> None:
    """``setTimeout``: 0s (disabled) unless the VirtualService sets one; gRPC capped alike."""
    value = duration(timeout) if timeout is not None else "0s"
    action["timeout"] = value
    action["max_grpc_timeout"] = value


# ---------------------------------------------------------------- match
def _string_match(m: StringMatch) -> dict[str, Any]:
    if m.kind is MatchKind.EXACT:
        return {"exact": m.value}
    if m.kind is MatchKind.PREFIX:
        return {"prefix": m.value}
    return {"safe_regex": {"regex": m.value}}


def _is_presence(m: StringMatch | None) -> bool:
    # canBeConvertedToPresentMatch: empty match, or the non-RE2 "*" (istio/istio#20629).
    return m is None or m.kind is None or (m.kind is MatchKind.REGEX and m.value == "*")


def _header_matcher(name: str, m: StringMatch | None) -> dict[str, Any]:
    if _is_presence(m):
        return {"name": name, "present_match": True}
    assert m is not None
    return {"name": name, "string_match": _string_match(m)}


def translate_match(match: HTTPMatchRequest | None) -> dict[str, Any]:
    """``TranslateRouteMatch``: an Istio match block -> an Envoy RouteMatch."""
    if match is None:
        return {"prefix": "/"}
    out: dict[str, Any] = {"prefix": "/"}
    uri = match.uri
    if uri is not None and uri.kind is MatchKind.EXACT:
        out = {"path": uri.value}
    elif uri is not None and uri.kind is MatchKind.PREFIX:
        out = {"prefix": uri.value}
    elif uri is not None and uri.kind is MatchKind.REGEX:
        out = {"safe_regex": {"regex": uri.value}}
    out["case_sensitive"] = not match.ignore_uri_case
    headers = [_header_matcher(k, v) for k, v in match.headers.items()]
    for name, m in match.without_headers.items():
        h = _header_matcher(name, m)
        h["invert_match"] = True
        if not _is_presence(m):  # conflicts with present_match, so Istio omits it there
            h["treat_missing_header_as_empty"] = True
        headers.append(h)
    headers.sort(key=lambda h: str(h["name"]))
    for pseudo, m2 in (
        (":method", match.method),
        (":authority", match.authority),
        (":scheme", match.scheme),
    ):
        if m2 is not None:
            headers.append(_header_matcher(pseudo, m2))
    if headers:
        out["headers"] = headers
    query = []
    for name, m3 in sorted(match.query_params.items()):
        if _is_presence(m3):
            query.append({"name": name, "present_match": True})
        else:
            query.append({"name": name, "string_match": _string_match(m3)})
    if query:
        out["query_parameters"] = query
    return out


def is_catch_all_route(route: dict[str, Any]) -> bool:
    """``IsCatchAllRoute`` on the translated route."""
    m = route["match"]
    path_all = m.get("prefix") == "/" or m.get("safe_regex", {}).get("regex") in ("*", ".*")
    return bool(path_all and not m.get("headers") and not m.get("query_parameters"))


# ---------------------------------------------------------------- actions
def _header_values(values: Mapping[str, str], append: bool) -> tuple[list[dict[str, Any]], str]:
    action = "APPEND_IF_EXISTS_OR_ADD" if append else "OVERWRITE_IF_EXISTS_OR_ADD"
    out, authority = [], ""
    for key, value in sorted(values.items()):
        if key.lower() in (":authority", "host"):
            authority = value
        if key.startswith(":") or key.lower() == "host":
            continue  # isInternalHeader: Envoy cannot modify these
        out.append({"header": {"key": key, "value": value}, "append_action": action})
    return out, authority


def translate_headers(headers: Headers) -> tuple[dict[str, Any], str]:
    """``TranslateHeadersOperations``: Envoy header fields and an authority rewrite ("")."""
    out: dict[str, Any] = {}
    req = headers.request or HeaderOperations()
    resp = headers.response or HeaderOperations()
    req_set, set_auth = _header_values(req.set, append=False)
    req_add, add_auth = _header_values(req.add, append=True)
    resp_set, _ = _header_values(resp.set, append=False)
    resp_add, _ = _header_values(resp.add, append=True)
    for key, value in (
        ("request_headers_to_add", req_set + req_add),
        ("response_headers_to_add", resp_set + resp_add),
        ("request_headers_to_remove", [k for k in req.remove if not _internal(k)]),
        ("response_headers_to_remove", [k for k in resp.remove if not _internal(k)]),
    ):
        if value:
            out[key] = value
    return out, set_auth or add_auth


def _internal(key: str) -> bool:
    return key.startswith(":") or key.lower() == "host"


def translate_fault(fault: HTTPFaultInjection, warnings: list[str]) -> dict[str, Any]:
    """``TranslateFault``: the per-route HTTPFault for the (empty) fault filter.

    What fires how often is ``effective_fault`` (§5). A delay at 0 % is left out (Istio
    emits percent 0/HUNDRED, which never fires: same behaviour, clearer config). An absent
    abort percentage is written as an explicit 0 so the config says what happens.
    """
    out = typed("envoy.extensions.filters.http.fault.v3.HTTPFault")
    effective = effective_fault(fault)
    if effective is None:
        return out
    if effective.delay is not None:
        out["delay"] = {
            "fixed_delay": duration(effective.delay.seconds),
            "percentage": fractional_percent(effective.delay.fraction),
        }
    abort = effective.abort
    if abort is not None:
        pct = fractional_percent(abort.fraction)
        if abort.http_status is not None:
            out["abort"] = {"http_status": abort.http_status, "percentage": pct}
        else:
            out["abort"] = {"grpc_status": abort.grpc_status, "percentage": pct}
    warnings.extend(effective.dropped)
    return out


def hash_policy(h: ConsistentHash) -> dict[str, Any] | None:
    """``consistentHashToHashPolicy``."""
    if h.http_header_name:
        return {"header": {"header_name": h.http_header_name}}
    if h.http_cookie_name:
        cookie: dict[str, Any] = {"name": h.http_cookie_name}
        if h.http_cookie_ttl is not None:
            cookie["ttl"] = duration(h.http_cookie_ttl)
        return {"cookie": cookie}
    if h.use_source_ip:
        return {"connection_properties": {"source_ip": True}}
    if h.http_query_parameter_name:
        return {"query_parameter": {"name": h.http_query_parameter_name}}
    return None
