"""`down` of a local mesh: refusal on a bad state file, and the forced sweep by command line.

No Envoy runs here: fake processes carry the command lines a mesh's processes have
(``envoy -c DIR/proxies/NAME/bootstrap.json``, ``python -m meshchaos.apps.host
--state-dir DIR``), and bystanders carry command lines that must not be taken for them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshchaos.cli import main
from meshchaos.mesh.local import LocalMesh
from meshchaos.mesh.local.state import StateError, is_same_process, proc_start_ticks
from meshchaos.mesh.local.supervisor import processes_naming, sweep_by_cmdline, wait_gone

# Builtin modules only: with a made-up argv[0] Python may not find its stdlib. "fork": leave
# a child in the group whose command line names no state dir.
SLEEP = (
    "import os, sys, time\n"
    "if 'fork' in sys.argv and os.fork() == 0: os.execv('/bin/sleep', ['sleep', '60'])\n"
    "time.sleep(60)"
)


class Procs:
    """Fake processes started by a test; whatever happens, none outlives it."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def fake(
        self, argv0: str, *args: str, own_group: bool = True, cwd: Path | None = None
    ) -> subprocess.Popen[bytes]:
        """A sleeping Python whose command line reads ``argv0 -c SLEEP args...``."""
        proc = subprocess.Popen(
            [argv0, "-c", SLEEP, *args],
            executable=sys.executable,
            stdin=subprocess.DEVNULL,
            start_new_session=own_group,
            cwd=cwd,
        )
        self.started.append(proc)
        return proc

    def script(self, path: Path, *args: str, child: str = "") -> subprocess.Popen[bytes]:
        """``python3 PATH args...`` (a console script such as ``meshchaos``) that sleeps.

        ``child``: code a forked child runs first (it may exec another command line).
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        fork = f"import os\nif os.fork() == 0:\n    exec({child!r})\n" if child else ""
        path.write_text(fork + SLEEP)
        proc = subprocess.Popen(
            ["python3", str(path), *args],
            executable=sys.executable,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.started.append(proc)
        return proc

    def app_host(self, state_dir: Path) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "meshchaos.apps.host", "--state-dir", str(state_dir)],
            stdin=subprocess.PIPE,  # the host serves until EOF: it stays up
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.started.append(proc)
        return proc


@pytest.fixture
def procs() -> Iterator[Procs]:
    p = Procs()
    try:
        yield p
    finally:
        for proc in p.started:
            if proc.poll() is None:
                with_group = os.getpgid(proc.pid) == proc.pid
                os.killpg(proc.pid, signal.SIGKILL) if with_group else proc.kill()
            proc.wait(timeout=10)
            if proc.stdin is not None:
                proc.stdin.close()


def _wait_listed(state_dir: Path, pids: set[int]) -> None:
    """Until every pid has exec'd into the command line the test gave it."""
    deadline = time.monotonic() + 10
    while not pids <= (listed := {p for p, _ in processes_naming(state_dir)}):
        assert time.monotonic() < deadline, f"not listed: {pids - listed}"
        time.sleep(0.01)


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2 :].split()[1]) == pid:
                out.append(int(d.name))
    return out


def _corrupt(state_dir: Path) -> Path:
    (state_dir / "proxies/gw").mkdir(parents=True)
    (state_dir / "proxies/gw/envoy.log").write_text("log\n")
    path = state_dir / "state.json"
    path.write_text('{"owner_pid": 12')
    return path


def test_processes_naming_finds_mesh_programs_under_the_dir_only(
    tmp_path: Path, procs: Procs
) -> None:
    state_dir = tmp_path / "state"
    envoy = procs.fake("/opt/envoy/bin/envoy", f"{state_dir}/proxies/gw/bootstrap.json")
    relative = procs.fake("envoy", "state/proxies/x/bootstrap.json", cwd=tmp_path)
    host = procs.app_host(state_dir)
    up = procs.script(tmp_path / "bin/meshchaos", "up", f"--state-dir={state_dir}")
    # Bystanders: not a mesh program, or a sibling dir that shares the prefix.
    tail = procs.fake("tail", f"{state_dir}/proxies/gw/envoy.log")
    sibling = procs.fake("envoy", f"{state_dir}2/proxies/gw/bootstrap.json")
    ours = {envoy.pid, relative.pid, host.pid, up.pid}
    _wait_listed(state_dir, ours)
    found = {pid for pid, _ in processes_naming(state_dir)}
    assert ours <= found
    assert not {tail.pid, sibling.pid} & found


