"""The ``meshchaos`` command: thin adapters over library calls that return data.

One module per verb group (:mod:`~meshchaos.cli.mesh`, :mod:`~meshchaos.cli.predict`,
:mod:`~meshchaos.cli.load`, :mod:`~meshchaos.cli.report`); each verb parses its
arguments, calls one library function that returns a typed value, and renders it as a
table, YAML or JSON. Verb modules import the library lazily, so ``meshchaos --help``
stays fast.

Errors meant for the user print one line (``meshchaos VERB: ...``, with the validation
problems below it for invalid policy files), never a traceback. Exit codes: 0 done,
1 the input or the mesh is wrong (invalid policy, no mesh running, ...), 2 a usage
error (bad arguments, a workload that does not exist), 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from meshchaos.cli import load, mesh, predict, report
from meshchaos.cli._common import DEFAULT_STATE_DIR, Handler
from meshchaos.errors import MeshChaosError, UnknownWorkload

__all__ = ["DEFAULT_STATE_DIR", "EXIT_ERROR", "EXIT_USAGE", "build_parser", "main"]

EXIT_ERROR = 1
EXIT_USAGE = 2  # as argparse exits on bad arguments


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meshchaos",
        description="Chaos and resilience tests for Istio service meshes.",
    )
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for group in (mesh, load, predict, report):
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Handler = args.run
    try:
        return run(args)
    except UnknownWorkload as exc:
        print(f"meshchaos {args.verb}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (MeshChaosError, OSError) as exc:
        # OSError: the state dir or a file the user named cannot be written or read.
        if isinstance(exc, BrokenPipeError):
            return _reader_gone()
        print(f"meshchaos {args.verb}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def _reader_gone() -> int:
    # The reader went away (e.g. `| head`); not an error of ours. Point stdout at
    # devnull so the interpreter's final flush doesn't raise again.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 0
