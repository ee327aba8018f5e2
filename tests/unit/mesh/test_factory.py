"""Backend selection: local starts a LocalMesh; kind and cluster say honestly they are not there."""

from __future__ import annotations

import pytest

from meshchaos.errors import BackendUnavailable, MeshError
from meshchaos.mesh.factory import open_mesh


@pytest.mark.parametrize("backend", ["kind", "cluster"])
def test_kube_backends_are_unavailable_and_point_to_local(backend: str) -> None:
    with pytest.raises(BackendUnavailable, match="use --backend local"):
        open_mesh(backend, state_dir=None, kube_context="kind-meshchaos")


def test_unknown_backend_is_a_mesh_error() -> None:
    with pytest.raises(MeshError, match="unknown backend 'docker'"):
        open_mesh("docker", state_dir=None)
