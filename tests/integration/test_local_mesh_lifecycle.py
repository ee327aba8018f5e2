"""LocalMesh start/close and the `meshchaos up/down` commands leave nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _local_mesh_helpers import (
    TITLE,
    all_gone,
    get,
    held_by_mesh,
    load_state,
    recorded_pids,
    state_ports,
    wait_for,
)

from meshchaos.apps.catalog import DEFAULT_WORKLOADS
from meshchaos.errors import MeshError
from meshchaos.mesh.base import Mesh
from meshchaos.mesh.local import LocalMesh
from meshchaos.mesh.local.state import StateDir, is_same_process

pytestmark = pytest.mark.integration


def test_start_serves_productpage_and_close_leaves_no_process_port_or_file(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    mesh = LocalMesh.start(state_dir)
    try:
        assert isinstance(mesh, Mesh)
        state = load_state(state_dir)
        procs, ports = recorded_pids(state), state_ports(state)
        running = sum(w.replicas for w in DEFAULT_WORKLOADS)
        assert len(state.proxies) == running + 1  # a sidecar per instance + the gateway
        status, body = get(mesh.gateway_url(), "/productpage")
        assert status == 200
        assert TITLE in body
        assert all(s.synced and s.alive for s in mesh.status())
        assert (state_dir / "mesh.json").exists()
    finally:
        mesh.close()
        mesh.close()  # idempotent
    assert all_gone(procs)
    assert not held_by_mesh(ports, state_dir)
    assert state_dir.is_dir()
    assert not any(state_dir.iterdir())


def test_a_temp_state_dir_is_removed_and_a_live_owner_refuses_a_second_start() -> None:
    with LocalMesh.start() as mesh:
        state_dir = mesh.state_dir
        with pytest.raises(MeshError, match="already runs"):
            LocalMesh.start(state_dir)
        attached = LocalMesh.attach(state_dir)
        assert attached.gateway_url() == mesh.gateway_url()
        with pytest.raises(MeshError, match="needs the process that started the mesh"):
            attached.kill("reviews-v1-0")
    assert not state_dir.exists()
    with pytest.raises(MeshError, match="no local mesh is running"):
        LocalMesh.attach(state_dir)


def _meshchaos(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "meshchaos.cli", *args],
        cwd=cwd,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture
def up_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    proc = _meshchaos("up", "--state-dir", "st", cwd=tmp_path)
    try:
        yield proc, tmp_path / "st"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
        state = StateDir(tmp_path / "st").load()
        if state is not None:  # never leak, whatever the test did
            from meshchaos.mesh.local.supervisor import sweep

            sweep(StateDir(tmp_path / "st"), state)


def _wait_ready(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()  # up prints this line once /productpage is served
    assert line.startswith("mesh ready in "), line
    return line


def test_up_serves_and_sigint_tears_everything_down(
    up_process: tuple[subprocess.Popen[str], Path],
) -> None:
    proc, state_dir = up_process
    line = _wait_ready(proc)
    url = line.split("gateway ")[1].strip()
    state = load_state(state_dir)
    status, body = get(url.removesuffix("/productpage"), "/productpage")
    assert status == 200
    assert TITLE in body
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=15) == 0
    assert all_gone(recorded_pids(state))
    assert not held_by_mesh(state_ports(state), state_dir)
    assert not any(state_dir.iterdir())


def test_up_killed_by_sigkill_takes_its_children_and_next_up_sweeps(
    up_process: tuple[subprocess.Popen[str], Path],
    tmp_path: Path,
) -> None:
    proc, state_dir = up_process
    _wait_ready(proc)
    state = load_state(state_dir)
    proc.kill()  # no cleanup code runs in the owner
    proc.wait(timeout=5)
    wait_for(lambda: all_gone(recorded_pids(state)), 5.0, "children die with their owner")
    assert (state_dir / "state.json").exists()  # left behind for the next start to sweep
    with LocalMesh.start(state_dir) as mesh:
        assert load_state(state_dir).owner_pid == os.getpid()
        assert get(mesh.gateway_url(), "/productpage")[0] == 200


def test_down_from_another_process_stops_the_owner(
    up_process: tuple[subprocess.Popen[str], Path],
    tmp_path: Path,
) -> None:
    proc, state_dir = up_process
    _wait_ready(proc)
    state = load_state(state_dir)
    t0 = time.monotonic()
    down = subprocess.run(
        [sys.executable, "-m", "meshchaos.cli", "down", "--state-dir", "st"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert down.returncode == 0, down.stderr
    assert "stopped" in down.stdout
    assert proc.wait(timeout=5) == 0
    assert not is_same_process(state.owner_pid, state.owner_start_ticks)
    assert all_gone(recorded_pids(state))
    assert time.monotonic() - t0 < 10
    again = subprocess.run(
        [sys.executable, "-m", "meshchaos.cli", "status", "--state-dir", "st"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert again.returncode == 1
    assert "no mesh is running in st; start one with `meshchaos up" in again.stderr
