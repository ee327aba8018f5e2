"""History across runs: one JSON line per run in ``history.jsonl``.

Each run appends one line (default ``<reports-dir>/history.jsonl``; the environment
variable :data:`HISTORY_ENV` or ``--history FILE`` point elsewhere) with the run id, git
revision, date, backend and, per scenario, its id, outcome, requests, p50/p99 latency
and main error share. The report reads the last lines for a status strip and a p99
sparkline per scenario.

Appending is one ``os.write`` of the whole line to a file opened with ``O_APPEND``, so
concurrent runs never interleave within a line (POSIX appends are atomic per write on a
local file system).

Reading: a damaged line in the middle of the file is a :class:`HistoryError` naming the
file and line, never skipped. A damaged **last** line (no newline at its end, or not
JSON), which is what a run killed while writing leaves, is skipped with a warning naming
the line, so one crashed night does not stop every later report.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshchaos.report._errors import RecordError

__all__ = [
    "HISTORY_ENV",
    "HISTORY_FILE",
    "HISTORY_SCHEMA",
    "HISTORY_VERSION",
    "History",
    "HistoryError",
    "append_run",
    "history_line",
    "read_history",
]

HISTORY_SCHEMA = "meshchaos.history"
HISTORY_VERSION = 1
HISTORY_FILE = "history.jsonl"
HISTORY_ENV = "MESHCHAOS_HISTORY"
_ERROR = re.compile(r"error|unavailable|timeout|overflow|fail|reset|status:(0|5\d\d)$", re.I)


class HistoryError(RecordError):
    """A history file that cannot be used: a damaged line, another schema."""


def _main_error_share(loads: Sequence[Mapping[str, Any]]) -> float | None:
    n = sum(int(x.get("count", 0)) for x in loads)
    if not n:
        return None
    bad: dict[str, int] = {}
    for x in loads:
        for c, k in x.get("classes", {}).items():
            if _ERROR.search(c):
                bad[c] = bad.get(c, 0) + int(k)
    return max(bad.values()) / n if bad else 0.0


def history_line(
    run: Mapping[str, Any], scenarios: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """The history entry of a run (``run.json`` and its scenario records)."""
    entries = []
    for sid, rec in sorted(scenarios.items()):
        loads = rec.get("loads", [])
        last = loads[-1]["latency"]["percentiles"] if loads else {}
        entries.append(
            {
                "id": sid,
                "outcome": rec.get("outcome"),
                "requests": sum(int(x.get("count", 0)) for x in loads),
                "p50": last.get("p50"),
                "p99": last.get("p99"),
                "error_share": _main_error_share(loads),
            }
        )
    return {
        "schema": HISTORY_SCHEMA,
        "schema_version": HISTORY_VERSION,
        "run_id": run.get("run_id"),
        "git_revision": run.get("git_revision"),
        "date": run.get("finished") or run.get("started"),
        "backend": run.get("backend"),
        "scenarios": entries,
    }


def append_run(path: Path, line: Mapping[str, Any]) -> None:
    """Append one run's line with a single ``O_APPEND`` write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(line, sort_keys=True, allow_nan=False) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, data)
    finally:
        os.close(fd)
    if written != len(data):  # a full disk: say so rather than leave half a line unnoticed
        raise HistoryError(f"{path}: wrote {written} of {len(data)} bytes of the run's line")


@dataclass
class History:
    """The runs of a history file, oldest first, and the warnings met reading it."""

    path: Path
    runs: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def last(self, n: int) -> list[dict[str, Any]]:
        return self.runs[-n:]

    def series(self, scenario: str, key: str, n: int) -> list[Any]:
        """``key`` of ``scenario`` over the last ``n`` runs (None where it was not run)."""
        out = []
        for run in self.last(n):
            found = next((s for s in run["scenarios"] if s.get("id") == scenario), None)
            out.append(None if found is None else found.get(key))
        return out


def _check(path: Path, number: int, data: Any) -> dict[str, Any]:
    where = f"{path}:{number}"
    if not isinstance(data, dict):
        raise HistoryError(f"{where}: expected a JSON object, found {type(data).__name__}")
    if data.get("schema") != HISTORY_SCHEMA:
        raise HistoryError(f"{where}: schema {data.get('schema')!r}, expected {HISTORY_SCHEMA!r}")
    version = data.get("schema_version")
    if version != HISTORY_VERSION:
        raise HistoryError(f"{where}: schema_version {version!r}, reads {HISTORY_VERSION}")
    if not isinstance(data.get("scenarios"), list):
        raise HistoryError(f"{where}: field 'scenarios' is missing or not a list")
    return data


def read_history(path: Path) -> History:
    """The history in ``path`` (empty if there is no such file); see the module doc for
    what a damaged line does."""
    history = History(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return history
    except OSError as exc:
        raise HistoryError(f"{path}: cannot read: {exc.strerror or exc}") from None
    lines = raw.split(b"\n")
    complete = raw.endswith(b"\n")
    if complete:
        lines = lines[:-1]
    for i, line in enumerate(lines, start=1):
        last = i == len(lines)
        try:
            data = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            if last:
                history.warnings.append(
                    f"{path}:{i}: damaged last line skipped (a run stopped while writing?): {exc}"
                )
                break
            raise HistoryError(f"{path}:{i}: not JSON ({exc})") from None
        if last and not complete:
            history.warnings.append(f"{path}:{i}: last line has no newline (kept)")
        history.runs.append(_check(path, i, data))
    return history
