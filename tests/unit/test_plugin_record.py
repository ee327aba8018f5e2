"""The plugin's record helpers that need no pytester: outcome over phases, names, git."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from meshchaos.pytest_plugin._record import file_name, git_revision, machine, outcome_of


def _reports(**phases: str) -> Any:
    return {
        when: SimpleNamespace(failed=o == "failed", skipped=o == "skipped", outcome=o)
        for when, o in phases.items()
    }


@pytest.mark.parametrize(
    ("phases", "expected"),
    [
        ({"setup": "passed", "call": "passed", "teardown": "passed"}, "passed"),
        ({"setup": "passed", "call": "failed", "teardown": "passed"}, "failed"),
        ({"setup": "passed", "call": "failed", "teardown": "failed"}, "failed"),
        ({"setup": "passed", "call": "passed", "teardown": "failed"}, "error"),
        ({"setup": "failed", "teardown": "passed"}, "error"),
        ({"setup": "skipped", "teardown": "passed"}, "skipped"),
    ],
)
def test_outcome_counts_every_phase(phases: dict[str, str], expected: str) -> None:
    assert outcome_of(_reports(**phases)) == expected


def test_file_name_of_a_test_id() -> None:
    assert file_name("scenarios/test_x.py::test_y[a b]") == "test_x.test_y[a_b].json"


def test_git_revision_is_none_outside_a_checkout(tmp_path: Path) -> None:
    assert git_revision(tmp_path) is None
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    assert git_revision(tmp_path) is None  # no commit yet
    here = git_revision(Path(__file__).parent)
    assert here is None or len(here) == 40


def test_machine_names_the_cores() -> None:
    m = machine()
    assert set(m) == {"hostname", "platform", "python", "cores"}


def test_junit_properties_name_the_plan_and_each_failed_check() -> None:
    from meshchaos.pytest_plugin._record import junit_properties

    failed = {
        "name": "share of status:503",
        "failed": True,
        "expected": "0.100",
        "observed": "0.300 (90/300)",
        "interval": "99.98% CI [0.21, 0.40]",
        "adjusted_pvalue": 1.2e-9,
    }
    data = {
        "outcome": "failed",
        "loads": [{"count": 300}, {"count": 60}],
        "sizing": {"planned": 2684, "detectable": 0.152},
        "checks": [{"checks": [failed, {"name": "no unpredicted outcomes", "failed": False}]}],
    }
    props = dict(junit_properties(data))
    assert props["meshchaos.requests"] == "360"
    assert props["meshchaos.planned"] == "2684"
    assert props["meshchaos.detectable"] == "0.152"
    assert props["meshchaos.checks"] == "1/2 passed"
    assert props["meshchaos.failed.0"] == (
        "share of status:503: expected 0.100 | observed 0.300 (90/300) | "
        "99.98% CI [0.21, 0.40] | p 1.2e-09"
    )


def test_mesh_facts_gathers_the_workers_versions_and_keeps_a_disagreement(tmp_path: Path) -> None:
    from meshchaos.pytest_plugin._record import mesh_facts
    from meshchaos.report.record import write_json

    assert mesh_facts(tmp_path) == {
        "versions": {"envoy": None, "istio": None},
        "settings": {},
        "warnings": [],
    }
    facts = {"versions": {"istio": "1.30.5"}, "settings": {"mtls_mode": "STRICT"}}
    write_json(tmp_path / "mesh" / "gw0.json", {**facts, "warnings": ["w1"]})
    write_json(
        tmp_path / "mesh" / "gw1.json",
        {**facts, "versions": {"istio": "1.30.4"}, "warnings": ["w1", "w2"]},
    )
    got = mesh_facts(tmp_path)
    assert got["versions"] == {"envoy": None, "istio": "1.30.4 | 1.30.5"}
    assert got["settings"] == {"mtls_mode": "STRICT"}
    assert got["warnings"] == ["w1", "w2"]


def test_sample_shortfall_counts_capped_scenarios_per_family(tmp_path: Path) -> None:
    from meshchaos.pytest_plugin._hooks import sample_shortfall

    def record(name: str, family: str, used: int, planned: int, detectable: float) -> None:
        sizing = {"used": used, "planned": planned, "detectable": detectable}
        (tmp_path / name).write_text(json.dumps({"family": family, "sizing": sizing}))

    record("a.json", "fault_injection", 300, 2985, 0.163)
    record("b.json", "fault_injection", 300, 3266, 0.164)
    record("c.json", "fault_injection", 60, 59, 0.049)  # at its plan: not short
    record("d.json", "retries", 906, 906, 0.05)
    (tmp_path / "e.json").write_text(json.dumps({"family": "outlier_detection", "sizing": None}))
    (tmp_path / "run.json").write_text("{}")
    assert sample_shortfall(tmp_path) == {"fault_injection": (2, 0.164)}
    assert sample_shortfall(tmp_path / "missing") == {}
