"""Ownership checks and the lease that keeps a live run's namespace from being swept."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import fake_api
import pytest

from meshchaos.mesh.kube.api import KubeApi
from meshchaos.mesh.kube.safety import (
    LEASE_ANNOTATION,
    LeaseKeeper,
    NotOwned,
    check_owned,
    lease_expiry,
    owned_labels,
    owned_selector,
)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[fake_api.Cluster]:
    c = fake_api.Cluster(tmp_path)
    yield c
    c.close()


def test_labels_and_selectors() -> None:
    assert owned_labels("r1") == {
        "app.kubernetes.io/managed-by": "meshchaos",
        "meshchaos.io/run-id": "r1",
    }
    assert owned_selector() == "app.kubernetes.io/managed-by=meshchaos"
    assert owned_selector("r1") == "app.kubernetes.io/managed-by=meshchaos,meshchaos.io/run-id=r1"


def test_check_owned_refuses_what_we_did_not_create() -> None:
    ours = {
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "n", "labels": owned_labels("r1")},
    }
    check_owned(ours)
    check_owned(ours, "r1")
    with pytest.raises(NotOwned, match="belongs to run 'r1', not 'r2'"):
        check_owned(ours, "r2")
    theirs = {"kind": "Namespace", "metadata": {"name": "production", "labels": {"team": "a"}}}
    with pytest.raises(NotOwned, match="refusing to touch Namespace production: it lacks"):
        check_owned(theirs)


def test_lease_expiry_reads_our_annotation_only() -> None:
    obj = {"metadata": {"annotations": {LEASE_ANNOTATION: "2026-12-02T16:10:00Z"}}}
    assert lease_expiry(obj) == datetime(2026, 12, 2, 16, 10, tzinfo=UTC)
    assert lease_expiry({"metadata": {}}) is None
    assert lease_expiry({"metadata": {"annotations": {LEASE_ANNOTATION: "soon"}}}) is None


def _wait(cond: object, deadline: float = 5.0) -> None:
    end = time.monotonic() + deadline
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < end, "not reached in time"
        time.sleep(0.02)


def test_the_lease_keeper_renews_until_stopped(cluster: fake_api.Cluster) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace"}
    cluster.kube.put(
        "namespaces",
        {**ns, "metadata": {"name": "meshchaos-r1-main", "labels": owned_labels("r1")}},
    )
    api = KubeApi(cluster.kubeconfig, cluster.context)
    keeper = LeaseKeeper(api, "meshchaos-r1-main", ttl=0.15).start()
    _wait(lambda: keeper.renewals >= 2)
    keeper.stop()
    got = lease_expiry(api.get("Namespace", "meshchaos-r1-main"))
    assert got is not None
    assert got >= datetime.now(UTC).replace(microsecond=0)  # the lease has second resolution
    count = keeper.renewals
    time.sleep(0.2)
    assert keeper.renewals == count  # stopped means stopped


def test_the_lease_keeper_never_patches_a_namespace_that_is_not_ours(
    cluster: fake_api.Cluster,
) -> None:
    cluster.kube.put(
        "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "production"}}
    )
    api = KubeApi(cluster.kubeconfig, cluster.context)
    keeper = LeaseKeeper(api, "production", ttl=0.15).start()
    _wait(lambda: keeper.error is not None)
    keeper.stop()
    assert "refusing to touch Namespace production" in str(keeper.error)
    assert [e for e in cluster.kube.log if e.startswith("PATCH")] == []
