"""The state dir: serialisation, schema checks, the mesh.json contract, process identity,
clearing."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

import meshchaos
from meshchaos.apps.catalog import DEFAULT_WORKLOADS
from meshchaos.errors import MeshError
from meshchaos.mesh.local.state import (
    SCHEMA,
    SCHEMA_VERSION,
    LockTimeout,
    MeshState,
    ProxyRecord,
    StateDir,
    StateError,
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


def test_mesh_json_is_the_v1_handle_other_processes_attach_through(tmp_path: Path) -> None:
    sd = StateDir(tmp_path)
    sd.save(_state())
    data = json.loads(sd.mesh_file.read_text())
    assert data == {
        "schema": "meshchaos.mesh-handle",
        "version": 1,
        "backend": "local",
        "gateway_url": "http://127.0.0.1:41000",
        "clients": {"client": "http://127.0.0.1:41001"},  # only Service-less workloads
        "owner_pid": os.getpid(),
        "backend_data": {"state_dir": str(tmp_path)},
    }


def test_no_state_file_loads_as_none(tmp_path: Path) -> None:
    assert StateDir(tmp_path).load() is None
    assert StateDir(tmp_path / "missing").load() is None


def test_state_json_records_its_schema_and_writer(tmp_path: Path) -> None:
    sd = StateDir(tmp_path)
    sd.save(_state())
    data = json.loads(sd.state_file.read_text())
    assert data["schema"] == SCHEMA == "meshchaos.local-state"
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["meshchaos_version"] == meshchaos.__version__


def _saved(tmp_path: Path, **changes: object) -> None:
    """A state.json as this meshchaos writes it, with top-level keys changed (None: drop)."""
    StateDir(tmp_path).save(_state())
    data = json.loads((tmp_path / "state.json").read_text())
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    (tmp_path / "state.json").write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("content", "found"),
    [
        ("", "is empty"),
        ("{", "is not JSON"),
        ("[]", "holds an array, not a JSON object"),
        ("null", "holds null, not a JSON object"),
        ('{"owner_pid": 1}', "has no schema"),
        (b"\xff\xfe{", "cannot be read"),
    ],
    ids=["empty", "torn", "list", "null", "partial-unversioned", "binary"],
)
def test_unreadable_state_raises_naming_file_found_expected_and_the_fix(
    tmp_path: Path, content: str | bytes, found: str
) -> None:
    path = tmp_path / "state.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(StateError) as info:
        StateDir(tmp_path).load()
    message = str(info.value)
    assert message.startswith(f"{path}: {found}")
    assert (
        f"expected a meshchaos state file, schema 'meshchaos.local-state' version {SCHEMA_VERSION}"
    )
    assert f"'meshchaos down --force --state-dir {tmp_path}'" in message
    assert isinstance(info.value, MeshError)  # the CLI prints it as one line, no traceback
    assert info.value.path == path


@pytest.mark.parametrize(
    ("changes", "found"),
    [
        (
            {"schema_version": SCHEMA_VERSION + 1, "meshchaos_version": "9.0"},
            "version 3, written by meshchaos 9.0",
        ),
        ({"schema": "something.else"}, "has schema 'something.else'"),
        ({"schema": None, "schema_version": None, "meshchaos_version": None}, "has no schema"),
        ({"workloads": None}, "is a damaged schema 2 state file (missing key 'workloads')"),
        ({"proxies": {"x": {"bogus": 1}}}, "is a damaged schema 2 state file"),
    ],
    ids=["newer", "foreign", "unversioned", "missing-key", "bad-record"],
)
def test_a_state_of_another_schema_or_damaged_raises(
    tmp_path: Path, changes: dict[str, object], found: str
) -> None:
    _saved(tmp_path, **changes)
    with pytest.raises(StateError, match="meshchaos down --force") as info:
        StateDir(tmp_path).load()
    assert found in str(info.value)


def test_a_state_of_another_meshchaos_version_with_the_same_schema_loads(tmp_path: Path) -> None:
    _saved(tmp_path, meshchaos_version="0.0.1")
    assert StateDir(tmp_path).load() == _state()


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


def test_a_lock_held_elsewhere_times_out_with_the_way_out(tmp_path: Path) -> None:
    sd = StateDir(tmp_path)
    with sd.lock():  # a second open file in the same process is excluded too
        t0 = time.monotonic()
        with (
            pytest.raises(LockTimeout, match=r"held this lock for 0 s.*down --force"),
            sd.lock(timeout=0.2),
        ):
            pass
        assert 0.2 <= time.monotonic() - t0 < 2.0
    with sd.lock(timeout=0.2):  # released: taken at once
        pass
