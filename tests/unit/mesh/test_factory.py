"""Backend selection: local starts a LocalMesh; kind and cluster check their tools first
and say honestly what is missing, then that they are not there yet."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshchaos.errors import BackendUnavailable, MeshError, PrerequisiteMissing
from meshchaos.mesh.factory import check_backend, open_mesh


@pytest.mark.parametrize("backend", ["kind", "cluster"])
def test_kube_backends_are_unavailable_and_point_to_local(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker, kind or kubectl here
    with pytest.raises(PrerequisiteMissing, match="kubectl") as caught:
        open_mesh(backend, state_dir=None, kube_context="kind-meshchaos")
    assert "--backend local" in str(caught.value)
    assert isinstance(caught.value, BackendUnavailable)


def test_kind_names_the_missing_docker_engine_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("KIND_EXPERIMENTAL_PROVIDER", raising=False)
    with pytest.raises(PrerequisiteMissing) as caught:
        check_backend("kind")
    lines = str(caught.value).splitlines()
    assert "3 prerequisites are missing" in lines[0]
    assert lines[1].lstrip().startswith("- Docker")
    assert "docs.docker.com" in lines[2]


def test_local_needs_no_check() -> None:
    check_backend("local")


def test_unknown_backend_is_a_mesh_error() -> None:
    with pytest.raises(MeshError, match="unknown backend 'docker'"):
        open_mesh("docker", state_dir=None)
