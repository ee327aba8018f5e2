"""The kube manifests and the catalog describe the same workloads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from meshchaos.apps import catalog

ROOT = Path(__file__).resolve().parents[3] / "manifests"
MANAGED = ("app.kubernetes.io/managed-by", "meshchaos")


def load(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((ROOT / name).read_text()) if d]


DOCS = load("bookinfo/bookinfo.yaml") + load("httpbin/httpbin.yaml")


def find(kind: str, name: str) -> dict[str, Any]:
    [doc] = [d for d in DOCS if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def test_everything_is_labelled_managed_by_meshchaos() -> None:
    for doc in DOCS:
        assert doc["metadata"]["labels"][MANAGED[0]] == MANAGED[1], doc["metadata"]["name"]


@pytest.mark.parametrize("workload", catalog.DEFAULT_WORKLOADS, ids=lambda w: w.name)
def test_deployment_matches_catalog(workload: catalog.WorkloadSpec) -> None:
    deployment = find("Deployment", workload.name)
    spec = deployment["spec"]
    assert spec["replicas"] == workload.replicas
    assert spec["selector"]["matchLabels"] == workload.labels
    pod_labels = spec["template"]["metadata"]["labels"]
    assert workload.labels.items() <= pod_labels.items()
    [container] = spec["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container.get("env", [])}
    assert workload.env.items() <= env.items()
    if workload.app == "httpbin":
        assert container["image"] == "mccutchen/go-httpbin:v2.15.0"
    elif workload.app == "client":
        assert container["image"] == "curlimages/curl:8.11.0"
    else:
        version = workload.labels["version"]
        image_version = "v1" if version.startswith("v-") else version
        assert container["image"] == (
            f"docker.io/istio/examples-bookinfo-{workload.app}-{image_version}:1.20.3"
        )


@pytest.mark.parametrize(("service", "port"), sorted(catalog.services().items()))
def test_services(service: str, port: int) -> None:
    spec = find("Service", service)["spec"]
    [entry] = spec["ports"]
    assert entry["port"] == port
    assert entry["name"] == "http"
    assert entry["targetPort"] == (8080 if service == "httpbin" else 9080)
    assert spec["selector"] == {"app": service}
