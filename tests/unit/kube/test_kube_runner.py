"""The command runner: argv only, deadlines, process groups; and the recorded runner itself."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from recorded_runner import ANY, RecordedRunner, step

from meshchaos.mesh.kube._runner import (
    CommandFailed,
    CommandNotFound,
    CommandTimedOut,
    SubprocessRunner,
)

PY = sys.executable


def test_stdout_and_stderr_are_captured_apart_and_input_is_fed() -> None:
    code = "import sys; d = sys.stdin.read(); print('out', d); print('err', file=sys.stderr)"
    done = SubprocessRunner().run([PY, "-c", code], timeout=30, input=b"hello")
    assert done.ok
    assert done.text == "out hello\n"
    assert done.error_text == "err\n"


def test_env_is_laid_over_the_environment() -> None:
    code = "import os; print(os.environ['MESHCHAOS_T'], 'PATH' in os.environ)"
    done = SubprocessRunner().run([PY, "-c", code], timeout=30, env={"MESHCHAOS_T": "x"})
    assert done.text.split() == ["x", "True"]


def test_arguments_are_never_interpreted_by_a_shell(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    arg = f"; touch {marker}"
    done = SubprocessRunner().run([PY, "-c", "import sys; print(sys.argv[1])", arg], timeout=30)
    assert done.text.strip() == arg
    assert not marker.exists()


def test_a_non_zero_exit_is_returned_and_check_names_the_command() -> None:
    done = SubprocessRunner().run(
        [PY, "-c", "import sys; sys.stderr.write('boom'); sys.exit(3)"], timeout=30
    )
    assert done.returncode == 3
    with pytest.raises(CommandFailed, match=r"creating a thing failed: `.*` exited 3:\nboom"):
        done.check("creating a thing")


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    # The child starts a grandchild that would outlive it, then hangs.
    code = (
        "import subprocess, sys, time\n"
        f"p = subprocess.Popen([{PY!r}, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n"
    )
    started = time.monotonic()
    with pytest.raises(CommandTimedOut, match=r"did not finish within 1.5 s") as info:
        SubprocessRunner().run([PY, "-c", code], timeout=1.5)
    assert time.monotonic() - started < 10
    assert info.value.stdout == b"started\n"
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)


def test_a_missing_program_is_command_not_found() -> None:
    with pytest.raises(CommandNotFound, match="'meshchaos-no-such-tool' is not installed"):
        SubprocessRunner().run(["meshchaos-no-such-tool", "version"], timeout=5)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"


# ------------------------------------------------------------ the recorded runner


def test_recorded_runner_plays_back_in_order() -> None:
    runner = RecordedRunner([step("kind", "get", "clusters", stdout="a\n"), step("x", ANY)])
    assert runner.run(["kind", "get", "clusters"], timeout=5).text == "a\n"
    assert runner.run(["x", "/tmp/anything"], timeout=5).ok
    runner.assert_done()


def test_recorded_runner_fails_on_an_unexpected_command() -> None:
    runner = RecordedRunner([step("kind", "get", "clusters")])
    with pytest.raises(AssertionError, match="out of order"):
        runner.run(["kind", "delete", "cluster"], timeout=5)
    runner = RecordedRunner([])
    with pytest.raises(AssertionError, match="unexpected command #1"):
        runner.run(["kubectl", "version"], timeout=5)


def test_recorded_runner_fails_on_a_missing_command() -> None:
    runner = RecordedRunner([step("a"), step("b")])
    runner.run(["a"], timeout=5)
    with pytest.raises(AssertionError, match=r"never ran:\n  \['b'\]"):
        runner.assert_done()


def test_recorded_runner_refuses_a_call_without_a_deadline() -> None:
    with pytest.raises(AssertionError, match="no real deadline"):
        RecordedRunner([step("a")]).run(["a"], timeout=float("inf"))


def test_recorded_runner_checks_required_env() -> None:
    runner = RecordedRunner([step("kind", env={"KIND_EXPERIMENTAL_PROVIDER": "docker"})])
    with pytest.raises(AssertionError, match="KIND_EXPERIMENTAL_PROVIDER"):
        runner.run(["kind"], timeout=5, env={})
