"""The run record: its schema, its writer and its reader, in one place.

A run directory holds one JSON file per scenario and ``run.json``. Both carry
``schema`` (``meshchaos.scenario-record`` / ``meshchaos.run-record``) and
``schema_version``; the reader accepts exactly the versions this module writes and
refuses anything else with a :class:`RecordError` naming the file, never a guess.
The JSON Schema files shipped beside this module (``schemas/``) describe the same
shape; ``docs/RECORD.md`` explains each field.

Latencies are kept for every run, passing or not, as a histogram on fixed
log-spaced bins (:data:`BINS_PER_DECADE` per decade from :data:`HISTOGRAM_LOW`
seconds), so two records can be compared bin by bin, plus exact percentiles.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from meshchaos.report._errors import RecordError
from meshchaos.report.histogram import (  # noqa: F401  (part of the record's API)
    BINS_PER_DECADE,
    HISTOGRAM_DECADES,
    HISTOGRAM_LOW,
    PERCENTILES,
    Histogram,
    bin_edges,
    bin_of,
    histogram_of,
    latency_record,
)
from meshchaos.report.timeline import timeline_of

__all__ = [
    "BINS_PER_DECADE",
    "HISTOGRAM_LOW",
    "PERCENTILES",
    "RUN_SCHEMA",
    "SCENARIO_SCHEMA",
    "SCHEMA_VERSION",
    "Histogram",
    "RecordError",
    "RunRecord",
    "histogram_of",
    "json_schema",
    "latency_record",
    "load_entry",
    "policy_entry",
    "prediction_entry",
    "read_run",
    "read_scenario",
    "run_record",
    "scenario_record",
    "sizing_entry",
    "write_json",
]

SCENARIO_SCHEMA = "meshchaos.scenario-record"
RUN_SCHEMA = "meshchaos.run-record"
SCHEMA_VERSION = 1
RUN_FILE = "run.json"


def policy_entry(path: Path) -> dict[str, Any]:
    """A policy file as the record keeps it: name, sha256 of its bytes, and its text."""
    data = path.read_bytes()
    return {
        "name": path.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "text": data.decode("utf-8", errors="replace"),
    }


def finite(x: float | None) -> float | None:
    """``x``, or None when it is missing, infinite or nan (JSON has no such numbers)."""
    if x is None or not math.isfinite(x):
        return None
    return float(x)


def write_json(path: Path, data: Any) -> None:
    """Write atomically (a temporary file, then a rename): a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")
    tmp.replace(path)


def request_entry(request: Any) -> dict[str, Any] | None:
    """A :class:`~meshchaos.oracle.RequestClass` as the record keeps it."""
    if request is None:
        return None
    return {
        "path": request.path,
        "user": request.user,
        "headers": dict(request.headers),
        "method": request.method,
        "source": request.source,
        "host": request.host,
        "port": request.port,
    }


def prediction_entry(prediction: Any) -> dict[str, Any] | None:
    """A :class:`~meshchaos.oracle.Prediction`: classes, probabilities and bounds,
    latency bands (``null`` for an unbounded edge), reasoning and counter relations."""
    if prediction is None:
        return None
    return {
        "outcomes": [
            {
                "outcome": o.outcome,
                "probability": o.probability,
                "low": o.bounds[0],
                "high": o.bounds[1],
                "latency_low": finite(o.latency.low),
                "latency_high": finite(o.latency.high),
            }
            for o in prediction.outcomes
        ],
        "reasoning": list(prediction.reasoning),
        "counters": dict(prediction.counters),
        "counter_bounds": {k: list(v) for k, v in prediction.counter_bounds.items()},
        "mirrored": dict(prediction.mirrored),
        "unpredictable": sorted(prediction.unpredictable),
        "conditionals": [
            {"outcome": c.outcome, "given": list(c.given), "probability": c.probability}
            for c in prediction.conditionals
        ],
        "splits": [
            {"at": s.at, "given": list(s.given), "probability": s.probability}
            for s in prediction.splits
        ],
    }


