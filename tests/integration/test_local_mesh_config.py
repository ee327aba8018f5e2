"""apply/delete on a running LocalMesh: visible in config_dump, all or nothing, rolled back."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _local_mesh_helpers import get, load_state

from meshchaos.errors import ConfigInvalid, MeshError
from meshchaos.istio.parse import load_text
from meshchaos.mesh.local import LocalMesh, xds
from meshchaos.mesh.local.admin import EnvoyAdmin

pytestmark = pytest.mark.integration

REVIEWS_V2 = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v2}
"""
V2_CLUSTER = "outbound|9080|v2|reviews.default.svc.cluster.local"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    with LocalMesh.start(tmp_path_factory.mktemp("mesh") / "state") as m:
        yield m


def _outbound_route(mesh: LocalMesh, proxy: str) -> dict[str, Any]:
    admin = EnvoyAdmin(load_state(mesh.state_dir).proxies[proxy].admin)
    dump = admin.get_json("/config_dump?resource=dynamic_route_configs")
    for rc in dump["configs"]:
        if rc["route_config"]["name"] == "outbound":
            return dict(rc)
    raise AssertionError(f"{proxy} has no outbound route config")


def _reviews_pods(mesh: LocalMesh, n: int = 6) -> set[str]:
    proxy = mesh.client().proxy_url
    pods = set()
    for _ in range(n):
        status, body = get("http://reviews:9080", "/reviews/0", proxy=proxy)
        assert status == 200, body
        pods.add(json.loads(body)["podname"])
    return pods


def test_apply_and_delete_round_trip_in_config_dump_and_traffic(mesh: LocalMesh) -> None:
    before = _outbound_route(mesh, "productpage-v1-0")
    assert V2_CLUSTER not in json.dumps(before)
    applied = mesh.apply(load_text(REVIEWS_V2, "reviews-v2.yaml"))
    after = _outbound_route(mesh, "productpage-v1-0")
    assert after["version_info"] == applied.version
    assert V2_CLUSTER in json.dumps(after["route_config"])
    assert _reviews_pods(mesh) == {"reviews-v2-0"}
    assert applied.previous == {"VirtualService default/reviews": None}

    mesh.delete(applied)
    restored = _outbound_route(mesh, "productpage-v1-0")
    assert int(restored["version_info"]) > int(applied.version)
    assert restored["route_config"] == before["route_config"]
    assert "VirtualService default/reviews" not in {
        f"{r.kind} {r.metadata.key}" for r in mesh.resources()
    }
    assert all(s.synced for s in mesh.status())


def test_replacing_a_baseline_resource_and_deleting_restores_it(mesh: LocalMesh) -> None:
    original = {f"{r.kind} {r.metadata.key}": r for r in mesh.resources()}
    dr = load_text(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
        "metadata: {name: reviews}\nspec:\n  host: reviews\n"
        "  subsets: [{name: v1, labels: {version: v1}}]\n",
        "dr.yaml",
    )
    applied = mesh.apply(dr)
    assert (
        applied.previous["DestinationRule default/reviews"]
        == original["DestinationRule default/reviews"]
    )
    mesh.delete(applied)
    now = {f"{r.kind} {r.metadata.key}": r for r in mesh.resources()}
    assert now == original


def test_invalid_yaml_applies_nothing(mesh: LocalMesh, tmp_path: Path) -> None:
    version = load_state(mesh.state_dir).version
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        REVIEWS_V2
        + "---\n"
        + REVIEWS_V2.replace("name: reviews", "name: r2").replace(
            "subset: v2}", "subset: v2}\n      weight: -1"
        )
    )
    with pytest.raises(ConfigInvalid, match="weight"):
        load_text(bad.read_text(), "bad.yaml")
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "meshchaos.cli",
            "apply",
            "-f",
            str(bad),
            "--state-dir",
            str(mesh.state_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 1
    assert "nothing applied" in cli.stderr
    assert "weight: must be >= 0" in cli.stderr
    assert load_state(mesh.state_dir).version == version
    assert "VirtualService default/reviews" not in {
        f"{r.kind} {r.metadata.key}" for r in mesh.resources()
    }


def test_cli_apply_from_another_process_is_seen_by_the_owner(
    mesh: LocalMesh,
    tmp_path: Path,
) -> None:
    f = tmp_path / "vs.yaml"
    f.write_text(REVIEWS_V2)
    run = [sys.executable, "-m", "meshchaos.cli"]
    sd = ["--state-dir", str(mesh.state_dir)]
    out = subprocess.run(
        [*run, "apply", "-f", str(f), *sd], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "virtualservice.networking.istio.io/reviews created" in out.stdout
    try:
        assert _reviews_pods(mesh) == {"reviews-v2-0"}
        table = subprocess.run(
            [*run, "get", "vs", *sd], capture_output=True, text=True, timeout=60
        ).stdout
        assert "reviews" in table
        assert "bookinfo" in table
        status = subprocess.run(
            [*run, "status", *sd], capture_output=True, text=True, timeout=60
        ).stdout
        assert "istio-ingressgateway" in status
        assert "STALE" not in status
        stats = subprocess.run(
            [*run, "stats", "client", "--filter", "rq_total$", *sd],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert stats.returncode == 0, stats.stderr
        assert "http.outbound.downstream_rq_total:" in stats.stdout
    finally:
        out = subprocess.run(
            [*run, "delete", "-f", str(f), *sd], capture_output=True, text=True, timeout=60
        )
    assert out.returncode == 0, out.stderr
    assert len(_reviews_pods(mesh, 12)) > 1


def test_a_rejected_update_fails_fast_and_is_rolled_back(
    mesh: LocalMesh,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_render = xds.render

    def render_with_a_bad_cluster(*args: Any, **kw: Any) -> Any:
        out, warnings = real_render(*args, **kw)
        cds = out["reviews-v1-0"]["cds.json"]
        bad = {**cds["resources"][0], "name": "bogus", "connect_timeout": "-1s"}
        out["reviews-v1-0"]["cds.json"] = {**cds, "resources": [*cds["resources"], bad]}
        return out, warnings

    monkeypatch.setattr(xds, "render", render_with_a_bad_cluster)
    rejected = r"reviews-v1-0[\s\S]*rolled back[\s\S]*cds.update_rejected"
    with pytest.raises(MeshError, match=rejected):
        mesh.apply(load_text(REVIEWS_V2, "reviews-v2.yaml"))
    monkeypatch.undo()
    assert "bogus" not in (mesh.state_dir / "proxies/reviews-v1-0/xds/cds.json").read_text()
    assert "VirtualService default/reviews" not in {
        f"{r.kind} {r.metadata.key}" for r in mesh.resources()
    }
    assert all(s.synced for s in mesh.status())


def test_what_the_local_mesh_cannot_honour_is_reported_as_a_warning(mesh: LocalMesh) -> None:
    """A VirtualService for a host outside the mesh is valid Istio; the local mesh cannot
    route it, and says so (``meshchaos apply`` prints it) instead of ignoring it silently."""
    outside = load_text(
        """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: outside, namespace: default}
spec:
  hosts: [payments]
  http:
  - route:
    - destination: {host: payments}
""",
        "outside.yaml",
    )
    applied = mesh.apply(outside)
    try:
        assert list(applied.warnings) == [
            "VirtualService default/outside: host 'payments' is not a service of the local "
            "mesh; not routed"
        ]
    finally:
        mesh.delete(applied)
    assert list(mesh.apply([]).warnings) == []  # the config in force after the delete
