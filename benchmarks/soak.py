"""Soak: run the chaos catalogue N times in a row and count its false alarms.

    python benchmarks/soak.py [-n 20] [--timeout 600] [--out DIR] [--stop-on-failure]
                              [-- PYTEST_ARGS...]

Each run is a fresh ``pytest`` subprocess (``scenarios -q -p no:cacheprovider`` plus
whatever follows ``--``), in its own process group, writing ``run-NN/junit.xml``,
``run-NN/pytest.log`` and its records (``--reports-dir run-NN``) under the soak
directory (default ``reports/soak-<timestamp>``). A run over ``--timeout`` seconds, or
a Ctrl-C, gets SIGINT on its process group (pytest tears its mesh down), then SIGKILL
after ``--grace`` seconds; the mesh's Envoys die with pytest (PR_SET_PDEATHSIG).

Every failure or error in a catalogue that should pass is a false alarm. Prints a table
per run (wall time, passed/failed/errors/skipped) and per scenario (runs it failed or
errored in, with the first line of each message), writes ``soak.json``, and exits 0
when no run had a failure or error, 1 when one did, 2 on bad usage and 130 when
interrupted (the runs so far are still summarised). A run without a readable JUnit
file (crash, timeout) is an error row and counts one false alarm of its own, never
zero; so does a non-zero exit with no failure recorded (e.g. no tests collected).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

DEFAULT_PYTEST_ARGS = ("scenarios", "-q", "-p", "no:cacheprovider")
DEFAULT_TIMEOUT_S = 600.0
DEFAULT_GRACE_S = 30.0
SCHEMA_VERSION = 1
# Options the soak owns: a second value would send the file elsewhere and every run
# would read as "no JUnit file".
OWNED_OPTIONS = ("--junitxml", "--junit-xml", "--reports-dir")
EXIT_OK, EXIT_FALSE_ALARM, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
MESSAGE_WIDTH = 110


class UsageError(Exception):
    """Bad command line: exit 2."""


# ---------------------------------------------------------------- JUnit parsing


@dataclass(frozen=True)
class Problem:
    """One failure or error element of one test case."""

    kind: str  # "failure" or "error"
    message: str  # first non-empty line of the message (or of the text)


@dataclass(frozen=True)
class CaseResult:
    test_id: str  # "<classname>::<name>", or the name alone when there is no classname
    outcome: str  # "passed", "failed", "error" or "skipped"
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class JUnitResult:
    cases: tuple[CaseResult, ...]

    def count(self, outcome: str) -> int:
        return sum(1 for case in self.cases if case.outcome == outcome)

    @property
    def failed(self) -> int:
        """Test cases with a <failure> (a case may also have an <error>, e.g. in teardown)."""
        return sum(1 for c in self.cases if any(p.kind == "failure" for p in c.problems))

    @property
    def errors(self) -> int:
        return sum(1 for c in self.cases if any(p.kind == "error" for p in c.problems))


class JUnitUnreadable(Exception):
    """The JUnit file is missing or not JUnit XML."""


def first_line(text: str | None) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def parse_junit(path: Path) -> JUnitResult:
    """The test cases of one pytest ``--junitxml`` file (``<testsuites>`` or ``<testsuite>``)."""
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise JUnitUnreadable("no JUnit file") from None
    except (ET.ParseError, OSError) as e:
        raise JUnitUnreadable(f"unreadable JUnit file ({e})") from None
    if root.tag not in ("testsuites", "testsuite"):
        raise JUnitUnreadable(f"not JUnit XML (root <{root.tag}>)")
    cases = []
    for tc in root.iter("testcase"):
        classname, name = tc.get("classname", ""), tc.get("name", "")
        test_id = f"{classname}::{name}" if classname else name
        problems = tuple(
            Problem(kind=el.tag, message=first_line(el.get("message")) or first_line(el.text))
            for el in tc
            if el.tag in ("failure", "error")
        )
        kinds = {p.kind for p in problems}
        if "error" in kinds:
            outcome = "error"
        elif "failure" in kinds:
            outcome = "failed"
        elif tc.find("skipped") is not None:
            outcome = "skipped"
        else:
            outcome = "passed"
        cases.append(CaseResult(test_id, outcome, problems))
    return JUnitResult(tuple(cases))


# ---------------------------------------------------------------- one run's record


@dataclass
class RunRecord:
    index: int
    status: str  # ok, failed, timeout, crashed, error, interrupted
    exit_code: int | None
    wall_s: float
    junit: str
    log: str
    passed: int | None = None
    failed: int | None = None
    errors: int | None = None
    skipped: int | None = None
    false_alarms: int = 0
    error: str | None = None  # why the run itself is an error row
    cases: list[CaseResult] = field(default_factory=list, repr=False)

    @property
    def counted(self) -> bool:
        """Interrupted runs were stopped by the user: they are neither clean nor alarms."""
        return self.status != "interrupted"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["cases"]
        return data


def judge_run(
    index: int,
    junit_path: Path,
    log_path: Path,
    exit_code: int | None,
    wall_s: float,
    *,
    timed_out: bool = False,
    timeout_s: float | None = None,
    interrupted: bool = False,
) -> RunRecord:
    """One run's row, from its JUnit file and how the process ended.

    A run is clean only if its JUnit file is readable, records no failure or error, and
    pytest exited 0. A timeout, a missing or unreadable file, or a non-zero exit with no
    failure recorded (no tests collected, internal error) makes the run an error row
    worth one false alarm on top of the failures and errors its file records.
    """
    rec = RunRecord(index, "ok", exit_code, round(wall_s, 3), str(junit_path), str(log_path))
    unreadable = ""
    try:
        result: JUnitResult | None = parse_junit(junit_path)
    except JUnitUnreadable as e:
        result, unreadable = None, str(e)
    if result is not None:
        rec.cases = list(result.cases)
        rec.passed, rec.failed = result.count("passed"), result.failed
        rec.errors, rec.skipped = result.errors, result.count("skipped")
    recorded = (rec.failed or 0) + (rec.errors or 0)
    if interrupted:
        rec.status, rec.error = "interrupted", "stopped by Ctrl-C"
        return rec
    if timed_out:
        rec.status = "timeout"
        rec.error = f"timed out after {timeout_s:g} s" if timeout_s else "timed out"
        if result is None:
            rec.error += " (no JUnit file)"
    elif result is None:
        rec.status, rec.error = "crashed", f"{unreadable}, pytest exit code {exit_code}"
    elif recorded:
        rec.status = "failed"
    elif exit_code != 0:
        rec.status = "error"
        rec.error = f"pytest exited {exit_code} but its JUnit file records no failure"
        if not result.cases:
            rec.error += " (no tests ran)"
    rec.false_alarms = recorded + (1 if rec.error else 0)
    return rec


# ---------------------------------------------------------------- summary


@dataclass
class ScenarioSummary:
    test_id: str
    runs: int = 0  # runs whose JUnit file has this test case
    passed: int = 0
    failed: int = 0  # runs with a <failure>
    errored: int = 0  # runs with an <error>
    skipped: int = 0
    false_alarm_runs: int = 0  # runs with either
    messages: list[dict[str, Any]] = field(default_factory=list)


def summarise_scenarios(runs: Sequence[RunRecord]) -> list[ScenarioSummary]:
    """Per test case over the counted runs, the noisiest first, then in catalogue order."""
    by_id: dict[str, ScenarioSummary] = {}
    for run in runs:
        if not run.counted:
            continue
        for case in run.cases:
            s = by_id.setdefault(case.test_id, ScenarioSummary(case.test_id))
            s.runs += 1
            kinds = {p.kind for p in case.problems}
            s.passed += case.outcome == "passed"
            s.skipped += case.outcome == "skipped"
            s.failed += "failure" in kinds
            s.errored += "error" in kinds
            s.false_alarm_runs += bool(kinds)
            s.messages.extend(
                {"run": run.index, "kind": p.kind, "message": p.message} for p in case.problems
            )
    order = {test_id: i for i, test_id in enumerate(by_id)}
    return sorted(by_id.values(), key=lambda s: (-s.false_alarm_runs, order[s.test_id]))


def totals(runs: Sequence[RunRecord], scenarios: Sequence[ScenarioSummary]) -> dict[str, Any]:
    counted = [r for r in runs if r.counted]
    alarms = sum(r.false_alarms for r in counted)
    return {
        "runs": len(counted),
        "runs_interrupted": len(runs) - len(counted),
        "runs_with_false_alarm": sum(1 for r in counted if r.false_alarms),
        "run_errors": sum(1 for r in counted if r.error),  # timeouts, crashes, bad exits
        "failures": sum(r.failed or 0 for r in counted),
        "errors": sum(r.errors or 0 for r in counted),
        "false_alarms": alarms,
        "false_alarms_per_run": round(alarms / len(counted), 4) if counted else None,
        "scenarios": len(scenarios),
        "scenarios_with_false_alarm": sum(1 for s in scenarios if s.false_alarm_runs),
    }


def build_summary(
    runs: Sequence[RunRecord],
    *,
    command: Sequence[str],
    out: Path,
    runs_requested: int,
    started: float,
    interrupted: bool = False,
    stopped_early: bool = False,
) -> dict[str, Any]:
    scenarios = summarise_scenarios(runs)
    tot = totals(runs, scenarios)
    return {
        "schema": SCHEMA_VERSION,
        "command": list(command),
        "out": str(out),
        "runs_requested": runs_requested,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "interrupted": interrupted,
        "stopped_early": stopped_early,
        "ok": tot["runs"] > 0 and tot["false_alarms"] == 0 and not interrupted,
        "totals": tot,
        "runs": [r.to_json() for r in runs],
        "scenarios": [asdict(s) for s in scenarios],
    }


def exit_code_of(summary: dict[str, Any]) -> int:
    """0 clean, 1 a false alarm (or no run counted), 130 interrupted whatever came before."""
    if summary["interrupted"]:
        return EXIT_INTERRUPTED
    return EXIT_OK if summary["ok"] else EXIT_FALSE_ALARM


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def render(summary: dict[str, Any]) -> str:
    """The tables printed to stdout."""
    lines = [
        f"soak: {summary['runs_requested']} run(s) of: {shlex.join(summary['command'])}",
        f"out:  {summary['out']}",
        "",
        f"{'run':>3}  {'status':<11} {'wall s':>7} {'passed':>6} {'failed':>6} "
        f"{'errors':>6} {'skipped':>7} {'alarms':>6}",
    ]
    for r in summary["runs"]:
        row = (
            f"{r['index']:>3}  {r['status']:<11} {r['wall_s']:>7.1f} {_n(r['passed']):>6} "
            f"{_n(r['failed']):>6} {_n(r['errors']):>6} {_n(r['skipped']):>7} "
            f"{r['false_alarms'] if r['status'] != 'interrupted' else '-':>6}"
        )
        lines.append(row + (f"  {r['error']}" if r["error"] else ""))
    scenarios = summary["scenarios"]
    lines.append("")
    if scenarios:
        # Ids are printed whole: the parametrisation that tells two scenarios apart is
        # at the end, where clipping would cut.
        width = max(len(s["test_id"]) for s in scenarios)
        lines.append(f"{'scenario':<{width}} {'runs':>4} {'failed':>6} {'errored':>7}")
        for s in scenarios:
            lines.append(
                f"{s['test_id']:<{width}} {s['runs']:>4} {s['failed']:>6} {s['errored']:>7}"
            )
            for m in s["messages"]:
                text = _clip(m["message"] or "(no message)", MESSAGE_WIDTH)
                lines.append(f"    run {m['run']} {m['kind']}: {text}")
    else:
        lines.append("scenario: none recorded")
    t = summary["totals"]
    lines.append("")
    per_run = "-" if t["false_alarms_per_run"] is None else f"{t['false_alarms_per_run']:.2f}"
    lines.append(
        f"total: {t['false_alarms']} false alarm(s) in {t['runs']} run(s), {per_run} per run "
        f"({t['failures']} failure(s), {t['errors']} error(s), {t['run_errors']} run error(s))"
    )
    lines.append(
        f"       {t['runs_with_false_alarm']} of {t['runs']} run(s) and "
        f"{t['scenarios_with_false_alarm']} of {t['scenarios']} scenario(s) had a false alarm"
    )
    if summary["interrupted"]:
        lines.append(f"interrupted by Ctrl-C ({t['runs_interrupted']} run(s) cut short)")
    elif summary["stopped_early"]:
        lines.append("stopped early (--stop-on-failure)")
    return "\n".join(lines)


# ---------------------------------------------------------------- running pytest


class Interrupted(Exception):
    """Ctrl-C or SIGTERM reached the soak."""


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave SIGTERM alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop_group(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGINT to the run's process group (pytest tears its mesh down), SIGKILL after grace.

    A second Ctrl-C during the grace period skips to SIGKILL.
    """
    _signal_group(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=grace_s)
    except (subprocess.TimeoutExpired, KeyboardInterrupt, Interrupted):
        pass
    finally:
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()


