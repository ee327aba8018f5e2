"""Instance chaos on a LocalMesh: kill, restart and scale a reviews instance."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from _local_mesh_helpers import all_gone, get, load_state

from meshchaos.errors import MeshError, UnknownWorkload
from meshchaos.istio.parse import load_text
from meshchaos.mesh.local import LocalMesh

pytestmark = pytest.mark.integration

ONLY_V1 = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
"""


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    with LocalMesh.start(tmp_path_factory.mktemp("mesh") / "state") as m:
        yield m


@pytest.fixture
def only_v1(mesh: LocalMesh) -> Iterator[None]:
    applied = mesh.apply(load_text(ONLY_V1, "only-v1.yaml"))
    yield
    mesh.delete(applied)


def _reviews(mesh: LocalMesh, n: int) -> list[tuple[int, str]]:
    """(status, podname or body) of ``n`` calls to reviews from the in-mesh client."""
    out = []
    for _ in range(n):
        status, body = get("http://reviews:9080", "/reviews/0", proxy=mesh.client().proxy_url)
        out.append((status, json.loads(body)["podname"] if status == 200 else body.decode()))
    return out


def test_scale_up_kill_restart_and_scale_down(mesh: LocalMesh, only_v1: None) -> None:
    assert {pod for _, pod in _reviews(mesh, 4)} == {"reviews-v1-0"}

    mesh.scale("reviews-v1", 2)
    state = load_state(mesh.state_dir)
    assert "reviews-v1-1" in state.proxies
    assert {pod for _, pod in _reviews(mesh, 12)} == {"reviews-v1-0", "reviews-v1-1"}

    assert mesh.instances("reviews-v1") == ["reviews-v1-0", "reviews-v1-1"]

    victim = state.proxies["reviews-v1-1"]
    mesh.kill("reviews-v1-1")
    assert mesh.instances("reviews-v1") == ["reviews-v1-0", "reviews-v1-1"]  # until restarted
    assert all_gone([(victim.pid, victim.start_ticks)])
    # The endpoint is not withdrawn; Istio's default retry policy (connect-failure,
    # previous_hosts) retries the refused connection on the other instance.
    results = _reviews(mesh, 12)
    assert {s for s, _ in results} == {200}
    assert {pod for _, pod in results} == {"reviews-v1-0"}
    assert (
        mesh.proxy_stats("client").get(
            "cluster.outbound|9080|v1|reviews.default.svc.cluster.local.upstream_cx_connect_fail", 0
        )
        > 0
    )
    assert [s.alive for s in mesh.status() if s.name == "reviews-v1-1"] == [False]

    mesh.restart("reviews-v1-1")
    again = load_state(mesh.state_dir).proxies["reviews-v1-1"]
    assert again.alive
    assert again.listeners["inbound"] == victim.listeners["inbound"]  # same endpoint address
    assert {pod for _, pod in _reviews(mesh, 12)} == {"reviews-v1-0", "reviews-v1-1"}

    mesh.scale("reviews-v1", 1)
    assert "reviews-v1-1" not in load_state(mesh.state_dir).proxies
    assert all_gone([(again.pid, again.start_ticks)])
    assert not (mesh.state_dir / "proxies/reviews-v1-1").exists()
    assert {pod for _, pod in _reviews(mesh, 6)} == {"reviews-v1-0"}


def test_scale_from_zero_starts_a_catalog_variant(mesh: LocalMesh) -> None:
    mesh.scale("ratings-v-faulty", 1)
    try:
        rec = load_state(mesh.state_dir).proxies["ratings-v-faulty-0"]
        assert rec.alive
        assert rec.app_port
        assert all(s.synced for s in mesh.status())
    finally:
        mesh.scale("ratings-v-faulty", 0)
    assert "ratings-v-faulty-0" not in load_state(mesh.state_dir).proxies


def test_chaos_names_unknown_instances(mesh: LocalMesh) -> None:
    with pytest.raises(MeshError, match="no instance 'reviews-v9-0'"):
        mesh.kill("reviews-v9-0")
    with pytest.raises(UnknownWorkload, match="no workload 'reviews-v9' in the mesh's catalogue"):
        mesh.instances("reviews-v9")
    assert mesh.instances("ratings-v-faulty") == []  # in the catalogue, scaled to zero
    with pytest.raises(MeshError, match="unknown workload 'nope'"):
        mesh.scale("nope", 1)
