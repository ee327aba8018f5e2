"""The next run sweeps what a crashed run left, and nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fake_api
import pytest

from meshchaos.mesh.kube.api import KubeApi
from meshchaos.mesh.kube.safety import (
    LEASE_ANNOTATION,
    lease_value,
    owned_labels,
    sweep_leftovers,
)

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[fake_api.Cluster]:
    c = fake_api.Cluster(tmp_path)
    yield c
    c.close()


def _ns(name: str, *, labelled: bool = True, lease: timedelta | None = None) -> dict[str, object]:
    meta: dict[str, object] = {"name": name}
    if labelled:
        meta["labels"] = owned_labels("run1")
    if lease is not None:
        meta["annotations"] = {LEASE_ANNOTATION: lease_value(NOW + lease)}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def test_only_labelled_namespaces_with_an_expired_lease_are_deleted(
    cluster: fake_api.Cluster,
) -> None:
    k = cluster.kube
    k.put("namespaces", _ns("meshchaos-dead-gw0", lease=-timedelta(minutes=1)))
    k.put("namespaces", _ns("meshchaos-dead-gw1", lease=-timedelta(hours=5)))
    k.put("namespaces", _ns("meshchaos-live-gw0", lease=timedelta(minutes=5)))
    k.put("namespaces", _ns("meshchaos-nolease-main"))
    k.put("namespaces", _ns("meshchaos-lookalike", labelled=False, lease=-timedelta(hours=1)))
    k.put("namespaces", _ns("production", labelled=False, lease=-timedelta(hours=1)))
    k.put("namespaces", _ns("team-a", lease=-timedelta(hours=1)))  # labelled, not our prefix
    api = KubeApi(cluster.kubeconfig, cluster.context)

    assert sweep_leftovers(api, now=NOW) == ["meshchaos-dead-gw0", "meshchaos-dead-gw1"]

    assert [e for e in k.log if e.startswith("DELETE")] == [
        "DELETE /api/v1/namespaces/meshchaos-dead-gw0",
        "DELETE /api/v1/namespaces/meshchaos-dead-gw1",
    ]
    assert k.names("namespaces") == [
        "meshchaos-live-gw0",
        "meshchaos-lookalike",
        "meshchaos-nolease-main",
        "production",
        "team-a",
    ]
    # The list asked for our label only: the unlabelled namespaces were never candidates.
    assert k.queries[0]["labelSelector"] == ["app.kubernetes.io/managed-by=meshchaos"]


def test_a_second_sweep_finds_nothing(cluster: fake_api.Cluster) -> None:
    cluster.kube.put("namespaces", _ns("meshchaos-dead-gw0", lease=-timedelta(minutes=1)))
    api = KubeApi(cluster.kubeconfig, cluster.context)
    assert sweep_leftovers(api, now=NOW) == ["meshchaos-dead-gw0"]
    assert sweep_leftovers(api, now=NOW) == []
