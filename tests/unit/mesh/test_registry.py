"""The backend registry: names to backends, the kube tools checked first, attach and down
dispatched on the handle's backend."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from meshchaos.errors import BackendUnavailable, MeshError, PrerequisiteMissing
from meshchaos.mesh import registry
from meshchaos.mesh.handle import MeshHandle, MeshNotRunning, write_handle
from meshchaos.mesh.local.backend import LocalBackend
from meshchaos.mesh.registry import (
    Backend,
    BackendOptions,
    Down,
    attach,
    check_backend,
    down,
    get_backend,
)


@pytest.mark.parametrize("backend", ["kind", "cluster"])
def test_kube_backends_check_their_tools_first(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker, kind or kubectl here
    with pytest.raises(PrerequisiteMissing, match="kubectl") as caught:
        check_backend(backend)
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


def test_a_backend_whose_module_is_not_there_is_unavailable_and_points_to_local(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(registry.BACKENDS, "kind", "meshchaos.mesh.kube.no_such_backend:Kind")
    with pytest.raises(BackendUnavailable, match="the kind backend is not available yet") as e:
        get_backend("kind")
    assert "--backend local" in str(e.value)


def test_a_broken_dependency_inside_a_backend_keeps_its_import_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_backend_mod.py").write_text("import no_such_dependency_here\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry.BACKENDS, "kind", "broken_backend_mod:Kind")
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_here"):
        get_backend("kind")
    sys.modules.pop("broken_backend_mod", None)


def test_local_is_the_local_backend_and_needs_no_check() -> None:
    check_backend("local")
    backend = get_backend("local")
    assert isinstance(backend, LocalBackend)
    assert isinstance(backend, Backend)
    assert backend.name == "local"


def test_unknown_backend_is_a_mesh_error() -> None:
    with pytest.raises(MeshError, match="unknown backend 'docker'; expected one of: local"):
        get_backend("docker")
    with pytest.raises(MeshError, match="unknown backend 'docker'"):
        check_backend("docker")


class _Recording:
    """A backend that notes what the registry hands it."""

    name = "fake"
    seen: list[object] = []

    def open(self, options: BackendOptions) -> object:
        raise NotImplementedError

    def attach(self, handle: MeshHandle) -> object:
        self.seen.append(handle)
        return "attached"

    def down(self, state_dir: Path, *, force: bool = False) -> Down:
        self.seen.append((state_dir, force))
        return Down(found=True)


def test_attach_and_down_dispatch_on_the_handles_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(registry.BACKENDS, "fake", f"{__name__}:_Recording")
    monkeypatch.setattr(_Recording, "seen", [])
    handle = MeshHandle("fake", "http://127.0.0.1:1", backend_data={"namespace": "mc-1"})
    write_handle(tmp_path, handle)
    assert attach(tmp_path) == "attached"
    assert down(tmp_path, force=True) == Down(found=True)
    assert _Recording.seen == [handle, (tmp_path, True)]


def test_attach_without_a_handle_says_how_to_start_a_mesh(tmp_path: Path) -> None:
    with pytest.raises(MeshNotRunning, match="meshchaos up --state-dir"):
        attach(tmp_path)


def test_down_without_a_handle_is_the_local_sweep(tmp_path: Path) -> None:
    assert down(tmp_path / "none") == Down(found=False)


def test_local_attach_refuses_a_handle_without_its_state_dir() -> None:
    with pytest.raises(MeshError, match="expected backend 'local' with a 'state_dir'"):
        LocalBackend().attach(MeshHandle("local", "http://127.0.0.1:1"))
