"""The state dir: serialisation, the mesh.json contract, process identity, clearing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from meshchaos.apps.catalog import DEFAULT_WORKLOADS
from meshchaos.mesh.local.state import (
    MeshState,
    ProxyRecord,
    StateDir,
    is_same_process,
    proc_cmdline,
    proc_start_ticks,
)


def _state() -> MeshState:
    state = MeshState(
        owner_pid=os.getpid(),
        owner_start_ticks=proc_start_ticks(os.getpid()) or 0,
        workloads=list(DEFAULT_WORKLOADS),
    )
    state.proxies["istio-ingressgateway"] = ProxyRecord(
        "istio-ingressgateway", "gateway", None, 0, listeners={"http.8080": 41000}
    )
    state.proxies["client-0"] = ProxyRecord(
        "client-0", "sidecar", "client", 0, listeners={"outbound": 41001}
    )
    state.proxies["reviews-v2-0"] = ProxyRecord(
        "reviews-v2-0",
        "sidecar",
        "reviews-v2",
        0,
        listeners={"outbound": 41002, "inbound": 41003},
        app_port=40001,
        host=1,
    )
    return state


def test_state_round_trips_through_json(tmp_path: Path) -> None:
    sd = StateDir(tmp_path)
    sd.save(_state())
    loaded = sd.load()
    assert loaded == _state()


def test_mesh_json_has_the_keys_the_load_cli_reads(tmp_path: Path) -> None:
    sd = StateDir(tmp_path)
    sd.save(_state())
    data = json.loads(sd.mesh_file.read_text())
    assert data == {
        "backend": "local",
        "gateway_url": "http://127.0.0.1:41000",
        "clients": {"client": "http://127.0.0.1:41001"},  # only Service-less workloads
        "owner_pid": os.getpid(),
    }


@pytest.mark.parametrize(
    "content", ["", "{", '{"owner_pid": 1}', "[]"], ids=["empty", "torn", "partial", "list"]
)
def test_unreadable_state_loads_as_none(tmp_path: Path, content: str) -> None:
    (tmp_path / "state.json").write_text(content)
    assert StateDir(tmp_path).load() is None


def test_process_identity_tells_a_reused_pid_apart() -> None:
    ticks = proc_start_ticks(os.getpid())
    assert ticks is not None
    assert is_same_process(os.getpid(), ticks)
    assert not is_same_process(os.getpid(), ticks + 1)
    assert not is_same_process(0, ticks)
    assert proc_start_ticks(2**22 + 12345) is None
    assert proc_cmdline(os.getpid())


def test_clear_keeps_the_lock_only_when_asked(tmp_path: Path) -> None:
    sd = StateDir(tmp_path / "s")
    sd.save(_state())
    sd.xds_dir("a").mkdir(parents=True)
    (sd.xds_dir("a") / "cds.json").write_text("{}")
    with sd.lock():
        sd.clear(remove_dir=False, keep_lock=True)
        assert [p.name for p in sd.path.iterdir()] == ["lock"]
    sd.clear(remove_dir=False)
    assert sd.path.is_dir()
    assert not any(sd.path.iterdir())
    sd.clear(remove_dir=True)
    assert not sd.path.exists()
