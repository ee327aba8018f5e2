"""The load agent: the engine's own load loops, run inside the mesh from a client pod.

In-mesh load on a cluster cannot leave the host: a client pod (a pinned python slim
image, sidecar injected) runs this agent, and the host reads back the same
per-request samples the engine records, so both backends classify and judge
identically. The agent *is* the engine's code: the loops, caps, sample records and
lean HTTP client of :mod:`meshchaos.load._run` and :mod:`meshchaos.load.lean`, the
classifiers of :mod:`meshchaos.load.classify`, shipped as they are (standard library
only; a test runs them with ``python -I -S`` and no meshchaos installed).

**Layout.** One flat directory (a ConfigMap mounted at, e.g., ``/opt/meshchaos``)
holding every file of :func:`agent_files` under its key (keys are plain file names,
valid ConfigMap keys). :data:`AGENT_ENTRY` is the entry; run it as
``python -I -S /opt/meshchaos/agent.py`` (:data:`AGENT_PYTHON_FLAGS`: no site
packages, no user paths, any Python >= 3.11). The entry registers that directory as
the ``meshchaos`` and ``meshchaos.load`` packages, so the files import each other by
their real names. With meshchaos installed, ``python -m meshchaos.load.agent`` is the
same agent.

**Protocol.** stdin, first line: the plan message, one JSON object (built by
:func:`plan_message`). The contract's keys: ``url``, ``proxy`` (an HTTP proxy for
absolute-form requests, or null: in a pod the sidecar intercepts), ``n``,
``concurrency``, ``qps`` (null or 0: closed loop), ``duration_s``, ``headers``,
``timeout_s`` (per request) and ``deadline_s`` (null: the engine's hard deadline).
Optional: ``protocol`` (1), ``method`` (GET), ``user`` (null; else a Bookinfo login
first, as the engine does), ``max_requests`` and ``max_duration_s`` (LoadPlan's
defaults), ``classifier`` (``"status"`` or ``"bookinfo"``; by default the one
``classifier_for_url`` picks) and ``triggers`` (``[{"id", "name", "after", "then",
"settle_s"}]``, none by default). Then control lines:
``{"t": "done", "id": k}`` once trigger ``k``'s action has ended on the host, and
``{"t": "stop"}``. stdin may close after the plan (the run goes on), but a host
that runs triggers keeps it open until the end line. When stdout breaks (the host
went away) the agent stops.

stdout, NDJSON, flushed every 50 ms::

    {"t": "start", "protocol": 1, "cap": 200, "time_cap_s": 30.0}
    {"t": "sample", "start": 0.0012, "latency": 0.0031, "status": 503,
     "outcome": "status:503", "overloaded": false}            (one per completed request)
    {"t": "end", "sent": 200, "elapsed_s": 1.92, "error": null,
     "stopped_by_deadline": false, "examples": {"status:503": "HTTP 503 ..."},
     "events": [{"id": 0, "name": "kill", "after": 50, "started": 0.41,
                 "finished": 0.93, "settled": 1.43, "error": null}]}

Sample fields are :class:`~meshchaos.load.result.Sample`'s, times in seconds from the
agent's run start. The reader takes ``start`` only as the first line, if at all, and
reads a missing ``overloaded``, ``stopped_by_deadline``, ``examples`` or ``events`` as
false or empty; nothing else is optional. An ``end`` with an error (bad plan, failed
login, overrun, ``interrupted: SIGTERM``) may follow nothing at all. stderr carries
diagnostics only. Exit status 0 when the end line's error is null, else 1.

**Driving it** over any byte stream (a subprocess here, ``exec`` into a pod there)::

    session = AgentSession(target, plan, classifier, send=write_line_to_stdin)
    write_line_to_stdin(session.plan_line())
    for chunk in stdout_chunks:        # bytes as they arrive, stderr kept apart
        session.feed(chunk)            # fires the plan's triggers on the way
    result = session.finish()          # at stdout EOF: LoadResult, or LoadError

Past ``session.wait_s`` seconds without the end line, ``session.stop()``, then give up.
``send`` is called from trigger threads: make it thread-safe. With the Kubernetes
client's exec stream, read stdout and stderr apart (``_preload_content=False``) and
never set ``_request_timeout``: either merges or silently truncates the stream
(KUBE_BACKEND.md T10); a truncated one is a ``LoadError`` here, never a short run.

**Triggers.** An action runs on the host, set off when the stream shows ``after``
completed requests. The agent mirrors each trigger with the engine's own trigger code:
at the same count it extends the run by ``then`` and holds it, until the host's
``done`` line; then it settles ``settle_s`` and extends again. The events' times are
the agent's clock, from that count to the ``done`` line's arrival, so they bracket
the host's action (by the stream's transit on either side), and the host puts in
the action's error.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import BinaryIO

from meshchaos.errors import LoadError
from meshchaos.load._agent_host import AgentSession, StreamReader, samples_to_result
from meshchaos.load._agent_wire import End, plan_message
from meshchaos.load.classify import Classifier, classify_status
from meshchaos.load.plan import LoadPlan, LoadTarget, check_target
from meshchaos.load.result import LoadResult

__all__ = [
    "AGENT_DIR",
    "AGENT_ENTRY",
    "AGENT_PYTHON_FLAGS",
    "AgentSession",
    "End",
    "StreamReader",
    "agent_command",
    "agent_files",
    "plan_message",
    "run_local",
    "samples_to_result",
    "write_agent_files",
]

AGENT_ENTRY = "agent.py"
AGENT_PYTHON_FLAGS = ("-I", "-S")
AGENT_DIR = "/opt/meshchaos"  # where the client pod mounts the ConfigMap (data/kube/client.yaml)

# (package, file) of every module the agent imports; the entry comes on top. Base
# names are unique across both packages: they share one flat directory.
_SHIPPED = (
    ("meshchaos", "errors.py"),
    ("meshchaos", "outcomes.py"),
    ("meshchaos.load", "plan.py"),
    ("meshchaos.load", "result.py"),
    ("meshchaos.load", "classify.py"),
    ("meshchaos.load", "lean.py"),
    ("meshchaos.load", "_triggers.py"),
    ("meshchaos.load", "_run.py"),
    ("meshchaos.load", "_agent_wire.py"),
    ("meshchaos.load", "_agent_pod.py"),
)
_STOP_GRACE = 5.0  # seconds an agent has to end its stream after stop, or to exit after it


def agent_files() -> dict[str, str]:
    """File name -> source text of the agent's directory (e.g. a ConfigMap's data)."""
    files = {AGENT_ENTRY: _source("meshchaos.load", "_agent_entry.py")}
    for package, name in _SHIPPED:
        files[name] = _source(package, name)
    return files


def agent_command(directory: str = AGENT_DIR, python: str = "python") -> list[str]:
    """The agent's argv in a client pod whose image has ``python`` (>= 3.11) on its PATH
    and the agent's files mounted at ``directory``."""
    return [python, *AGENT_PYTHON_FLAGS, f"{directory.rstrip('/')}/{AGENT_ENTRY}"]


