"""The load agent's protocol without processes: plan message, stream reader, result,
host-side triggers, and the shipped files."""

from __future__ import annotations

import ast
import json
import re
import sys
import threading
from types import MappingProxyType

import pytest

from meshchaos.errors import LoadError
from meshchaos.load import LoadPlan, LoadTarget, Sample, Trigger, classify_bookinfo
from meshchaos.load._agent_wire import (
    End,
    classifier_name,
    encode_end,
    encode_sample,
    encode_start,
    read_plan_message,
)
from meshchaos.load._run import build_result
from meshchaos.load.agent import (
    AGENT_ENTRY,
    AgentSession,
    StreamReader,
    agent_command,
    agent_files,
    plan_message,
    samples_to_result,
)
from meshchaos.load.classify import classify_status
from meshchaos.load.result import Event

TARGET = LoadTarget("http://httpbin:8000/status/503", proxy="http://127.0.0.1:41500")
RECORDS = [
    (0.0, 0.004, 503, "status:503", False),
    (0.001, 0.002, 200, "status:200", False),
    (0.0025, 0.01, 503, "status:503", True),
    (0.003, 30.0, 0, "error:timeout", False),
]


def stream(records: list[tuple[float, float, int, str, bool]], end: End | None = None) -> bytes:
    lines = [encode_start(len(records), 30.0), *map(encode_sample, records)]
    if end is None:
        end = End(len(records), 30.003, examples={"status:503": "HTTP 503\n\nno"})
    lines.append(encode_end(end))
    return ("\n".join(lines) + "\n").encode()


def test_plan_message_round_trips_with_the_same_caps() -> None:
    plan = LoadPlan(
        concurrency=3,
        requests=120,
        duration=12.5,
        qps=40.0,
        headers=MappingProxyType({"end-user": "jason"}),
        user="jason",
        timeout=2.5,
        method="HEAD",
        max_requests=1000,
        max_duration=60.0,
        triggers=(Trigger(10, lambda: None, "kill", then=20, settle=0.5),),
    )
    message = json.loads(json.dumps(plan_message(TARGET, plan, classify_bookinfo, deadline_s=90)))
    got = read_plan_message(message)
    assert got.target == TARGET
    assert got.classifier == "bookinfo"
    assert got.deadline_s == 90
    assert got.triggers[0].after == 10
    assert (got.triggers[0].then, got.triggers[0].settle, got.triggers[0].name) == (20, 0.5, "kill")
    again = got.plan
    assert again.triggers == ()
    for attr in ("concurrency", "requests", "duration", "qps", "user", "timeout", "method"):
        assert getattr(again, attr) == getattr(plan, attr), attr
    assert dict(again.headers) == {"end-user": "jason"}
    assert (again.request_cap(), again.time_cap(), again.hard_request_cap()) == (
        plan.request_cap(),
        plan.time_cap(),
        plan.hard_request_cap(),
    )
    assert again.is_open_loop


def test_a_bad_plan_message_lists_every_problem() -> None:
    message = plan_message(TARGET, LoadPlan(requests=5), classify_status)
    message.update(
        protocol=9, n="5", concurrency=True, classifier="regex", headers={"a": 1}, deadline_s=-1
    )
    message["triggers"] = [{"id": 0}]
    with pytest.raises(LoadError) as info:
        read_plan_message(message)
    text = str(info.value)
    for part in ("protocol: expected 1", "n: expected int or null", "concurrency: expected int",
                 "classifier: expected one of status, bookinfo", "headers: expected an object",
                 "deadline_s: must be a positive", "triggers[0]"):  # fmt: skip
        assert part in text, part
    with pytest.raises(LoadError, match="expected a JSON object"):
        read_plan_message([1])


def test_only_named_classifiers_travel() -> None:
    assert classifier_name(classify_status) == "status"
    with pytest.raises(LoadError, match="runs only the classifiers status, bookinfo"):
        classifier_name(lambda status, body, headers: "x")


