"""The load agent's process: read a plan on stdin, run it, stream NDJSON on stdout.

Standard library only (it runs in a client pod from files a ConfigMap mounts, see
:mod:`meshchaos.load.agent`). The run itself is :class:`meshchaos.load._run.Run`, the
engine's own loops; this module adds the stdin/stdout protocol, the Bookinfo login
with ``http.client``, the host-driven triggers, and a clean stop on SIGTERM/SIGINT,
on a ``stop`` line, or when stdout breaks (the host went away). stdin may close
after the plan: the run goes on, only the triggers lose their host.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.cookies import CookieError, SimpleCookie
from typing import IO
from urllib.parse import urlencode, urlsplit, urlunsplit

from meshchaos.errors import LoadError
from meshchaos.load._agent_wire import (
    CLASSIFIERS,
    AgentPlan,
    End,
    TriggerSpec,
    encode_end,
    encode_sample,
    encode_start,
    read_plan_message,
)
from meshchaos.load._run import USER_AGENT, Run, hard_deadline, lean_request, run_workers
from meshchaos.load.plan import LoadTarget, Trigger

__all__ = ["FLUSH_INTERVAL", "PLAN_TIMEOUT", "main"]

PLAN_TIMEOUT = 30.0  # seconds the agent waits for its plan line
FLUSH_INTERVAL = 0.05  # seconds between stdout flushes of new samples


def _diag(text: str) -> None:
    print(f"meshchaos load agent: {text}", file=sys.stderr, flush=True)


def login(target: LoadTarget, user: str, headers: dict[str, str], timeout: float) -> str:
    """Log in to Bookinfo as ``user`` (as the engine does); return the Cookie value."""
    parts = urlsplit(target.url)
    login_url = urlunsplit((parts.scheme, parts.netloc, "/login", "", ""))
    via = urlsplit(target.proxy) if target.proxy is not None else parts
    conn = http.client.HTTPConnection(via.hostname or "", via.port or 80, timeout=timeout)
    sent = {
        **headers,
        "Referer": target.url,
        "Content-Type": "application/x-www-form-urlencoded",
    }
    try:
        path = login_url if target.proxy is not None else "/login"
        conn.request("POST", path, urlencode({"username": user, "passwd": ""}), sent)
        resp = conn.getresponse()
        resp.read()
        status = resp.status
        cookies: SimpleCookie = SimpleCookie()
        for value in resp.headers.get_all("Set-Cookie") or ():
            cookies.load(value)
    except (OSError, http.client.HTTPException, CookieError) as exc:
        raise LoadError(f"login as {user!r} at {login_url} failed: {exc!r}") from exc
    finally:
        conn.close()
    if status >= 400 or not cookies:
        raise LoadError(
            f"login as {user!r} at {login_url} failed: HTTP {status}, "
            f"{'no session cookie set' if not cookies else 'error status'}"
        )
    return "; ".join(f"{name}={morsel.value}" for name, morsel in cookies.items())


class _Control:
    """Lines from the host after the plan (a thread reads stdin; the loop acts)."""

    def __init__(self, specs: tuple[TriggerSpec, ...], wait_bound: float) -> None:
        self.done = {spec.id: threading.Event() for spec in specs}
        self.reported: set[int] = set()  # ids the host said done (not merely released)
        self.wait_bound = wait_bound
        self.loop: asyncio.AbstractEventLoop | None = None
        self.on_stop: Callable[[str], None] = lambda why: None

    def mirror(self, spec: TriggerSpec) -> Trigger:
        """The agent's side of a host trigger: extend the run as the engine would, and
        wait (in the trigger's helper thread) until the host says its action ended."""

        def wait_for_host() -> None:
            if not self.done[spec.id].wait(self.wait_bound):
                raise TimeoutError(f"the host never reported the end of {spec.name!r}")
            if spec.id not in self.reported:
                raise RuntimeError(
                    f"stdin closed before the host reported the end of {spec.name!r}"
                )

        # Named by its id, so that its event maps back to the host's trigger (names
        # may repeat); the end line carries the id and the real name.
        return Trigger(spec.after, wait_for_host, str(spec.id), spec.then, spec.settle)

    def release_all(self) -> None:
        for event in self.done.values():
            event.set()

    def handle(self, raw: bytes) -> None:
        """One control line (stdin thread): ``done`` for a trigger, or ``stop``."""
        try:
            msg = json.loads(raw)
            kind = msg["t"]
            if kind == "done":
                trigger_id = int(msg["id"])
                self.reported.add(trigger_id)
                self.done[trigger_id].set()
                return
            if kind == "stop":
                self.stop("interrupted: the host sent stop")
                return
            _diag(f"ignored control line of unknown type {kind!r}")
        except (ValueError, KeyError, TypeError) as exc:
            _diag(f"ignored malformed control line {raw[:200]!r}: {exc!r}")

    def stop(self, why: str) -> None:
        self.release_all()
        if self.loop is not None:
            # RuntimeError: the run is over and its loop closed, nothing to stop.
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self.on_stop, why)


