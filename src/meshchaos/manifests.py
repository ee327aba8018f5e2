"""Where the repository's manifests live, and the baseline every mesh starts from.

The baseline is what Bookinfo's install guide applies before any task: the ingress
Gateway with its VirtualService, and the version subsets of every service. The local
mesh applies it at start, and ``meshchaos predict`` assumes it, so that a prediction
and a mesh always start from the same state.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from meshchaos.errors import MeshError
from meshchaos.istio.model import Resource, resource_id

BASELINE: tuple[str, ...] = (
    "bookinfo/bookinfo-gateway.yaml",
    "bookinfo/destination-rule-all.yaml",
    "httpbin/destination-rule-httpbin.yaml",
)


def manifests_dir() -> Path:
    """The repository's ``manifests/`` dir (meshchaos runs from a source checkout)."""
    import meshchaos

    path = Path(meshchaos.__file__).resolve().parents[2] / "manifests"
    if not path.is_dir():
        raise MeshError(
            f"manifests not found at {path}: meshchaos needs its source checkout, "
            "installed in editable mode (pip install -e .)"
        )
    return path


def baseline_paths() -> list[Path]:
    root = manifests_dir()
    return [root / rel for rel in BASELINE]


def merge(*layers: Iterable[Resource]) -> list[Resource]:
    """Resources as ``kubectl apply`` of each layer in turn leaves them: same kind,
    namespace and name replace the earlier one, in place; new ones go last."""
    merged: dict[str, Resource] = {}
    for layer in layers:
        for resource in layer:
            merged[resource_id(resource)] = resource
    return list(merged.values())
