"""Pieces every app shares: env parsing, JSON answers, header propagation, request records.

``MESHCHAOS_TIMEOUT_SCALE`` (in an instance's env only, never read from the process
environment) multiplies every hard-coded duration of the apps: client timeouts
(productpage 3 s, reviews 10 s / 2.5 s), ratings' 7 s delay and its 60 s / 15 min
flips. It exists for fast unit tests; the default (1) keeps Bookinfo's real numbers.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from meshchaos.apps import facts
from meshchaos.apps._routing import Request

RECORDS_MAX = 10_000

Record = dict[str, Any]
RECORDS: web.AppKey[deque[Record]] = web.AppKey("meshchaos_records", deque)
# Handler tasks in flight, so that a stopped instance can end them at once (aiohttp
# by default lets a handler run on after its client went away).
IN_FLIGHT: web.AppKey[set[asyncio.Task[Any]]] = web.AppKey("meshchaos_in_flight", set)

# Headers kept in a request record: enough to tell who called, through which hop.
_RECORDED_HEADERS = (
    "host",
    "x-envoy-internal",
    "x-envoy-attempt-count",
    "x-forwarded-for",
    "x-request-id",
    "end-user",
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def timeout_scale(env: Mapping[str, str]) -> float:
    """The factor applied to hard-coded durations (``MESHCHAOS_TIMEOUT_SCALE``, default 1)."""
    raw = env.get("MESHCHAOS_TIMEOUT_SCALE", "")
    if not raw:
        return 1.0
    scale = float(raw)
    if scale <= 0:
        raise ValueError(f"MESHCHAOS_TIMEOUT_SCALE must be > 0, got {raw!r}")
    return scale


def make_rng(env: Mapping[str, str]) -> random.Random:
    """A ``random.Random`` seeded from ``MESHCHAOS_SEED`` (instance env, then process env)."""
    seed = env.get("MESHCHAOS_SEED") or os.environ.get("MESHCHAOS_SEED")
    return random.Random(int(seed)) if seed else random.Random()


def service_base(env: Mapping[str, str], service: str) -> str:
    """``http://<host><.SERVICES_DOMAIN>:<port>`` for a Bookinfo service, per its env vars."""
    upper = service.upper()
    host = env.get(f"{upper}_HOSTNAME") or service
    port = env.get(f"{upper}_SERVICE_PORT") or str(facts.BOOKINFO_PORT)
    domain = env.get("SERVICES_DOMAIN")
    suffix = f".{domain}" if domain else ""
    return f"http://{host}{suffix}:{port}"


def copy_headers(request: Request, names: tuple[str, ...]) -> dict[str, str]:
    """The inbound headers among ``names`` that are present, for an outbound call."""
    inbound = request.headers
    return {name: inbound[name] for name in names if name in inbound}


def json_response(obj: object, status: int = 200) -> web.Response:
    """A compact JSON answer (key order as given, like the real services emit)."""
    return web.Response(
        body=json.dumps(obj, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
    )


@web.middleware
async def _record(request: web.Request, handler: Handler) -> web.StreamResponse:
    # A record is appended before handling so that a request that never completes
    # (instance stopped, client gave up) is still seen as received.
    headers = request.headers
    record: Record = {
        "time": time.time(),
        "method": request.method,
        "path": request.path_qs,
        "headers": {h: headers[h] for h in _RECORDED_HEADERS if h in headers},
        "status": None,
    }
    app = request.app
    app[RECORDS].append(record)
    task = asyncio.current_task()
    in_flight = app[IN_FLIGHT]
    if task is not None:
        in_flight.add(task)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        record["status"] = exc.status
        raise
    finally:
        in_flight.discard(task)
    record["status"] = response.status
    return response


def new_app() -> web.Application:
    """An ``Application`` that records the requests it receives (the last 10,000)
    and tracks its handlers in flight."""
    app = web.Application(middlewares=[_record])
    app[RECORDS] = deque(maxlen=RECORDS_MAX)
    app[IN_FLIGHT] = set()
    return app


def cancel_in_flight(app: web.Application) -> None:
    """Cancel every request handler of ``app`` still running (a crashed instance)."""
    tasks = app[IN_FLIGHT]
    for task in list(tasks):
        task.cancel()


def records(app: web.Application) -> list[Record]:
    """A copy of the requests ``app`` has recorded, oldest first."""
    recorded = app[RECORDS]
    return list(recorded)
