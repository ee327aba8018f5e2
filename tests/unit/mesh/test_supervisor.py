"""supervisor.spawn, the one door every child process of the local mesh goes through."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from meshchaos.mesh.local.state import proc_start_ticks
from meshchaos.mesh.local.supervisor import app_host_argv, spawn, wait_gone


def test_a_logged_child_leads_its_own_group_and_appends_to_its_log(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    log.write_text("before\n")
    proc = spawn([sys.executable, "-c", "import os; print(os.getpgrp())"], log_path=log)
    assert proc.wait(timeout=10) == 0
    assert log.read_text() == f"before\n{proc.pid}\n"  # its own group, led by itself
    assert os.getpgid(os.getpid()) != proc.pid


def test_a_piped_child_speaks_text_lines() -> None:
    proc = spawn([sys.executable, "-c", "print(input().upper(), flush=True)"], pipes=True)
    assert proc.stdin is not None
    assert proc.stdout is not None
    assert proc.stderr is not None
    try:
        proc.stdin.write("ping\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == "PING\n"
        assert proc.wait(timeout=10) == 0
    finally:
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            stream.close()


def test_a_child_dies_with_its_parent_even_on_sigkill() -> None:
    """The parent spawns a sleeper through spawn(), prints its pid, and is SIGKILLed.

    The pid is printed once the sleeper runs: the death signal is armed just before that
    exec (by setpriv, or by the preexec hook), and a parent killed earlier is the window
    the module docstring names.
    """
    parent_code = textwrap.dedent(
        """
        import sys, time
        from meshchaos.mesh.local.state import proc_cmdline
        from meshchaos.mesh.local.supervisor import spawn
        child = spawn(["sleep", "60"])
        deadline = time.monotonic() + 10
        while proc_cmdline(child.pid)[:1] != ["sleep"] and time.monotonic() < deadline:
            time.sleep(0.001)
        print(child.pid, flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    try:
        child = int(parent.stdout.readline())
        ticks = proc_start_ticks(child)
        assert ticks is not None
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        assert wait_gone([child], 5.0) == [] or proc_start_ticks(child) != ticks
    finally:
        parent.kill()
        parent.wait(timeout=10)
        parent.stdout.close()


def test_the_app_host_names_its_state_dir_on_its_command_line(tmp_path: Path) -> None:
    assert app_host_argv(1)[1:] == ["-m", "meshchaos.apps.host"]
    assert app_host_argv(2, state_dir=tmp_path)[3:] == [
        "--workers",
        "2",
        "--state-dir",
        str(tmp_path),
    ]
