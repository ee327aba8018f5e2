"""The end of a run, through pytest itself: junit.xml and report.html in the run dir."""

from __future__ import annotations

from pathlib import Path

import pytest

SCENARIO = """
def test_a(record):
    pass

def test_b(record):
    {body}
"""


def _run_dir(reports: Path) -> Path:
    dirs = [p for p in reports.iterdir() if p.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def _run(pytester: pytest.Pytester, *args: str, body: str = "pass") -> pytest.RunResult:
    pytester.makepyfile(test_s=SCENARIO.format(body=body))
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "--reports-dir", "rep", *args)


@pytest.mark.parametrize("xdist", [[], ["-n", "1"]], ids=["serial", "xdist-n1"])
def test_a_run_leaves_junit_and_report_in_its_run_dir(
    pytester: pytest.Pytester, xdist: list[str]
) -> None:
    result = _run(pytester, *xdist)
    assert result.ret == 0
    run_dir = _run_dir(pytester.path / "rep")
    names = {p.name for p in run_dir.iterdir()}
    assert {"junit.xml", "report.html", "run.json"} <= names
    assert "<testcase" in (run_dir / "junit.xml").read_text()
    result.stdout.fnmatch_lines([f"meshchaos: report {run_dir / 'report.html'}"])
    history = (pytester.path / "rep" / "history.jsonl").read_text().splitlines()
    assert len(history) == 1


def test_a_given_junitxml_is_left_where_the_user_put_it(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--junitxml", "mine.xml")
    assert result.ret == 0
    assert (pytester.path / "mine.xml").is_file()
    assert not (_run_dir(pytester.path / "rep") / "junit.xml").exists()


def test_a_run_without_records_writes_no_junit_of_ours(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--reports-dir", "rep")
    assert result.ret == 0
    assert not (pytester.path / "rep").exists()
    assert "meshchaos: report" not in result.stdout.str()


def test_a_report_that_cannot_be_rendered_is_one_warning_and_keeps_the_exit_status(
    pytester: pytest.Pytester,
) -> None:
    # A damaged record in the run dir: run.json lists it, the report cannot read it.
    pytester.makeconftest(
        """
import pytest
from meshchaos.pytest_plugin._settings import settings

@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    (settings(session.config).run_dir / "zz-damaged.json").write_text("{not json")
"""
    )
    result = _run(pytester, body="assert False")
    assert result.ret == 1
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        ["meshchaos: warning: the report could not be written: RecordError: *zz-damaged.json*"]
    )
    assert "Traceback" not in out
    assert "meshchaos: report " not in out
    result.assert_outcomes(passed=1, failed=1)