def test_the_meshchaos_parent_of_a_mesh_process_counts_though_it_names_no_dir(
    tmp_path: Path, procs: Procs
) -> None:
    state_dir = tmp_path / "state"
    # `meshchaos up` with the default state dir: its argv names no dir, its Envoy does.
    envoy_argv = ["envoy", "-c", SLEEP, f"{state_dir}/proxies/gw/bootstrap.json"]
    # The test's interpreter by path: a child's sys.executable follows its made-up argv[0].
    code = f"import os\nos.execv({sys.executable!r}, {envoy_argv!r})\n"
    owner = procs.script(tmp_path / "bin/meshchaos", "up", child=code)
    _wait_listed(state_dir, {owner.pid})
    assert len(processes_naming(state_dir)) == 2  # the owner and its Envoy
    killed = sweep_by_cmdline(state_dir)
    assert owner.pid in killed
    assert processes_naming(state_dir) == []


def test_sweep_by_cmdline_kills_process_groups_and_spares_bystanders(
    tmp_path: Path, procs: Procs
) -> None:
    state_dir = tmp_path / "state"
    leader = procs.fake("envoy", f"{state_dir}/proxies/gw/bootstrap.json", "fork")
    host = procs.app_host(state_dir)
    in_our_group = procs.fake("envoy", f"{state_dir}/proxies/b/bootstrap.json", own_group=False)
    tail = procs.fake("tail", f"{state_dir}/proxies/gw/envoy.log")
    _wait_listed(state_dir, {leader.pid, host.pid, in_our_group.pid})
    deadline = time.monotonic() + 10
    while not _children(leader.pid):  # the leader's child names no state dir
        assert time.monotonic() < deadline
        time.sleep(0.01)
    child = _children(leader.pid)[0]
    child_ticks = proc_start_ticks(child)
    assert child_ticks is not None
    killed = sweep_by_cmdline(state_dir)
    assert {leader.pid, host.pid, in_our_group.pid} <= set(killed)
    for proc in (leader, host, in_our_group):
        proc.wait(timeout=5)  # the sweep reaped our children: no exit status left to read
        assert not wait_gone([proc.pid], 0)
    assert not wait_gone([child], 5.0) or not is_same_process(child, child_ticks)
    assert tail.poll() is None  # a bystander naming a log file lives on
    assert processes_naming(state_dir) == []


def test_down_refuses_an_unreadable_state_and_says_to_force(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    path = _corrupt(state_dir)
    with pytest.raises(StateError, match=r"is not JSON.*meshchaos down --force --state-dir"):
        LocalMesh.down(state_dir)
    assert path.exists()  # nothing removed without force


def test_down_force_sweeps_by_command_line_and_removes_the_state(
    tmp_path: Path, procs: Procs
) -> None:
    state_dir = tmp_path / "state"
    path = _corrupt(state_dir)
    envoy = procs.fake("envoy", f"{state_dir}/proxies/gw/bootstrap.json")
    host = procs.app_host(state_dir)
    _wait_listed(state_dir, {envoy.pid, host.pid})
    result = LocalMesh.down(state_dir, force=True)
    assert result.found
    assert str(path) in result.unreadable
    assert {envoy.pid, host.pid} <= set(result.swept)
    for proc in (envoy, host):
        proc.wait(timeout=5)
        assert not wait_gone([proc.pid], 0)
    assert state_dir.is_dir()
    assert not any(state_dir.iterdir())


def test_down_of_nothing_is_not_an_error(tmp_path: Path) -> None:
    assert not LocalMesh.down(tmp_path / "none").found
    assert not LocalMesh.down(tmp_path / "none", force=True).found
    assert not (tmp_path / "none").exists()


def test_cli_down_prints_the_state_error_then_force_clears(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state_dir = tmp_path / "state"
    path = _corrupt(state_dir)
    assert main(["down", "--state-dir", str(state_dir)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"meshchaos down: {path}: is not JSON")
    assert "Traceback" not in err
    # Other verbs find a mesh by its handle (mesh.json), and there is none here.
    assert main(["status", "--state-dir", str(state_dir)]) == 1
    assert f"no mesh is running in {state_dir}" in capsys.readouterr().err
    assert main(["down", "--force", "--state-dir", str(state_dir)]) == 0
    out = capsys.readouterr()
    assert f"mesh in {state_dir} stopped" in out.out
    assert "Warning:" in out.err
    assert not path.exists()


def test_start_refuses_an_unusable_state_and_leaves_it(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    path = _corrupt(state_dir)
    before = path.read_text()
    with pytest.raises(StateError, match="meshchaos down --force"):
        LocalMesh.start(state_dir)  # fails before it starts any process
    assert path.read_text() == before
    assert (state_dir / "proxies/gw/envoy.log").exists()
