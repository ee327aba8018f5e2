"""What several verbs share: options, header parsing, tables."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

from meshchaos.errors import MeshChaosError

__all__ = [
    "DEFAULT_STATE_DIR",
    "Handler",
    "add_policy_files",
    "add_state_dir",
    "parse_header",
    "table",
]

DEFAULT_STATE_DIR = Path(".meshchaos")

Handler = Callable[[argparse.Namespace], int]
"""A verb: the parsed arguments in, the exit code out."""


def _state_dir(text: str) -> Path:
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a directory")
    return path


def _policy_dir(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a directory")
    return path


def add_state_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--state-dir",
        type=_state_dir,
        default=DEFAULT_STATE_DIR,
        help="where the running mesh keeps its state (default: .meshchaos/)",
    )


def add_policy_files(p: argparse.ArgumentParser, *, required: bool) -> None:
    """``-f FILE|NAME`` (repeatable) and ``--policy-dir DIR`` (repeatable)."""
    p.add_argument(
        "-f",
        "--filename",
        action="append",
        required=required,
        default=None if required else [],
        metavar="FILE|NAME",
        help="YAML file, or the name of a policy in a --policy-dir or among the packaged "
        "samples (e.g. fault-ratings-abort-50pct-500); repeatable; multi-document and "
        "List kinds allowed",
    )
    p.add_argument(
        "--policy-dir",
        action="append",
        type=_policy_dir,
        default=[],
        metavar="DIR",
        help="look policy names up in DIR before the packaged samples (repeatable)",
    )


def parse_header(text: str) -> tuple[str, str]:
    """``'Name: value'`` -> ``("Name", "value")``."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise MeshChaosError(f"invalid header {text!r}: expected 'Name: value'")
    return name.strip(), value.strip()


def table(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, three spaces apart, like kubectl's tables."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
