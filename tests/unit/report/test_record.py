"""The run record: written, validated against its JSON Schema, read back, versioned."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from report_fakes import Spec, write_run

from meshchaos.report import record as rec


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return write_run(tmp_path / "run1", [Spec("a"), Spec("b", error_share=0.2)], seed=1)


def test_records_validate_against_the_shipped_json_schema(run: Path) -> None:
    scenario_schema, run_schema = rec.json_schema("scenario"), rec.json_schema("run")
    jsonschema.Draft202012Validator.check_schema(scenario_schema)
    jsonschema.Draft202012Validator.check_schema(run_schema)
    jsonschema.Draft202012Validator(run_schema).validate(json.loads((run / "run.json").read_text()))
    files = [p for p in run.glob("*.json") if p.name != "run.json"]
    assert len(files) == 2
    for path in files:
        jsonschema.Draft202012Validator(scenario_schema).validate(json.loads(path.read_text()))


def test_a_record_has_the_numbers_compare_needs(run: Path) -> None:
    back = rec.read_run(run)
    (a,) = [s for s in back.scenarios.values() if s["id"].endswith("[a]")]
    assert a["schema_version"] == rec.SCHEMA_VERSION
    assert len(a["policies"][0]["sha256"]) == 64
    assert "VirtualService" in a["policies"][0]["text"]
    assert a["prediction"]["outcomes"][0]["latency_high"] is None  # inf is not JSON
    assert a["prediction"]["reasoning"] == ["route to v1", "abort 5% with 503"]
    assert a["sizing"]["used"] == 2000
    load = a["loads"][0]
    assert sum(load["classes"].values()) == load["count"] == 2000
    assert sum(c for _, c in load["latency"]["histogram"]["counts"]) == 2000
    assert 0.005 < load["latency"]["percentiles"]["p50"] < 0.02
    check = a["checks"][0]["checks"][0]
    assert check["n"] == 2000
    assert isinstance(check["k"], int)
    assert isinstance(check["adjusted_pvalue"], float)
    assert check["expected_low"] == check["expected_high"] == 0.05
    assert check["interval_low"] < check["k"] / check["n"] < check["interval_high"]
    assert back.run["versions"]["envoy"] == "1.40.0"


def test_histogram_quantiles_are_close_to_the_exact_percentiles() -> None:
    values = [0.001 * (1 + i / 100) for i in range(1000)]
    h = rec.histogram_of(values)
    exact = sorted(values)[499]
    assert h.quantile(0.5) == pytest.approx(exact, rel=0.025)
    lo, hi = rec.bin_edges(rec.bin_of(exact))
    assert lo <= exact < hi
    assert rec.bin_of(0.0) == 0
    assert rec.bin_of(1e9) == rec.BINS_PER_DECADE * rec.HISTOGRAM_DECADES - 1


def _rewrite(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"schema_version": 2}, "newer than this meshchaos reads"),
        ({"schema_version": 0}, "schema_version 0 is unknown"),
        ({"schema_version": "1"}, "is not an integer"),
        ({"schema": "something-else"}, "expected 'meshchaos.run-record'"),
    ],
)
def test_other_versions_are_refused_never_guessed(
    run: Path, changes: dict[str, object], message: str
) -> None:
    _rewrite(run / "run.json", **changes)
    with pytest.raises(rec.RecordError, match=message):
        rec.read_run(run)


def test_a_damaged_scenario_record_names_the_file(run: Path) -> None:
    victim = next(p for p in run.glob("*.json") if p.name != "run.json")
    victim.write_text("{not json")
    with pytest.raises(rec.RecordError, match=re.escape(victim.name)):
        rec.read_run(run)
    victim.write_text(json.dumps({"schema": "meshchaos.scenario-record", "schema_version": 1}))
    with pytest.raises(rec.RecordError, match="missing field 'id'"):
        rec.read_run(run)


def test_missing_run_dir_or_run_json(tmp_path: Path) -> None:
    with pytest.raises(rec.RecordError, match="no such run directory"):
        rec.read_run(tmp_path / "nope")
    with pytest.raises(rec.RecordError, match=r"no run\.json"):
        rec.read_run(tmp_path)


def test_write_json_is_atomic_and_refuses_nan(tmp_path: Path) -> None:
    rec.write_json(tmp_path / "x.json", {"a": 1})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 1}
    with pytest.raises(ValueError, match="not JSON compliant"):
        rec.write_json(tmp_path / "y.json", {"a": float("nan")})
    assert not (tmp_path / "y.json").exists()
    assert not list(tmp_path.glob(".*.tmp"))
