"""The mesh verbs: up, down, apply, delete, get, status, stats.

``up`` owns the mesh in the foreground; every other verb attaches to it through the state
dir, so ``meshchaos up`` in one terminal and ``meshchaos apply -f`` in another just work.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING

from meshchaos.cli._common import add_policy_files, add_state_dir, table
from meshchaos.errors import MeshChaosError, MeshError
from meshchaos.mesh.kube.flags import add_kube_arguments, kube_arguments

if TYPE_CHECKING:
    from meshchaos.istio.model import Resource
    from meshchaos.mesh.base import Mesh

__all__ = ["apply", "delete", "down", "get", "register", "stats", "status", "up"]

KINDS = {  # `get` argument -> kind names
    "virtualservices": ("VirtualService",),
    "vs": ("VirtualService",),
    "destinationrules": ("DestinationRule",),
    "dr": ("DestinationRule",),
    "gateways": ("Gateway",),
    "gw": ("Gateway",),
    "all": ("VirtualService", "DestinationRule", "Gateway"),
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("up", help="start a mesh with Bookinfo and httpbin; runs until Ctrl-C")
    p.add_argument(
        "--backend",
        choices=("local", "kind", "cluster"),
        default="local",
        help="local: embedded Envoy mesh on loopback (default); kind/cluster: Kubernetes + Istio",
    )
    add_state_dir(p)
    p.add_argument(
        "--envoy-concurrency",
        type=int,
        default=None,
        help="worker threads per Envoy (default 1 locally; Istio sidecars use 2)",
    )
    add_kube_arguments(p)
    p.set_defaults(run=up, up_parser=p)

    p = sub.add_parser("down", help="stop the mesh and remove everything it left")
    add_state_dir(p)
    p.add_argument(
        "--force",
        action="store_true",
        help="also when the state is unreadable or another version's: kill every process "
        "whose command line names the state dir, then remove the state",
    )
    p.set_defaults(run=down)

    for verb, what, run in (
        ("apply", "apply Istio resources", apply),
        ("delete", "delete Istio resources", delete),
    ):
        p = sub.add_parser(verb, help=f"{what}; returns once every proxy runs the new config")
        add_state_dir(p)
        add_policy_files(p, required=True)
        p.set_defaults(run=run)
    sub.choices["delete"].add_argument(
        "--ignore-not-found",
        action="store_true",
        help="treat resources that are not in force as deleted (as kubectl does)",
    )

    p = sub.add_parser("get", help="list the Istio resources in force")
    add_state_dir(p)
    p.add_argument("kind", choices=tuple(KINDS))
    p.add_argument("-o", "--output", choices=("table", "yaml", "json"), default="table")
    p.set_defaults(run=get)

    p = sub.add_parser(
        "status", help="every proxy and its config version, like istioctl proxy-status"
    )
    add_state_dir(p)
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.set_defaults(run=status)

    p = sub.add_parser("stats", help="Envoy counters of a workload's sidecars or of the gateway")
    add_state_dir(p)
    p.add_argument("workload", help="e.g. reviews-v2, client, istio-ingressgateway")
    p.add_argument("--filter", default=None, help="regular expression on counter names")
    p.set_defaults(run=stats)


def _attach(args: argparse.Namespace) -> Mesh:
    from meshchaos.mesh.registry import attach

    return attach(args.state_dir)


def _kube_name(r: Resource) -> str:
    return f"{r.kind.lower()}.networking.istio.io/{r.metadata.name}"


def up(args: argparse.Namespace) -> int:
    """Start a mesh in the foreground; tear it down on Ctrl-C or SIGTERM."""
    from meshchaos.mesh.registry import BackendOptions, check_backend, get_backend

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    check_backend(args.backend)  # a missing tool: one message, in seconds
    options = BackendOptions(
        state_dir=args.state_dir,
        run_id=f"cli-{os.getpid()}",
        envoy_concurrency=args.envoy_concurrency,
        **kube_arguments(args, args.up_parser),
    )
    mesh = get_backend(args.backend).open(options)
    try:
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        took = f" in {mesh.startup.ready_seconds:.2f} s" if mesh.startup is not None else ""
        for warning in mesh.startup.warnings if mesh.startup is not None else ():
            print(f"Warning: {warning}", file=sys.stderr)
        client = mesh.client("client")
        print(f"mesh ready{took}: gateway {mesh.gateway_url()}/productpage", flush=True)
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
    """Stop the mesh in ``--state-dir`` and sweep what it left; no mesh there is fine.
    ``--force`` sweeps a mesh whose state is unreadable or foreign by command line."""
    from meshchaos.mesh.registry import down as down_mesh

    result = down_mesh(args.state_dir, force=args.force)
    if result.unreadable:
        print(f"Warning: {result.unreadable}", file=sys.stderr)
    if not result.found and not result.swept:
        print(f"no mesh in {args.state_dir}")
        return 0
    extra = f" (swept {len(result.swept)} leftover processes)" if result.swept else ""
    print(f"mesh in {args.state_dir} stopped{extra}")
    return 0


def _load(args: argparse.Namespace) -> list[Resource]:
    """The resources of ``-f`` (paths or policy names), all or nothing; none is an error."""
    from meshchaos.manifests import load_policies

    resources = load_policies(args.filename, args.policy_dir)
    if not resources:
        raise MeshChaosError(
            f"no objects passed to {args.verb}: no Istio resources in {', '.join(args.filename)}"
        )
    return resources


def apply(args: argparse.Namespace) -> int:
    """``kubectl apply -f``: parse all files (all or nothing), apply, wait for every proxy."""
    from meshchaos.mesh.changes import applied_changes

    resources = _load(args)
    mesh = _attach(args)
    applied = mesh.apply(resources)
    for warning in applied.warnings:
        print(f"Warning: {warning}", file=sys.stderr)
    for change in applied_changes(applied):
        print(f"{_kube_name(change.resource)} {change.action}")
    print(
        f"synced: config version {applied.version} pushed; every proxy runs its latest config "
        "(proxies this change did not touch keep their earlier version)"
    )
    return 0


def delete(args: argparse.Namespace) -> int:
    """``kubectl delete -f``: remove the named resources; exit 1 if some were not found."""
    from meshchaos.mesh.changes import delete_resources

    resources = _load(args)
    result = delete_resources(_attach(args), resources)
    for r in result.deleted:
        print(f"{_kube_name(r)} deleted")
    if args.ignore_not_found:
        return 0
    for r in result.missing:
        print(f"Error: {_kube_name(r)} ({r.metadata.key}) not found", file=sys.stderr)
    return 1 if result.missing else 0


def get(args: argparse.Namespace) -> int:
    """List the resources in force, as a table, YAML (``-o yaml``) or JSON (``-o json``)."""
    from meshchaos.istio.model import DestinationRule, VirtualService

    kinds = KINDS[args.kind]
    items = [r for r in _attach(args).resources() if r.kind in kinds]
    if args.output == "yaml":
        import yaml

        print(yaml.safe_dump_all([r.raw for r in items], sort_keys=False), end="")
        return 0
    if args.output == "json":
        print(json.dumps({"kind": "List", "items": [r.raw for r in items]}, indent=2))
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
    print(table(rows))
    return 0


def status(args: argparse.Namespace) -> int:
    """Every proxy and the config version it runs, like ``istioctl proxy-status``."""
    proxies = _attach(args).status()
    if args.output == "json":
        print(json.dumps([dataclasses.asdict(s) for s in proxies], indent=2))
        return 0
    rows = [["PROXY", "WORKLOAD", "VERSION", "SYNCED", "ALIVE", "ADMIN"]]
    for s in proxies:
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
    print(table(rows))
    return 0


def stats(args: argparse.Namespace) -> int:
    """Envoy stats of a workload's sidecars (summed) or of the gateway, ``name: value``.
    A workload that emits nothing, or nothing that ``--filter`` keeps, is said so (exit 1),
    never an empty success."""
    try:
        pattern = re.compile(args.filter) if args.filter else None
    except re.error as exc:
        raise MeshChaosError(f"--filter {args.filter!r} is not a valid regex: {exc}") from None
    values = _attach(args).proxy_stats(args.workload)
    if not values:
        raise MeshError(f"{args.workload} emits no stats (its proxies answered with none)")
    shown = sorted(n for n in values if pattern is None or pattern.search(n))
    if not shown:
        raise MeshError(
            f"{args.workload} emits no stat matching --filter {args.filter!r} "
            f"({len(values)} stats in all; try a broader regex)"
        )
    for name in shown:
        print(f"{name}: {values[name]}")
    return 0
