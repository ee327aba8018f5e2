"""The ``meshchaos`` command.

Each verb lives with the layer it belongs to; this module only parses arguments and
dispatches, so ``meshchaos --help`` stays fast (verbs import their modules lazily).
Errors meant for the user (invalid YAML, a mesh that is not up) print one clear
message and exit 1, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from meshchaos.errors import BackendUnavailable, MeshChaosError

DEFAULT_STATE_DIR = Path(".meshchaos")

# verb -> "module:function"; each function takes the parsed args and returns an exit code.
_VERBS: dict[str, str] = {
    "up": "meshchaos.mesh.commands:up",
    "down": "meshchaos.mesh.commands:down",
    "apply": "meshchaos.mesh.commands:apply",
    "delete": "meshchaos.mesh.commands:delete",
    "get": "meshchaos.mesh.commands:get",
    "status": "meshchaos.mesh.commands:status",
    "stats": "meshchaos.mesh.commands:stats",
    "load": "meshchaos.load.commands:load",
    "predict": "meshchaos.oracle.commands:predict",
    "report": "meshchaos.cli:_not_yet",
    "compare": "meshchaos.cli:_not_yet",
}


def _state_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="where the running mesh keeps its state (default: .meshchaos/)",
    )


def _backend(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backend",
        choices=("local", "kind", "cluster"),
        default="local",
        help="local: embedded Envoy mesh on loopback (default); kind/cluster: Kubernetes + Istio",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meshchaos",
        description="Chaos and resilience tests for Istio service meshes.",
    )
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    p = sub.add_parser("up", help="start a mesh with Bookinfo and httpbin; runs until Ctrl-C")
    _backend(p)
    _state_dir(p)
    p.add_argument("--kube-context", help="kube context for --backend cluster")
    p.add_argument(
        "--envoy-concurrency",
        type=int,
        default=None,
        help="worker threads per Envoy (default 1 locally; Istio sidecars use 2)",
    )

    p = sub.add_parser("down", help="stop the mesh and remove everything it left")
    _state_dir(p)
    p.add_argument(
        "--force",
        action="store_true",
        help="also when the state is unreadable or another version's: kill every process "
        "whose command line names the state dir, then remove the state",
    )

    for verb, what in (("apply", "apply Istio resources"), ("delete", "delete Istio resources")):
        p = sub.add_parser(verb, help=f"{what}; returns once every proxy runs the new config")
        _state_dir(p)
        p.add_argument(
            "-f",
            "--filename",
            action="append",
            required=True,
            type=Path,
            help="YAML file (repeatable; multi-document and List kinds allowed)",
        )
    sub.choices["delete"].add_argument(
        "--ignore-not-found",
        action="store_true",
        help="treat resources that are not in force as deleted (as kubectl does)",
    )

    p = sub.add_parser("get", help="list the Istio resources in force")
    _state_dir(p)
    p.add_argument(
        "kind", choices=("virtualservices", "destinationrules", "gateways", "vs", "dr", "gw", "all")
    )
    p.add_argument("-o", "--output", choices=("table", "yaml"), default="table")

    p = sub.add_parser(
        "status", help="every proxy and its config version, like istioctl proxy-status"
    )
    _state_dir(p)

    p = sub.add_parser("stats", help="Envoy counters of a workload's sidecars or of the gateway")
    _state_dir(p)
    p.add_argument("workload", help="e.g. reviews-v2, client, istio-ingressgateway")
    p.add_argument("--filter", default=None, help="regular expression on counter names")

    p = sub.add_parser("load", help="drive load and print a status histogram and percentiles")
    _state_dir(p)
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

    p = sub.add_parser("predict", help="the oracle's expected outcome for a request class")
    p.add_argument("-f", "--filename", action="append", default=[], type=Path)
    p.add_argument("--path", default="/productpage")
    p.add_argument("--user", default=None)
    p.add_argument("-H", "--header", action="append", default=[])
    p.add_argument("--from", dest="source", default="gateway")
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

    p = sub.add_parser("report", help="render the HTML report of a run (not available yet)")
    p.add_argument("run_dir", nargs="?")
    p = sub.add_parser("compare", help="regression report of two runs (not available yet)")
    p.add_argument("baseline")
    p.add_argument("current")
    return parser


def _not_yet(args: argparse.Namespace) -> int:
    raise BackendUnavailable(
        f"'meshchaos {args.verb}' is not available yet: run reports land with the reports issue"
    )


def _resolve(verb: str) -> Callable[[argparse.Namespace], int]:
    module_name, _, func = _VERBS[verb].partition(":")
    module = importlib.import_module(module_name)
    handler: Callable[[argparse.Namespace], int] = getattr(module, func)
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _resolve(args.verb)(args)
    except MeshChaosError as exc:
        print(f"meshchaos {args.verb}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); not an error of ours. Point stdout at
        # devnull so the interpreter's final flush doesn't raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
