"""The host's side of the load agent: read its stream, fire the triggers, build the result.

Transport-agnostic: :class:`AgentSession` takes stdout bytes as they arrive and a
``send`` callable for stdin lines, so a local subprocess
(:func:`meshchaos.load.agent.run_local`) and a ``kubectl exec``-style stream drive
it the same way.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from meshchaos.errors import LoadError
from meshchaos.load._agent_wire import (
    PROTOCOL,
    End,
    decode_end,
    decode_sample,
    plan_message,
)
from meshchaos.load._run import RUN_SLACK, build_result, hard_deadline
from meshchaos.load.classify import Classifier
from meshchaos.load.plan import TRIGGER_TIMEOUT, LoadPlan, LoadTarget, Trigger
from meshchaos.load.result import LoadResult, Sample

__all__ = ["MAX_LINE", "AgentSession", "StreamReader", "samples_to_result"]

MAX_LINE = 1 << 20  # bytes: no agent line comes near it (the end line's examples are capped)
_SHOWN = 200  # characters of a bad line quoted in an error


class StreamReader:
    """The agent's NDJSON stdout, read incrementally: :meth:`feed` bytes, get samples.

    A malformed line, a line out of order, or (at :meth:`close`) a truncated last
    line or a missing ``end`` line is a :class:`LoadError` naming the line number and
    its text: a short stream never passes for a complete run.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.lines = 0  # complete lines read
        self.completed = 0  # sample lines read: requests the agent has completed
        self.start: dict[str, Any] | None = None
        self.end: End | None = None

    def _fail(self, lineno: int, why: str, text: bytes | str) -> LoadError:
        shown = text if isinstance(text, str) else text.decode("utf-8", "replace")
        if len(shown) > _SHOWN:
            shown = shown[:_SHOWN] + "..."
        return LoadError(f"load agent stream, line {lineno}: {why}: {shown!r}")

    def feed(self, data: bytes) -> list[Sample]:
        """The samples completed by ``data`` (any split of the stream will do)."""
        buf = self._buf
        buf += data
        samples: list[Sample] = []
        pos = 0
        while True:
            nl = buf.find(b"\n", pos)
            if nl < 0:
                break
            line = bytes(buf[pos:nl])
            pos = nl + 1
            self.lines += 1
            sample = self._line(line.rstrip(b"\r"))
            if sample is not None:
                samples.append(sample)
                self.completed += 1
        del buf[:pos]
        if len(buf) > MAX_LINE:
            raise self._fail(self.lines + 1, f"longer than {MAX_LINE} bytes", bytes(buf[:_SHOWN]))
        return samples

    def _line(self, line: bytes) -> Sample | None:
        n = self.lines
        if self.end is not None:
            raise self._fail(n, "data after the end line", line)
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise self._fail(n, f"not JSON ({exc})", line) from None
        kind = obj.get("t") if isinstance(obj, dict) else None
        if kind == "sample":
            try:
                return decode_sample(obj)
            except (KeyError, TypeError, ValueError) as exc:
                raise self._fail(n, f"malformed sample ({exc!r})", line) from None
        if kind == "start":  # optional (the contract's agent writes samples, then end)
            if n != 1:
                raise self._fail(n, "a start line that is not the first line", line)
            if obj.get("protocol") != PROTOCOL:
                raise self._fail(n, f"protocol {obj.get('protocol')!r}, expected {PROTOCOL}", line)
            self.start = obj
            return None
        if kind == "end":
            try:
                self.end = decode_end(obj)
            except (KeyError, TypeError, ValueError) as exc:
                raise self._fail(n, f"malformed end line ({exc!r})", line) from None
            if self.end.error is None and self.end.sent != self.completed:
                raise self._fail(
                    n,
                    f"the end line says {self.end.sent} sent, the stream carried "
                    f"{self.completed} samples",
                    line,
                )
            return None
        raise self._fail(n, "not a start, sample or end line", line)

    def close(self) -> End:
        """The end line, once the stream is over; :class:`LoadError` if it is incomplete."""
        if self._buf:
            raise self._fail(
                self.lines + 1, "truncated (the stream stopped inside a line)", bytes(self._buf)
            )
        if self.end is None:
            raise LoadError(
                f"load agent stream ended after {self.lines} lines and {self.completed} "
                "samples without its end line: the agent died or the stream was cut"
            )
        return self.end


