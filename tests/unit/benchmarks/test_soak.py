"""benchmarks/soak.py: JUnit parsing, the run and scenario summary, and the run loop.

The loop runs end to end against a fake pytest (a small script given with
``--pytest-cmd``) that writes JUnit files as told per run, so no mesh is started.
"""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SOAK_PY = Path(__file__).resolve().parents[3] / "benchmarks" / "soak.py"


def _load() -> ModuleType:
    # benchmarks/ is not a package: load the script as a module of its own name.
    spec = importlib.util.spec_from_file_location("meshchaos_bench_soak", SOAK_PY)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


soak = _load()

CASE_PASS = '<testcase classname="scenarios.test_x" name="test_a" time="1.0"/>'
CASE_FAIL = (
    '<testcase classname="scenarios.test_x" name="test_b[p]" time="2.0">'
    '<failure message="AssertionError: share 0.31 outside [0.20, 0.30]&#10;more detail">'
    "traceback</failure></testcase>"
)
CASE_SKIP = (
    '<testcase classname="scenarios.test_y" name="test_c" time="0.0">'
    '<skipped type="pytest.skip" message="needs kind"/></testcase>'
)


def junit(*cases: str, root: str = "testsuites") -> str:
    suite = f'<testsuite name="pytest" tests="{len(cases)}">{"".join(cases)}</testsuite>'
    return '<?xml version="1.0" encoding="utf-8"?>\n' + (
        f"<testsuites>{suite}</testsuites>" if root == "testsuites" else suite
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ---------------------------------------------------------------- parse_junit


@pytest.mark.parametrize("root", ["testsuites", "testsuite"])
def test_parse_counts_each_outcome(tmp_path: Path, root: str) -> None:
    result = soak.parse_junit(
        write(tmp_path / "j.xml", junit(CASE_PASS, CASE_FAIL, CASE_SKIP, root=root))
    )
    assert [c.outcome for c in result.cases] == ["passed", "failed", "skipped"]
    assert (result.count("passed"), result.failed, result.errors, result.count("skipped")) == (
        1,
        1,
        0,
        1,
    )
    fail = result.cases[1]
    assert fail.test_id == "scenarios.test_x::test_b[p]"
    assert fail.problems == (
        soak.Problem("failure", "AssertionError: share 0.31 outside [0.20, 0.30]"),
    )


def test_parse_failure_and_teardown_error_on_one_case(tmp_path: Path) -> None:
    case = (
        '<testcase classname="c" name="t"><failure message="boom">x</failure>'
        '<error message="failed on teardown with &quot;OSError&quot;">y</error></testcase>'
    )
    result = soak.parse_junit(write(tmp_path / "j.xml", junit(case)))
    assert (result.failed, result.errors) == (1, 1)
    assert result.cases[0].outcome == "error"
    assert [p.kind for p in result.cases[0].problems] == ["failure", "error"]


def test_parse_message_falls_back_to_text_and_collection_errors_have_no_class(
    tmp_path: Path,
) -> None:
    case = '<testcase classname="" name="scenarios.test_z"><error>\n\nImportError: no\n</error>'
    result = soak.parse_junit(write(tmp_path / "j.xml", junit(case + "</testcase>")))
    assert result.cases[0].test_id == "scenarios.test_z"
    assert result.cases[0].problems == (soak.Problem("error", "ImportError: no"),)


@pytest.mark.parametrize(
    ("text", "why"),
    [(None, "no JUnit file"), ("<testsuites><testsuite>", "unreadable"), ("<html/>", "not JUnit")],
)
def test_parse_missing_truncated_or_foreign_file_is_unreadable(
    tmp_path: Path, text: str | None, why: str
) -> None:
    path = tmp_path / "j.xml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(soak.JUnitUnreadable, match=why):
        soak.parse_junit(path)


# ---------------------------------------------------------------- judge_run


def judge(tmp_path: Path, xml: str | None, exit_code: int | None, **kw: object) -> object:
    path = tmp_path / "junit.xml"
    if xml is not None:
        path.write_text(xml)
    return soak.judge_run(1, path, tmp_path / "pytest.log", exit_code, 3.21, **kw)


def test_clean_run_is_ok_with_no_alarm(tmp_path: Path) -> None:
    rec = judge(tmp_path, junit(CASE_PASS, CASE_SKIP), 0)
    assert (rec.status, rec.passed, rec.failed, rec.errors, rec.skipped) == ("ok", 1, 0, 0, 1)
    assert (rec.false_alarms, rec.error) == (0, None)


def test_failed_run_counts_its_failures(tmp_path: Path) -> None:
    rec = judge(tmp_path, junit(CASE_PASS, CASE_FAIL), 1)
    assert (rec.status, rec.false_alarms, rec.error) == ("failed", 1, None)


def test_missing_junit_is_an_error_row_never_zero(tmp_path: Path) -> None:
    rec = judge(tmp_path, None, -9)
    assert rec.status == "crashed"
    assert (rec.passed, rec.failed, rec.errors, rec.skipped) == (None, None, None, None)
    assert rec.false_alarms == 1
    assert "no JUnit file" in rec.error
    assert "pytest exit code -9" in rec.error


def test_timeout_is_an_error_row_on_top_of_what_its_partial_junit_records(
    tmp_path: Path,
) -> None:
    rec = judge(tmp_path, junit(CASE_PASS, CASE_FAIL), 2, timed_out=True, timeout_s=600.0)
    assert (rec.status, rec.passed, rec.failed) == ("timeout", 1, 1)
    assert rec.false_alarms == 2
    assert rec.error == "timed out after 600 s"
    rec = judge(tmp_path / "..", None, -9, timed_out=True, timeout_s=1.5)
    assert (rec.status, rec.false_alarms) == ("timeout", 1)
    assert rec.error == "timed out after 1.5 s (no JUnit file)"


def test_nonzero_exit_without_a_recorded_failure_is_an_error_row(tmp_path: Path) -> None:
    rec = judge(tmp_path, junit(), 5)
    assert (rec.status, rec.false_alarms) == ("error", 1)
    assert "exited 5" in rec.error
    assert "no tests ran" in rec.error


def test_interrupted_run_is_neither_clean_nor_an_alarm(tmp_path: Path) -> None:
    rec = judge(tmp_path, None, -2, interrupted=True)
    assert (rec.status, rec.false_alarms, rec.counted) == ("interrupted", 0, False)


# ---------------------------------------------------------------- summary


def records(tmp_path: Path) -> list[object]:
    """Run 1 clean, run 2 one failure, run 3 timed out with no JUnit file."""
    out = []
    for i, (xml, code, kw) in enumerate(
        [
            (
                junit(CASE_PASS, CASE_FAIL.replace("<failure", "<x").replace("</failure", "</x")),
                0,
                {},
            ),
            (junit(CASE_PASS, CASE_FAIL), 1, {}),
            (None, -9, {"timed_out": True, "timeout_s": 600.0}),
        ],
        start=1,
    ):
        d = tmp_path / f"run-{i:02d}"
        d.mkdir()
        if xml is not None:
            (d / "junit.xml").write_text(xml)
        out.append(soak.judge_run(i, d / "junit.xml", d / "pytest.log", code, 40.0 + i, **kw))
    return out


def test_scenarios_count_runs_with_alarms_and_keep_each_first_line(tmp_path: Path) -> None:
    scenarios = soak.summarise_scenarios(records(tmp_path))
    assert [s.test_id for s in scenarios] == [
        "scenarios.test_x::test_b[p]",  # the noisy one first
        "scenarios.test_x::test_a",
    ]
    noisy = scenarios[0]
    assert (noisy.runs, noisy.passed, noisy.failed, noisy.errored) == (2, 1, 1, 0)
    assert noisy.false_alarm_runs == 1
    assert noisy.messages == [
        {
            "run": 2,
            "kind": "failure",
            "message": "AssertionError: share 0.31 outside [0.20, 0.30]",
        }
    ]


def test_totals_and_json_summary(tmp_path: Path) -> None:
    summary = soak.build_summary(
        records(tmp_path),
        command=["python", "-m", "pytest", "scenarios"],
        out=tmp_path,
        runs_requested=3,
        started=time.time(),
    )
    t = summary["totals"]
    assert t["runs"] == 3
    assert t["runs_with_false_alarm"] == 2
    assert (t["failures"], t["errors"], t["run_errors"]) == (1, 0, 1)
    assert t["false_alarms"] == 2
    assert t["false_alarms_per_run"] == pytest.approx(2 / 3, abs=1e-4)
    assert (t["scenarios"], t["scenarios_with_false_alarm"]) == (2, 1)
    assert summary["ok"] is False
    assert soak.exit_code_of(summary) == 1
    assert [r["status"] for r in summary["runs"]] == ["ok", "failed", "timeout"]
    assert summary["runs"][2]["passed"] is None
    json.dumps(summary)  # machine-readable as is

    text = soak.render(summary)
    assert "timeout" in text
    assert "timed out after 600 s (no JUnit file)" in text
    assert "run 2 failure: AssertionError: share 0.31 outside [0.20, 0.30]" in text
    assert "total: 2 false alarm(s) in 3 run(s), 0.67 per run" in text


def test_clean_soak_exits_0_and_interrupted_exits_130(tmp_path: Path) -> None:
    path = write(tmp_path / "junit.xml", junit(CASE_PASS))
    clean = soak.judge_run(1, path, tmp_path / "log", 0, 1.0)
    cut = soak.judge_run(2, tmp_path / "none.xml", tmp_path / "log", -2, 1.0, interrupted=True)
    kw = {"command": ["pytest"], "out": tmp_path, "runs_requested": 2, "started": time.time()}
    assert soak.exit_code_of(soak.build_summary([clean], **kw)) == 0
    summary = soak.build_summary([clean, cut], interrupted=True, **kw)
    assert summary["totals"]["runs_interrupted"] == 1
    assert soak.exit_code_of(summary) == 130
    assert soak.exit_code_of(soak.build_summary([], **kw)) == 1  # nothing ran is not a pass


# ---------------------------------------------------------------- command line


def test_args_after_double_dash_go_to_pytest_after_the_defaults(tmp_path: Path) -> None:
    opts = soak.parse_args(["-n", "3", "--out", str(tmp_path / "s"), "--", "-k", "fault"])
    assert opts.runs == 3
    assert opts.timeout_s == 600.0
    assert opts.pytest_cmd == (sys.executable, "-m", "pytest")
    assert opts.pytest_args == ("scenarios", "-q", "-p", "no:cacheprovider", "-k", "fault")
    cmd = soak.run_command(opts, tmp_path / "s" / "run-01")
    assert cmd[-2:] == [
        f"--junitxml={tmp_path / 's' / 'run-01' / 'junit.xml'}",
        f"--reports-dir={tmp_path / 's' / 'run-01'}",
    ]


def test_default_out_is_a_timestamped_dir_under_reports() -> None:
    out = soak.parse_args([]).out
    assert out.parent == Path("reports")
    assert out.name.startswith("soak-")


@pytest.mark.parametrize(
    "argv",
    [
        ["-n", "0"],
        ["--timeout", "-1"],
        ["--runs", "many"],
        ["stray"],
        ["--", "--junitxml=x.xml"],
        ["--", "--reports-dir", "elsewhere"],
        ["--pytest-cmd", ""],
    ],
)
def test_bad_usage_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        soak.parse_args(argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_non_empty_out_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "run-01").mkdir()  # a stale JUnit file could be read as this soak's
    with pytest.raises(SystemExit) as exc:
        soak.parse_args(["--out", str(tmp_path)])
    assert exc.value.code == 2


# ---------------------------------------------------------------- the loop, end to end

FAKE_PYTEST = textwrap.dedent(
    """
    # A pytest stand-in: does what FAKE_PLAN says for run number N (one word per run).
    import os, signal, subprocess, sys, time
    from pathlib import Path

    args = sys.argv[1:]
    junit = Path(next(a for a in args if a.startswith("--junitxml=")).split("=", 1)[1])
    reports = Path(next(a for a in args if a.startswith("--reports-dir=")).split("=", 1)[1])
    state = Path(os.environ["FAKE_STATE"])
    n = len(list(state.glob("run-*"))) + 1
    (state / f"run-{n}").write_text(" ".join(args))
    action = os.environ["FAKE_PLAN"].split(",")[n - 1]
    ok = '<testcase classname="scenarios.test_x" name="test_a"/>'
    bad = ('<testcase classname="scenarios.test_x" name="test_b">'
           '<failure message="AssertionError: 0.31 outside [0.20, 0.30]">tb</failure>'
           '</testcase>')

    def write(*cases):
        junit.write_text('<testsuites><testsuite name="pytest">'
                         + "".join(cases) + "</testsuite></testsuites>")

    if action == "pass":
        write(ok, ok.replace("test_a", "test_b"))
        sys.exit(0)
    if action == "fail":
        write(ok, bad)
        sys.exit(1)
    if action == "crash":
        sys.exit(3)
    # hang / stubborn: a grandchild in our process group, then sleep past any timeout
    if action == "stubborn":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    child = subprocess.Popen(["sleep", "300"])
    (state / "pids").write_text(f"{os.getpid()} {child.pid}")
    time.sleep(300)
    """
)


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = write(tmp_path / "fake_pytest.py", FAKE_PYTEST)
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("FAKE_STATE", str(state))
    return script


def run_soak(
    fake: Path, tmp_path: Path, *extra: str, pytest_args: tuple[str, ...] = ()
) -> tuple[int, dict[str, Any], str]:
    """soak.main in this process against the fake (FAKE_PLAN set by the test)."""
    out = tmp_path / "soak"
    argv = ["--pytest-cmd", f"{sys.executable} {fake}", "--out", str(out), *extra]
    if pytest_args:
        argv += ["--", *pytest_args]
    code = soak.main(argv)
    return code, json.loads((out / "soak.json").read_text()), str(out)


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"  # a zombie has finished


def _wait_gone(pid: int, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while not _gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_loop_counts_a_failure_on_run_2(
    fake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAKE_PLAN", "pass,fail,pass")
    code, summary, out = run_soak(fake, tmp_path, "-n", "3")
    assert code == 1
    assert [r["status"] for r in summary["runs"]] == ["ok", "failed", "ok"]
    assert [r["false_alarms"] for r in summary["runs"]] == [0, 1, 0]
    assert summary["totals"]["false_alarms"] == 1
    (noisy,) = [s for s in summary["scenarios"] if s["false_alarm_runs"]]
    assert noisy["test_id"] == "scenarios.test_x::test_b"
    assert (noisy["runs"], noisy["failed"]) == (3, 1)
    assert noisy["messages"] == [
        {"run": 2, "kind": "failure", "message": "AssertionError: 0.31 outside [0.20, 0.30]"}
    ]
    # each run a fresh process with the default args and its own JUnit file and reports dir
    argv2 = (tmp_path / "state" / "run-2").read_text().split()
    assert argv2[:4] == ["scenarios", "-q", "-p", "no:cacheprovider"]
    assert f"--junitxml={out}/run-02/junit.xml" in argv2
    assert f"--reports-dir={out}/run-02" in argv2
    assert "run 2 failure: AssertionError" in capsys.readouterr().out


def test_loop_passes_extra_args_and_exits_0_when_clean(
    fake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_PLAN", "pass,pass")
    code, summary, _ = run_soak(fake, tmp_path, "-n", "2", pytest_args=("-k", "fault_injection"))
    assert code == 0
    assert summary["ok"] is True
    assert summary["command"][-2:] == ["-k", "fault_injection"]
    assert "-k fault_injection" in (tmp_path / "state" / "run-1").read_text()


def test_crash_is_an_error_row_and_stop_on_failure_stops(
    fake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_PLAN", "pass,crash,pass")
    code, summary, _ = run_soak(fake, tmp_path, "-n", "3", "--stop-on-failure")
    assert code == 1
    assert [r["status"] for r in summary["runs"]] == ["ok", "crashed"]
    assert summary["runs"][1]["exit_code"] == 3
    assert summary["runs"][1]["false_alarms"] == 1
    assert summary["stopped_early"] is True


@pytest.mark.parametrize("action", ["hang", "stubborn"])
def test_timeout_kills_the_run_s_process_group(
    fake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, action: str
) -> None:
    monkeypatch.setenv("FAKE_PLAN", f"{action},pass")
    code, summary, _ = run_soak(fake, tmp_path, "-n", "2", "--timeout", "1.5", "--grace", "1")
    assert code == 1
    first, second = summary["runs"]
    assert first["status"] == "timeout"
    assert first["passed"] is None
    assert first["false_alarms"] == 1
    assert first["error"] == "timed out after 1.5 s (no JUnit file)"
    assert 1.5 <= first["wall_s"] < 1.5 + 1 + 5  # timeout + grace (stubborn) + slack
    assert second["status"] == "ok"  # the loop goes on after a timeout
    pids = [int(p) for p in (tmp_path / "state" / "pids").read_text().split()]
    assert all(_wait_gone(pid) for pid in pids)  # pytest and its grandchild


def test_ctrl_c_stops_the_child_group_and_still_summarises(
    fake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_PLAN", "pass,hang,pass")
    out = tmp_path / "soak"
    proc = subprocess.Popen(
        [
            *(sys.executable, str(SOAK_PY), "-n", "3", "--out", str(out), "--grace", "5"),
            *("--pytest-cmd", f"{sys.executable} {fake}"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pids_file = tmp_path / "state" / "pids"
    deadline = time.monotonic() + 30
    while not pids_file.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # past the fake's write, into its sleep
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    summary = json.loads((out / "soak.json").read_text())
    assert summary["interrupted"] is True
    assert [r["status"] for r in summary["runs"]] == ["ok", "interrupted"]
    assert summary["runs"][1]["wall_s"] < 5  # SIGINT ended it, no need for SIGKILL
    assert "interrupted by Ctrl-C" in stdout
    pids = [int(p) for p in pids_file.read_text().split()]
    assert all(_wait_gone(pid) for pid in pids)
    assert not (tmp_path / "state" / "run-3").exists()


def test_render_prints_long_scenario_ids_whole(tmp_path: Path) -> None:
    long_name = "test_fault_injection[ratings-abort-100pct-500-jason-others-unaffected]" * 2
    case = CASE_PASS.replace('name="test_a"', f'name="{long_name}"')
    rec = soak.judge_run(1, write(tmp_path / "j.xml", junit(case)), tmp_path / "log", 0, 1.0)
    kw = {"command": ["pytest"], "out": tmp_path, "runs_requested": 1, "started": time.time()}
    assert f"scenarios.test_x::{long_name} " in soak.render(soak.build_summary([rec], **kw))
