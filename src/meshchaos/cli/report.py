"""``meshchaos report`` and ``compare``: run reports (not available yet, and say so)."""

from __future__ import annotations

import argparse

from meshchaos.errors import BackendUnavailable

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="render the HTML report of a run (not available yet)")
    p.add_argument("run_dir", nargs="?")
    p.set_defaults(run=_not_yet)
    p = sub.add_parser("compare", help="regression report of two runs (not available yet)")
    p.add_argument("baseline")
    p.add_argument("current")
    p.set_defaults(run=_not_yet)


def _not_yet(args: argparse.Namespace) -> int:
    raise BackendUnavailable(
        f"'meshchaos {args.verb}' is not available yet: run reports land with the reports issue"
    )