def _source(package: str, name: str) -> str:
    return resources.files(package).joinpath(name).read_text(encoding="utf-8")


def write_agent_files(directory: Path) -> Path:
    """Write :func:`agent_files` into ``directory``; return the entry's path."""
    for name, text in agent_files().items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory / AGENT_ENTRY


def run_local(
    target: LoadTarget,
    plan: LoadPlan,
    classifier: Classifier = classify_status,
    *,
    python: str = sys.executable,
    deadline_s: float | None = None,
    on_start: Callable[[subprocess.Popen[bytes]], object] | None = None,
    allowed: Sequence[str] = (),
) -> LoadResult:
    """Run ``plan`` through the agent as a local subprocess (``python -I -S agent.py``
    in a temporary directory holding only :func:`agent_files`), as a client pod would.

    The target must pass the engine's check (loopback, or one of the ``allowed`` base
    URLs, as :func:`meshchaos.load.engine.run_load` takes them). ``on_start(process)`` is called
    once the agent runs (tests use it to kill the agent mid-run). Raises
    :class:`LoadError` as the engine does, and for an incomplete stream, naming the
    agent's exit status and the tail of its stderr.
    """
    check_target(target, allowed)
    plan.check()
    # The agent's directory holds its files and nothing else; stderr goes elsewhere.
    with (
        tempfile.TemporaryDirectory(prefix="meshchaos-agent-") as tmp,
        tempfile.TemporaryFile(prefix="meshchaos-agent-stderr-") as err,
    ):
        entry = write_agent_files(Path(tmp))
        with subprocess.Popen(
            [python, *AGENT_PYTHON_FLAGS, entry.name],
            cwd=tmp,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            env={"PATH": os.environ.get("PATH", "")},
        ) as proc:
            try:
                return _drive(proc, target, plan, classifier, deadline_s, on_start, err)
            finally:
                if proc.poll() is None:
                    proc.kill()


def _drive(
    proc: subprocess.Popen[bytes],
    target: LoadTarget,
    plan: LoadPlan,
    classifier: Classifier,
    deadline_s: float | None,
    on_start: Callable[[subprocess.Popen[bytes]], object] | None,
    err: BinaryIO,
) -> LoadResult:
    assert proc.stdin is not None
    assert proc.stdout is not None
    stdin, fd = proc.stdin, proc.stdout.fileno()
    lock = threading.Lock()

    def send(line: bytes) -> None:
        with lock:
            if stdin.closed:
                raise BrokenPipeError("the agent's stdin is closed")
            stdin.write(line)
            stdin.flush()

    session = AgentSession(target, plan, classifier, send, deadline_s=deadline_s)
    send(session.plan_line())
    if on_start is not None:
        on_start(proc)
    bound = session.wait_s
    deadline = time.monotonic() + bound
    stopping = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            if stopping:
                raise LoadError(f"load agent did not end its stream within {bound:.0f} s")
            stopping, deadline = True, time.monotonic() + _STOP_GRACE
            session.stop()
            continue
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        data = os.read(fd, 1 << 16)
        if not data:
            break
        session.feed(data)
    with lock:
        stdin.close()  # the agent has ended its stream: nothing more to say
    try:
        code = proc.wait(_STOP_GRACE)
    except subprocess.TimeoutExpired:
        code = None
    try:
        return session.finish()
    except LoadError as exc:
        raise LoadError(f"{exc}; agent exit status {code}{_stderr_tail(err)}") from exc


def _stderr_tail(err: BinaryIO, limit: int = 2000) -> str:
    err.flush()
    err.seek(0, os.SEEK_END)
    size = err.tell()
    err.seek(max(0, size - limit))
    text = err.read().decode("utf-8", "replace").strip()
    return f"; its stderr ends: {text}" if text else "; its stderr is empty"


if __name__ == "__main__":
    from meshchaos.load._agent_pod import main

    sys.exit(main())
