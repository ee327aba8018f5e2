"""One load run's state and workers, shared by the engine and the load agent.

Closed loop: ``concurrency`` workers send back to back. Open loop: request ``i`` is
due at ``t0 + i/qps``; a free worker takes the next due request, so when every
worker is busy the request waits, and its latency still counts from when it was
due (no coordinated omission). Every run is bounded by a request count *and* a
time (:func:`run_workers`), and each request by the client timeout.

Standard library only (and meshchaos modules that are, too): the load agent ships
this module to a client pod (:mod:`meshchaos.load.agent`), so that the engine on the
host and the agent in the mesh run the same loops, caps and sample records. The
engine adds its aiohttp sender on top (:mod:`meshchaos.load.engine`).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Coroutine, Mapping
from typing import Any
from urllib.parse import urlsplit

from meshchaos.errors import LoadError
from meshchaos.load._triggers import Triggers
from meshchaos.load.classify import Classifier
from meshchaos.load.lean import LeanConnection, ResponseError, build_request
from meshchaos.load.plan import LoadPlan, LoadTarget
from meshchaos.load.result import Event, LoadResult, Sample
from meshchaos.outcomes import error_class

__all__ = [
    "CONNECT",
    "DISCONNECT",
    "PROGRESS_INTERVAL",
    "RUN_SLACK",
    "TIMEOUT",
    "USER_AGENT",
    "Clock",
    "Progress",
    "Run",
    "Sender",
    "build_result",
    "describe_target",
    "excerpt",
    "hard_deadline",
    "lean_request",
    "os_error_kind",
    "run_workers",
]

Clock = Callable[[], float]
Progress = Callable[[int, int], None]
"""``progress(completed, errors)``; errors are requests with no response or status >= 400."""
Sender = Callable[[float], Coroutine[Any, Any, None]]

USER_AGENT = "meshchaos-load/0.1"
PROGRESS_INTERVAL = 0.5
EXAMPLE_CHARS = 500
_EXAMPLE_HEADERS = ("server", "content-type", "x-envoy-overloaded", "x-envoy-upstream-service-time")
# A run may overrun its time cap by the last in-flight requests (each bounded by the
# client timeout); past that plus this slack the whole run is cancelled.
RUN_SLACK = 10.0

TIMEOUT = error_class("timeout")
CONNECT = error_class("connect")
DISCONNECT = error_class("disconnect")
_RESET = error_class("reset")


def os_error_kind(exc: BaseException) -> str:
    """The outcome class of a request that failed with a plain (stdlib) exception."""
    if isinstance(exc, TimeoutError):
        return TIMEOUT
    if isinstance(exc, ConnectionResetError):
        return _RESET
    return error_class(type(exc).__name__.lower())


def excerpt(status: int, headers: Mapping[str, str], body: bytes) -> str:
    """A short, readable example of a response: status, a few headers, body start."""
    lines = [f"HTTP {status}"]
    lines += [f"{h}: {headers[h]}" for h in _EXAMPLE_HEADERS if h in headers]
    at = body.find(b"<body")  # skip an HTML page's head: the content tells the class
    text = body[max(at, 0) : max(at, 0) + EXAMPLE_CHARS].decode("utf-8", "replace")
    text = " ".join(text.split())
    return ("\n".join(lines) + "\n\n" + text)[:EXAMPLE_CHARS]


def lean_request(
    target: LoadTarget, plan: LoadPlan, headers: Mapping[str, str]
) -> tuple[bytes, str, int]:
    """The prebuilt request bytes, and the host and port to connect to (the proxy's)."""
    data, host, port = build_request(
        plan.method, target.url, dict(headers), absolute_form=target.proxy is not None
    )
    if target.proxy is not None:
        proxy = urlsplit(target.proxy)
        host, port = proxy.hostname or "127.0.0.1", proxy.port or 80
    return data, host, port


def describe_target(target: LoadTarget) -> str:
    """How a result names its target: the URL, and the proxy it went through."""
    return target.url if target.proxy is None else f"{target.url} via {target.proxy}"


def hard_deadline(plan: LoadPlan) -> float:
    """Seconds after which a run is cancelled: its time cap, one timeout, and slack."""
    return plan.time_cap() + plan.timeout + RUN_SLACK


class Run:
    """State of one run; workers are its methods so the hot path reads locals.

    The base class sends with the lean client only (``lean_request`` must be set);
    the engine's subclass adds an aiohttp sender.
    """

    def __init__(
        self,
        target: LoadTarget,
        plan: LoadPlan,
        classifier: Classifier,
        clock: Clock,
        lean_request: tuple[bytes, str, int] | None,
    ) -> None:
        self.url = target.url
        self.proxy = target.proxy
        self.plan = plan
        self.classifier = classifier
        self.clock = clock
        self.lean_request = lean_request
        self.cap = plan.request_cap()
        self.time_cap = plan.time_cap()
        self.issued = 0
        self.errors = 0
        self.records: list[tuple[float, float, int, str, bool]] = []
        self.examples: dict[str, str] = {}
        self.t0 = 0.0
        self.last_end = 0.0
        self.stopped_by_deadline = False
        self.connections: set[LeanConnection] = set()  # each worker's current one
        self.triggers = Triggers(plan.triggers, lambda: self.clock() - self.t0, self.extend)

    def close_connections(self) -> None:
        for conn in self.connections:
            if conn.transport is not None:
                conn.transport.close()

    def record(self, intended: float, status: int, headers: Mapping[str, str], body: bytes) -> None:
        """Classify one response and keep its sample (and maybe its example)."""
        outcome = self.classifier(status, body, headers)
        if outcome not in self.examples:
            self.examples[outcome] = excerpt(status, headers, body)
        end = self.clock()
        if status >= 400:
            self.errors += 1
        self.last_end = end
        overloaded = headers.get("x-envoy-overloaded") == "true"
        self.records.append((intended - self.t0, end - intended, status, outcome, overloaded))
        if len(self.records) >= self.triggers.next_at:
            self.triggers.fire_due(len(self.records))

    def record_error(self, intended: float, outcome: str, exc: BaseException) -> None:
        """Keep the sample of a request that got no response."""
        end = self.clock()
        if outcome not in self.examples:
            self.examples[outcome] = f"{type(exc).__name__}: {exc}"[:EXAMPLE_CHARS]
        self.errors += 1
        self.last_end = end
        self.records.append((intended - self.t0, end - intended, 0, outcome, False))
        if len(self.records) >= self.triggers.next_at:
            self.triggers.fire_due(len(self.records))

    def extend(self, more: int) -> None:
        """Let ``more`` requests follow the ones already sent, within the plan's caps."""
        self.cap = min(max(self.cap, self.issued + more), self.plan.hard_request_cap())

    def lean_sender(self) -> Sender:
        """A sender owning one lean keep-alive connection (plain http only)."""
        assert self.lean_request is not None
        data, host, port = self.lean_request
        loop = asyncio.get_running_loop()
        timeout, head_only = self.plan.timeout, self.plan.method == "HEAD"
        conn: LeanConnection | None = None

        async def send(intended: float) -> None:
            nonlocal conn
            deadline = loop.time() + timeout
            if conn is None or not conn.is_open:
                fresh = LeanConnection(loop, head_only)
                try:
                    async with asyncio.timeout_at(deadline):
                        await loop.create_connection(lambda: fresh, host, port)
                except TimeoutError as exc:
                    self.record_error(intended, TIMEOUT, exc)
                    return
                except OSError as exc:
                    self.record_error(intended, CONNECT, exc)
                    return
                if conn is not None:
                    self.connections.discard(conn)
                conn = fresh
                self.connections.add(fresh)
            try:
                status, headers, body = await conn.request(data, deadline)
            except TimeoutError as exc:
                self.record_error(intended, TIMEOUT, exc)
                return
            except ResponseError as exc:
                self.record_error(intended, DISCONNECT, exc)
                return
            except OSError as exc:
                self.record_error(intended, os_error_kind(exc), exc)
                return
            self.record(intended, status, headers, body)

        return send

    def sender(self) -> Sender:
        return self.lean_sender()

    async def has_more(self) -> bool:
        """Whether another request may be sent; waits while an action may extend the run."""
        while self.issued >= self.cap:
            if not await self.triggers.wait_holding():  # its end extends self.cap
                return False
        return True

    async def closed_worker(self) -> None:
        clock, deadline, send = self.clock, self.t0 + self.time_cap, self.sender()
        while self.issued < self.cap or await self.has_more():
            start = clock()
            if start >= deadline:
                self.stopped_by_deadline = True
                return
            self.issued += 1
            await send(start)

    async def open_worker(self, qps: float) -> None:
        clock, t0, send, time_cap = self.clock, self.t0, self.sender(), self.time_cap
        while self.issued < self.cap or await self.has_more():
            due = self.issued / qps
            if due >= time_cap:
                self.stopped_by_deadline = True
                return
            self.issued += 1
            wait = t0 + due - clock()
            if wait > 0:
                await asyncio.sleep(wait)
            await send(t0 + due)

    async def report_progress(self, progress: Progress) -> None:
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL)
            progress(len(self.records), self.errors)


