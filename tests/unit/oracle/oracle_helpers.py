"""Helpers for the oracle tests: YAML policies, and asserting a share and its band."""

from __future__ import annotations

import pytest

from meshchaos.istio.model import Resource
from meshchaos.istio.parse import load_text
from meshchaos.oracle import Prediction, Timing

TIMING = Timing()  # early_slack 0.005 per timer, overhead 0.25
SLACK, OVER = TIMING.early_slack, TIMING.overhead

DR_ALL = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings}
spec:
  host: ratings
  subsets:
  - {name: v1, labels: {version: v1}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin}
spec:
  host: httpbin
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
"""


def policy(yaml_text: str, *, with_drs: bool = True) -> list[Resource]:
    return load_text((DR_ALL + "---\n" if with_drs else "") + yaml_text)


def vs(host: str, http: str, name: str | None = None) -> str:
    return (
        f"apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
        f"metadata: {{name: {name or host}}}\nspec:\n  hosts: [{host}]\n  http:\n{http}"
    )


def check(
    p: Prediction,
    outcome: str,
    probability: float,
    low: float | None = None,
    high: float | None = None,
) -> None:
    """Assert ``outcome``'s share to 1e-9, and its band edges when given."""
    __tracebackhide__ = True
    share = p.share(outcome)
    assert share is not None, f"{outcome} missing; have {p.classes()}\n" + "\n".join(p.reasoning)
    assert share.probability == pytest.approx(probability, abs=1e-9), "\n".join(p.reasoning)
    if low is not None:
        assert share.latency.low == pytest.approx(low, abs=1e-9)
    if high is not None:
        assert share.latency.high == pytest.approx(high, abs=1e-9)


def total(p: Prediction) -> float:
    return sum(o.probability for o in p.outcomes)
