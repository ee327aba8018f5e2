"""VirtualService ``http[]`` -> Envoy routes, as istiod's ``route.go`` builds them.

Sources (istio/istio 1.29): ``pilot/pkg/networking/core/route/route.go``
(``BuildHTTPRoutesForVirtualService``, ``translateRoute``, ``TranslateRouteMatch``,
``applyHTTPRouteDestination``, ``TranslateFault``, ``MirrorPercent``, ``setTimeout``) and
``route/retry/retry.go`` (``ConvertPolicy``, ``parseRetryOn``). See ISTIO_SEMANTICS.md §1-§6.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from meshchaos.istio.model import (
    ConsistentHash,
    Destination,
    HeaderOperations,
    Headers,
    HTTPFaultInjection,
    HTTPMatchRequest,
    HTTPRetry,
    HTTPRoute,
    MatchKind,
    StringMatch,
    VirtualService,
)
from meshchaos.mesh.local._xds_common import (
    FAULT_FILTER,
    cluster_name,
    duration,
    percent_hundred,
    percent_million,
    typed,
)
from meshchaos.mesh.local.topology import resolve_host

DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
_PREVIOUS_HOSTS = {
    "name": "envoy.retry_host_predicates.previous_hosts",
    "typed_config": typed("envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"),
}
# Codes Go's http.StatusText knows (parseRetryOn keeps only those); Python's HTTPStatus
# additionally knows nothing Go lacks for 1xx-5xx except what we drop below.
_GO_STATUS_CODES = frozenset(s.value for s in HTTPStatus) - {306}

GRPC_STATUS = {
    "OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5, "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9, "ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12,
    "INTERNAL": 13, "UNAVAILABLE": 14, "DATA_LOSS": 15, "UNAUTHENTICATED": 16,
}  # fmt: skip

HashLookup = Callable[[str, str | None, int], ConsistentHash | None]


@dataclass(frozen=True)
class RouteContext:
    """Per-proxy, per-listener-port facts the route translation depends on."""

    proxy_labels: Mapping[str, str]
    gateway_names: frozenset[str]  # {"mesh"} for sidecars, {"ns/name", ...} for the gateway
    listen_port: int
    services: Mapping[str, tuple[int, ...]]  # fqdn -> ports
    hash_for: HashLookup = field(default=lambda fqdn, subset, port: None)
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- retries, timeout
def default_retry_policy(consistent_hash: bool = False) -> dict[str, Any]:
    """Istio's built-in retry policy (1.24+: no retriable status codes)."""
    policy: dict[str, Any] = {
        "retry_on": DEFAULT_RETRY_ON,
        "num_retries": 2,
        "host_selection_retry_max_attempts": "5",
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
    for pseudo, m2 in ((":method", match.method), (":authority", match.authority),
                       (":scheme", match.scheme)):  # fmt: skip
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


def _source_matches(match: HTTPMatchRequest | None, ctx: RouteContext, ns: str) -> bool:
    """``sourceMatchHTTP``: match-level gateways, else sourceLabels/sourceNamespace."""
    if match is None:
        return True
    if match.gateways:
        return any(_qualify_gateway(g, ns) in ctx.gateway_names for g in match.gateways)
    if not all(ctx.proxy_labels.get(k) == v for k, v in match.source_labels.items()):
        return False
    return match.source_namespace in (None, "", "default")


def _qualify_gateway(name: str, namespace: str) -> str:
    return name if name == "mesh" or "/" in name else f"{namespace}/{name}"


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
            out["delay"] = {"fixed_delay": duration(delay.fixed_delay),
                            "percentage": percent_million(delay.percentage)}  # fmt: skip
        elif delay.percent:
            out["delay"] = {"fixed_delay": duration(delay.fixed_delay),
                            "percentage": percent_hundred(delay.percent)}  # fmt: skip
    abort = fault.abort
    if abort is not None:
        # Istio leaves an absent abort percentage unset; Envoy reads unset as 0/HUNDRED
        # (never aborts, [E]). We write that 0 explicitly so the config says what happens.
        pct = (percent_million(abort.percentage) if abort.percentage is not None
               else percent_hundred(0))  # fmt: skip
        if abort.http_status is not None:
            out["abort"] = {"http_status": abort.http_status, "percentage": pct}
        elif abort.grpc_status is not None:
            out["abort"] = {"grpc_status": GRPC_STATUS[abort.grpc_status], "percentage": pct}
        else:  # http2Error: "Non-HTTP type abort faults are not yet supported" (route.go)
            warnings.append("fault.abort without httpStatus/grpcStatus is dropped (as istiod)")
    return out


def _mirror_fraction(percentage: float | None) -> dict[str, Any] | None:
    if percentage is None:
        return percent_hundred(100)  # MirrorPercent: absent -> 100 %
    if percentage <= 0:
        return None  # explicit 0 -> no mirroring
    return percent_million(percentage)


def destination_cluster(dest: Destination, ctx: RouteContext, ns: str) -> str:
    """``GetDestinationCluster``: explicit port, else the only port, else the listener port."""
    fqdn = resolve_host(dest.host, ns)
    ports = ctx.services.get(fqdn, ())
    if dest.port is not None:
        port = dest.port.number
    elif len(ports) == 1:
        port = ports[0]
    else:
        port = ctx.listen_port
    return cluster_name(port, dest.subset, fqdn)


def _hash_policy(h: ConsistentHash) -> dict[str, Any] | None:
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


def _hash_of(cluster: str, ctx: RouteContext) -> ConsistentHash | None:
    _, port, subset, fqdn = cluster.split("|", 3)
    return ctx.hash_for(fqdn, subset or None, int(port))


def _route_action(http: HTTPRoute, route: dict[str, Any], authority: str, ctx: RouteContext,
                  ns: str) -> dict[str, Any]:  # fmt: skip
    """``applyHTTPRouteDestination``."""
    action: dict[str, Any] = {}
    set_timeout(action, http.timeout)
    if http.rewrite is not None:
        if http.rewrite.uri:
            action["prefix_rewrite"] = http.rewrite.uri
        if http.rewrite.authority:
            authority = http.rewrite.authority
    if authority:
        action["host_rewrite_literal"] = authority
    mirrors = []
    for mp in http.mirror_policies():
        fraction = _mirror_fraction(mp.percentage)
        if fraction is not None:
            mirrors.append({
                "cluster": destination_cluster(mp.destination, ctx, ns),
                "runtime_fraction": {"default_value": fraction},
                "trace_sampled": False,
                # Istio 1.28+ sets DISABLE_SHADOW_HOST_SUFFIX: no "-shadow" host suffix.
                "disable_shadow_host_suffix_append": True,
            })  # fmt: skip
    if mirrors:
        action["request_mirror_policies"] = mirrors
    hashes: list[dict[str, Any]] = []
    consistent = False
    if len(http.route) == 1:
        dst = http.route[0]
        action["cluster"] = destination_cluster(dst.destination, ctx, ns)
        if dst.headers is not None:
            ops, dst_authority = translate_headers(dst.headers)
            for key, value in ops.items():
                route[key] = [*route.get(key, []), *value]
            if dst_authority and "host_rewrite_literal" not in action:
                action["host_rewrite_literal"] = dst_authority
        h = _hash_of(action["cluster"], ctx)
        consistent = h is not None
        if h is not None and (hp := _hash_policy(h)) is not None:
            hashes.append(hp)
    else:
        weighted = []
        for dst in http.route:
            if dst.weight == 0:
                continue  # "Ignore 0 weighted clusters if there are other clusters"
            cw: dict[str, Any] = {"name": destination_cluster(dst.destination, ctx, ns),
                                  "weight": dst.weight}  # fmt: skip
            if dst.headers is not None:
                ops, dst_authority = translate_headers(dst.headers)
                cw.update(ops)
                if dst_authority:
                    cw["host_rewrite_literal"] = dst_authority
            h = _hash_of(cw["name"], ctx)
            if h is not None and (hp := _hash_policy(h)) is not None:
                hashes.append(hp)
            weighted.append(cw)
        action["weighted_clusters"] = {"clusters": weighted}
    if hashes:
        action["hash_policy"] = hashes
    retry = convert_retry(http.retries, consistent)
    if retry is not None:
        action["retry_policy"] = retry
    return action


def translate_route(vs: VirtualService, http: HTTPRoute, match: HTTPMatchRequest | None,
                    ctx: RouteContext) -> dict[str, Any] | None:  # fmt: skip
    """``translateRoute``: one Envoy route, or None when this proxy/port is not selected."""
    ns = vs.metadata.namespace
    if match is not None and match.port is not None and match.port != ctx.listen_port:
        return None
    if not _source_matches(match, ctx, ns):
        return None
    name = http.name or ""
    if match is not None and match.name:
        name = f"{name}.{match.name}"
    route: dict[str, Any] = {"name": name, "match": translate_match(match)}
    route["metadata"] = {"filter_metadata": {"istio": {"config": (
        f"/apis/networking.istio.io/v1/namespaces/{ns}/virtual-service/{vs.metadata.name}")}}}
    authority = ""
    if http.headers is not None:
        ops, authority = translate_headers(http.headers)
        route.update(ops)
    if http.redirect is not None:
        redirect: dict[str, Any] = {"response_code": _REDIRECT_CODES[http.redirect.redirect_code]}
        if http.redirect.uri:
            redirect["path_redirect"] = http.redirect.uri
        if http.redirect.authority:
            redirect["host_redirect"] = http.redirect.authority
        route["redirect"] = redirect
    elif http.direct_response is not None:
        direct: dict[str, Any] = {"status": http.direct_response.status}
        if http.direct_response.body is not None:
            direct["body"] = {"inline_string": http.direct_response.body}
        route["direct_response"] = direct
    else:
        route["route"] = _route_action(http, route, authority, ctx, ns)
    route["decorator"] = {"operation": _operation(route, vs.metadata.name, ctx.listen_port)}
    if http.fault is not None:
        route["typed_per_filter_config"] = {FAULT_FILTER: translate_fault(http.fault, ctx.warnings)}
    return route


_REDIRECT_CODES = {301: "MOVED_PERMANENTLY", 302: "FOUND", 303: "SEE_OTHER",
                   307: "TEMPORARY_REDIRECT", 308: "PERMANENT_REDIRECT"}  # fmt: skip


def _operation(route: dict[str, Any], vs_name: str, port: int) -> str:
    """``GetRouteOperation``: the tracing operation name."""
    m = route["match"]
    path = m.get("path") or (m["prefix"] + "*" if "prefix" in m else None)
    path = path or m.get("safe_regex", {}).get("regex", "/*")
    cluster = route.get("route", {}).get("cluster", "")
    if cluster.startswith("outbound|"):
        _, p, _, fqdn = cluster.split("|", 3)
        return f"{fqdn}:{p}{path}"
    return f"{vs_name}:{port}{path}"


def routes_for_virtual_service(vs: VirtualService, ctx: RouteContext) -> list[dict[str, Any]]:
    """``BuildHTTPRoutesForVirtualService``: in order, stopping after the first catch-all."""
    out: list[dict[str, Any]] = []
    for http in vs.http:
        catch_all = False
        if not http.match:
            if (r := translate_route(vs, http, None, ctx)) is not None:
                out.append(r)
            catch_all = True
        else:
            for match in http.match:
                r = translate_route(vs, http, match, ctx)
                if r is not None:
                    out.append(r)
                    if is_catch_all_route(r):
                        catch_all = True
                        break
        if catch_all:
            break
    return out


def default_route(fqdn: str, port: int, hash_policy: ConsistentHash | None) -> dict[str, Any]:
    """``BuildDefaultHTTPOutboundRoute``: ``/`` -> the service cluster, no timeout, default retries."""
    cluster = cluster_name(port, None, fqdn)
    action: dict[str, Any] = {"cluster": cluster}
    set_timeout(action, None)
    action["retry_policy"] = default_retry_policy(hash_policy is not None)
    if hash_policy is not None and (hp := _hash_policy(hash_policy)) is not None:
        action["hash_policy"] = [hp]
    return {"name": "default", "match": {"prefix": "/"}, "route": action,
            "decorator": {"operation": f"{fqdn}:{port}/*"}}  # fmt: skip
