"""The CLI against a real mesh: policy names, unknown and dead workloads, an owner killed.

What tests/unit/cli checks against a fake, here once through real Envoys and subprocesses.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _local_mesh_helpers import load_state

from meshchaos.mesh.local import LocalMesh

pytestmark = pytest.mark.integration

SAMPLE = "fault-ratings-abort-50pct-500"
_SCRIPT = Path(sys.executable).with_name("meshchaos")
MESHCHAOS = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "meshchaos.cli"]


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    with LocalMesh.start(tmp_path_factory.mktemp("mesh") / "state") as m:
        yield m


def cli(mesh: LocalMesh, *argv: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*MESHCHAOS, *argv, "--state-dir", str(mesh.state_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def names(mesh: LocalMesh) -> set[str]:
    return {f"{r.kind} {r.metadata.name}" for r in mesh.resources()}


def test_apply_and_delete_a_packaged_sample_by_name(mesh: LocalMesh) -> None:
    applied = cli(mesh, "apply", "-f", SAMPLE)
    assert applied.returncode == 0, applied.stderr
    assert "virtualservice.networking.istio.io/ratings created" in applied.stdout
    try:
        assert "VirtualService ratings" in names(mesh)
    finally:
        deleted = cli(mesh, "delete", "-f", SAMPLE)
    assert deleted.returncode == 0, deleted.stderr
    assert "VirtualService ratings" not in names(mesh)


def test_stats_of_an_unknown_workload_exits_2_naming_the_running_ones(mesh: LocalMesh) -> None:
    proc = cli(mesh, "stats", "sleep")
    assert proc.returncode == 2
    assert proc.stderr.startswith("meshchaos stats: no workload 'sleep' in the running mesh; ")
    assert "reviews-v2" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_load_from_an_unknown_client_exits_2(mesh: LocalMesh) -> None:
    proc = cli(mesh, "load", "http://httpbin:8000/get", "--from", "sleep", "-n", "1")
    assert proc.returncode == 2
    assert proc.stderr == (
        "meshchaos load: no in-mesh client 'sleep' in the running mesh; known: client\n"
    )


def test_stats_of_a_workload_whose_envoy_died_unseen_is_one_line(mesh: LocalMesh) -> None:
    victim = load_state(mesh.state_dir).proxies["details-v1-0"]
    # Freeze its Envoy behind the mesh's back (a kill() through the mesh would be recorded):
    # the admin API times out as a dead proxy's would, and the mesh recovers on SIGCONT.
    os.kill(victim.pid, signal.SIGSTOP)
    try:
        proc = cli(mesh, "stats", "details-v1")
    finally:
        os.kill(victim.pid, signal.SIGCONT)
    assert proc.returncode == 1
    assert proc.stderr.startswith("meshchaos stats: cannot read the stats of details-v1-0: ")
    assert proc.stderr.count("\n") == 1
