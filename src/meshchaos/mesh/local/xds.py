"""Push config to the local mesh's Envoys: translate, write xDS files, wait until they run it.

Each Envoy watches its own ``xds/`` dir (file-based xDS). A file is replaced atomically
(temp file + ``os.replace`` in the watched dir) and only when its resources changed:
Envoy keeps the old ``version_info`` of a route config whose content did not change, so
waiting for a new version on an unchanged file would never end.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshchaos.apps.catalog import WorkloadSpec
from meshchaos.apps.facts import INGRESS_GATEWAY
from meshchaos.istio.model import Resource
from meshchaos.istio.parse import parse_documents
from meshchaos.mesh.local.admin import AdminError, ConfigVersions, EnvoyAdmin
from meshchaos.mesh.local.service_registry import Endpoint, ProxySpec
from meshchaos.mesh.local.state import MeshState, ProxyRecord, write_json_atomic
from meshchaos.mesh.local.translate import translate_proxy, xds_files

__all__ = [
    "ExpectedVersions",
    "endpoints_of",
    "is_synced",
    "matches",
    "proxy_spec",
    "rejection_counts",
    "render",
    "resources_of",
    "restore",
    "wait_synced",
    "write_changed",
    "written_versions",
]

CDS_FILE = "cds.json"


@dataclass(frozen=True)
class ExpectedVersions:
    """The versions one proxy must report once it runs the files just written."""

    cds: str | None = None  # None: CDS not rewritten, do not wait for it
    routes: Mapping[str, str] = field(default_factory=dict)  # route config name -> version

    def __bool__(self) -> bool:
        return self.cds is not None or bool(self.routes)


def resources_of(state: MeshState) -> list[Resource]:
    """The Istio resources recorded in ``state`` (stored as raw documents), in order."""
    out: list[Resource] = []
    for item in state.resources:
        out.extend(parse_documents([item["raw"]], item.get("source", "<state>")))
    return out


def proxy_spec(rec: ProxyRecord, workloads: Sequence[WorkloadSpec]) -> ProxySpec:
    """The translator's view of one proxy."""
    if rec.role == "gateway":
        return ProxySpec(name=rec.name, role="gateway", labels=dict(INGRESS_GATEWAY.labels))
    spec = next(w for w in workloads if w.name == rec.workload)
    return ProxySpec(
        name=rec.name,
        role="sidecar",
        labels=dict(spec.labels),
        workload=spec,
        app_port=rec.app_port,
    )


def endpoints_of(state: MeshState) -> tuple[Endpoint, ...]:
    """Every registered instance of every Service, addressed by its sidecar inbound port.

    A killed instance stays registered until it is scaled away, like a pod whose endpoint
    has not been withdrawn yet: callers see connection failures and Istio's default retry
    policy retries them on another host.
    """
    specs = {w.name: w for w in state.workloads}
    out = []
    for rec in state.proxies.values():
        spec = specs.get(rec.workload or "")
        if spec is None or not spec.service or not rec.endpoint or "inbound" not in rec.listeners:
            continue
        out.append(
            Endpoint(
                workload=spec.name,
                instance=rec.instance,
                port=rec.listeners["inbound"],
                labels=dict(spec.labels),
                service=spec.service,
                service_port=spec.port,
            )
        )
    return tuple(sorted(out, key=lambda e: (e.workload, e.instance)))


def render(
    state: MeshState,
    resources: Sequence[Resource],
    version: str,
) -> tuple[dict[str, dict[str, dict[str, Any]]], list[str]]:
    """Proxy name -> its xDS files (filename -> DiscoveryResponse) at ``version``, and
    the translator's warnings (what the local mesh cannot honour), each once, in order."""
    endpoints = endpoints_of(state)
    workloads = tuple(state.workloads)
    out = {}
    warnings: dict[str, None] = {}
    for name in sorted(state.proxies):
        config = translate_proxy(
            proxy_spec(state.proxies[name], workloads), list(resources), endpoints, workloads
        )
        out[name] = xds_files(config, version)
        warnings.update(dict.fromkeys(config.warnings))
    return out, list(warnings)


def _content(doc: Mapping[str, Any]) -> Any:
    return {k: v for k, v in doc.items() if k != "version_info"}


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (OSError, ValueError):
        return None