def sizing_entry(sizing: Any) -> dict[str, Any] | None:
    """The sample plan: planned n, used n, the effect it was sized for and what it detects."""
    if sizing is None:
        return None
    return {
        "planned": sizing.planned,
        "used": sizing.used,
        "min_effect": sizing.min_effect,
        "detectable": finite(sizing.detectable),
        "alpha": sizing.alpha,
    }


def load_entry(label: str, result: Any, *, samples: int = 0) -> dict[str, Any]:
    """A :class:`~meshchaos.load.LoadResult`: frame, class and status counts, latency
    (histogram and percentiles, overall and per class), class counts over time
    (``timeline``), and ``samples`` raw samples."""
    by_class: dict[str, list[float]] = {}
    for sample in result.samples:
        by_class.setdefault(sample.outcome, []).append(sample.latency)
    out: dict[str, Any] = {
        "label": label,
        "target": result.target,
        "count": result.count,
        "concurrency": result.concurrency,
        "qps": result.qps,
        "requested": result.requested,
        "duration": finite(result.duration),
        "stopped_by_deadline": result.stopped_by_deadline,
        "classes": dict(sorted(result.counts().items())),
        "statuses": {str(k): v for k, v in sorted(result.status_counts().items())},
        "overloaded": sum(1 for s in result.samples if s.overloaded),
        "latency": latency_record(s.latency for s in result.samples),
        "latency_by_class": {c: latency_record(v) for c, v in sorted(by_class.items())},
        "timeline": timeline_of(result.samples),
        "events": [
            {"name": e.name, "after": e.after, "started": e.started, "error": e.error}
            for e in result.events
        ],
    }
    if samples:
        out["examples"] = dict(result.examples)
        out["samples"] = [
            {"start": s.start, "latency": s.latency, "status": s.status, "outcome": s.outcome}
            for s in result.samples[:samples]
        ]
    return out


def scenario_record(
    *,
    scenario_id: str,
    outcome: str,
    family: str | None = None,
    phases: Mapping[str, str] | None = None,
    duration: float = 0.0,
    alpha: float | None = None,
    policies: Sequence[Mapping[str, Any]] = (),
    request: Any = None,
    prediction: Any = None,
    sizing: Any = None,
    loads: Sequence[Mapping[str, Any]] = (),
    checks: Sequence[Any] = (),
    counters: Mapping[str, int | str] | None = None,
    extra: Mapping[str, Any] | None = None,
    failure: str | None = None,
) -> dict[str, Any]:
    """A scenario record of this schema version, from what a scenario did and saw.

    ``checks`` are :class:`~meshchaos.check.CheckReport` objects (or their dicts);
    ``loads`` come from :func:`load_entry`, ``policies`` from :func:`policy_entry`.
    """
    return {
        "schema": SCENARIO_SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "id": scenario_id,
        "family": family,
        "outcome": outcome,
        "phases": dict(phases or {}),
        "duration": duration,
        "alpha": alpha,
        "policies": [dict(p) for p in policies],
        "request": request_entry(request),
        "prediction": prediction_entry(prediction),
        "sizing": sizing_entry(sizing),
        "loads": [dict(x) for x in loads],
        "checks": [c if isinstance(c, dict) else _json(c.to_dict()) for c in checks],
        "counters": dict(counters or {}),
        "extra": {k: _json(v) for k, v in (extra or {}).items()},
        "failure": failure,
    }


