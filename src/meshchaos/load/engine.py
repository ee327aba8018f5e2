"""The load engine: :func:`drive` (async) and :func:`run_load` (sync).

Closed loop: ``concurrency`` workers send back to back. Open loop: request ``i`` is
due at ``t0 + i/qps``; a free worker takes the next due request, so when every
worker is busy the request waits, and its latency still counts from when it was
due (no coordinated omission). Every run is bounded by a request count *and* a
time, and each request by the client timeout.

The hot path keeps per-request work small: one aiohttp session with a keep-alive
connector of ``concurrency`` connections, bodies read and classified then dropped,
samples kept as tuples until the end, no logging.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from meshchaos.errors import LoadError
from meshchaos.load._triggers import Triggers
from meshchaos.load.classify import Classifier, classify_status
from meshchaos.load.lean import LeanConnection, ResponseError, build_request
from meshchaos.load.plan import LoadPlan, LoadTarget, check_target
from meshchaos.load.result import LoadResult, Sample
from meshchaos.outcomes import error_class

__all__ = ["Clock", "Progress", "drive", "run_load"]

Clock = Callable[[], float]
Progress = Callable[[int, int], None]
"""``progress(completed, errors)``; errors are requests with no response or status >= 400."""

USER_AGENT = "meshchaos-load/0.1"
PROGRESS_INTERVAL = 0.5
_EXAMPLE_CHARS = 500
_EXAMPLE_HEADERS = ("server", "content-type", "x-envoy-overloaded", "x-envoy-upstream-service-time")
# A run may overrun its time cap by the last in-flight requests (each bounded by the
# client timeout); past that plus this slack the whole run is cancelled.
_RUN_SLACK = 10.0


_TIMEOUT = error_class("timeout")
_CONNECT = error_class("connect")
_DISCONNECT = error_class("disconnect")


def _error_kind(exc: BaseException) -> str:
    # Timeout subclasses first: aiohttp's ConnectionTimeoutError is both.
    if isinstance(exc, TimeoutError):
        return _TIMEOUT
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _CONNECT
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return _DISCONNECT
    if isinstance(exc, aiohttp.ClientPayloadError):
        return error_class("payload")
    if isinstance(exc, ConnectionResetError | aiohttp.ClientConnectionResetError):
        return error_class("reset")
    return error_class(type(exc).__name__.lower())


def _excerpt(status: int, headers: Mapping[str, str], body: bytes) -> str:
    """A short, readable example of a response: status, a few headers, body start."""
    lines = [f"HTTP {status}"]
    lines += [f"{h}: {headers[h]}" for h in _EXAMPLE_HEADERS if h in headers]
    at = body.find(b"<body")  # skip an HTML page's head: the content tells the class
    text = body[max(at, 0) : max(at, 0) + _EXAMPLE_CHARS].decode("utf-8", "replace")
    text = " ".join(text.split())
    return ("\n".join(lines) + "\n\n" + text)[:_EXAMPLE_CHARS]


Sender = Callable[[float], Coroutine[Any, Any, None]]


class _Run:
    """State of one run; workers are its methods so the hot path reads locals."""

    def __init__(
        self,
        target: LoadTarget,
        plan: LoadPlan,
        classifier: Classifier,
        session: aiohttp.ClientSession,
        clock: Clock,
        lean_request: tuple[bytes, str, int] | None,
    ) -> None:
        self.url = target.url
        self.proxy = target.proxy
        self.plan = plan
        self.classifier = classifier
        self.session = session
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
            self.examples[outcome] = _excerpt(status, headers, body)
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
            self.examples[outcome] = f"{type(exc).__name__}: {exc}"[:_EXAMPLE_CHARS]
        self.errors += 1
        self.last_end = end
        self.records.append((intended - self.t0, end - intended, 0, outcome, False))
        if len(self.records) >= self.triggers.next_at:
            self.triggers.fire_due(len(self.records))

    def extend(self, more: int) -> None:
        """Let ``more`` requests follow the ones already sent, within the plan's caps."""
        self.cap = min(max(self.cap, self.issued + more), self.plan.hard_request_cap())

    def aiohttp_sender(self) -> Sender:
        """A sender on the shared aiohttp session (any scheme)."""
        request, method, url, proxy = self.session.request, self.plan.method, self.url, self.proxy

        async def send(intended: float) -> None:
            try:
                async with request(method, url, proxy=proxy) as resp:
                    body = await resp.read()
                    self.record(intended, resp.status, resp.headers, body)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                self.record_error(intended, _error_kind(exc), exc)

        return send

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
                    self.record_error(intended, _TIMEOUT, exc)
                    return
                except OSError as exc:
                    self.record_error(intended, _CONNECT, exc)
                    return
                if conn is not None:
                    self.connections.discard(conn)
                conn = fresh
                self.connections.add(fresh)
            try:
                status, headers, body = await conn.request(data, deadline)
            except TimeoutError as exc:
                self.record_error(intended, _TIMEOUT, exc)
                return
            except ResponseError as exc:
                self.record_error(intended, _DISCONNECT, exc)
                return
            except OSError as exc:
                self.record_error(intended, _error_kind(exc), exc)
                return
            self.record(intended, status, headers, body)

        return send

    def sender(self) -> Sender:
        return self.lean_sender() if self.lean_request is not None else self.aiohttp_sender()

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