def write_changed(
    xds_dir: Path, files: Mapping[str, dict[str, Any]], *, force: bool = False
) -> tuple[ExpectedVersions, dict[str, dict[str, Any] | None]]:
    """Write the files whose resources changed; return what to wait for and the old files.

    The old files (``None`` where there was none) let a failed update be rolled back.
    """
    xds_dir.mkdir(parents=True, exist_ok=True)
    cds: str | None = None
    routes: dict[str, str] = {}
    previous: dict[str, dict[str, Any] | None] = {}
    for filename, doc in files.items():
        path = xds_dir / filename
        old = _read(path)
        if not force and old is not None and _content(old) == _content(doc):
            continue
        previous[filename] = old
        write_json_atomic(path, doc)
        version = str(doc.get("version_info", ""))
        if filename == CDS_FILE:
            cds = version
        else:
            for res in doc.get("resources", []):
                routes[str(res.get("name", ""))] = version
    return ExpectedVersions(cds=cds, routes=routes), previous


def restore(
    xds_dir: Path, previous: Mapping[str, dict[str, Any] | None], version: str
) -> ExpectedVersions:
    """Put back the files ``write_changed`` replaced, under a fresh ``version``."""
    cds: str | None = None
    routes: dict[str, str] = {}
    for filename, old in previous.items():
        if old is None:
            continue
        write_json_atomic(xds_dir / filename, {**old, "version_info": version})
        if filename == CDS_FILE:
            cds = version
        else:
            routes.update({str(r.get("name", "")): version for r in old.get("resources", [])})
    return ExpectedVersions(cds=cds, routes=routes)


def matches(got: ConfigVersions, expect: ExpectedVersions) -> bool:
    """True when the versions Envoy reports include every version in ``expect``."""
    if expect.cds is not None and (got.cds != expect.cds or got.warming_clusters):
        return False
    return all(got.routes.get(name) == v for name, v in expect.routes.items())


def _poll(admin: EnvoyAdmin, expect: ExpectedVersions, rejected_before: int) -> str:
    """ "synced", "rejected" (Envoy refused an update since we wrote) or "pending"."""
    try:
        got = admin.sync_versions()
        if got.rejected > rejected_before:
            return "rejected"
        if not matches(got, expect):
            return "pending"
        # The stats said yes; confirm the route versions in the config dump itself. CDS is
        # judged by cluster_manager.cds.version_text only: the dump's CDS version_info moves
        # only when an update changed some cluster, so after a no-op update it lags behind.
        dumped = admin.route_versions()
    except (AdminError, ValueError):
        return "pending"
    ok = all(dumped.get(name) == v for name, v in expect.routes.items())
    return "synced" if ok else "pending"


def written_versions(xds_dir: Path) -> ExpectedVersions:
    """The versions of the files currently in ``xds_dir`` (what the proxy should run)."""
    cds: str | None = None
    routes: dict[str, str] = {}
    for path in sorted(xds_dir.glob("*.json")):
        doc = _read(path)
        if doc is None:
            continue
        version = str(doc.get("version_info", ""))
        if path.name == CDS_FILE:
            cds = version
        else:
            for res in doc.get("resources", []):
                routes[str(res.get("name", ""))] = version
    return ExpectedVersions(cds=cds, routes=routes)


def is_synced(admin: EnvoyAdmin, expect: ExpectedVersions) -> bool:
    """True when the Envoy runs every version in ``expect`` (see :func:`wait_synced`)."""
    return _poll(admin, expect, 1 << 62) == "synced"


def rejection_counts(admins: Mapping[str, EnvoyAdmin]) -> dict[str, int]:
    """Each proxy's current total of ``update_rejected`` (a baseline before writing)."""

    def count(admin: EnvoyAdmin) -> int:
        try:
            return admin.sync_versions().rejected
        except (AdminError, ValueError):
            return 0

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        return dict(zip(admins, pool.map(count, admins.values()), strict=True))


def wait_synced(
    admins: Mapping[str, EnvoyAdmin],
    expect: Mapping[str, ExpectedVersions],
    timeout: float,
    rejected_before: Mapping[str, int] | None = None,
) -> list[str]:
    """Poll every proxy in ``expect`` until it runs its expected versions.

    Returns the names not synced (empty: all synced): those still pending when ``timeout``
    ran out, and at once those whose ``update_rejected`` rose above ``rejected_before``.
    Proxies are polled concurrently, so one slow Envoy does not delay seeing the others.
    """
    pending = {name for name, e in expect.items() if e}
    failed: set[str] = set()
    before = rejected_before or {}
    deadline = time.monotonic() + timeout
    delay = 0.002
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        while pending:
            names = sorted(pending)
            results = pool.map(lambda n: _poll(admins[n], expect[n], before.get(n, 1 << 62)), names)
            for name, result in zip(names, results, strict=True):
                if result != "pending":
                    pending.discard(name)
                if result == "rejected":
                    failed.add(name)
            if not pending or time.monotonic() >= deadline:
                break
            time.sleep(delay)
            delay = min(delay * 2, 0.01)  # a sync takes ~0.1 s: poll finely
    return sorted(pending | failed)
