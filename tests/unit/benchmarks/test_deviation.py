"""benchmarks/_deviate.py and benchmarks/deviation.py: what the deviations change in the
translated Envoy config, and how the runner reads a run (no mesh is started)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from meshchaos.istio.parse import parse_resource
from meshchaos.mesh.local import _xds_routes

BENCH = Path(__file__).resolve().parents[3] / "benchmarks"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def deviate(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    # The plugin replaces module attributes; monkeypatch puts the originals back.
    monkeypatch.setattr(_xds_routes, "translate_fault", _xds_routes.translate_fault)
    monkeypatch.setattr(_xds_routes, "_route_action", _xds_routes._route_action)
    monkeypatch.syspath_prepend(str(BENCH))
    module = _load("_deviate")
    module._changed.clear()
    return module


def test_lower_moves_a_partial_percentage_by_five_points(deviate: ModuleType) -> None:
    half = {"numerator": 500_000, "denominator": "MILLION"}
    deviate._lower(half, "abort")
    assert half["numerator"] == 450_000
    tenth = {"numerator": 10, "denominator": "HUNDRED"}
    deviate._lower(tenth, "abort")
    assert tenth["numerator"] == 5
    assert deviate._changed == ["abort 50% -> 45%", "abort 10% -> 5%"]


@pytest.mark.parametrize("numerator", [0, 100])
def test_lower_leaves_never_and_always_alone(deviate: ModuleType, numerator: int) -> None:
    pct = {"numerator": numerator, "denominator": "HUNDRED"}
    deviate._lower(pct, "abort")
    assert pct["numerator"] == numerator
    assert deviate._changed == []


def _vs(http: str) -> Any:
    doc = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "default"},
        "spec": {"hosts": ["reviews"], "http": [yaml.safe_load(http)]},
    }
    return parse_resource(doc, source="test.yaml")


def test_abort_deviation_changes_the_fault_filter_config(deviate: ModuleType) -> None:
    deviate._wrap_fault("abort")
    vs = _vs(
        "{fault: {abort: {percentage: {value: 50}, httpStatus: 500}}, "
        "route: [{destination: {host: reviews}}]}"
    )
    fault = _xds_routes.translate_fault(vs.http[0].fault, [])
    assert fault["abort"]["percentage"] == {"numerator": 450_000, "denominator": "MILLION"}


def test_weight_deviation_moves_five_points_to_the_last_destination(
    deviate: ModuleType,
) -> None:
    original = _xds_routes._route_action
    calls = []

    def fake_action(*args: object) -> dict[str, object]:
        calls.append(args)
        clusters = [{"name": "a", "weight": 50}, {"name": "b", "weight": 50}]
        return {"weighted_clusters": {"clusters": clusters}}

    _xds_routes._route_action = fake_action  # type: ignore[assignment]
    try:
        deviate._wrap_route_action("weight")
        action = _xds_routes._route_action()
    finally:
        _xds_routes._route_action = original  # type: ignore[assignment]
    weights = [c["weight"] for c in action["weighted_clusters"]["clusters"]]
    assert weights == [45, 55]
    assert deviate._changed == ["weights shifted 5 of 100 to b"]


def test_unknown_kind_is_a_usage_error(
    deviate: ModuleType, monkeypatch: pytest.MonkeyPatch, pytestconfig: pytest.Config
) -> None:
    monkeypatch.setenv("MESHCHAOS_DEVIATE", "latency")
    with pytest.raises(pytest.UsageError, match="must be one of abort, delay, weight, mirror"):
        deviate.pytest_configure(pytestconfig)


JUNIT = """<?xml version="1.0"?>
<testsuites><testsuite name="pytest">
<testcase classname="scenarios.test_fault_injection" name="test_fault_injection[a]">
  <properties><property name="deviated" value="abort 50% -&gt; 45%"/></properties>
  <failure message="meshchaos.check.ChecksFailed: policy deviation">tb</failure>
</testcase>
<testcase classname="scenarios.test_fault_injection" name="test_fault_injection[b]">
  <properties><property name="deviated" value="abort 10% -&gt; 5%"/></properties>
</testcase>
<testcase classname="scenarios.test_routing" name="test_routing[c]">
  <properties><property name="deviated" value=""/></properties>
</testcase>
<testcase classname="scenarios.test_routing" name="test_routing[d]">
  <properties><property name="deviated" value=""/></properties>
  <failure message="boom">tb</failure>
</testcase>
</testsuite></testsuites>
"""


def test_runner_reads_verdicts_and_node_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, deviate: ModuleType
) -> None:
    runner = _load("deviation")
    path = tmp_path / "abort.xml"
    path.write_text(JUNIT)
    cases = runner.read_cases(path)
    assert [c.verdict for c in cases] == ["caught", "blind", "untouched", "false alarm"]
    assert cases[1].node_id == "scenarios/test_fault_injection.py::test_fault_injection[b]"
    assert "caught" in runner.render("abort", cases, 1.0)
    again = runner.replace(cases[1], outcome="failed", repeat=2)
    assert again.verdict == "caught (repeat 2)"
