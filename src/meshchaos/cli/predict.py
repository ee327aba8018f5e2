"""``meshchaos predict``: the oracle's expected outcome for a request class."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import TYPE_CHECKING, Any

from meshchaos.cli._common import add_policy_files, parse_header

if TYPE_CHECKING:
    from meshchaos.oracle.prediction import Prediction

__all__ = ["predict", "prediction_json", "register", "render_text"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("predict", help="the oracle's expected outcome for a request class")
    add_policy_files(p, required=False)
    p.add_argument(
        "--path",
        default="/productpage",
        help="path through the gateway, or a URL such as http://httpbin:8000/get (--from)",
    )
    p.add_argument("--user", default=None, help="Bookinfo login (sets end-user)")
    p.add_argument("-H", "--header", action="append", default=[], help="'Name: value'")
    p.add_argument(
        "--from",
        dest="source",
        default="gateway",
        metavar="WORKLOAD",
        help="where requests start: gateway (default) or an in-mesh client such as client",
    )
    p.add_argument(
        "-c",
        "--concurrency",
        type=int,
        default=1,
        help="requests in flight (above 1, LEAST_REQUEST favours fast hosts: shares become bounds)",
    )
    p.add_argument(
        "--no-baseline",
        action="store_true",
        help="do not assume the baseline every mesh starts with (gateway, version subsets)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=predict)


def prediction_json(p: Prediction) -> dict[str, Any]:
    """The JSON form of a prediction (``meshchaos predict --json``)."""
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
        "conditionals": [dataclasses.asdict(c) for c in p.conditionals],
        "splits": [dataclasses.asdict(s) for s in p.splits],
        "mirrored": p.mirrored,
        "counters": p.counters,
        "unpredictable": sorted(p.unpredictable),
        "reasoning": list(p.reasoning),
    }


def render_text(prediction: Prediction) -> str:
    """A table of outcome classes, then mirrors, counters and the reasoning trail."""
    out = [f"{'class':<28} {'probability':>12}  latency band (s)"]
    for o in prediction.outcomes:
        prob = f"{o.probability:.6g}"
        if not o.is_exact:
            lo, hi = o.bounds
            prob = f"{prob} [{lo:.3g}..{hi:.3g}]"
        out.append(f"{o.outcome:<28} {prob:>12}  {o.latency.low:.3f} .. {o.latency.high:.3f}")
    out += [
        f"{c.outcome} among {' | '.join(c.given)}: {c.probability:.6g}"
        for c in prediction.conditionals
    ]
    out += [
        f"answering at {s.at:.3f} s or later among {' | '.join(s.given)}: {s.probability:.6g}"
        for s in prediction.splits
    ]
    out += [f"mirrored to {k}: {v:.6g}" for k, v in prediction.mirrored.items()]
    out += [f"counter {k}: {v:.6g} per request" for k, v in prediction.counters.items()]
    out += [
        f"counter {k}: not predictable (depends on the balancer's split)"
        for k in sorted(prediction.unpredictable)
    ]
    out += ["", "reasoning:", *(f"  {line}" for line in prediction.reasoning)]
    return "\n".join(out) + "\n"


def predict(args: argparse.Namespace) -> int:
    """Predict the request class of the flags under the baseline plus ``-f`` policies."""
    from meshchaos.oracle.from_files import predict_from_files, request_class

    request = request_class(
        args.path,
        user=args.user,
        headers=dict(parse_header(h) for h in args.header),
        source=args.source,
        concurrency=args.concurrency,
    )
    prediction = predict_from_files(
        args.filename, request, policy_dirs=args.policy_dir, baseline=not args.no_baseline
    )
    if args.json:
        print(json.dumps(prediction_json(prediction), indent=2))
    else:
        print(render_text(prediction), end="")
    return 0