def _lines(fd: int) -> Iterator[bytes]:
    """The lines read from ``fd``, the last one possibly unterminated, until EOF.

    Raw ``os.read``, not a buffered reader: this runs in a daemon thread still
    blocked in it at exit, and a buffered reader's lock there aborts the interpreter.
    """
    buf = b""
    while True:
        data = os.read(fd, 1 << 16)
        if not data:
            if buf:
                yield buf
            return
        buf += data
        *lines, buf = buf.split(b"\n")
        yield from lines


def _pump_stdin(
    fd: int, first: queue.Queue[bytes], ready: threading.Event, control: list[_Control]
) -> None:
    """Read stdin lines: the first is the plan, the rest go to the control (daemon thread)."""
    lines = _lines(fd)
    first.put(next(lines, b""))
    ready.wait()  # set once the plan is read (the process ends if it is invalid)
    for line in lines:
        if line.strip():
            control[0].handle(line)
    # No more control: a closed stdin (``echo plan | agent``) is not a stop, but no
    # trigger can hear from the host any more. A vanished host breaks stdout instead.
    control[0].release_all()


class _Agent:
    def __init__(self, out: IO[bytes], agent_plan: AgentPlan, control: _Control) -> None:
        self.out = out
        self.spec = agent_plan
        self.control = control
        self.stop_reason: str | None = None
        self.written = 0
        self.stopped = asyncio.Event()

    def write(self, line: str) -> None:
        self.out.write(line.encode() + b"\n")

    def flush_samples(self, run: Run) -> None:
        records = run.records
        new = len(records)
        if new > self.written:
            chunk = "\n".join(encode_sample(r) for r in records[self.written : new]) + "\n"
            self.out.write(chunk.encode())
            self.written = new
        self.out.flush()

    async def flusher(self, run: Run) -> None:
        try:
            while True:
                await asyncio.sleep(FLUSH_INTERVAL)
                self.flush_samples(run)
        except BrokenPipeError:
            self.stop("interrupted: stdout closed (the host went away)")

    def stop(self, why: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = why
        self.control.release_all()
        self.stopped.set()

    async def run(self) -> int:
        spec, plan = self.spec, self.spec.plan
        loop = asyncio.get_running_loop()
        self.control.loop, self.control.on_stop = loop, self.stop
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop, f"interrupted: {sig.name}")
        headers = {"User-Agent": USER_AGENT, **plan.headers}
        if plan.user is not None:
            cookie = await asyncio.to_thread(login, spec.target, plan.user, headers, plan.timeout)
            existing = headers.get("Cookie") or headers.get("cookie")
            headers["Cookie"] = f"{existing}; {cookie}" if existing else cookie
        deadline = hard_deadline(plan)
        if spec.deadline_s is not None:
            deadline = min(deadline, spec.deadline_s)
        run = Run(
            spec.target,
            plan,
            CLASSIFIERS[spec.classifier],
            time.perf_counter,
            lean_request(spec.target, plan, headers),
        )
        self.write(encode_start(run.cap, run.time_cap))
        flusher = asyncio.create_task(self.flusher(run))
        work = asyncio.create_task(run_workers(run, deadline))
        stop = asyncio.create_task(self.stopped.wait())
        error: str | None = None
        try:
            await asyncio.wait((work, stop), return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                work.cancel()
            try:
                await work
            except asyncio.CancelledError:
                error = self.stop_reason
            except LoadError as exc:
                error = str(exc)
            events = await run.triggers.events(len(run.records), run.last_end - run.t0)
        finally:
            stop.cancel()
            flusher.cancel()
        error = error or self.stop_reason
        self.flush_samples(run)
        names = {t.id: t.name for t in spec.triggers}
        end = End(
            sent=run.issued,
            elapsed_s=max(run.last_end - run.t0, 0.0),
            error=error,
            stopped_by_deadline=run.stopped_by_deadline,
            examples=run.examples,
            events=[(int(e.name), replace(e, name=names[int(e.name)])) for e in events],
        )
        self.write(encode_end(end))
        self.out.flush()
        return 0 if error is None else 1


def _fail(out: IO[bytes], error: str) -> int:
    _diag(error)
    out.write(encode_end(End(0, 0.0, error)).encode() + b"\n")
    out.flush()
    return 1


class _Interrupted(BaseException):  # not caught as an agent bug below
    """A signal before the run's loop took over the signals."""


def _interrupt(signum: int, frame: object) -> None:
    raise _Interrupted(f"interrupted: {signal.Signals(signum).name}")


def main(stdin: IO[bytes] | None = None, stdout: IO[bytes] | None = None) -> int:
    """Run the agent on ``stdin``/``stdout`` (the process's own by default); exit status:
    0 when the plan ran to its end, 1 when the end line carries an error."""
    out = stdout if stdout is not None else sys.stdout.buffer
    # Until the run's event loop handles them, SIGTERM/SIGINT end the agent here, still
    # with an end line (the loop's handlers replace these).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _interrupt)
    try:
        return _main(stdin if stdin is not None else sys.stdin.buffer, out)
    except _Interrupted as exc:
        return _fail(out, str(exc))


def _main(stdin: IO[bytes], out: IO[bytes]) -> int:
    fd = stdin.fileno()
    first: queue.Queue[bytes] = queue.Queue()
    holder: list[_Control] = []
    ready = threading.Event()
    pump = threading.Thread(target=_pump_stdin, args=(fd, first, ready, holder), daemon=True)
    pump.start()
    try:
        line = first.get(timeout=PLAN_TIMEOUT)
    except queue.Empty:
        return _fail(out, f"no plan on stdin within {PLAN_TIMEOUT:.0f} s")
    if not line.strip():
        return _fail(out, "no plan: stdin closed or its first line is empty")
    try:
        spec = read_plan_message(json.loads(line))
        control = _Control(spec.triggers, hard_deadline(spec.plan))
        plan = replace(spec.plan, triggers=tuple(control.mirror(t) for t in spec.triggers))
        plan.check()
        if urlsplit(spec.target.url).scheme != "http":
            raise LoadError(f"the load agent sends plain http:// only, got {spec.target.url!r}")
    except ValueError as exc:  # JSONDecodeError too
        return _fail(out, f"plan line is not JSON: {exc}: {line[:200]!r}")
    except LoadError as exc:
        return _fail(out, str(exc))
    holder.append(control)
    ready.set()
    try:
        return asyncio.run(_Agent(out, replace(spec, plan=plan), control).run())
    except LoadError as exc:  # the login
        return _fail(out, str(exc))
    except BrokenPipeError:
        _diag("stdout closed before the end line (the host went away)")
        # Nothing can reach the host now; keep the interpreter's exit flush quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        return 1
    except Exception as exc:  # an agent bug: say so on both streams, never a silent stop
        traceback.print_exc(file=sys.stderr)
        return _fail(out, f"load agent failed: {type(exc).__name__}: {exc}")