async def _login(
    session: aiohttp.ClientSession, target: LoadTarget, user: str, timeout: float
) -> str:
    """Log in to Bookinfo as ``user``; return the Cookie header value to send."""
    parts = urlsplit(target.url)
    login_url = urlunsplit((parts.scheme, parts.netloc, "/login", "", ""))
    try:
        async with asyncio.timeout(timeout):
            async with session.post(
                login_url,
                data={"username": user, "passwd": ""},
                headers={"Referer": target.url},
                proxy=target.proxy,
                allow_redirects=False,
            ) as resp:
                await resp.read()
                status = resp.status
                cookies = resp.cookies
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise LoadError(f"login as {user!r} at {login_url} failed: {exc!r}") from exc
    if status >= 400 or not cookies:
        raise LoadError(
            f"login as {user!r} at {login_url} failed: HTTP {status}, "
            f"{'no session cookie set' if not cookies else 'error status'}"
        )
    return "; ".join(f"{name}={morsel.value}" for name, morsel in cookies.items())


def _lean_request(
    target: LoadTarget, plan: LoadPlan, headers: dict[str, str]
) -> tuple[bytes, str, int]:
    data, host, port = build_request(
        plan.method, target.url, headers, absolute_form=target.proxy is not None
    )
    if target.proxy is not None:
        proxy = urlsplit(target.proxy)
        host, port = proxy.hostname or "127.0.0.1", proxy.port or 80
    return data, host, port


async def drive(
    target: LoadTarget,
    plan: LoadPlan,
    classifier: Classifier = classify_status,
    *,
    progress: Progress | None = None,
    clock: Clock = time.perf_counter,
    lean: bool = True,
    allowed: Sequence[str] = (),
) -> LoadResult:
    """Run ``plan`` against ``target``; one :class:`Sample` per request.

    ``lean=False`` sends through aiohttp instead of the lean client (https always
    does). ``clock`` is injectable for tests. Raises :class:`LoadError` for a
    non-loopback target, an invalid plan or a failed login; request failures are
    samples (status 0, ``error:<kind>``), not errors.
    """
    check_target(target, allowed)
    plan.check()
    headers = {"User-Agent": USER_AGENT, **plan.headers}
    connector = aiohttp.TCPConnector(
        limit=plan.concurrency, limit_per_host=0, ttl_dns_cache=None, force_close=False
    )
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=plan.timeout),
        # Cookies are sent as a fixed header (login below): the jar costs per request.
        cookie_jar=aiohttp.DummyCookieJar(),
        headers=headers,
        # Plain bodies: classifiers search bytes, and no one pays for gzip.
        skip_auto_headers=("Accept-Encoding",),
        trust_env=False,  # never pick up HTTP(S)_PROXY: traffic stays on loopback
        raise_for_status=False,
        auto_decompress=False,
    ) as session:
        if plan.user is not None:
            cookie = await _login(session, target, plan.user, plan.timeout)
            existing = headers.get("Cookie") or headers.get("cookie")
            session.headers["Cookie"] = f"{existing}; {cookie}" if existing else cookie
        lean_request = None
        if lean and urlsplit(target.url).scheme == "http":
            lean_request = _lean_request(target, plan, dict(session.headers))
        run = _Run(target, plan, classifier, session, clock, lean_request)
        ticker = None
        run.t0 = run.last_end = clock()
        try:
            async with asyncio.timeout(run.time_cap + plan.timeout + _RUN_SLACK):
                if progress is not None:
                    ticker = asyncio.create_task(run.report_progress(progress))
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
            if ticker is not None:
                ticker.cancel()
            run.close_connections()
            await asyncio.sleep(0)  # let the transports finish closing in this loop
        if progress is not None:
            progress(len(run.records), run.errors)
        events = await run.triggers.events(len(run.records), run.last_end - run.t0)
    samples = [Sample(*r) for r in run.records]
    return LoadResult(
        target=target.url if target.proxy is None else f"{target.url} via {target.proxy}",
        samples=samples,
        duration=max(run.last_end - run.t0, 0.0),
        concurrency=plan.concurrency,
        qps=plan.qps if plan.is_open_loop else None,
        requested=plan.requests,
        stopped_by_deadline=run.stopped_by_deadline and len(samples) < (plan.requests or math.inf),
        examples=run.examples,
        events=events,
    )


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def _run_fresh(coro: Coroutine[Any, Any, LoadResult]) -> LoadResult:
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(coro)


def run_load(
    target: LoadTarget,
    plan: LoadPlan,
    classifier: Classifier = classify_status,
    *,
    progress: bool | Progress = False,
    lean: bool = True,
    allowed: Sequence[str] = (),
) -> LoadResult:
    """Synchronous :func:`drive` in a fresh event loop (uvloop when installed).

    ``progress=True`` shows a single updating stderr line on runs longer than 5 s
    when stderr is a terminal. Called from inside a running loop (an async test),
    the run happens in a helper thread with its own loop. ``allowed``: base URLs
    besides loopback the target may name (a mesh's reported gateway address).
    """
    from meshchaos.load.progress import ProgressLine

    line = ProgressLine() if progress is True else None
    callback: Progress | None = line
    if line is None and callable(progress):
        callback = progress
    try:
        coro = drive(target, plan, classifier, progress=callback, lean=lean, allowed=allowed)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return _run_fresh(coro)
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="meshchaos-load") as pool:
            bound = plan.time_cap() + plan.timeout + 2 * _RUN_SLACK
            return pool.submit(_run_fresh, coro).result(timeout=bound)
    finally:
        if line is not None:
            line.close()
