"""parse_config_dump on a real (trimmed) config_dump of the local mesh's client sidecar,
running the policy of tests/integration/test_envoy_dumps.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from meshchaos.errors import MeshError
from meshchaos.mesh.config_dump import Fault, RetryPolicy, parse_config_dump

DUMP: dict[str, Any] = json.loads(
    (Path(__file__).parent / "data" / "config_dump.client.json").read_text()
)
VIEW = parse_config_dump(DUMP)
V1, V2, V3 = (f"outbound|9080|{v}|reviews.default.svc.cluster.local" for v in ("v1", "v2", "v3"))


def test_routes_weights_fault_timeout_and_retries() -> None:
    outbound = VIEW.routes["outbound"]
    assert outbound.version.isdigit()
    vh = outbound.virtual_host("reviews.default.svc.cluster.local")
    assert outbound.virtual_host("reviews:9080") is vh
    jason, default = vh.routes
    assert jason.clusters == ((V2, 100),)
    assert jason.timeout_s == 2.0
    assert jason.fault == Fault(
        delay_s=0.05, delay_percent=50.0, abort_status=503, abort_percent=10.0
    )
    assert jason.retry == RetryPolicy(("5xx", "connect-failure"), 3, per_try_timeout_s=0.5)
    assert default.clusters == ((V1, 80), (V3, 20))
    assert default.timeout_s == 0.0
    assert default.fault is None
    assert default.retry is not None
    assert default.retry.num_retries == 2  # Istio's default policy


def test_clusters_pool_and_outlier_detection() -> None:
    for name in (V1, V2, V3):
        cluster = VIEW.clusters[name]
        assert cluster.circuit_breakers is not None
        assert cluster.circuit_breakers.max_connections == 7
        assert cluster.circuit_breakers.max_pending_requests == 3
        assert cluster.circuit_breakers.max_requests == 11
        assert cluster.circuit_breakers.max_retries == 4
        assert cluster.max_requests_per_connection == 5
        assert cluster.outlier_detection is not None
        assert cluster.outlier_detection.consecutive_5xx == 2
        assert cluster.outlier_detection.base_ejection_time_s == 30.0


def test_an_unknown_domain_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="no virtual host for 'ratings'"):
        VIEW.routes["outbound"].virtual_host("ratings")


def test_fractional_percent_denominators_and_string_integers() -> None:
    cluster = {
        "name": "c",
        "circuit_breakers": {
            "thresholds": [
                {"priority": "HIGH", "max_connections": 1},
                {"max_requests": "4294967295"},
            ]
        },
    }
    route = {
        "match": {"prefix": "/"},
        "route": {"cluster": "c"},
        "typed_per_filter_config": {
            "f": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
                "abort": {"http_status": 500, "percentage": {"numerator": 25}},
                "delay": {
                    "fixed_delay": "7s",
                    "percentage": {"numerator": 15, "denominator": "TEN_THOUSAND"},
                },
            }
        },
    }
    dump = {
        "configs": [
            {"@type": "x.ClustersConfigDump", "static_clusters": [{"cluster": cluster}]},
            {
                "@type": "x.RoutesConfigDump",
                "static_route_configs": [
                    {
                        "route_config": {
                            "name": "r",
                            "virtual_hosts": [{"name": "v", "routes": [route]}],
                        }
                    }
                ],
            },
        ]
    }
    view = parse_config_dump(dump)
    breakers = view.clusters["c"].circuit_breakers
    assert breakers is not None
    assert (breakers.max_connections, breakers.max_requests) == (None, 4294967295)
    (only,) = view.routes["r"].virtual_hosts[0].routes
    assert only.fault == Fault(
        delay_s=7.0, delay_percent=0.15, abort_status=500, abort_percent=25.0
    )
    assert only.timeout_s is None  # Envoy's default applies


@pytest.mark.parametrize(
    ("dump", "match"),
    [
        ({}, "no 'configs' list"),
        (
            {
                "configs": [
                    {
                        "@type": "x.RoutesConfigDump",
                        "dynamic_route_configs": [
                            {
                                "route_config": {
                                    "name": "r",
                                    "virtual_hosts": [
                                        {
                                            "name": "v",
                                            "routes": [
                                                {"route": {"cluster": "c", "timeout": "soon"}}
                                            ],
                                        }
                                    ],
                                }
                            }
                        ],
                    }
                ]
            },
            r"r/v\[0\]\.timeout: not a duration: 'soon'",
        ),
    ],
)
def test_not_a_dump_is_an_error_saying_where(dump: dict[str, Any], match: str) -> None:
    with pytest.raises(MeshError, match=match):
        parse_config_dump(dump)
