"""Run on its own, this must fail: it applies a 30% abort and predicts a 10% one."""

from __future__ import annotations

from meshchaos import Chaos, RequestClass, matches

HTTPBIN = RequestClass(
    path="/status/200", source="client", host="httpbin", port=8000, concurrency=16
)


def test_told_ten_percent(chaos: Chaos) -> None:
    chaos.apply("my-httpbin-abort")
    prediction = chaos.predict(HTTPBIN, told=["my-httpbin-abort-10pct"])
    observed = chaos.load(HTTPBIN, chaos.size(prediction, max_requests=4000))
    chaos.expect(observed).to(matches(prediction))