@pytest.mark.parametrize("step", [1, 7, 10_000])
def test_reader_gives_the_same_samples_whatever_the_chunks(step: int) -> None:
    data = stream(RECORDS)
    reader = StreamReader()
    samples: list[Sample] = []
    for at in range(0, len(data), step):
        samples += reader.feed(data[at : at + step])
    end = reader.close()
    assert samples == [Sample(*r) for r in RECORDS]
    assert reader.completed == 4
    assert end.sent == 4
    assert end.examples == {"status:503": "HTTP 503\n\nno"}


def bad(data: bytes) -> str:
    def read() -> None:
        reader = StreamReader()
        reader.feed(data)
        reader.close()

    with pytest.raises(LoadError) as info:
        read()
    return str(info.value)


def test_reader_names_line_and_text_of_a_malformed_line() -> None:
    good = stream(RECORDS).split(b"\n")
    good[2] = b'{"t": "sample", "start": 0.1, "lat'
    message = bad(b"\n".join(good))
    assert "line 3" in message
    assert "not JSON" in message
    assert '"lat' in message


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(b"", "ended after 0 lines and 0 samples without its end line", id="empty"),
        pytest.param(stream(RECORDS)[:-1], "line 6: truncated", id="cut-inside-end-line"),
        pytest.param(
            b"\n".join(stream(RECORDS).split(b"\n")[:3]) + b"\n",
            "ended after 3 lines and 2 samples without its end line",
            id="cut-before-end",
        ),
        pytest.param(
            b"\n".join(stream(RECORDS).split(b"\n")[1:2] + stream(RECORDS).split(b"\n")),
            "line 2: a start line that is not the first",
            id="late-start",
        ),
        pytest.param(
            stream(RECORDS) + b'{"t": "sample"}\n', "line 7: data after the end", id="after-end"
        ),
        pytest.param(
            stream(RECORDS, End(5, 1.0)),
            "end line says 5 sent, the stream carried 4",
            id="lost-sample",
        ),
        pytest.param(
            encode_start(1, 1.0).replace('"protocol": 1', '"protocol": 2').encode() + b"\n",
            "line 1: protocol 2, expected 1",
            id="protocol",
        ),
        pytest.param(
            stream([(0.0, -1.0, 200, "status:200", False)]),
            "line 2: malformed sample",
            id="negative",
        ),
        pytest.param(
            stream([]).replace(
                b'{"t": "end"',
                b'{"t": "sample", "start": 0, "latency": 1, "status": 200, "outcome": "x", '
                b'"overloaded": "no"}\n{"t": "end"',
            ),
            "line 2: malformed sample",
            id="overloaded-not-bool",
        ),
        pytest.param(b'{"t": "progress"}\n', "line 1: not a start, sample or end", id="unknown"),
        pytest.param(b"[]\n", "line 1: not a start, sample or end", id="not-object"),
        pytest.param(b"x" * (1 << 20 + 1), "line 1: longer than", id="endless-line"),
    ],
)
def test_reader_refuses_a_short_or_broken_stream(data: bytes, expected: str) -> None:
    assert expected in bad(data)


def test_an_end_line_with_an_error_may_come_alone() -> None:
    reader = StreamReader()
    reader.feed(encode_end(End(0, 0.0, "login as 'jason' failed: HTTP 500")).encode() + b"\n")
    end = reader.close()
    with pytest.raises(LoadError, match="load agent: login as 'jason' failed: HTTP 500"):
        samples_to_result([], end, plan=LoadPlan(requests=4), target=TARGET)


def test_samples_to_result_is_the_engines_result() -> None:
    plan = LoadPlan(concurrency=2, requests=4, qps=100.0)
    samples = [Sample(*r) for r in RECORDS]
    event = Event("kill", 2, 0.002, 0.5, None, 1.0)
    end = End(4, 30.003, None, True, {"status:503": "x"}, [(0, event)])
    result = samples_to_result(samples, end, plan=plan, target=TARGET)
    engine = build_result(
        TARGET,
        plan,
        samples,
        duration=30.003,
        stopped_by_deadline=True,
        examples={"status:503": "x"},
        events=[event],
    )
    assert result == engine
    assert result.target == "http://httpbin:8000/status/503 via http://127.0.0.1:41500"
    assert result.counts() == {"status:503": 2, "status:200": 1, "error:timeout": 1}
    assert result.qps == 100.0
    assert not result.stopped_by_deadline  # all requested samples are there


