"""Name, host, label, header and regex rules of istiod's validation.

Each ``check_*`` returns a problem message or ``None``. The rules follow
``pkg/config/labels/instance.go`` (DNS-1123 labels, label keys and values),
``pkg/config/validation/agent/validation.go`` (hosts, ports) and
``pkg/config/validation/validation.go`` (headers, regexes, retryOn, gRPC codes).
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache

# labels/instance.go: DNS-1123 labels there accept upper case letters too.
_DNS1123_LABEL = r"[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?"
_DNS1123_LABEL_RE = re.compile(f"^{_DNS1123_LABEL}$")
# A wildcard label is "*", or a label with a leading "*" or "*-".
_WILDCARD_LABEL_RE = re.compile(rf"^(?:\*|(?:\*|\*-)?{_DNS1123_LABEL})$")
_QUALIFIED_NAME = r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_KEY_RE = re.compile(rf"^({_DNS1123_LABEL}(?:\.{_DNS1123_LABEL})*/)?({_QUALIFIED_NAME})$")
_LABEL_VALUE_RE = re.compile(f"^(?:{_QUALIFIED_NAME})?$")
_MAX_LABEL = 63

# validation.go validHeaderNameRegex: RFC 7230 tchars; upper case is allowed.
_HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~A-Za-z0-9]+$")
_PSEUDO_HEADERS = frozenset({":method", ":scheme", ":authority", ":path", ":status"})
JWT_CLAIM_PREFIX = "@request.auth.claims"

# validation.go validateStringRegexp: Envoy's RE2 program-size limit, approximated by length.
MAX_REGEX_LENGTH = 1024
# Python's `re` stands in for RE2. RE2 refuses these Python-only constructs, so we do too:
# lookarounds, named and numbered backreferences, atomic groups.
_NOT_RE2 = re.compile(r"\(\?<?[=!]|\(\?P=|\(\?>|\\[1-9]")

# Go's net/http StatusText: the integers a retryOn token may be (retry.go parseRetryOn).
KNOWN_HTTP_STATUSES = frozenset(
    {
        *(100, 101, 102, 103),
        *(200, 201, 202, 203, 204, 205, 206, 207, 208, 226),
        *(300, 301, 302, 303, 304, 305, 307, 308),
        *range(400, 419),
        *(421, 422, 423, 424, 425, 426, 428, 429, 431, 451),
        *(500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511),
    }
)
# validation.go supportedRetryOnPolicies (Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on).
RETRY_ON_POLICIES = frozenset(
    {
        "5xx",
        "gateway-error",
        "reset",
        "reset-before-request",
        "connect-failure",
        "retriable-4xx",
        "refused-stream",
        "retriable-status-codes",
        "retriable-headers",
        "envoy-ratelimited",
        "http3-post-connect-failure",
        "cancelled",
        "deadline-exceeded",
        "internal",
        "resource-exhausted",
        "unavailable",
    }
)
# Go's strconv.Atoi grammar: no surrounding spaces, so " 503" is not a status code.
_ATOI_RE = re.compile(r"^[+-]?[0-9]+$")
# pkg/util/grpc SupportedGRPCStatus: the canonical gRPC code names.
GRPC_STATUS_CODES: dict[str, int] = {
    "OK": 0,
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "OUT_OF_RANGE": 11,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}


def is_dns1123_label(value: str) -> bool:
    """True for a DNS-1123 label as Istio defines it (upper case allowed, <= 63 chars)."""
    return len(value) <= _MAX_LABEL and _DNS1123_LABEL_RE.match(value) is not None


def check_wildcard_domain(domain: str) -> str | None:
    """``ValidateWildcardDomain``: an FQDN or short name, with an optional wildcard first label."""
    if not domain:
        return "empty domain name not allowed"
    if len(domain) > 255:
        return f'domain name "{domain}" too long (max 255)'
    first, _, rest = domain.partition(".")
    if len(first) > _MAX_LABEL or _WILDCARD_LABEL_RE.match(first) is None:
        return f'domain name "{domain}" invalid (label "{first}" invalid)'
    if rest:
        return _check_labels(domain, rest)
    return None


def check_fqdn(domain: str) -> str | None:
    """``ValidateFQDN``: every label a DNS-1123 label, no wildcard."""
    if not domain:
        return "empty domain name not allowed"
    if len(domain) > 255:
        return f'domain name "{domain}" too long (max 255)'
    return _check_labels(domain, domain)


def _check_labels(domain: str, labels: str) -> str | None:
    parts = labels.split(".")
    for i, label in enumerate(parts):
        # A trailing dot (an absolute name) leaves one empty last label, which is fine.
        if label == "" and i == len(parts) - 1 and i > 0:
            continue
        if not is_dns1123_label(label):
            return f'domain name "{domain}" invalid (label "{label}" invalid)'
    if parts[-1].isdigit():
        return (
            f'domain name "{domain}" invalid (top level domain "{parts[-1]}" cannot be all-numeric)'
        )
    return None


def is_ip_address(value: str) -> bool:
    """True for an IPv4 or IPv6 address (istiod lets VirtualService hosts be IPs)."""
    import ipaddress

    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def check_port(number: int) -> str | None:
    """``ValidatePort``."""
    if 1 <= number <= 65535:
        return None
    return f"port number {number} must be in the range 1..65535"


def check_labels(labels: dict[str, str]) -> list[str]:
    """``labels.Instance.Validate``: Kubernetes label keys and values."""
    problems = []
    for key, value in labels.items():
        match = _LABEL_KEY_RE.match(key)
        if match is None or len(match.group(2)) > _MAX_LABEL:
            problems.append(f'invalid label key "{key}"')
        if _LABEL_VALUE_RE.match(value) is None:
            problems.append(f'invalid label value "{value}" for key "{key}"')
    return problems


def check_match_header_name(name: str) -> str | None:
    """``ValidateHTTPHeaderNameOrJwtClaimRoute`` without the JWT form (checked by the caller)."""
    if not name:
        return "header name cannot be empty"
    if name in _PSEUDO_HEADERS or _HEADER_NAME_RE.match(name):
        return None
    return f'header name "{name}" is not a valid header name'


def is_internal_header(name: str) -> bool:
    """Headers Envoy cannot modify: ``Host`` and every ``:``-prefixed pseudo-header."""
    return name.startswith(":") or name.lower() == "host"


def is_authority_header(name: str) -> bool:
    return name.lower() in (":authority", "host")


def check_regex(pattern: str) -> str | None:
    """``validateStringRegexp``, with Python's ``re`` approximating RE2.

    Known gaps: RE2-only syntax Python lacks (``\\pL``, ``\\z``) is rejected here but
    accepted by istiod; lookarounds, backreferences and atomic groups are rejected as RE2
    does, but Python 3.11's possessive quantifiers (``a*+``) slip through.
    """
    if not pattern:
        return "regex string match should not be empty"
    if len(pattern) > MAX_REGEX_LENGTH:
        return f"regex is too large, max length allowed is {MAX_REGEX_LENGTH}"
    return _compile_problem(pattern)


@lru_cache(maxsize=4096)
def _compile_problem(pattern: str) -> str | None:
    if _NOT_RE2.search(pattern):
        return f'invalid regex "{pattern}": uses syntax RE2 does not support'
    try:
        # Python warns on some sets RE2 accepts ("[[:alpha:]]"); a warning must not fail a run.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            re.compile(pattern)
    except re.error as exc:
        return f'invalid regex "{pattern}": {exc}'
    return None


def check_retry_on(token: str) -> str | None:
    """One comma-separated ``retryOn`` token (``validateHTTPRetry``); tokens are not trimmed."""
    if token in RETRY_ON_POLICIES:
        return None
    if _ATOI_RE.match(token) and int(token) in KNOWN_HTTP_STATUSES:
        return None
    return f'"{token}" is not a valid retryOn policy'