def run_record(
    *,
    run_id: str,
    backend: str,
    alpha: float,
    min_effect: float,
    started: str,
    finished: str,
    exit_status: int,
    outcomes: Mapping[str, int],
    families: Mapping[str, Any],
    records: Sequence[str],
    versions: Mapping[str, str | None],
    git_revision: str | None,
    machine: Mapping[str, Any],
    mesh: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``run.json`` of this schema version. ``mesh``: what the backend reported of the
    mesh (``versions``, outcome-changing ``settings``, ``warnings``), when one opened."""
    return {
        "schema": RUN_SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "backend": backend,
        "versions": dict(versions),
        "git_revision": git_revision,
        "machine": dict(machine),
        "options": {"alpha": alpha, "min_effect": min_effect},
        "started": started,
        "finished": finished,
        "exit_status": exit_status,
        "outcomes": dict(outcomes),
        "families": _json(dict(families)),
        "records": list(records),
        **({"mesh": _json(dict(mesh))} if mesh is not None else {}),
    }


def _json(value: Any) -> Any:
    """Plain JSON: non-finite floats become None, tuples lists, other objects text."""
    if isinstance(value, float):
        return finite(value)
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json(v) for v in value]
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return _json(value.to_dict())
    return str(value)


# ------------------------------------------------------------------ reading


def json_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema (Draft 2020-12) of a ``scenario`` or ``run`` record."""
    if kind not in ("scenario", "run"):
        raise ValueError(f"no schema {kind!r}: give 'scenario' or 'run'")
    text = files("meshchaos.report").joinpath("schemas", f"{kind}.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def _load(path: Path, schema: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise RecordError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecordError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise RecordError(f"{path}: expected a JSON object, found {type(data).__name__}")
    found, version = data.get("schema"), data.get("schema_version")
    if found != schema:
        raise RecordError(f"{path}: schema {found!r}, expected {schema!r}")
    if not isinstance(version, int) or isinstance(version, bool):
        raise RecordError(f"{path}: schema_version {version!r} is not an integer")
    if version > SCHEMA_VERSION:
        raise RecordError(
            f"{path}: schema_version {version} is newer than this meshchaos reads "
            f"({SCHEMA_VERSION}); upgrade meshchaos"
        )
    if version != SCHEMA_VERSION:
        raise RecordError(f"{path}: schema_version {version} is unknown (reads {SCHEMA_VERSION})")
    return data


def _require(
    path: Path, data: Mapping[str, Any], fields: Mapping[str, type | tuple[type, ...]]
) -> None:
    for key, kind in fields.items():
        if key not in data:
            raise RecordError(f"{path}: missing field {key!r}")
        if not isinstance(data[key], kind):
            raise RecordError(f"{path}: field {key!r} is {type(data[key]).__name__}")


_SCENARIO_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "outcome": str,
    "policies": list,
    "loads": list,
    "checks": list,
    "counters": dict,
}
_LOAD_FIELDS: dict[str, type | tuple[type, ...]] = {
    "label": str,
    "count": int,
    "classes": dict,
    "statuses": dict,
    "latency": dict,
}
_RUN_FIELDS: dict[str, type | tuple[type, ...]] = {
    "run_id": str,
    "backend": str,
    "options": dict,
    "outcomes": dict,
    "records": list,
}


def read_scenario(path: Path) -> dict[str, Any]:
    """One scenario record, checked for the schema and the fields compare relies on."""
    data = _load(path, SCENARIO_SCHEMA)
    _require(path, data, _SCENARIO_FIELDS)
    for load in data["loads"]:
        if not isinstance(load, dict):
            raise RecordError(f"{path}: a load is not an object")
        _require(path, load, _LOAD_FIELDS)
        try:
            Histogram.from_json(load["latency"]["histogram"])
        except (KeyError, TypeError, ValueError) as exc:
            raise RecordError(f"{path}: load {load['label']}: bad histogram ({exc})") from None
    for policy in data["policies"]:
        if not isinstance(policy, dict) or not isinstance(policy.get("sha256"), str):
            raise RecordError(f"{path}: a policy entry has no sha256")
    return data


@dataclass(frozen=True)
class RunRecord:
    """A run read back: ``run.json`` and each scenario record, keyed by scenario id."""

    path: Path
    run: dict[str, Any]
    scenarios: dict[str, dict[str, Any]]


def read_run(path: Path) -> RunRecord:
    """The run in directory ``path`` (or whose ``run.json`` is ``path``)."""
    run_dir = path.parent if path.name == RUN_FILE and path.is_file() else path
    run_file = run_dir / RUN_FILE
    if not run_dir.is_dir():
        raise RecordError(f"{run_dir}: no such run directory")
    if not run_file.is_file():
        raise RecordError(f"{run_dir}: no {RUN_FILE} (not a meshchaos run directory)")
    run = _load(run_file, RUN_SCHEMA)
    _require(run_file, run, _RUN_FIELDS)
    scenarios: dict[str, dict[str, Any]] = {}
    for name in run["records"]:
        record = read_scenario(run_dir / str(name))
        scenarios[record["id"]] = record
    return RunRecord(run_dir, run, scenarios)
