"""The packaged kube manifests agree with the apps' facts and pin their images.

(Schema validation with kubernetes-validate is the kind backend's test.)
"""

from __future__ import annotations

import re
from importlib import resources

import pytest
import yaml

from meshchaos.apps.catalog import DEFAULT_WORKLOADS
from meshchaos.mesh.kube.apps import MANIFESTS
from meshchaos.mesh.kube.kinds import KINDS

DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
TAG = re.compile(r":v?[0-9][\w.-]*$")  # a version tag, never latest or a moving name


def _docs(name: str) -> list[dict[str, object]]:
    text = resources.files("meshchaos.data").joinpath("kube", name).read_text()
    return [d for d in yaml.safe_load_all(text) if d]


ALL = [d for name in MANIFESTS for d in _docs(name)]
DEPLOYMENTS = [d for d in ALL if d["kind"] == "Deployment"]


def test_every_kind_is_one_meshchaos_manages_with_its_api_version() -> None:
    for doc in ALL:
        kind = KINDS[str(doc["kind"])]
        assert doc["apiVersion"] == kind.api_version


def test_the_deployments_are_the_workloads_of_the_facts_with_their_replicas() -> None:
    got = {d["metadata"]["name"]: d["spec"]["replicas"] for d in DEPLOYMENTS}  # type: ignore[index]
    assert got == {w.name: w.replicas for w in DEFAULT_WORKLOADS}


@pytest.mark.parametrize("dep", DEPLOYMENTS, ids=lambda d: d["metadata"]["name"])  # type: ignore[index]
def test_every_image_is_pinned_and_every_pod_asks_for_a_sidecar(dep: dict) -> None:  # type: ignore[type-arg]
    tmpl = dep["spec"]["template"]
    assert tmpl["metadata"]["labels"]["sidecar.istio.io/inject"] == "true"
    labels = tmpl["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"] == {
        "app": labels["app"],
        "version": labels["version"],
    }
    for c in tmpl["spec"]["containers"]:
        assert DIGEST.search(c["image"]) or TAG.search(c["image"]), c["image"]
        assert c.get("imagePullPolicy") == "IfNotPresent"


def test_the_faulty_httpbin_is_behind_the_httpbin_service() -> None:
    svc = next(d for d in ALL if d["kind"] == "Service" and d["metadata"]["name"] == "httpbin")  # type: ignore[index]
    faulty = next(d for d in DEPLOYMENTS if d["metadata"]["name"] == "httpbin-v-faulty")  # type: ignore[index]
    labels = faulty["spec"]["template"]["metadata"]["labels"]  # type: ignore[index]
    assert svc["spec"]["selector"].items() <= labels.items()  # type: ignore[index]
    script = faulty["spec"]["template"]["spec"]["containers"][0]["command"][2]  # type: ignore[index]
    compile(script, "httpbin-v-faulty", "exec")
    assert "send_response(503)" in script
