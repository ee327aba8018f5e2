"""meshchaos: chaos and resilience tests for Istio service meshes.

A scenario applies Istio policy to a mesh, drives load through it, and checks the
observed outcomes against what the policy predicts. The names a scenario needs are
importable from here::

    from meshchaos import Chaos, RequestClass, matches

    def test_ratings_abort(chaos: Chaos) -> None:
        chaos.apply("my-ratings-abort.yaml")
        prediction = chaos.predict(RequestClass(path="/productpage", concurrency=12))
        observed = chaos.load(prediction.request, chaos.size(prediction, max_requests=2000))
        chaos.expect(observed).to(matches(prediction), *chaos.counters_match(prediction, observed))

They are loaded on first use, so that ``import meshchaos`` (the CLI, the pytest plugin
in an unrelated run) does not pay for the statistics stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from meshchaos.errors import (
    BackendUnavailable,
    ConfigInvalid,
    LoadError,
    MeshChaosError,
    MeshError,
    PolicyDeviation,
)

if TYPE_CHECKING:
    from meshchaos.check import (
        Check,
        CheckOutcome,
        CheckReport,
        ChecksFailed,
        counter_between,
        counter_matches,
        during,
        expect,
        late_share,
        latency_within,
        matches,
        no_errors,
        p50_below,
        p99_below,
        percentile_below,
        share,
        status_share,
    )
    from meshchaos.load import LoadResult, Sample
    from meshchaos.manifests import PolicyNotFound, find_policy
    from meshchaos.mesh.base import Applied, Mesh
    from meshchaos.oracle import LatencyBand, OutcomeShare, Prediction, RequestClass, predict
    from meshchaos.oracle.kill import KillPrediction
    from meshchaos.scenario import (
        Chaos,
        Instances,
        Mirror,
        Observation,
        PolicyApplier,
        Scenario,
        Sizing,
        bookinfo,
        httpbin,
    )

# name -> the module it is defined in (loaded by __getattr__ on first use).
_LAZY: dict[str, str] = {
    **dict.fromkeys(
        (
            "Check",
            "CheckOutcome",
            "CheckReport",
            "ChecksFailed",
            "counter_between",
            "counter_matches",
            "during",
            "expect",
            "late_share",
            "latency_within",
            "matches",
            "no_errors",
            "p50_below",
            "p99_below",
            "percentile_below",
            "share",
            "status_share",
        ),
        "meshchaos.check",
    ),
    **dict.fromkeys(("LoadResult", "Sample"), "meshchaos.load"),
    **dict.fromkeys(("PolicyNotFound", "find_policy"), "meshchaos.manifests"),
    **dict.fromkeys(("Applied", "Mesh"), "meshchaos.mesh.base"),
    **dict.fromkeys(
        ("LatencyBand", "OutcomeShare", "Prediction", "RequestClass", "predict"),
        "meshchaos.oracle",
    ),
    "KillPrediction": "meshchaos.oracle.kill",
    **dict.fromkeys(
        (
            "Chaos",
            "Instances",
            "Mirror",
            "Observation",
            "PolicyApplier",
            "Scenario",
            "Sizing",
            "bookinfo",
            "httpbin",
        ),
        "meshchaos.scenario",
    ),
}

__all__ = [
    "Applied",
    "BackendUnavailable",
    "Chaos",
    "Check",
    "CheckOutcome",
    "CheckReport",
    "ChecksFailed",
    "ConfigInvalid",
    "Instances",
    "KillPrediction",
    "LatencyBand",
    "LoadError",
    "LoadResult",
    "Mesh",
    "MeshChaosError",
    "MeshError",
    "Mirror",
    "Observation",
    "OutcomeShare",
    "PolicyApplier",
    "PolicyDeviation",
    "PolicyNotFound",
    "Prediction",
    "RequestClass",
    "Sample",
    "Scenario",
    "Sizing",
    "bookinfo",
    "counter_between",
    "counter_matches",
    "during",
    "expect",
    "find_policy",
    "httpbin",
    "late_share",
    "latency_within",
    "matches",
    "no_errors",
    "p50_below",
    "p99_below",
    "percentile_below",
    "predict",
    "share",
    "status_share",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'meshchaos' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
