"""``meshchaos predict``: print the oracle's expected outcome for a request class."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from urllib.parse import urlsplit

from meshchaos.errors import MeshChaosError
from meshchaos.oracle.predict import predict as _predict
from meshchaos.oracle.prediction import Prediction, RequestClass


def request_from_args(args: argparse.Namespace) -> RequestClass:
    """The request class of the CLI flags. ``--path`` may be a URL (``http://httpbin:8000/get``),
    which names the host and port for an in-mesh client (``--from client``)."""
    headers: dict[str, str] = {}
    for h in args.header:
        name, sep, value = h.partition(":")
        if not sep:
            raise MeshChaosError(f"-H {h!r}: expected 'Name: value'")
        headers[name.strip().lower()] = value.strip()
    path, host, port = args.path, RequestClass.host, RequestClass.port
    if "://" in path:
        url = urlsplit(path)
        host = url.hostname or host
        port = url.port or 80
        path = url.path or "/"
        if url.query:
            path = f"{path}?{url.query}"
    return RequestClass(
        path=path,
        user=args.user,
        headers=headers,
        source=args.source,
        host=host,
        port=port,
        concurrency=max(1, getattr(args, "concurrency", 1)),
    )


def to_json(p: Prediction) -> dict[str, object]:
    return {
        "request": {
            "path": p.request.path,
            "user": p.request.user,
            "source": p.request.source,
            "host": p.request.host,
            "port": p.request.port,
            "headers": p.request.headers,
        },
        "outcomes": [
            {
                "outcome": o.outcome,
                "probability": o.probability,
                "low": o.bounds[0],
                "high": o.bounds[1],
                "latency": [o.latency.low, o.latency.high],
                "components": [[q, [b.low, b.high]] for q, b in o.components],
            }
            for o in p.outcomes
        ],
        "mirrored": p.mirrored,
        "counters": p.counters,
        "unpredictable": sorted(p.unpredictable),
        "reasoning": list(p.reasoning),
    }


def predict(args: argparse.Namespace) -> int:
    """Entry point of ``meshchaos predict`` (see ``meshchaos.cli``)."""
    from meshchaos.istio.parse import load_files
    from meshchaos.manifests import baseline_paths, merge

    # The same starting point as a mesh: Bookinfo's gateway and version subsets.
    base = [] if args.no_baseline else load_files(baseline_paths())
    given = load_files([Path(f) for f in args.filename]) if args.filename else []
    resources = merge(base, given)
    prediction = _predict(resources, request_from_args(args))
    if args.json:
        print(json.dumps(to_json(prediction), indent=2))
        return 0
    print(f"{'class':<28} {'probability':>12}  latency band (s)")
    for o in prediction.outcomes:
        prob = f"{o.probability:.6g}"
        if not o.is_exact:
            lo, hi = o.bounds
            prob = f"{prob} [{lo:.3g}..{hi:.3g}]"
        print(f"{o.outcome:<28} {prob:>12}  {o.latency.low:.3f} .. {o.latency.high:.3f}")
    for k, v in prediction.mirrored.items():
        print(f"mirrored to {k}: {v:.6g}")
    for k, v in prediction.counters.items():
        print(f"counter {k}: {v:.6g} per request")
    for k in sorted(prediction.unpredictable):
        print(f"counter {k}: not predictable (depends on the balancer's split)")
    print("\nreasoning:")
    for line in prediction.reasoning:
        print(f"  {line}")
    return 0
