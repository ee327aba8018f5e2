"""Per-route policy pieces of istiod's route translation: match, retries, timeout, headers,
fault, mirror fraction and hash policy.

Sources (istio/istio 1.29): ``pilot/pkg/networking/core/route/route.go``
(``TranslateRouteMatch``, ``setTimeout``, ``TranslateHeadersOperations``, ``TranslateFault``,
``MirrorPercent``, ``consistentHashToHashPolicy``) and ``route/retry/retry.go``
(``ConvertPolicy``, ``parseRetryOn``). See docs/ISTIO_SEMANTICS.md §1, §3-§6.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from meshchaos.istio.model import (
    ConsistentHash,
    HeaderOperations,
    Headers,
    HTTPFaultInjection,
    HTTPMatchRequest,
    HTTPRetry,
    MatchKind,
    StringMatch,
)
from meshchaos.istio.names import GRPC_STATUS_CODES
from meshchaos.mesh.local._xds_common import duration, percent_hundred, percent_million, typed

DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
_PREVIOUS_HOSTS = {
    "name": "envoy.retry_host_predicates.previous_hosts",
    "typed_config": typed("envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"),
}
# Codes Go's http.StatusText knows (parseRetryOn keeps only those); Python's HTTPStatus
# additionally knows nothing Go lacks for 1xx-5xx except what we drop below.
_GO_STATUS_CODES = frozenset(s.value for s in HTTPStatus) - {306}

# pkg/util/grpc SupportedGRPCStatus, shared with validation.
GRPC_STATUS = GRPC_STATUS_CODES


# ---------------------------------------------------------------- retries, timeout
def default_retry_policy(consistent_hash: bool = False) -> dict[str, Any]:
    """Istio's built-in retry policy (1.24+: no retriable status codes)."""
    policy: dict[str, Any] = {
        "retry_on": DEFAULT_RETRY_ON,
        "num_retries": 2,
        "host_selection_retry_max_attempts": 5,
    }
    # DefaultConsistentHashPolicy drops previous_hosts: a hashed request must not move hosts.
    if not consistent_hash:
        policy["retry_host_predicate"] = [_PREVIOUS_HOSTS]
    return policy


def _parse_retry_on(retry_on: str) -> tuple[str, list[int]]:
    tokens, codes = [], []
    for raw in retry_on.split(","):
        part = raw.strip()
        if not part:
            continue
        if part.isdigit() and int(part) in _GO_STATUS_CODES:
            codes.append(int(part))
        else:
            tokens.append(part)
    return ",".join(tokens), codes


def convert_retry(retry: HTTPRetry | None, consistent_hash: bool) -> dict[str, Any] | None:
    """``retry.ConvertPolicy``: the route retry policy, or None for ``attempts <= 0``."""
    policy = default_retry_policy(consistent_hash)
    if retry is None:
        return policy
    if retry.attempts <= 0:
        return None
    policy["num_retries"] = retry.attempts
    if retry.retry_on:
        retry_on, codes = _parse_retry_on(retry.retry_on)
        if codes and "retriable-status-codes" not in retry_on:
            retry_on += ",retriable-status-codes"
        policy["retry_on"] = retry_on
        if codes:
            policy["retriable_status_codes"] = codes
    if retry.per_try_timeout is not None:
        policy["per_try_timeout"] = duration(retry.per_try_timeout)
    if retry.retry_ignore_previous_hosts is not None:
        if retry.retry_ignore_previous_hosts:
            policy["retry_host_predicate"] = [_PREVIOUS_HOSTS]
        else:
            policy.pop("retry_host_predicate", None)
    if retry.retry_remote_localities:
        policy["retry_priority"] = {
            "name": "envoy.retry_priorities.previous_priorities",
            "typed_config": typed(
                "envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig",
                update_frequency=2,
            ),
        }
    if retry.backoff is not None:
        policy["retry_back_off"] = {"base_interval": duration(retry.backoff)}
    return policy


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
    """``TranslateFault``: the per-route HTTPFault for the (empty) fault filter."""
    out = typed("envoy.extensions.filters.http.fault.v3.HTTPFault")
    delay = fault.delay
    # No percentage and no deprecated percent means 0 %: Istio emits percent 0/HUNDRED, which
    # never fires; we omit the delay instead (same behaviour, clearer config).
    if delay is not None and delay.fixed_delay is not None:
        if delay.percentage is not None:
            out["delay"] = {
                "fixed_delay": duration(delay.fixed_delay),
                "percentage": percent_million(delay.percentage),
            }
        elif delay.percent:
            out["delay"] = {
                "fixed_delay": duration(delay.fixed_delay),
                "percentage": percent_hundred(delay.percent),
            }
    abort = fault.abort
    if abort is not None:
        # Istio leaves an absent abort percentage unset; Envoy reads unset as 0/HUNDRED
        # (never aborts, [E]). We write that 0 explicitly so the config says what happens.
        pct = (
            percent_million(abort.percentage)
            if abort.percentage is not None
            else percent_hundred(0)
        )
        if abort.http_status is not None:
            out["abort"] = {"http_status": abort.http_status, "percentage": pct}
        elif abort.grpc_status is not None:
            out["abort"] = {"grpc_status": GRPC_STATUS[abort.grpc_status], "percentage": pct}
        else:  # http2Error: "Non-HTTP type abort faults are not yet supported" (route.go)
            warnings.append("fault.abort without httpStatus/grpcStatus is dropped (as istiod)")
    return out


def mirror_fraction(percentage: float | None) -> dict[str, Any] | None:
    if percentage is None:
        return percent_hundred(100)  # MirrorPercent: absent -> 100 %
    if percentage <= 0:
        return None  # explicit 0 -> no mirroring
    return percent_million(percentage)


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
