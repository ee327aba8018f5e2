"""The load agent's wire format: the plan message, the NDJSON lines, control lines.

Standard library only; shipped to the client pod with the agent, so that the agent
writes and the host reads the lines with the same code. The protocol is described in
:mod:`meshchaos.load.agent`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from meshchaos.errors import LoadError
from meshchaos.load.classify import (
    Classifier,
    classifier_for_url,
    classify_bookinfo,
    classify_status,
)
from meshchaos.load.plan import LoadPlan, LoadTarget
from meshchaos.load.result import Event, Sample

__all__ = [
    "CLASSIFIERS",
    "PROTOCOL",
    "AgentPlan",
    "End",
    "TriggerSpec",
    "classifier_name",
    "decode_end",
    "decode_event",
    "decode_sample",
    "encode_end",
    "encode_sample",
    "encode_start",
    "plan_message",
    "read_plan_message",
]

PROTOCOL = 1

# The classifiers the agent can run, by name: a plan names one, never ships code.
CLASSIFIERS: Mapping[str, Classifier] = MappingProxyType(
    {"status": classify_status, "bookinfo": classify_bookinfo}
)


def classifier_name(classifier: Classifier) -> str:
    """The wire name of ``classifier``; :class:`LoadError` for one the agent lacks."""
    for name, known in CLASSIFIERS.items():
        if known is classifier:
            return name
    raise LoadError(
        f"the load agent runs only the classifiers {', '.join(CLASSIFIERS)}; "
        f"got {getattr(classifier, '__qualname__', classifier)!r}"
    )


@dataclass(frozen=True)
class TriggerSpec:
    """A trigger as the agent sees it: when it fires and how it extends the run.

    Its action runs on the host; the agent waits for the host's ``done`` line for it.
    """

    id: int
    name: str
    after: int
    then: int = 0
    settle: float = 0.0


@dataclass(frozen=True)
class AgentPlan:
    """What a plan message asks the agent to do."""

    target: LoadTarget
    plan: LoadPlan  # without triggers (the agent adds its own, waiting on the host)
    classifier: str
    triggers: tuple[TriggerSpec, ...] = ()
    deadline_s: float | None = None


def plan_message(
    target: LoadTarget,
    plan: LoadPlan,
    classifier: Classifier,
    *,
    deadline_s: float | None = None,
) -> dict[str, Any]:
    """The plan message (one JSON object) the host writes as the agent's first stdin line."""
    return {
        "protocol": PROTOCOL,
        "url": target.url,
        "proxy": target.proxy,
        "method": plan.method,
        "n": plan.requests,
        "concurrency": plan.concurrency,
        "qps": plan.qps,
        "duration_s": plan.duration,
        "headers": dict(plan.headers),
        "user": plan.user,
        "timeout_s": plan.timeout,
        "max_requests": plan.max_requests,
        "max_duration_s": plan.max_duration,
        "deadline_s": deadline_s,
        "classifier": classifier_name(classifier),
        "triggers": [
            {"id": i, "name": t.name, "after": t.after, "then": t.then, "settle_s": t.settle}
            for i, t in enumerate(plan.triggers)
        ],
    }


_UNSET = object()


def _typed(
    obj: Mapping[str, Any],
    key: str,
    kinds: tuple[type, ...],
    problems: list[str],
    default: Any = _UNSET,
) -> Any:
    if key not in obj and default is not _UNSET:
        return default  # a key beyond the contract's (see meshchaos.load.agent)
    value = obj.get(key)
    # bool is an int to Python, never a count or a duration here.
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
        problems.append(f"{key}: expected {names}, got {value!r}")
        return None
    return value


_NUM = (int, float)
_OPT_NUM = (int, float, type(None))


