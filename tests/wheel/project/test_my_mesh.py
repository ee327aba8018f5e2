"""A user's own chaos tests, written against the installed meshchaos plugin."""

from __future__ import annotations

from meshchaos import Chaos, RequestClass, matches

HTTPBIN = RequestClass(
    path="/status/200", source="client", host="httpbin", port=8000, concurrency=16
)


def test_my_abort_policy_does_what_it_says(chaos: Chaos) -> None:
    chaos.apply("my-httpbin-abort")
    prediction = chaos.predict(HTTPBIN)
    sizing = chaos.size(prediction, max_requests=4000)
    observed = chaos.load(HTTPBIN, sizing)
    chaos.expect(observed).to(matches(prediction), *chaos.counters_match(prediction, observed))


def test_bookinfo_all_v1_from_the_packaged_samples(chaos: Chaos) -> None:
    chaos.apply("virtual-service-all-v1")
    request = RequestClass(path="/productpage", concurrency=8)
    prediction = chaos.predict(request)
    observed = chaos.load(request, chaos.size(prediction, max_requests=200))
    chaos.expect(observed).to(matches(prediction))
