"""meshchaos.oracle: what a set of Istio policies should produce on an app topology.

``predict(resources, RequestClass(...))`` returns a :class:`Prediction`: the exact
mixture of outcome classes with latency bands (bounds for connection pools and outlier
detection), the mirror shares, expected proxy counters and a readable reasoning trail.
"""

from meshchaos.oracle.predict import DEFAULT_TIMING, Timing, outcome_class, predict
from meshchaos.oracle.prediction import (
    ConditionalShare,
    LatencyBand,
    LatencySplit,
    OutcomeShare,
    Prediction,
    RequestClass,
)
from meshchaos.oracle.topology import (
    BOOKINFO,
    Behaviour,
    CallEdge,
    PathCalls,
    Response,
    Service,
    Topology,
    Workload,
)

__all__ = [
    "BOOKINFO",
    "DEFAULT_TIMING",
    "Behaviour",
    "CallEdge",
    "ConditionalShare",
    "LatencyBand",
    "LatencySplit",
    "OutcomeShare",
    "PathCalls",
    "Prediction",
    "RequestClass",
    "Response",
    "Service",
    "Timing",
    "Topology",
    "Workload",
    "outcome_class",
    "predict",
]
