"""In-mesh client → httpbin: faults, retries, timeouts, weights, mirrors.

See docs/ISTIO_SEMANTICS.md §2-§6.
"""

from __future__ import annotations

import pytest
from oracle_helpers import OVER, SLACK, check, policy, total, vs

from meshchaos.oracle import RequestClass, predict


def client(path: str) -> RequestClass:
    return RequestClass(path=path, source="client", host="httpbin", port=8000)


def httpbin(http: str) -> list:  # type: ignore[type-arg]
    return policy(vs("httpbin", http))


def test_abort_30pct_is_not_retried() -> None:
    p = predict(
        httpbin("""\
  - fault: {abort: {httpStatus: 503, percentage: {value: 30}}}
    retries: {attempts: 2, retryOn: 5xx}
    route: [{destination: {host: httpbin, subset: v1}}]
"""),
        client("/get"),
    )
    check(p, "status:503", 0.3, 0.0, OVER)
    check(p, "status:200", 0.7)
    assert p.counters == {"fault.aborts_injected": pytest.approx(0.3)}


def test_weighted_status_with_three_retries_on_5xx() -> None:
    p = predict(
        httpbin("""\
  - retries: {attempts: 3, retryOn: 5xx}
    route: [{destination: {host: httpbin, subset: v1}}]
"""),
        client("/status/200:0.5,503:0.5"),
    )
    check(p, "status:503", 0.5**4)
    check(p, "status:200", 1 - 0.5**4)
    # retries happen after the 1st, 2nd and 3rd failures: 0.5 + 0.25 + 0.125.
    assert p.counters["upstream_rq_retry"] == pytest.approx(0.875)
    # backoff before the 3rd retry can reach (2^3-1) x 25 ms = 175 ms; the band allows it.
    assert p.share("status:503").latency.high == pytest.approx(  # type: ignore[union-attr]
        0.025 + 0.075 + 0.175 + OVER
    )


def test_default_policy_does_not_retry_503() -> None:
    p = predict([], client("/status/200:0.5,503:0.5"))
    check(p, "status:503", 0.5)
    assert "upstream_rq_retry" not in p.counters


def test_retry_on_integer_code() -> None:
    p = predict(
        httpbin("""\
  - retries: {attempts: 1, retryOn: "503"}
    route: [{destination: {host: httpbin}}]
"""),
        client("/status/200:0.5,503:0.5"),
    )
    check(p, "status:503", 0.25)


def test_delay_outside_route_timeout_fast_upstream() -> None:
    p = predict(
        httpbin("""\
  - fault: {delay: {fixedDelay: 1.5s, percentage: {value: 100}}}
    timeout: 1s
    route: [{destination: {host: httpbin}}]
"""),
        client("/get"),
    )
    check(p, "status:200", 1.0, 1.5 - SLACK, 1.5 + OVER)


def test_delay_then_route_timeout_504_at_2_5s() -> None:
    p = predict(
        httpbin("""\
  - fault: {delay: {fixedDelay: 1.5s, percentage: {value: 100}}}
    timeout: 1s
    route: [{destination: {host: httpbin}}]
"""),
        client("/delay/1.2"),
    )
    check(p, "status:504", 1.0, 2.5 - 2 * SLACK, 2.5 + OVER)


def test_per_try_timeout_retried_twice_under_5xx() -> None:
    p = predict(
        httpbin("""\
  - retries: {attempts: 2, perTryTimeout: 0.5s, retryOn: 5xx}
    route: [{destination: {host: httpbin}}]
"""),
        client("/delay/1"),
    )
    # 3 tries x 0.5 s; backoff before retries 1 and 2 is up to 25 + 75 ms.
    check(p, "status:504", 1.0, 1.5 - 3 * SLACK, 1.5 + 0.1 + OVER)


def test_per_try_timeout_not_retried_by_default_retry_on() -> None:
    p = predict(
        httpbin("""\
  - retries: {attempts: 2, perTryTimeout: 0.5s}
    route: [{destination: {host: httpbin}}]
"""),
        client("/delay/1"),
    )
    check(p, "status:504", 1.0, 0.5 - SLACK, 0.5 + OVER)


def test_mirror_50pct() -> None:
    p = predict(
        httpbin("""\
  - route: [{destination: {host: httpbin, subset: v1}}]
    mirror: {host: httpbin, subset: v2}
    mirrorPercentage: {value: 50}
"""),
        client("/get"),
    )
    assert p.mirrored == {"httpbin/v2": pytest.approx(0.5, abs=1e-9)}
    check(p, "status:200", 1.0)


def test_mirror_not_sent_for_aborted_requests() -> None:
    p = predict(
        httpbin("""\
  - route: [{destination: {host: httpbin, subset: v1}}]
    fault: {abort: {httpStatus: 500, percentage: {value: 20}}}
    mirror: {host: httpbin, subset: v2}
"""),
        client("/get"),
    )
    assert p.mirrored["httpbin/v2"] == pytest.approx(0.8, abs=1e-9)


def test_weights_one_to_two() -> None:
    p = predict(
        httpbin("""\
  - route:
    - {destination: {host: httpbin, subset: v1}, weight: 1}
    - {destination: {host: httpbin, subset: v2}, weight: 2}
"""),
        client("/status/418"),
    )
    check(p, "status:418", 1.0)
    assert any("weight 1/3" in line for line in p.reasoning)
    assert any("weight 2/3" in line for line in p.reasoning)


def test_weights_split_outcomes_and_zero_is_dropped() -> None:
    resources = policy(
        vs(
            "reviews",
            """\
  - route:
    - {destination: {host: reviews, subset: v1}, weight: 1}
    - {destination: {host: reviews, subset: v2}, weight: 2}
    - {destination: {host: reviews, subset: v3}, weight: 0}
""",
        )
    )
    p = predict(resources, RequestClass())
    check(p, "reviews-v1", 1 / 3)
    check(p, "reviews-v2-black", 2 / 3)
    assert p.share("reviews-v3-red") is None
    assert total(p) == pytest.approx(1.0, abs=1e-12)


def test_unknown_subset_is_503() -> None:
    p = predict(
        httpbin("  - route: [{destination: {host: httpbin, subset: v7}}]\n"), client("/get")
    )
    check(p, "status:503", 1.0, 0.0, OVER)


def test_no_route_matches_is_404() -> None:
    p = predict(
        httpbin("""\
  - match: [{uri: {prefix: /status}}]
    route: [{destination: {host: httpbin}}]
"""),
        client("/get"),
    )
    check(p, "status:404", 1.0)


def test_abort_without_percentage_never_fires() -> None:
    p = predict(
        httpbin("""\
  - fault: {abort: {httpStatus: 500}}
    route: [{destination: {host: httpbin}}]
"""),
        client("/get"),
    )
    check(p, "status:200", 1.0)


def test_header_and_without_headers_matching() -> None:
    resources = httpbin("""\
  - match: [{withoutHeaders: {x-canary: {exact: "yes"}}}]
    fault: {abort: {httpStatus: 403, percentage: {value: 100}}}
    route: [{destination: {host: httpbin}}]
  - route: [{destination: {host: httpbin}}]
""")
    check(predict(resources, client("/get")), "status:403", 1.0)
    canary = RequestClass(
        path="/get", source="client", host="httpbin", port=8000, headers={"X-Canary": "yes"}
    )
    check(predict(resources, canary), "status:200", 1.0)
