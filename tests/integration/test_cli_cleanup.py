"""`meshchaos up` leaves nothing behind: no process, no listening port.

test_local_mesh_lifecycle.py already checks that the *recorded* pids die after
``down``, SIGINT and SIGKILL, and that ``LocalMesh.start`` sweeps a killed run. What it
does not check, and this module does, from the outside the way a user would see it:

* every process of the run, not just the recorded ones: the whole process tree of
  ``up`` (snapshotted while it runs) and anything whose command line names the state dir
  (scanned in /proc);
* every TCP port the state recorded is unbound afterwards, also after ``down``;
* SIGKILL of ``up`` followed by the *CLI's* next ``up`` and ``down`` in the same dir;
* ``down`` refuses an unusable state.json with a clear error, and ``down --force`` sweeps
  that mesh by command line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from _local_mesh_helpers import (
    UpOutput,
    held_by_mesh,
    listening_ports,
    load_state,
    recorded_pids,
    state_ports,
)

from meshchaos.mesh.local.state import is_same_process, proc_start_ticks

pytestmark = pytest.mark.integration

GONE_DEADLINE = 10.0
_SCRIPT = Path(sys.executable).with_name("meshchaos")
MESHCHAOS = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "meshchaos.cli"]


@dataclass
class Up:
    """One ``meshchaos up`` and what it had running once ready."""

    proc: subprocess.Popen[str]
    out: UpOutput
    processes: set[tuple[int, int]] = field(default_factory=set)  # (pid, start ticks)
    ports: set[int] = field(default_factory=set)


def _children() -> dict[int, list[int]]:
    """ppid -> pids, for every live process."""
    tree: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        tree.setdefault(ppid, []).append(int(d.name))
    return tree


def _tree(root: int) -> set[tuple[int, int]]:
    """``root`` and all its live descendants, as (pid, start ticks)."""
    tree, out, todo = _children(), set(), [root]
    while todo:
        pid = todo.pop()
        ticks = proc_start_ticks(pid)
        if ticks is not None:
            out.add((pid, ticks))
        todo.extend(tree.get(pid, []))
    return out


def _naming(state_dir: Path) -> list[tuple[int, str]]:
    """Live processes whose command line mentions ``state_dir``."""
    needle = str(state_dir).encode()
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            cmdline = (d / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline and proc_start_ticks(int(d.name)) is not None:
            found.append((int(d.name), cmdline.replace(b"\0", b" ").decode(errors="replace")))
    return found


@pytest.fixture
def up_cli(tmp_path: Path) -> Iterator[tuple[Path, list[Up]]]:
    """Start ``meshchaos up`` runs in one state dir; whatever happens, none outlives the test."""
    state_dir = tmp_path / "state"
    runs: list[Up] = []
    try:
        yield state_dir, runs
    finally:
        for run in runs:
            if run.proc.poll() is None:
                os.killpg(run.proc.pid, signal.SIGKILL)  # its own session: start_new_session
            run.proc.wait(timeout=10)
        if (state_dir / "state.json").exists():  # sweep what a failed test left
            subprocess.run(
                [*MESHCHAOS, "down", "--state-dir", str(state_dir)],
                capture_output=True,
                timeout=30,
                check=False,
            )
        for run in runs:
            run.out.pump.join(timeout=10)
            if run.proc.stdout is not None:
                run.proc.stdout.close()


def _start(state_dir: Path, runs: list[Up]) -> Up:
    proc = subprocess.Popen(
        [*MESHCHAOS, "up", "--state-dir", str(state_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    run = Up(proc, UpOutput(proc))
    runs.append(run)
    run.out.wait_ready()
    state = load_state(state_dir)
    run.processes = _tree(proc.pid) | set(recorded_pids(state))
    run.ports = state_ports(state)
    # The snapshot must have caught the whole mesh: every Envoy and app host.
    assert set(recorded_pids(state)) <= run.processes
    assert len(run.processes) > len(state.proxies)
    assert run.ports <= listening_ports()
    return run


def _assert_nothing_left(state_dir: Path, *runs: Up) -> None:
    __tracebackhide__ = True
    deadline = time.monotonic() + GONE_DEADLINE

    def alive() -> list[tuple[int, int]]:
        return [(p, t) for run in runs for p, t in run.processes if is_same_process(p, t)]

    while (alive() or _naming(state_dir)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(), f"processes of the run still alive: {alive()}"
    assert not _naming(state_dir), f"processes naming {state_dir}: {_naming(state_dir)}"
    leaked = held_by_mesh(set().union(*(run.ports for run in runs)), state_dir)
    assert not leaked, f"ports the state recorded are still held by the mesh: {leaked}"


def _down(state_dir: Path) -> subprocess.CompletedProcess[str]:
    down = subprocess.run(
        [*MESHCHAOS, "down", "--state-dir", str(state_dir)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert down.returncode == 0, down.stderr
    return down


def test_down_leaves_no_process_or_port(up_cli: tuple[Path, list[Up]]) -> None:
    state_dir, runs = up_cli
    run = _start(state_dir, runs)
    _down(state_dir)
    assert run.proc.wait(timeout=15) == 0, run.out.text()
    _assert_nothing_left(state_dir, run)


def test_sigint_leaves_no_process_or_port(up_cli: tuple[Path, list[Up]]) -> None:
    state_dir, runs = up_cli
    run = _start(state_dir, runs)
    run.proc.send_signal(signal.SIGINT)
    assert run.proc.wait(timeout=15) == 0, run.out.text()
    _assert_nothing_left(state_dir, run)


def test_sigkill_then_next_up_and_down_leave_no_process_or_port(
    up_cli: tuple[Path, list[Up]],
) -> None:
    state_dir, runs = up_cli
    killed = _start(state_dir, runs)
    killed.proc.kill()  # SIGKILL to `up` alone: no cleanup code runs in it
    assert killed.proc.wait(timeout=10) == -signal.SIGKILL
    nxt = _start(state_dir, runs)  # the same dir: it must sweep or refuse, never collide
    assert load_state(state_dir).owner_pid == nxt.proc.pid
    _down(state_dir)
    assert nxt.proc.wait(timeout=15) == 0, nxt.out.text()
    _assert_nothing_left(state_dir, killed, nxt)


def _corrupt(state_file: Path, how: str) -> None:
    if how == "torn":
        state_file.write_text(state_file.read_text()[:40])
    else:  # as a meshchaos from before the state schema wrote it
        data = json.loads(state_file.read_text())
        for key in ("schema", "schema_version", "meshchaos_version"):
            del data[key]
        state_file.write_text(json.dumps(data))


@pytest.mark.parametrize("how", ["torn", "unversioned"])
def test_down_force_sweeps_a_mesh_whose_state_is_unusable(
    up_cli: tuple[Path, list[Up]], how: str
) -> None:
    state_dir, runs = up_cli
    run = _start(state_dir, runs)
    state_file = state_dir / "state.json"
    _corrupt(state_file, how)
    refused = subprocess.run(
        [*MESHCHAOS, "down", "--state-dir", str(state_dir)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"meshchaos down: {state_file}: "), refused.stderr
    assert "meshchaos down --force" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert run.proc.poll() is None  # nothing was touched
    forced = subprocess.run(
        [*MESHCHAOS, "down", "--force", "--state-dir", str(state_dir)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert forced.returncode == 0, forced.stderr
    assert "stopped (swept" in forced.stdout
    # `up --state-dir DIR` names the dir too: it is swept with its mesh.
    assert run.proc.wait(timeout=15) == -signal.SIGKILL, run.out.text()
    _assert_nothing_left(state_dir, run)
    assert state_dir.is_dir()
    assert not any(state_dir.iterdir())
