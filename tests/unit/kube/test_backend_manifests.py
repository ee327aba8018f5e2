"""Every YAML the package ships validates offline, whatever the backends will apply.

Kubernetes objects against the Kubernetes schemas of the pinned node image's minor
(``kubernetes-validate``, strict: an unknown field is an error, as with
``field_validation=Strict``); Istio networking kinds against meshchaos's own validator
(what istiod's webhook rejects); the kind cluster config and the Istio install overlay
against the checks of the modules that use them. A document of any other kind fails:
a new kind needs a validator here first. Files are found by glob, so manifests added
under src/meshchaos/data/ (data/kube/*.yaml too) are picked up as they land.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from meshchaos.errors import ConfigInvalid
from meshchaos.istio import parse_documents
from meshchaos.istio.parse import API_GROUP as ISTIO_NETWORKING
from meshchaos.manifests import data_dir
from meshchaos.mesh.kube.istio import check_overlay
from meshchaos.mesh.kube.kind import check_cluster_config
from meshchaos.mesh.kube.pins import KIND_NODE_IMAGE

# The schemas of the cluster's own Kubernetes minor: kindest/node:v1.36.1 -> 1.36.0.
K8S_SCHEMA = KIND_NODE_IMAGE.split(":v", 1)[1].split("@", 1)[0].rsplit(".", 1)[0] + ".0"
# Built-in API groups kubernetes-validate has schemas for ("" is the core group).
K8S_GROUPS = {
    "",
    "apps",
    "batch",
    "policy",
    "rbac.authorization.k8s.io",
    "networking.k8s.io",
    "autoscaling",
    "admissionregistration.k8s.io",
}
FILES = sorted(p for p in data_dir().rglob("*.yaml"))


def documents(path: Path) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    assert all(isinstance(d, dict) for d in docs), f"{path}: a document is not a mapping"
    return docs


def problems(doc: dict[str, Any], source: str) -> list[str]:
    api = str(doc.get("apiVersion", ""))
    group = api.rsplit("/", 1)[0] if "/" in api else ""
    kind = doc.get("kind")
    if group == ISTIO_NETWORKING:
        try:
            parse_documents([doc], source)
        except ConfigInvalid as exc:
            return exc.problems
        return []
    if group == "kind.x-k8s.io":
        return check_cluster_config(doc)
    if group == "install.istio.io":
        return check_overlay(doc)
    if group in K8S_GROUPS:
        try:
            kubernetes_validate.validate(doc, K8S_SCHEMA, strict=True)
        except kubernetes_validate.ValidationError as exc:
            return [f"{kind} {doc.get('metadata', {}).get('name')}: {exc.message}"]
        return []
    return [f"{kind} ({api}): no validator for this kind; add one to {Path(__file__).name}"]


def test_the_schema_version_is_the_node_images_minor() -> None:
    assert K8S_SCHEMA == "1.36.0"


def test_every_packaged_manifest_is_found() -> None:
    names = {p.relative_to(data_dir()).parts[0] for p in FILES}
    assert {"bookinfo", "httpbin", "istio", "kind", "istio-install"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(data_dir())))
def test_manifest_validates_offline(path: Path) -> None:
    found = [p for doc in documents(path) for p in problems(doc, str(path))]
    assert not found, f"{path}:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("doc", "expect"),
    [
        pytest.param(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "x"},
                "spec": {"ports": [{"port": 80, "targetPort": 8080, "nodeport": 30080}]},
            },
            "nodeport",
            id="misspelled-field-in-a-service",
        ),
        pytest.param(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "x"},
                "spec": {"replicas": "two", "selector": {}, "template": {}},
            },
            "two",
            id="replicas-not-a-number",
        ),
        pytest.param(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "VirtualService",
                "metadata": {"name": "r", "namespace": "default"},
                "spec": {
                    "hosts": ["r"],
                    "http": [
                        {"retries": {"attempts": -1}, "route": [{"destination": {"host": "r"}}]}
                    ],
                },
            },
            "attempts",
            id="negative-retry-attempts",
        ),
        pytest.param(
            {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication"},
            "no validator",
            id="a-kind-with-no-validator",
        ),
    ],
)
def test_each_validator_catches_what_it_should(doc: dict[str, Any], expect: str) -> None:
    found = problems(doc, "gallery")
    assert any(expect in p for p in found), found