@dataclass(frozen=True)
class Outcome:
    exit_code: int | None
    wall_s: float
    timed_out: bool = False
    interrupted: bool = False


def run_once(cmd: Sequence[str], log_path: Path, timeout_s: float, grace_s: float) -> Outcome:
    """One pytest subprocess in its own process group, output to ``log_path``.

    Ctrl-C (or SIGTERM) while it runs stops its group and comes back as ``interrupted``.
    """
    with log_path.open("wb") as log:
        t0 = time.monotonic()
        proc = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        timed_out = interrupted = False
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            stop_group(proc, grace_s)
        except (KeyboardInterrupt, Interrupted):
            interrupted = True
            stop_group(proc, grace_s)
        finally:
            # Whatever the leader left in its group goes too (the group id cannot be
            # reused while any member lives, so this reaches only our run's processes).
            _signal_group(proc.pid, signal.SIGKILL)
            if proc.returncode is None:
                proc.wait()
        wall = time.monotonic() - t0
    code = proc.returncode
    return Outcome(code, wall, timed_out=timed_out, interrupted=interrupted)


# ---------------------------------------------------------------- command line


@dataclass(frozen=True)
class Options:
    runs: int
    timeout_s: float
    grace_s: float
    out: Path
    stop_on_failure: bool
    pytest_cmd: tuple[str, ...]
    pytest_args: tuple[str, ...]


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
        return value

    return parse


