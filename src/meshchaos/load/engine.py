"""The load engine: :func:`drive` (async) and :func:`run_load` (sync).

The loops, caps and sample records live in :mod:`meshchaos.load._run`, shared with
the load agent that runs them inside a mesh; this module adds the aiohttp sender
(https, and the fallback from the lean client), the Bookinfo login and the sync
wrapper.

The hot path keeps per-request work small: one aiohttp session with a keep-alive
connector of ``concurrency`` connections, bodies read and classified then dropped,
samples kept as tuples until the end, no logging.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from meshchaos.errors import LoadError
from meshchaos.load._run import (
    CONNECT,
    DISCONNECT,
    RUN_SLACK,
    TIMEOUT,
    USER_AGENT,
    Clock,
    Progress,
    Run,
    Sender,
    build_result,
    lean_request,
    os_error_kind,
    run_workers,
)
from meshchaos.load.classify import Classifier, classify_status
from meshchaos.load.plan import LoadPlan, LoadTarget, check_target
from meshchaos.load.result import LoadResult, Sample
from meshchaos.outcomes import error_class

__all__ = ["USER_AGENT", "Clock", "Progress", "drive", "run_load"]


def _error_kind(exc: BaseException) -> str:
    # Timeout subclasses first: aiohttp's ConnectionTimeoutError is both.
    if isinstance(exc, TimeoutError):
        return TIMEOUT
    if isinstance(exc, aiohttp.ClientConnectorError):
        return CONNECT
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return DISCONNECT
    if isinstance(exc, aiohttp.ClientPayloadError):
        return error_class("payload")
    if isinstance(exc, aiohttp.ClientConnectionResetError):
        return error_class("reset")
    return os_error_kind(exc)


class _Run(Run):
    """A run that may also send through the shared aiohttp session."""

    def __init__(
        self,
        target: LoadTarget,
        plan: LoadPlan,
        classifier: Classifier,
        session: aiohttp.ClientSession,
        clock: Clock,
        lean_request: tuple[bytes, str, int] | None,
    ) -> None:
        super().__init__(target, plan, classifier, clock, lean_request)
        self.session = session

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

    def sender(self) -> Sender:
        return self.lean_sender() if self.lean_request is not None else self.aiohttp_sender()


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
        lean_req = None
        if lean and urlsplit(target.url).scheme == "http":
            lean_req = lean_request(target, plan, session.headers)
        run = _Run(target, plan, classifier, session, clock, lean_req)
        ticker = None
        if progress is not None:
            ticker = asyncio.create_task(run.report_progress(progress))
        try:
            await run_workers(run)
        finally:
            if ticker is not None:
                ticker.cancel()
        if progress is not None:
            progress(len(run.records), run.errors)
        events = await run.triggers.events(len(run.records), run.last_end - run.t0)
    return build_result(
        target,
        plan,
        [Sample(*r) for r in run.records],
        duration=run.last_end - run.t0,
        stopped_by_deadline=run.stopped_by_deadline,
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
            bound = plan.time_cap() + plan.timeout + 2 * RUN_SLACK
            return pool.submit(_run_fresh, coro).result(timeout=bound)
    finally:
        if line is not None:
            line.close()
