"""The ``meshchaos load`` verb: resolve the target, run, print like fortio (or JSON)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from meshchaos.errors import LoadError
from meshchaos.load.classify import Classifier, classify_bookinfo, classify_status
from meshchaos.load.engine import run_load
from meshchaos.load.plan import LoadPlan, LoadTarget, parse_duration
from meshchaos.load.result import LoadResult

__all__ = ["PERCENTILES", "load", "parse_header", "render_text", "resolve_target", "summarize"]

PERCENTILES = (50.0, 75.0, 90.0, 99.0, 99.9)
NO_MESH = "no mesh is running in {dir} (start one with `meshchaos up`)"


def parse_header(text: str) -> tuple[str, str]:
    """``'Name: value'`` -> ``("Name", "value")``."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise LoadError(f"invalid header {text!r}: expected 'Name: value'")
    return name.strip(), value.strip()


def _mesh_state(state_dir: Path) -> dict[str, Any]:
    path = state_dir / "mesh.json"
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise LoadError(NO_MESH.format(dir=state_dir)) from None
    except (OSError, ValueError) as exc:
        raise LoadError(f"cannot read {path}: {exc}") from exc
    if not isinstance(state, dict):
        raise LoadError(f"{path} is not a JSON object")
    return state


def resolve_target(url: str, source: str | None, state_dir: Path) -> LoadTarget:
    """The :class:`LoadTarget` for a CLI URL: a path means the gateway of the running mesh,
    and ``--from WORKLOAD`` sends through that client's sidecar."""
    needs_mesh = url.startswith("/") or source is not None
    state = _mesh_state(state_dir) if needs_mesh else {}
    proxy = None
    if source is not None:
        clients = state.get("clients") or {}
        if source not in clients:
            known = ", ".join(sorted(clients)) or "none"
            raise LoadError(f"no in-mesh client {source!r} in the running mesh (known: {known})")
        proxy = str(clients[source])
    if url.startswith("/"):
        gateway = state.get("gateway_url")
        if not gateway:
            raise LoadError(f"the running mesh in {state_dir} has no gateway_url")
        url = str(gateway).rstrip("/") + url
    return LoadTarget(url=url, proxy=proxy)


def _classifier_for(url: str) -> Classifier:
    path = urlsplit(url).path
    if path.startswith("/productpage") or path.startswith("/api/v1/products"):
        return classify_bookinfo
    return classify_status


def _ms(seconds: float) -> float | None:
    return None if math.isnan(seconds) else round(seconds * 1000, 3)


def summarize(result: LoadResult) -> dict[str, Any]:
    """A JSON-ready summary: counts, shares, latency percentiles (ms), rps."""
    n = result.count
    statuses = result.status_counts()
    outcomes = result.counts()
    return {
        "target": result.target,
        "requests": n,
        "duration_s": round(result.duration, 6),
        "rps": round(result.rps, 3) if n and result.duration > 0 else None,
        "concurrency": result.concurrency,
        "qps": result.qps,
        "stopped_by_deadline": result.stopped_by_deadline,
        "status_counts": {str(k): v for k, v in sorted(statuses.items())},
        "status_shares": {str(k): v / n for k, v in sorted(statuses.items())},
        "outcome_counts": dict(sorted(outcomes.items())),
        "outcome_shares": {k: v / n for k, v in sorted(outcomes.items())},
        "overloaded": sum(1 for s in result.samples if s.overloaded),
        "latency_ms": {
            "min": _ms(result.latencies()[0]) if result.samples else None,
            **{f"p{q:g}": _ms(result.percentile(q)) for q in PERCENTILES},
            "max": _ms(result.percentile(100)),
        },
        "examples": result.examples,
    }


def _histogram(out: list[str], title: str, counts: Mapping[str, int], n: int) -> None:
    out.append(title)
    width = max(len(k) for k in counts)
    for key, count in counts.items():
        out.append(f"{key:<{width}} : {count} ({100 * count / n:.1f} %)")


def render_text(summary: Mapping[str, Any], show_outcomes: bool) -> str:
    """Fortio-style text: target, duration, rps, code and outcome histograms, percentiles."""
    n = summary["requests"]
    out = [f"Target: {summary['target']}"]
    rate = f"{summary['qps']:g} qps (open loop)" if summary["qps"] else "max rate (closed loop)"
    out.append(f"Concurrency {summary['concurrency']}, {rate}")
    rps = summary["rps"]
    out.append(
        f"All done {n} calls in {summary['duration_s']:.3f} s, "
        f"{'n/a' if rps is None else f'{rps:.1f}'} qps actual"
    )
    if n == 0:
        return "\n".join(out) + "\n"
    codes = {f"Code {k}": v for k, v in summary["status_counts"].items()}
    _histogram(out, "Status codes:", codes, n)
    if summary["overloaded"]:
        out.append(f"x-envoy-overloaded : {summary['overloaded']}")
    if show_outcomes:
        _histogram(out, "Outcome classes:", summary["outcome_counts"], n)
    latency = summary["latency_ms"]
    out.append(
        "Latency (ms): "
        + "  ".join(f"{k} {'n/a' if v is None else f'{v:.2f}'}" for k, v in latency.items())
    )
    return "\n".join(out) + "\n"


def load(args: argparse.Namespace, stdout: TextIO | None = None) -> int:
    """Run ``meshchaos load`` with parsed ``args``; 0 when the run completed."""
    stdout = stdout if stdout is not None else sys.stdout
    target = resolve_target(args.url, args.source, Path(args.state_dir))
    headers = dict(parse_header(h) for h in args.header)
    duration = parse_duration(args.duration) if args.duration is not None else None
    timeout = parse_duration(str(args.timeout))
    plan = LoadPlan(
        concurrency=args.concurrency,
        requests=args.requests,
        duration=duration,
        qps=args.qps,
        headers=headers,
        user=args.user,
        timeout=timeout,
    )
    classifier = _classifier_for(target.url)
    result = run_load(target, plan, classifier, progress=not args.json)
    summary = summarize(result)
    if args.json:
        stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        stdout.write(render_text(summary, show_outcomes=classifier is classify_bookinfo))
    return 0