def parse_args(argv: Sequence[str]) -> Options:
    """Our options before ``--``, pytest's after it. Raises SystemExit(2) on bad usage."""
    argv = list(argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(
        prog="soak.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-n", "--runs", type=_positive(int), default=20, help="default 20")
    parser.add_argument(
        "--timeout",
        type=_positive(float),
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help=f"per-run wall-clock limit in seconds (default {DEFAULT_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--grace",
        type=_positive(float),
        default=DEFAULT_GRACE_S,
        metavar="S",
        help="seconds between SIGINT and SIGKILL when a run is stopped "
        f"(default {DEFAULT_GRACE_S:g})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="soak directory, new or empty (default reports/soak-<timestamp>)",
    )
    parser.add_argument(
        "--stop-on-failure", action="store_true", help="stop after the first run that is not ok"
    )
    parser.add_argument(
        "--pytest-cmd",
        default=None,
        metavar="CMD",
        help="the pytest command, split like a shell would (default: this Python -m pytest)",
    )
    args = parser.parse_args(argv)
    for arg in extra:
        if arg.split("=", 1)[0] in OWNED_OPTIONS:
            parser.error(f"{arg.split('=', 1)[0]} is set by the soak; leave it out")
    cmd = (
        tuple(shlex.split(args.pytest_cmd))
        if args.pytest_cmd is not None
        else (sys.executable, "-m", "pytest")
    )
    if not cmd:
        parser.error("--pytest-cmd is empty")
    out = args.out or Path("reports") / time.strftime("soak-%Y%m%d-%H%M%S")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        parser.error(f"--out {out} exists and is not an empty directory")
    return Options(
        runs=args.runs,
        timeout_s=args.timeout,
        grace_s=args.grace,
        out=out,
        stop_on_failure=args.stop_on_failure,
        pytest_cmd=cmd,
        pytest_args=(*DEFAULT_PYTEST_ARGS, *extra),
    )


def run_command(opts: Options, run_dir: Path) -> list[str]:
    return [
        *opts.pytest_cmd,
        *opts.pytest_args,
        f"--junitxml={run_dir.absolute() / 'junit.xml'}",
        f"--reports-dir={run_dir.absolute()}",
    ]


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _one_run(opts: Options, i: int) -> RunRecord:
    run_dir = opts.out / f"run-{i:02d}"
    run_dir.mkdir()
    junit, log = run_dir / "junit.xml", run_dir / "pytest.log"
    _progress(f"soak: run {i}/{opts.runs} ... (log {log})")
    outcome = run_once(run_command(opts, run_dir), log, opts.timeout_s, opts.grace_s)
    rec = judge_run(
        i,
        junit,
        log,
        outcome.exit_code,
        outcome.wall_s,
        timed_out=outcome.timed_out,
        timeout_s=opts.timeout_s,
        interrupted=outcome.interrupted,
    )
    _progress(
        f"soak: run {i}/{opts.runs} {rec.status} in {rec.wall_s:.1f} s, "
        f"{_n(rec.passed)} passed, {_n(rec.failed)} failed, {_n(rec.errors)} errors"
        + (f" ({rec.error})" if rec.error else "")
    )
    return rec


def soak(opts: Options) -> dict[str, Any]:
    """Run the loop, write ``soak.json`` and return the summary."""
    opts.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    runs: list[RunRecord] = []
    interrupted = stopped_early = False
    with _sigterm_as_interrupt():
        try:
            for i in range(1, opts.runs + 1):
                rec = _one_run(opts, i)
                runs.append(rec)
                if rec.status == "interrupted":
                    interrupted = True
                    break
                if opts.stop_on_failure and rec.status != "ok" and i < opts.runs:
                    stopped_early = True
                    break
        except (KeyboardInterrupt, Interrupted):  # between runs, no child to stop
            interrupted = True
    summary = build_summary(
        runs,
        command=[*opts.pytest_cmd, *opts.pytest_args],
        out=opts.out,
        runs_requested=opts.runs,
        started=started,
        interrupted=interrupted,
        stopped_early=stopped_early,
    )
    (opts.out / "soak.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    summary = soak(opts)
    print(render(summary), flush=True)
    return exit_code_of(summary)


if __name__ == "__main__":
    sys.exit(main())
