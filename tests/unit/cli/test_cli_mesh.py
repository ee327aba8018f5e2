"""The mesh verbs as adapters: policy names, kubectl-style reports, stats, get and status.

They attach to a fake mesh here (the real one: tests/integration/test_istio_tasks.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_fakes import AttachedFakeMesh

import meshchaos.cli.mesh
from meshchaos.cli import main

SAMPLE = "fault-ratings-abort-50pct-500"  # packaged in meshchaos/data/istio
LOCAL_RATINGS = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings-local}
spec:
  hosts: [ratings]
  http:
  - route: [{destination: {host: ratings}}]
"""


@pytest.fixture
def mesh(monkeypatch: pytest.MonkeyPatch) -> AttachedFakeMesh:
    fake = AttachedFakeMesh()
    monkeypatch.setattr(meshchaos.cli.mesh, "_attach", lambda args: fake)
    return fake


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_apply_a_packaged_sample_by_name_reports_like_kubectl(
    mesh: AttachedFakeMesh, capsys: pytest.CaptureFixture[str]
) -> None:
    mesh.warnings = ("Gateway port 443 is not served locally",)
    code, out, err = run(capsys, "apply", "-f", SAMPLE)
    assert code == 0
    assert out.splitlines()[0] == "virtualservice.networking.istio.io/ratings created"
    assert "synced: config version 1 pushed" in out
    assert err == "Warning: Gateway port 443 is not served locally\n"
    assert [r.metadata.name for r in mesh.resources()] == ["ratings"]
    code, out, _ = run(capsys, "apply", "-f", f"{SAMPLE}.yaml")
    assert code == 0
    assert out.splitlines()[0] == "virtualservice.networking.istio.io/ratings unchanged"


def test_apply_reports_configured_for_a_changed_resource_also_within_one_call(
    mesh: AttachedFakeMesh, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    changed = tmp_path / "ratings.yaml"
    changed.write_text(LOCAL_RATINGS.replace("ratings-local", "ratings"))
    code, out, _ = run(capsys, "apply", "-f", SAMPLE, "-f", str(changed), "-f", str(changed))
    assert code == 0
    assert out.splitlines()[:3] == [
        "virtualservice.networking.istio.io/ratings created",
        "virtualservice.networking.istio.io/ratings configured",
        "virtualservice.networking.istio.io/ratings unchanged",
    ]


def test_policy_dirs_are_searched_before_the_packaged_samples(
    mesh: AttachedFakeMesh, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    empty, mine = tmp_path / "empty", tmp_path / "mine"
    empty.mkdir()
    mine.mkdir()
    (mine / f"{SAMPLE}.yaml").write_text(LOCAL_RATINGS)
    code, out, _ = run(
        capsys, "apply", "-f", SAMPLE, "--policy-dir", str(empty), "--policy-dir", str(mine)
    )
    assert code == 0
    assert "virtualservice.networking.istio.io/ratings-local created" in out
    [applied] = mesh.resources()
    assert applied.source == str(mine / f"{SAMPLE}.yaml")


def test_delete_by_name_then_not_found(
    mesh: AttachedFakeMesh, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "apply", "-f", SAMPLE)[0] == 0
    code, out, err = run(capsys, "delete", "-f", SAMPLE)
    assert (code, out, err) == (0, "virtualservice.networking.istio.io/ratings deleted\n", "")
    assert mesh.resources() == []
    code, out, err = run(capsys, "delete", "-f", SAMPLE)
    assert (code, out) == (1, "")
    assert err == "Error: virtualservice.networking.istio.io/ratings (default/ratings) not found\n"
    assert run(capsys, "delete", "--ignore-not-found", "-f", SAMPLE)[:2] == (0, "")


def test_stats_of_an_unknown_workload_names_the_known_ones(
    mesh: AttachedFakeMesh, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "stats", "sleep")
    assert (code, out) == (2, "")
    assert err == (
        "meshchaos stats: no workload 'sleep' in the running mesh; "
        "known: details-v1, ratings-v1, reviews-v2, silent-v1\n"
    )


def test_stats_of_a_workload_whose_proxies_died_is_the_backends_error(
    mesh: AttachedFakeMesh, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "stats", "ratings-v1")
    assert code == 1
    assert err == "meshchaos stats: no live proxy of workload 'ratings-v1'\n"


def test_stats_of_a_proxy_that_died_behind_the_meshs_back_is_one_line(
    mesh: AttachedFakeMesh, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "stats", "details-v1")
    assert code == 1
    assert err == (
        "meshchaos stats: cannot read the stats of details-v1-0: Envoy admin "
        "127.0.0.1:1/stats: Connection refused; see `meshchaos status` for the "
        "proxies that are down\n"
    )


def test_stats_of_a_workload_that_emits_nothing_says_so(
    mesh: AttachedFakeMesh, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "stats", "silent-v1")
    assert (code, out) == (1, "")
    assert err == "meshchaos stats: silent-v1 emits no stats (its proxies answered with none)\n"
    code, out, err = run(capsys, "stats", "reviews-v2", "--filter", "^nothing$")
    assert (code, out) == (1, "")
    assert "reviews-v2 emits no stat matching --filter '^nothing$' (2 stats in all" in err


def test_stats_filter(mesh: AttachedFakeMesh, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "stats", "reviews-v2", "--filter", r"fault\.")
    assert (code, out) == (0, "http.outbound.fault.aborts_injected: 3\n")


def test_get_and_status_render_table_yaml_and_json(
    mesh: AttachedFakeMesh, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "get", "vs")[1] == "No resources found (vs).\n"
    run(capsys, "apply", "-f", SAMPLE)
    table = run(capsys, "get", "vs")[1].splitlines()
    assert table[0].split() == ["KIND", "NAMESPACE", "NAME", "HOSTS", "GATEWAYS/SELECTOR", "SOURCE"]
    assert table[1].split()[:5] == ["VirtualService", "default", "ratings", "ratings", "mesh"]
    assert run(capsys, "get", "dr")[1] == "No resources found (dr).\n"
    assert "name: ratings" in run(capsys, "get", "all", "-o", "yaml")[1]
    listed = json.loads(run(capsys, "get", "all", "-o", "json")[1])
    assert [i["metadata"]["name"] for i in listed["items"]] == ["ratings"]
    status = json.loads(run(capsys, "status", "-o", "json")[1])
    synced = {s["workload"]: s["synced"] for s in status}
    assert synced == {
        "reviews-v2": True,
        "silent-v1": True,
        "ratings-v1": False,
        "details-v1": True,
    }
    rows = run(capsys, "status")[1].splitlines()
    assert rows[0].split() == ["PROXY", "WORKLOAD", "VERSION", "SYNCED", "ALIVE", "ADMIN"]
    assert rows[3].split()[:5] == ["ratings-v1-0", "ratings-v1", "1", "STALE", "NO"]


def test_predict_takes_policy_names_and_policy_dirs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "predict", "-f", SAMPLE, "--json")
    assert code == 0
    shares = {o["outcome"]: o["probability"] for o in json.loads(out)["outcomes"]}
    # v2 and v3 call ratings (2 of 3 reviews versions); half of those calls abort.
    assert shares["ratings-unavailable"] == pytest.approx(1 / 3)
    (tmp_path / f"{SAMPLE}.yaml").write_text(LOCAL_RATINGS)
    code, out, _ = run(capsys, "predict", "-f", SAMPLE, "--policy-dir", str(tmp_path), "--json")
    assert code == 0
    shares = {o["outcome"]: o["probability"] for o in json.loads(out)["outcomes"]}
    assert "ratings-unavailable" not in shares
