"""mesh.json v1: written atomically, read back, any other schema or version refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from meshchaos.errors import MeshError
from meshchaos.mesh.handle import MeshHandle, MeshNotRunning, read_handle, write_handle


def _handle() -> MeshHandle:
    return MeshHandle(
        backend="kind",
        gateway_url="http://127.0.0.1:30080",
        clients={"client": "pod/client"},
        owner_pid=os.getpid(),
        backend_data={"cluster": "meshchaos", "context": "kind-meshchaos", "namespace": "mc-1"},
    )


def test_round_trip_and_nothing_left_beside_it(tmp_path: Path) -> None:
    path = write_handle(tmp_path, _handle())
    assert path == tmp_path / "mesh.json"
    assert read_handle(tmp_path) == _handle()
    assert [p.name for p in tmp_path.iterdir()] == ["mesh.json"]
    data = json.loads(path.read_text())
    assert (data["schema"], data["version"]) == ("meshchaos.mesh-handle", 1)


def test_rewrite_replaces_the_file_whole(tmp_path: Path) -> None:
    write_handle(tmp_path, _handle())
    inode = (tmp_path / "mesh.json").stat().st_ino
    write_handle(tmp_path, MeshHandle("local", "http://127.0.0.1:2"))
    assert (tmp_path / "mesh.json").stat().st_ino != inode  # renamed into place, not rewritten
    assert read_handle(tmp_path).backend == "local"


@pytest.mark.parametrize(
    ("schema", "version"),
    [(None, None), ("meshchaos.mesh-handle", 2), ("meshchaos.local-state", 1)],
)
def test_another_schema_or_version_names_file_found_and_expected(
    tmp_path: Path, schema: str | None, version: int | None
) -> None:
    data = {**_handle().to_json(), "schema": schema, "version": version}
    (tmp_path / "mesh.json").write_text(json.dumps(data))
    with pytest.raises(MeshError) as caught:
        read_handle(tmp_path)
    text = str(caught.value)
    assert str(tmp_path / "mesh.json") in text
    assert f"found schema {schema!r} version {version!r}" in text
    assert "expected 'meshchaos.mesh-handle' version 1" in text


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{", "cannot read"),
        ("[]", "found list, expected a JSON object"),
        (json.dumps({**_handle().to_json(), "backend": ""}), "expected a backend name"),
        (json.dumps({**_handle().to_json(), "backend_data": []}), "must be JSON objects"),
    ],
)
def test_a_damaged_handle_is_an_error_not_no_mesh(tmp_path: Path, content: str, match: str) -> None:
    (tmp_path / "mesh.json").write_text(content)
    with pytest.raises(MeshError, match=match) as caught:
        read_handle(tmp_path)
    assert not isinstance(caught.value, MeshNotRunning)


def test_no_handle_is_no_mesh(tmp_path: Path) -> None:
    with pytest.raises(MeshNotRunning, match="no mesh is running"):
        read_handle(tmp_path)