async def run_workers(run: Run, deadline: float | None = None) -> None:
    """Start the run's clock and its workers; return when they are done.

    Raises :class:`LoadError` when the run overruns ``deadline`` seconds (default
    :func:`hard_deadline`), after closing its connections.
    """
    plan = run.plan
    bound = hard_deadline(plan) if deadline is None else deadline
    run.t0 = run.last_end = run.clock()
    try:
        async with asyncio.timeout(bound):
            async with asyncio.TaskGroup() as group:
                for _ in range(plan.concurrency):
                    if plan.is_open_loop:
                        assert plan.qps is not None
                        group.create_task(run.open_worker(plan.qps))
                    else:
                        group.create_task(run.closed_worker())
    except TimeoutError as exc:
        raise LoadError(
            f"load run overran its hard deadline ({run.time_cap:.0f}s + timeout)"
        ) from exc
    finally:
        run.close_connections()
        await asyncio.sleep(0)  # let the transports finish closing in this loop


def build_result(
    target: LoadTarget,
    plan: LoadPlan,
    samples: list[Sample],
    *,
    duration: float,
    stopped_by_deadline: bool,
    examples: dict[str, str],
    events: list[Event],
) -> LoadResult:
    """The result of a run, framed the same way whichever side ran it."""
    return LoadResult(
        target=describe_target(target),
        samples=samples,
        duration=max(duration, 0.0),
        concurrency=plan.concurrency,
        qps=plan.qps if plan.is_open_loop else None,
        requested=plan.requests,
        stopped_by_deadline=stopped_by_deadline and len(samples) < (plan.requests or math.inf),
        examples=examples,
        events=events,
    )
