"""parse_stats and counter_total on real /stats text of the local mesh (trimmed; written by
tests/integration/test_envoy_dumps.py) and on Istio's stat names."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshchaos.errors import MeshError
from meshchaos.mesh.base import COUNTER_NAMES, CounterQuery, Side
from meshchaos.mesh.envoy_stats import counter_total, parse_stats, stats_filter

DATA = Path(__file__).parent / "data"
CLIENT = parse_stats((DATA / "stats.client.txt").read_text())
HTTPBIN = parse_stats((DATA / "stats.httpbin-v1.txt").read_text())


def test_real_text_parses_counters_and_gauges_and_skips_the_rest() -> None:
    assert CLIENT["http.outbound.fault.aborts_injected"] == 4
    assert (
        CLIENT["cluster.outbound|8000|v1|httpbin.default.svc.cluster.local.upstream_rq_retry"] == 60
    )
    assert "http.outbound.rds.outbound.version_text" not in CLIENT  # a text readout
    assert not any(k.endswith("upstream_rq_time") for k in CLIENT)  # a histogram
    assert all(isinstance(v, int) for v in CLIENT.values())


def test_histograms_with_values_are_skipped() -> None:
    text = (
        "cluster.x.upstream_rq_time: P0(nan,1) P25(nan,1.025) P50(nan,2.05) P100(nan,9.1)\n"
        "cluster.x.upstream_rq_total: 7\n"
        "server.memory_allocated: -3\n"
    )
    assert parse_stats(text) == {"cluster.x.upstream_rq_total": 7, "server.memory_allocated": -3}


@pytest.mark.parametrize(
    "line", ["cluster.x.upstream_rq_total 7", "cluster.x.upstream_rq_total: seven", "<html>"]
)
def test_a_malformed_line_is_an_error_naming_it(line: str) -> None:
    with pytest.raises(MeshError, match=r"line 2: not 'name: value'") as caught:
        parse_stats("a.b: 1\n" + line + "\n")
    assert repr(line) in str(caught.value)


def test_client_side_counters_of_the_real_client() -> None:
    def total(name: str, port: int | None = None) -> int | None:
        return counter_total(CLIENT, CounterQuery(name, Side.CLIENT, port=port))

    assert total("fault.aborts_injected") == 4
    assert total("fault.delays_injected") == 34
    assert total("upstream_rq_retry", port=8000) == 60  # 20 calls to /status/503, 3 retries each
    assert total("upstream_rq_retry", port=9080) == 0
    assert total("upstream_rq_total", port=8000) == 80
    # The client serves no Service, so it has no inbound cluster: nothing on its server side.
    assert counter_total(CLIENT, CounterQuery("upstream_rq_total", Side.SERVER)) is None


def test_server_side_is_the_inbound_cluster_on_the_app_port() -> None:
    served = CounterQuery("upstream_rq_total", Side.SERVER, ("httpbin-v1",), port=8000)
    assert counter_total(HTTPBIN, served) == 80  # every attempt reached the app
    assert counter_total(HTTPBIN, CounterQuery("upstream_rq_total", Side.SERVER, port=9)) is None
    assert counter_total(HTTPBIN, CounterQuery("fault.aborts_injected", Side.SERVER)) == 0


def test_a_stat_the_proxy_does_not_emit_is_none_not_zero() -> None:
    # Outlier detection is configured for reviews only (the DestinationRule of the capture).
    ejections = "outlier_detection.ejections_enforced_total"
    assert counter_total(CLIENT, CounterQuery(ejections, port=8000)) is None
    assert counter_total(CLIENT, CounterQuery(ejections, port=9080)) == 0


ISTIO = parse_stats(
    "http.outbound_0.0.0.0_9080.fault.aborts_injected: 5\n"
    "http.outbound_0.0.0.0_9080.fault.productpage-v1.aborts_injected: 5\n"  # per downstream
    "http.inbound_0.0.0.0_9080.fault.aborts_injected: 1\n"
    "http.inbound_0.0.0.0_8000.fault.aborts_injected: 2\n"
    "cluster.outbound|9080|v1|reviews.default.svc.cluster.local.upstream_rq_retry: 3\n"
    "cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_rq_retry: 4\n"
    "cluster.inbound|9080||.upstream_rq_total: 9\n"
    "cluster.xds-grpc.upstream_rq_total: 100\n"
)


def test_istio_stat_names_answer_the_same_queries() -> None:
    assert counter_total(ISTIO, CounterQuery("fault.aborts_injected")) == 5
    assert counter_total(ISTIO, CounterQuery("fault.aborts_injected", Side.SERVER)) == 3
    assert counter_total(ISTIO, CounterQuery("fault.aborts_injected", Side.SERVER, port=8000)) == 2
    assert counter_total(ISTIO, CounterQuery("upstream_rq_retry")) == 7
    assert counter_total(ISTIO, CounterQuery("upstream_rq_total", Side.SERVER, port=9080)) == 9
    assert counter_total(ISTIO, CounterQuery("upstream_rq_total")) is None  # not xds-grpc


def test_queries_name_only_known_counters() -> None:
    with pytest.raises(ValueError, match="unknown counter 'rq_total'; expected one of"):
        CounterQuery("rq_total")
    q = CounterQuery("upstream_rq_total", Side.SERVER, ["httpbin-v1"], 8000)
    assert q.workloads == ("httpbin-v1",)  # hashable, so it can key a dict
    assert q.describe() == "upstream_rq_total (server side of httpbin-v1, port 8000)"


def test_the_stats_filter_keeps_exactly_the_counters_asked() -> None:
    import re

    pattern = re.compile(stats_filter(COUNTER_NAMES))
    kept = {k for k in CLIENT if pattern.search(k)}
    assert kept == {k for k in CLIENT if any(k.endswith("." + n) for n in COUNTER_NAMES)}