def samples_to_result(
    samples: Sequence[Sample], end: End, *, plan: LoadPlan, target: LoadTarget | str
) -> LoadResult:
    """The :class:`LoadResult` the engine would have returned for this run of ``plan``
    against ``target`` (a URL: sent directly, as from a client pod).

    An end line with an error (a failed login, an overrun, an interruption) is a
    :class:`LoadError`, as the engine raises it.
    """
    if isinstance(target, str):
        target = LoadTarget(target)
    if end.error is not None:
        raise LoadError(f"load agent: {end.error} (after {len(samples)} samples)")
    return build_result(
        target,
        plan,
        list(samples),
        duration=end.elapsed_s,
        stopped_by_deadline=end.stopped_by_deadline,
        examples=dict(end.examples),
        events=[event for _, event in end.events],
    )


class _HostTriggers:
    """The plan's trigger actions, set off by the completed counts the stream shows.

    The agent mirrors each trigger (it extends the run at the same count, and holds it
    while the action runs); the host tells it that an action ended with a ``done`` line.
    """

    def __init__(self, triggers: Sequence[Trigger], send: Callable[[bytes], None]) -> None:
        # ids are positions in the plan, as in the plan message
        self.pending = sorted(enumerate(triggers), key=lambda it: it[1].after)
        self.send = send
        self.errors: dict[int, str | None] = {}
        self.futures: list[concurrent.futures.Future[None]] = []
        self.pool: concurrent.futures.ThreadPoolExecutor | None = None
        self.lock = threading.Lock()

    def advance(self, done: int) -> None:
        while self.pending and self.pending[0][1].after <= done:
            trigger_id, trigger = self.pending.pop(0)
            if self.pool is None:
                self.pool = concurrent.futures.ThreadPoolExecutor(
                    thread_name_prefix="meshchaos-agent-trigger"
                )
            self.futures.append(self.pool.submit(self.act, trigger_id, trigger))

    def act(self, trigger_id: int, trigger: Trigger) -> None:
        error = None
        try:
            trigger.action()
        except Exception as exc:  # kept in the event, as the engine's triggers do
            error = f"{type(exc).__name__}: {exc}"
        with self.lock:
            self.errors[trigger_id] = error
        with contextlib.suppress(OSError):  # the agent is gone; its stream says so
            self.send(json.dumps({"t": "done", "id": trigger_id}).encode() + b"\n")

    def wait(self) -> None:
        try:
            for future in concurrent.futures.as_completed(self.futures, timeout=TRIGGER_TIMEOUT):
                future.result()
        except TimeoutError as exc:
            raise LoadError(
                f"a trigger's action did not finish within {TRIGGER_TIMEOUT:.0f} s"
            ) from exc
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=False)

    def merge(self, end: End) -> End:
        """The agent's events, with the host's errors of the actions it ran."""
        with self.lock:
            errors = dict(self.errors)
        events = [
            (i, replace(event, error=errors[i]) if errors.get(i) is not None else event)
            for i, event in end.events
        ]
        return replace(end, events=events)


class AgentSession:
    """One agent run seen from the host: write :meth:`plan_line` to the agent's stdin
    (and keep stdin open: closing it stops the agent), :meth:`feed` its stdout as it
    arrives, then :meth:`finish`. ``send`` writes one line to the agent's stdin; it is
    called from trigger threads, so it must be thread-safe."""

    def __init__(
        self,
        target: LoadTarget,
        plan: LoadPlan,
        classifier: Classifier,
        send: Callable[[bytes], None],
        *,
        deadline_s: float | None = None,
    ) -> None:
        self.target = target
        self.plan = plan
        self.message = plan_message(target, plan, classifier, deadline_s=deadline_s)
        # How long a host waits for the end line: the login (one timeout), the agent's
        # own hard deadline, and slack for the stream; past it, stop() then give up.
        run_bound = (
            hard_deadline(plan) if deadline_s is None else min(hard_deadline(plan), deadline_s)
        )
        self.wait_s = plan.timeout + run_bound + RUN_SLACK
        self.reader = StreamReader()
        self.samples: list[Sample] = []
        self.send = send
        self.triggers = _HostTriggers(plan.triggers, send)

    def plan_line(self) -> bytes:
        return json.dumps(self.message).encode() + b"\n"

    def feed(self, data: bytes) -> None:
        """Read stdout bytes; fire the triggers their completed count has reached."""
        self.samples += self.reader.feed(data)
        self.triggers.advance(self.reader.completed)

    def stop(self) -> None:
        """Ask the agent to stop early (it ends its stream with an interrupted end line);
        nothing if its stdin is gone already."""
        with contextlib.suppress(OSError):
            self.send(b'{"t": "stop"}\n')

    def finish(self) -> LoadResult:
        """The run's result, once stdout is at EOF (:class:`LoadError` if incomplete)."""
        try:
            end = self.reader.close()
        except LoadError:
            with contextlib.suppress(LoadError):
                self.triggers.wait()  # no action left running behind the error
            raise
        self.triggers.wait()
        merged = self.triggers.merge(end)
        return samples_to_result(self.samples, merged, plan=self.plan, target=self.target)