def read_plan_message(obj: object) -> AgentPlan:
    """The agent's side of :func:`plan_message`: every problem in one :class:`LoadError`."""
    if not isinstance(obj, dict):
        raise LoadError(f"plan message: expected a JSON object, got {type(obj).__name__}")
    problems: list[str] = []
    if obj.get("protocol", PROTOCOL) != PROTOCOL:
        problems.append(f"protocol: expected {PROTOCOL}, got {obj.get('protocol')!r}")
    base = LoadPlan()
    url = _typed(obj, "url", (str,), problems)
    proxy = _typed(obj, "proxy", (str, type(None)), problems)
    method = _typed(obj, "method", (str,), problems, base.method)
    n = _typed(obj, "n", (int, type(None)), problems)
    concurrency = _typed(obj, "concurrency", (int,), problems)
    qps = _typed(obj, "qps", _OPT_NUM, problems)
    duration = _typed(obj, "duration_s", _OPT_NUM, problems)
    headers = _typed(obj, "headers", (dict,), problems)
    user = _typed(obj, "user", (str, type(None)), problems, None)
    timeout = _typed(obj, "timeout_s", _NUM, problems)
    max_requests = _typed(obj, "max_requests", (int,), problems, base.max_requests)
    max_duration = _typed(obj, "max_duration_s", _NUM, problems, base.max_duration)
    deadline = _typed(obj, "deadline_s", _OPT_NUM, problems)
    # Without a name, the classes Mesh.run_load would use for this URL.
    default_classifier = _UNSET
    if isinstance(url, str):
        default_classifier = classifier_name(classifier_for_url(url))
    classifier = _typed(obj, "classifier", (str,), problems, default_classifier)
    raw_triggers = _typed(obj, "triggers", (list,), problems, [])
    if classifier is not None and classifier not in CLASSIFIERS:
        problems.append(f"classifier: expected one of {', '.join(CLASSIFIERS)}, got {classifier!r}")
    if headers is not None and not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        problems.append("headers: expected an object of strings")
    if deadline is not None and not (deadline > 0 and math.isfinite(deadline)):
        problems.append(f"deadline_s: must be a positive number of seconds, got {deadline}")
    triggers: list[TriggerSpec] = []
    for i, raw in enumerate(raw_triggers or ()):
        try:
            triggers.append(
                TriggerSpec(
                    int(raw["id"]),
                    str(raw["name"]),
                    int(raw["after"]),
                    int(raw["then"]),
                    float(raw["settle_s"]),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"triggers[{i}]: expected id, name, after, then, settle_s ({exc!r})")
    if problems:
        raise LoadError("invalid plan message: " + "; ".join(problems))
    plan = LoadPlan(
        concurrency=concurrency,
        requests=n,
        duration=None if duration is None else float(duration),
        qps=None if qps is None else float(qps),
        headers=MappingProxyType(dict(headers)),
        user=user,
        timeout=float(timeout),
        method=method,
        max_requests=max_requests,
        max_duration=float(max_duration),
    )
    return AgentPlan(LoadTarget(url, proxy), plan, classifier, tuple(triggers), deadline)


def encode_start(cap: int, time_cap: float) -> str:
    """The first stdout line: the protocol, and the caps the agent resolved from the plan."""
    return json.dumps({"t": "start", "protocol": PROTOCOL, "cap": cap, "time_cap_s": time_cap})


_OUTCOME_JSON: dict[str, str] = {}  # outcome -> its JSON string: few classes, many samples


def encode_sample(record: tuple[float, float, int, str, bool]) -> str:
    """One request (a run record: start, latency, status, outcome, overloaded).

    Formatted by hand: the agent encodes every sample in its event loop, and
    ``json.dumps`` of a dict costs several times this. Times to the microsecond.
    """
    start, latency, status, outcome, overloaded = record
    name = _OUTCOME_JSON.get(outcome)
    if name is None:
        name = _OUTCOME_JSON[outcome] = json.dumps(outcome)
    return (
        f'{{"t": "sample", "start": {start:.6f}, "latency": {latency:.6f}, '
        f'"status": {int(status)}, "outcome": {name}, '
        f'"overloaded": {"true" if overloaded else "false"}}}'
    )


def decode_sample(obj: Mapping[str, Any]) -> Sample:
    """A sample line's :class:`Sample`; ``KeyError``/``TypeError``/``ValueError`` if malformed."""
    start, latency, status = obj["start"], obj["latency"], obj["status"]
    outcome, overloaded = obj["outcome"], obj.get("overloaded", False)
    if not (
        isinstance(start, _NUM)
        and isinstance(latency, _NUM)
        and isinstance(status, int)
        and isinstance(outcome, str)
        and isinstance(overloaded, bool)
    ):
        raise TypeError("start, latency: numbers; status: int; outcome: str; overloaded: bool")
    if isinstance(status, bool) or latency < 0 or not math.isfinite(start + latency):
        raise ValueError("status must be an int, latency >= 0, times finite")
    return Sample(float(start), float(latency), status, outcome, overloaded)


@dataclass(frozen=True)
class End:
    """The last line: what the run did as a whole, and why it stopped early if it did."""

    sent: int
    elapsed_s: float
    error: str | None = None
    stopped_by_deadline: bool = False
    examples: dict[str, str] = field(default_factory=dict)
    events: list[tuple[int, Event]] = field(default_factory=list)  # (trigger id, event)


def _event_json(trigger_id: int, event: Event) -> dict[str, Any]:
    return {
        "id": trigger_id,
        "name": event.name,
        "after": event.after,
        "started": round(event.started, 6),
        "finished": round(event.finished, 6),
        "settled": round(event.settled, 6),
        "error": event.error,
    }


def decode_event(obj: Mapping[str, Any]) -> tuple[int, Event]:
    event = Event(
        str(obj["name"]),
        int(obj["after"]),
        float(obj["started"]),
        float(obj["finished"]),
        None if obj["error"] is None else str(obj["error"]),
        float(obj["settled"]),
    )
    return int(obj["id"]), event


def encode_end(end: End) -> str:
    return json.dumps(
        {
            "t": "end",
            "sent": end.sent,
            "elapsed_s": round(end.elapsed_s, 6),
            "error": end.error,
            "stopped_by_deadline": end.stopped_by_deadline,
            "examples": end.examples,
            "events": [_event_json(i, e) for i, e in end.events],
        }
    )


def decode_end(obj: Mapping[str, Any]) -> End:
    """An end line's :class:`End`; ``KeyError``/``TypeError``/``ValueError`` if malformed."""
    error, examples = obj["error"], obj.get("examples", {})
    if error is not None and not isinstance(error, str):
        raise TypeError("error must be null or a string")
    if not isinstance(examples, dict) or not all(isinstance(v, str) for v in examples.values()):
        raise TypeError("examples must map outcomes to strings")
    stopped = obj.get("stopped_by_deadline", False)
    if not isinstance(stopped, bool):
        raise TypeError("stopped_by_deadline must be a boolean")
    return End(
        int(obj["sent"]),
        float(obj["elapsed_s"]),
        error,
        stopped,
        dict(examples),
        [decode_event(e) for e in obj.get("events", [])],
    )
