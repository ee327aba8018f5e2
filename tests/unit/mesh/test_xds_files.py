"""Writing xDS files: only what changed, atomically, and what to wait for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from meshchaos.mesh.local.admin import ConfigVersions
from meshchaos.mesh.local.xds import (
    ExpectedVersions,
    matches,
    restore,
    write_changed,
    written_versions,
)

ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"


def _files(version: str, vhosts: int = 1, clusters: int = 1) -> dict[str, dict[str, Any]]:
    return {
        "cds.json": {
            "version_info": version,
            "resources": [{"name": f"c{i}"} for i in range(clusters)],
        },
        "rds_outbound.json": {
            "version_info": version,
            "resources": [
                {
                    "@type": ROUTE,
                    "name": "outbound",
                    "virtual_hosts": [{"name": f"v{i}"} for i in range(vhosts)],
                }
            ],
        },
    }


def test_first_write_expects_every_file(tmp_path: Path) -> None:
    expect, previous = write_changed(tmp_path, _files("1"))
    assert expect == ExpectedVersions(cds="1", routes={"outbound": "1"})
    assert previous == {"cds.json": None, "rds_outbound.json": None}
    assert written_versions(tmp_path) == expect


def test_unchanged_content_is_not_rewritten_so_envoy_keeps_its_version(tmp_path: Path) -> None:
    write_changed(tmp_path, _files("1"))
    expect, previous = write_changed(tmp_path, _files("2", clusters=2))
    assert expect == ExpectedVersions(cds="2", routes={})
    assert list(previous) == ["cds.json"]
    assert written_versions(tmp_path) == ExpectedVersions(cds="2", routes={"outbound": "1"})
    assert not write_changed(tmp_path, _files("3", clusters=2))[0]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_restore_puts_back_the_old_content_under_a_new_version(tmp_path: Path) -> None:
    write_changed(tmp_path, _files("1"))
    _, previous = write_changed(tmp_path, _files("2", vhosts=3))
    restore(tmp_path, previous, "3")
    doc = json.loads((tmp_path / "rds_outbound.json").read_text())
    assert doc["version_info"] == "3"
    assert len(doc["resources"][0]["virtual_hosts"]) == 1


def test_matches_needs_every_expected_version_and_no_warming() -> None:
    expect = ExpectedVersions(cds="4", routes={"outbound": "4"})
    assert matches(ConfigVersions("4", {"outbound": "4", "inbound": "1"}), expect)
    assert not matches(ConfigVersions("3", {"outbound": "4"}), expect)
    assert not matches(ConfigVersions("4", {"outbound": "3"}), expect)
    assert not matches(ConfigVersions("4", {"outbound": "4"}, warming_clusters=1), expect)
    assert matches(ConfigVersions("9", {}), ExpectedVersions())