def test_session_fires_triggers_from_the_stream_and_reports_their_errors() -> None:
    sent: list[bytes] = []
    fired = threading.Event()
    counts: list[int] = []

    def boom() -> None:
        fired.set()
        raise RuntimeError("no such pod")

    plan = LoadPlan(
        concurrency=1,
        requests=4,
        triggers=(Trigger(3, lambda: counts.append(1), "late"), Trigger(2, boom, "kill")),
    )
    session = AgentSession(TARGET, plan, classify_status, sent.append)
    message = json.loads(session.plan_line())
    assert [t["name"] for t in message["triggers"]] == ["late", "kill"]  # ids: plan order
    data = stream(RECORDS).split(b"\n")
    session.feed(b"\n".join(data[:2]) + b"\n")  # start, one sample
    assert not fired.is_set()
    session.feed(data[2] + b"\n")  # the second sample sets off "kill" (id 1)
    assert fired.wait(5)
    events = [
        (1, Event("kill", 2, 0.003, 0.01, None)),
        (0, Event("late", 3, 0.013, 0.02, None)),
    ]
    rest = (
        b"\n".join(data[3:5]) + b"\n" + encode_end(End(4, 30.003, events=events)).encode() + b"\n"
    )
    session.feed(rest)
    result = session.finish()
    assert sorted(json.loads(line)["id"] for line in sent) == [0, 1]
    assert all(json.loads(line)["t"] == "done" for line in sent)
    by_name = {e.name: e for e in result.events}
    assert by_name["kill"].error == "RuntimeError: no such pod"  # the host's error
    assert by_name["late"].error is None
    assert counts == [1]
    assert by_name["kill"].started == 0.003  # the agent's clock


def test_session_stop_sends_a_stop_line() -> None:
    sent: list[bytes] = []
    AgentSession(TARGET, LoadPlan(requests=3), classify_status, sent.append).stop()
    assert [json.loads(line) for line in sent] == [{"t": "stop"}]


def test_agent_files_are_configmap_keys_importing_only_the_stdlib_and_each_other() -> None:
    files = agent_files()
    assert AGENT_ENTRY in files
    assert all(re.fullmatch(r"[-._a-zA-Z0-9]+", name) for name in files)
    shipped = {name.removesuffix(".py") for name in files}
    for name, text in files.items():
        for node in ast.walk(ast.parse(text, name)):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top == "meshchaos":
                    assert module.rsplit(".", 1)[-1] in shipped, f"{name} imports {module}"
                else:
                    assert top in sys.stdlib_module_names, f"{name} imports {module}"


def test_the_contracts_minimal_lines_and_plan_are_read() -> None:
    # The contract names only these keys; everything else has the engine's defaults.
    message = {
        "url": "http://productpage:9080/productpage",
        "n": 10,
        "concurrency": 2,
        "qps": None,
        "duration_s": None,
        "headers": {},
        "timeout_s": 3.0,
        "proxy": None,
        "deadline_s": 40.0,
    }
    got = read_plan_message(message)
    assert got.classifier == "bookinfo"  # as classifier_for_url picks it
    assert (got.plan.method, got.plan.user, got.triggers) == ("GET", None, ())
    assert got.plan.max_requests == LoadPlan().max_requests
    reader = StreamReader()
    samples = reader.feed(
        b'{"t": "sample", "start": 0.0, "latency": 0.01, "status": 200, "outcome": "status:200"}\n'
        b'{"t": "end", "sent": 1, "elapsed_s": 0.01, "error": null}\n'
    )
    end = reader.close()
    assert samples == [Sample(0.0, 0.01, 200, "status:200", False)]
    result = samples_to_result(
        samples, end, plan=LoadPlan(requests=1), target="http://httpbin:8000/"
    )
    assert (result.count, result.target, result.events, result.examples) == (
        1,
        "http://httpbin:8000/",
        [],
        {},
    )


def test_agent_command_runs_the_entry_isolated_from_its_mount() -> None:
    assert agent_command() == ["python", "-I", "-S", "/opt/meshchaos/agent.py"]
    assert agent_command("/srv/agent/", "python3.12")[-1] == "/srv/agent/agent.py"
