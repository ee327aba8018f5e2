"""``meshchaos load``: run through the mesh (or at a loopback URL), print like fortio (or JSON)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TextIO
from urllib.parse import urlsplit

from meshchaos.cli._common import add_state_dir, parse_header
from meshchaos.errors import LoadError, MeshError, UnknownWorkload

if TYPE_CHECKING:
    from meshchaos.load.plan import LoadPlan
    from meshchaos.load.result import LoadResult
    from meshchaos.load.summary import LoadSummary

__all__ = ["UnknownClient", "load", "register", "render_text", "run"]


class UnknownClient(LoadError, UnknownWorkload):
    """``--from WORKLOAD`` names no in-mesh client of the running mesh."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("load", help="drive load and print a status histogram and percentiles")
    add_state_dir(p)
    p.add_argument("url", help="http://... URL, or a path such as /productpage (gateway)")
    p.add_argument("-c", "--concurrency", type=int, default=8)
    g = p.add_mutually_exclusive_group()
    g.add_argument("-n", "--requests", type=int, default=None)
    g.add_argument("-t", "--duration", default=None, help="e.g. 10s, 1m")
    p.add_argument(
        "--qps", type=float, default=None, help="open loop at this rate (0 = closed loop)"
    )
    p.add_argument("-H", "--header", action="append", default=[], help="'Name: value' (repeatable)")
    p.add_argument("--user", default=None, help="log in to Bookinfo as this user first")
    p.add_argument(
        "--from",
        dest="source",
        default=None,
        help="send through this in-mesh client workload's sidecar (e.g. client)",
    )
    p.add_argument("--timeout", default="30s", help="per-request client timeout")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=load)


def run(
    url: str, source: str | None, state_dir: Path, plan: LoadPlan, *, progress: bool
) -> LoadResult:
    """Run ``plan`` for ``meshchaos load``. A path, ``--from WORKLOAD`` or an address only
    the running mesh vouches for go through that mesh (:meth:`Mesh.run_load`, found via
    :func:`meshchaos.mesh.registry.attach`); a loopback URL needs no mesh."""
    from meshchaos.load.classify import classifier_for_url
    from meshchaos.load.engine import run_load
    from meshchaos.load.plan import LoadTarget, is_loopback_host
    from meshchaos.mesh.handle import MeshNotRunning
    from meshchaos.mesh.registry import attach

    host = urlsplit(url).hostname or ""
    direct = source is None and not url.startswith("/")
    if direct and is_loopback_host(host):
        return run_load(LoadTarget(url), plan, classifier_for_url(url), progress=progress)
    try:
        mesh = attach(state_dir)
    except MeshNotRunning as exc:
        if direct:  # not loopback, and no mesh reports it as its gateway: refused
            return run_load(LoadTarget(url), plan, classifier_for_url(url))
        raise LoadError(str(exc)) from None
    except MeshError as exc:
        raise LoadError(str(exc)) from None
    try:
        return mesh.run_load(replace(plan, url=url), source=source, progress=progress)
    except UnknownWorkload as exc:
        if source is None or isinstance(exc, UnknownClient):
            raise
        raise UnknownClient(source, exc.known, "in-mesh client", "in the running mesh") from None


def _histogram(out: list[str], title: str, counts: Mapping[str, int], n: int) -> None:
    out.append(title)
    width = max(len(k) for k in counts)
    for key, count in counts.items():
        out.append(f"{key:<{width}} : {count} ({100 * count / n:.1f} %)")


def render_text(summary: LoadSummary, show_outcomes: bool) -> str:
    """Fortio-style text: target, duration, rps, code and outcome histograms, percentiles."""
    n = summary.requests
    out = [f"Target: {summary.target}"]
    rate = f"{summary.qps:g} qps (open loop)" if summary.qps else "max rate (closed loop)"
    out.append(f"Concurrency {summary.concurrency}, {rate}")
    rps = summary.rps
    out.append(
        f"All done {n} calls in {summary.duration:.3f} s, "
        f"{'n/a' if rps is None else f'{rps:.1f}'} qps actual"
    )
    if n == 0:
        return "\n".join(out) + "\n"
    codes = {f"Code {k}": v for k, v in summary.status_counts.items()}
    _histogram(out, "Status codes:", codes, n)
    if summary.overloaded:
        out.append(f"x-envoy-overloaded : {summary.overloaded}")
    if show_outcomes:
        _histogram(out, "Outcome classes:", summary.outcome_counts, n)
    latency = {k: None if v is None else v * 1000 for k, v in summary.latency.items()}
    out.append(
        "Latency (ms): "
        + "  ".join(f"{k} {'n/a' if v is None else f'{v:.2f}'}" for k, v in latency.items())
    )
    return "\n".join(out) + "\n"


def load(args: argparse.Namespace, stdout: TextIO | None = None) -> int:
    """Run ``meshchaos load`` with parsed ``args``; 0 when the run completed."""
    from meshchaos.load.classify import classifier_for_url, classify_bookinfo
    from meshchaos.load.plan import LoadPlan, parse_duration
    from meshchaos.load.summary import load_summary

    stdout = stdout if stdout is not None else sys.stdout
    headers = dict(parse_header(h) for h in args.header)
    duration = parse_duration(args.duration) if args.duration is not None else None
    plan = LoadPlan(
        concurrency=args.concurrency,
        requests=args.requests,
        duration=duration,
        qps=args.qps,
        headers=headers,
        user=args.user,
        timeout=parse_duration(str(args.timeout)),
    )
    result = run(args.url, args.source, Path(args.state_dir), plan, progress=not args.json)
    summary = load_summary(result)
    if args.json:
        stdout.write(json.dumps(summary.to_json(), indent=2) + "\n")
    else:
        bookinfo = classifier_for_url(args.url) is classify_bookinfo
        stdout.write(render_text(summary, show_outcomes=bookinfo))
    return 0
