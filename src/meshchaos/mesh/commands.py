"""The mesh verbs of the ``meshchaos`` command: up, down, apply, delete, get, status, stats.

``up`` owns the mesh in the foreground; every other verb attaches to it through the state
dir, so ``meshchaos up`` in one terminal and ``meshchaos apply -f`` in another just work.
Errors meant for the user are raised as :class:`MeshChaosError`; ``cli.main`` prints them.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

from meshchaos.errors import MeshError
from meshchaos.istio.model import DestinationRule, Gateway, Resource, VirtualService, resource_id
from meshchaos.mesh.base import Applied

if TYPE_CHECKING:
    from meshchaos.mesh.local.mesh import LocalMesh

__all__ = ["apply", "delete", "down", "get", "stats", "status", "up"]

_KIND_ALIASES = {
    "virtualservices": (VirtualService,),
    "vs": (VirtualService,),
    "destinationrules": (DestinationRule,),
    "dr": (DestinationRule,),
    "gateways": (Gateway,),
    "gw": (Gateway,),
    "all": (VirtualService, DestinationRule, Gateway),
}
_PLURAL = {
    "VirtualService": "virtualservice",
    "DestinationRule": "destinationrule",
    "Gateway": "gateway",
}


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _name(r: Resource) -> str:
    return f"{_PLURAL[r.kind]}.networking.istio.io/{r.metadata.name}"


def up(args: argparse.Namespace) -> int:
    """Start a mesh in the foreground; tear it down on Ctrl-C or SIGTERM."""
    from meshchaos.mesh.factory import open_mesh

    kw: dict[str, Any] = {}
    if args.envoy_concurrency is not None:
        kw["envoy_concurrency"] = args.envoy_concurrency
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    t0 = time.monotonic()
    mesh = open_mesh(
        args.backend,
        state_dir=args.state_dir,
        kube_context=getattr(args, "kube_context", None),
        **kw,
    )
    took = time.monotonic() - t0  # open_mesh returns once the mesh serves
    try:
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        client = mesh.client("client")
        print(f"mesh ready in {took:.2f} s: gateway {mesh.gateway_url()}/productpage", flush=True)
        print(f"  in-mesh client (HTTP proxy): {client.proxy_url}", flush=True)
        print(f"  state dir: {args.state_dir}   stop with Ctrl-C or 'meshchaos down'", flush=True)
        while not stop.wait(0.5):
            pass
        print("stopping the mesh...", flush=True)
    finally:
        mesh.close()
    print("mesh stopped", flush=True)
    return 0


def down(args: argparse.Namespace) -> int:
    """Stop the mesh in ``--state-dir`` (see :meth:`LocalMesh.down`); ``--force`` sweeps
    a mesh whose state is unreadable or foreign by command line."""
    from meshchaos.mesh.local.mesh import LocalMesh

    result = LocalMesh.down(args.state_dir, force=args.force)
    if result.unreadable:
        print(f"Warning: {result.unreadable}", file=sys.stderr)
    if not result.found and not result.swept:
        print(f"no mesh in {args.state_dir}")
        return 0
    extra = f" (swept {len(result.swept)} leftover processes)" if result.swept else ""
    print(f"mesh in {args.state_dir} stopped{extra}")
    return 0


def _attach(args: argparse.Namespace) -> LocalMesh:
    from meshchaos.mesh.local.mesh import LocalMesh

    return LocalMesh.attach(args.state_dir)


def apply(args: argparse.Namespace) -> int:
    """``kubectl apply -f``: parse all files (all or nothing), apply, wait for every proxy."""
    from meshchaos.istio.parse import load_files

    resources = load_files(list(args.filename))
    mesh = _attach(args)
    applied: Applied = mesh.apply(resources)
    for warning in applied.warnings:
        print(f"Warning: {warning}", file=sys.stderr)
    # Report as kubectl does, document by document: a resource seen earlier in the same
    # call, or in force before it, is "configured" ("unchanged" if identical).
    seen: dict[str, object] = {
        rid: prev.raw for rid, prev in applied.previous.items() if prev is not None
    }
    for r in resources:
        rid = resource_id(r)
        if rid not in seen:
            verb = "created"
        elif seen[rid] == r.raw:
            verb = "unchanged"
        else:
            verb = "configured"
        seen[rid] = r.raw
        print(f"{_name(r)} {verb}")
    print(
        f"synced: config version {applied.version} pushed; every proxy runs its latest config "
        "(proxies this change did not touch keep their earlier version)"
    )
    return 0


def delete(args: argparse.Namespace) -> int:
    """``kubectl delete -f``: remove the named resources; exit 1 if some were not found."""
    from meshchaos.istio.parse import load_files

    resources = load_files(list(args.filename))
    mesh = _attach(args)
    present = {resource_id(r) for r in mesh.resources()}
    # Like kubectl, a resource named twice is deleted once and then "not found".
    found: list[Resource] = []
    missing: list[Resource] = []
    for r in resources:
        rid = resource_id(r)
        (found if rid in present else missing).append(r)
        present.discard(rid)
    if found:
        mesh.delete(Applied(tuple(found), {resource_id(r): None for r in found}))
    for r in found:
        print(f"{_name(r)} deleted")
    if args.ignore_not_found:
        return 0
    for r in missing:
        print(f"Error: {_name(r)} ({r.metadata.key}) not found", file=sys.stderr)
    return 1 if missing else 0


def get(args: argparse.Namespace) -> int:
    """List the resources in force, as a table or as YAML (``-o yaml``)."""
    kinds = _KIND_ALIASES[args.kind]
    items = [r for r in _attach(args).resources() if isinstance(r, kinds)]
    if args.output == "yaml":
        import yaml

        print(yaml.safe_dump_all([r.raw for r in items], sort_keys=False), end="")
        return 0
    if not items:
        print(f"No resources found ({args.kind}).")
        return 0
    rows = [["KIND", "NAMESPACE", "NAME", "HOSTS", "GATEWAYS/SELECTOR", "SOURCE"]]
    for r in items:
        if isinstance(r, VirtualService):
            hosts, extra = ",".join(r.hosts), ",".join(r.gateways) or "mesh"
        elif isinstance(r, DestinationRule):
            hosts, extra = r.host, "-"
        else:
            hosts = ",".join(sorted({h for s in r.servers for h in s.hosts}))
            extra = ",".join(f"{k}={v}" for k, v in r.selector.items())
        rows.append([r.kind, r.metadata.namespace, r.metadata.name, hosts, extra, r.source])
    print(_table(rows))
    return 0


def status(args: argparse.Namespace) -> int:
    """Every proxy and the config version it runs, like ``istioctl proxy-status``."""
    rows = [["PROXY", "WORKLOAD", "VERSION", "SYNCED", "ALIVE", "ADMIN"]]
    for s in _attach(args).status():
        rows.append(
            [
                s.name,
                s.workload,
                s.version or "-",
                "SYNCED" if s.synced else "STALE",
                "yes" if s.alive else "NO",
                s.admin_url or "-",
            ]
        )
    print(_table(rows))
    return 0


def stats(args: argparse.Namespace) -> int:
    """Envoy stats of a workload's sidecars (summed) or of the gateway, ``name: value``."""
    try:
        pattern = re.compile(args.filter) if args.filter else None
    except re.error as exc:
        raise MeshError(f"--filter {args.filter!r} is not a valid regex: {exc}") from None
    values = _attach(args).proxy_stats(args.workload)
    for name in sorted(values):
        if pattern is None or pattern.search(name):
            print(f"{name}: {values[name]}")
    return 0
