"""The building blocks: duration parsing and the name, host and retryOn rules."""

from __future__ import annotations

import pytest

from meshchaos.istio.durations import (
    DurationSyntaxError,
    check_duration,
    parse_duration,
    parse_duration_ns,
)
from meshchaos.istio.names import (
    check_labels,
    check_regex,
    check_retry_on,
    check_wildcard_domain,
    is_dns1123_label,
)
from meshchaos.istio.policies import is_prime


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("2s", 2.0, id="seconds"),
        pytest.param("0.5s", 0.5, id="fraction"),
        pytest.param("1.5s", 1.5, id="protobuf-json"),
        pytest.param("500ms", 0.5, id="millis"),
        pytest.param("2m", 120.0, id="minutes"),
        pytest.param("1h", 3600.0, id="hours"),
        pytest.param("1h30m", 5400.0, id="compound"),
        pytest.param("250000us", 0.25, id="micros"),
        pytest.param(".5s", 0.5, id="leading-dot"),
        pytest.param("0", 0.0, id="bare-zero"),
        pytest.param("-1s", -1.0, id="negative"),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "10", "1.5", "s", ".s", "1 s", "1sec", "1d", "--1s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(DurationSyntaxError):
        parse_duration_ns(text)


def test_parse_duration_is_exact_in_nanoseconds() -> None:
    assert parse_duration_ns("1.0005s") == 1_000_500_000
    assert parse_duration_ns("0.1s") == 100_000_000


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("1ms", None),
        ("10m", None),
        ("0s", "must be >= 1ms"),
        ("999us", "must be >= 1ms"),
        ("-5s", "must be >= 1ms"),
        ("1.5ms", "must be a whole number of milliseconds"),
    ],
)
def test_check_duration(text: str, problem: str | None) -> None:
    got = check_duration(parse_duration_ns(text))
    assert (got is None) if problem is None else (got is not None and got.startswith(problem))


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("reviews", True),
        ("Reviews", True),  # istiod's DNS-1123 labels accept upper case
        ("reviews.default.svc.cluster.local", True),
        ("*.example.com", True),
        ("*", True),
        ("*-web.example.com", True),
        ("example.com.", True),
        ("", False),
        ("a..b", False),
        ("bad_host", False),
        ("foo.*.com", False),
        ("10.0.0.1", False),  # all-numeric top-level domain; callers accept IPs separately
        ("x" * 64, False),
    ],
)
def test_check_wildcard_domain(host: str, ok: bool) -> None:
    assert (check_wildcard_domain(host) is None) is ok


def test_dns1123_label_length_limit() -> None:
    assert is_dns1123_label("a" * 63)
    assert not is_dns1123_label("a" * 64)
    assert not is_dns1123_label("-v1")


@pytest.mark.parametrize(
    ("token", "ok"),
    [
        ("5xx", True),
        ("gateway-error", True),
        ("retriable-status-codes", True),
        ("unavailable", True),
        ("503", True),
        ("+503", True),  # Go's strconv.Atoi accepts a sign
        ("418", True),
        (" 503", False),  # not trimmed
        ("5xx ", False),
        ("599", False),
        ("", False),
        ("5XX", False),
    ],
)
def test_check_retry_on(token: str, ok: bool) -> None:
    assert (check_retry_on(token) is None) is ok


def test_labels() -> None:
    assert check_labels({"version": "v1", "app.kubernetes.io/name": "x", "empty": ""}) == []
    assert check_labels({"bad key!": "v"}) == ['invalid label key "bad key!"']
    assert check_labels({"k": "-v"}) == ['invalid label value "-v" for key "k"']


def test_regex_approximates_re2() -> None:
    assert check_regex("/reviews/[0-9]+") is None
    assert check_regex("[[:alpha:]]+") is None  # Python warns here; the warning must not escape
    assert check_regex("(a)\\1") is not None  # backreference: RE2 has none
    assert check_regex("(?<=a)b") is not None


def test_is_prime_matches_envoy() -> None:
    assert [n for n in range(20) if is_prime(n)] == [1, 2, 3, 5, 7, 11, 13, 17, 19]
    assert is_prime(65537)
    assert not is_prime(1000)
