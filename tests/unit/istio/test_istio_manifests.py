"""The repository's own Istio manifests must parse: they are what scenarios apply."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from meshchaos.istio import KINDS, load_files, parse_documents
from meshchaos.istio.parse import API_GROUP

ROOT = Path(__file__).resolve().parents[3]
MANIFESTS = ROOT / "manifests"


def _networking_docs(path: Path) -> list[dict[str, Any]]:
    """Documents of ``path`` whose kind is an Istio networking kind we model."""
    docs = yaml.safe_load_all(path.read_text(encoding="utf-8"))
    return [
        d
        for d in docs
        if isinstance(d, dict)
        and str(d.get("apiVersion", "")).startswith(f"{API_GROUP}/")
        and d.get("kind") in KINDS
    ]


def test_bookinfo_and_httpbin_manifests_are_valid() -> None:
    paths = sorted(MANIFESTS.glob("bookinfo/*.yaml")) + sorted(MANIFESTS.glob("httpbin/*.yaml"))
    expected = sum(len(_networking_docs(p)) for p in paths)
    resources = []
    for path in paths:
        resources += parse_documents(_networking_docs(path), str(path))
    assert len(resources) == expected
    keys = {f"{r.kind} {r.metadata.key}" for r in resources}
    assert {
        "Gateway default/bookinfo-gateway",
        "VirtualService default/bookinfo",
        "DestinationRule default/reviews",
        "DestinationRule default/httpbin",
    } <= keys


def test_bookinfo_files_load_whole() -> None:
    # These files hold only Istio networking resources today; load them as `apply -f` would.
    paths = [
        MANIFESTS / "bookinfo" / "bookinfo-gateway.yaml",
        MANIFESTS / "bookinfo" / "destination-rule-all.yaml",
        MANIFESTS / "httpbin" / "destination-rule-httpbin.yaml",
    ]
    present = [p for p in paths if p.exists()]
    if not present:
        pytest.skip("bookinfo manifests not present")
    reviews = next(
        r
        for r in load_files(present)
        if r.kind == "DestinationRule" and r.metadata.name == "reviews"
    )
    assert [s.name for s in reviews.subsets] == ["v1", "v2", "v3"]  # type: ignore[union-attr]


ISTIO_POLICIES = sorted((MANIFESTS / "istio").rglob("*.yaml"))


@pytest.mark.parametrize(
    "path",
    ISTIO_POLICIES
    or [pytest.param(None, marks=pytest.mark.skip(reason="no manifests/istio/*.yaml yet"))],
    ids=lambda p: str(p.relative_to(MANIFESTS)) if isinstance(p, Path) else "none",
)
def test_istio_policy_manifest_is_valid(path: Path) -> None:
    docs = _networking_docs(path)
    if not docs:
        pytest.skip(f"{path.name} has no Istio networking resources")
    assert len(parse_documents(docs, str(path))) == len(docs)
