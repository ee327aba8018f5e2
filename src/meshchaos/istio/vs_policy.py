"""VirtualService ``http[].fault`` and ``http[].retries``.

Rules from ``pkg/config/validation/validation.go`` (``validateHTTPFaultInjection*``,
``validatePercentage``, ``validateHTTPStatus``, ``validateGRPCStatus``,
``validateHTTPRetry``).
"""

from __future__ import annotations

from typing import Any

from meshchaos.istio._fields import Reader
from meshchaos.istio.model import Abort, Delay, HTTPFaultInjection, HTTPRetry
from meshchaos.istio.names import GRPC_STATUS_CODES, check_retry_on

# Envoy's fault filter requires abort http_status in [200, 600) (fault.proto), while
# istiod accepts 600 (validateHTTPStatus checks `status > 600`), so 600 is NACKed.
ENVOY_MAX_ABORT_STATUS = 599


def check_fault_percentage(value: float) -> str | None:
    """``validatePercentage``: 0, or within [0.0001, 100]."""
    if value < 0.0 or value > 100.0 or 0.0 < value < 0.0001:
        return f"percentage {value:g} is neither 0.0, nor in range [0.0001, 100.0]"
    return None


def parse_fault(value: Any, path: str, r: Reader) -> HTTPFaultInjection | None:
    """``http[].fault``; ``None`` when absent or invalid."""
    raw = r.mapping(value, path)
    if raw is None:
        return None
    before = r.problems.count
    if raw.get("delay") is None and raw.get("abort") is None:
        r.add(path, "HTTP fault injection must have an abort and/or a delay")
    delay = _parse_delay(raw.get("delay"), f"{path}.delay", r)
    abort = _parse_abort(raw.get("abort"), f"{path}.abort", r)
    if r.problems.count != before:
        return None
    return HTTPFaultInjection(delay=delay, abort=abort)


def _percentage(raw: dict[str, Any], path: str, r: Reader) -> float | None:
    value = r.percent(raw.get("percentage"), f"{path}.percentage")
    if value is not None:
        problem = check_fault_percentage(value)
        if problem is not None:
            r.add(f"{path}.percentage.value", problem)
    return value


def _parse_delay(value: Any, path: str, r: Reader) -> Delay | None:
    raw = r.mapping(value, path)
    if raw is None:
        return None
    percentage = _percentage(raw, path, r)
    # The deprecated int `percent` is not range-checked by istiod; only its type matters.
    percent = r.integer(raw.get("percent"), f"{path}.percent")
    fixed = r.duration(raw.get("fixedDelay"), f"{path}.fixedDelay")
    if raw.get("exponentialDelay") is not None:
        r.duration(raw.get("exponentialDelay"), f"{path}.exponentialDelay")
        r.add(f"{path}.exponentialDelay", "exponentialDelay not supported yet")
    # A delay without fixedDelay passes istiod; istiod then emits no delay (TranslateFault).
    return Delay(fixed_delay=fixed, percentage=percentage, percent=percent)


def _parse_abort(value: Any, path: str, r: Reader) -> Abort | None:
    raw = r.mapping(value, path)
    if raw is None:
        return None
    percentage = _percentage(raw, path, r)
    kinds = [k for k in ("httpStatus", "grpcStatus", "http2Error") if raw.get(k) is not None]
    if len(kinds) > 1:
        r.add(path, "only one of httpStatus, grpcStatus or http2Error may be set")
    http_status = r.integer(raw.get("httpStatus"), f"{path}.httpStatus")
    if http_status is not None:
        if http_status < 200 or http_status > 600:
            r.add(f"{path}.httpStatus", f"HTTP status {http_status} is not in range 200-599")
        elif http_status > ENVOY_MAX_ABORT_STATUS:
            # meshchaos addition: istiod accepts 600 but Envoy NACKs the route, so the
            # policy would silently never apply. Reject it up front, with its own message.
            r.add(
                f"{path}.httpStatus",
                f"Envoy rejects {http_status} (istiod accepts it, Envoy requires < 600; "
                "meshchaos rejects it up front)",
            )
    grpc_status = r.string(raw.get("grpcStatus"), f"{path}.grpcStatus")
    if grpc_status is not None and grpc_status not in GRPC_STATUS_CODES:
        r.add(
            f"{path}.grpcStatus",
            f'gRPC status "{grpc_status}" is not supported (use a name such as NOT_FOUND)',
        )
    http2_error = r.string(raw.get("http2Error"), f"{path}.http2Error")
    if raw.get("http2Error") is not None:
        r.add(f"{path}.http2Error", "HTTP/2 abort fault injection not supported yet")
    # An abort with no error type only warns in istiod; it is accepted here too.
    return Abort(
        http_status=http_status,
        grpc_status=grpc_status,
        http2_error=http2_error,
        percentage=percentage,
    )


def parse_retries(value: Any, path: str, r: Reader) -> HTTPRetry | None:
    """``http[].retries``; ``None`` when absent or invalid."""
    raw = r.mapping(value, path)
    if raw is None:
        return None
    before = r.problems.count
    attempts = r.integer(raw.get("attempts", 0), f"{path}.attempts")
    if attempts is not None and attempts < 0:
        r.add(f"{path}.attempts", "must be >= 0")
    per_try = r.duration(raw.get("perTryTimeout"), f"{path}.perTryTimeout")
    retry_on = r.string(raw.get("retryOn"), f"{path}.retryOn")
    remote = r.boolean(raw.get("retryRemoteLocalities"), f"{path}.retryRemoteLocalities")
    ignore_prev = r.boolean(raw.get("retryIgnorePreviousHosts"), f"{path}.retryIgnorePreviousHosts")
    backoff = r.duration(raw.get("backoff"), f"{path}.backoff")
    if attempts == 0 and (
        raw.get("perTryTimeout") is not None
        or retry_on
        or raw.get("retryRemoteLocalities") is not None
    ):
        r.add(path, "http retry policy configured when attempts are set to 0 (disabled)")
    if retry_on:
        # istiod splits on "," and does not trim: "5xx, 503" has the token " 503".
        for token in retry_on.split(","):
            problem = check_retry_on(token)
            if problem is not None:
                r.add(f"{path}.retryOn", problem)
    if r.problems.count != before or attempts is None:
        return None
    return HTTPRetry(
        attempts=attempts,
        per_try_timeout=per_try,
        retry_on=retry_on,
        retry_remote_localities=remote,
        retry_ignore_previous_hosts=ignore_prev,
        backoff=backoff,
    )
