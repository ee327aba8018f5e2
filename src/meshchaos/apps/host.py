"""The app host: many app instances in one asyncio process, driven over stdin/stdout.

Run as ``python -m meshchaos.apps.host``. Each stdin line is one JSON command; each
gets exactly one JSON line on stdout, in order::

    {"cmd":"start","instances":[{"id":"reviews-v2-0","app":"reviews","env":{...},"proxy":null}]}
        -> {"ok":true,"ports":{"reviews-v2-0":40001}}
    {"cmd":"proxy","proxies":{"reviews-v2-0":"http://127.0.0.1:41000"}}   -> {"ok":true}
    {"cmd":"stop","ids":["reviews-v2-0"]}                                  -> {"ok":true}
    {"cmd":"records","id":"httpbin-v2-0"}                  -> {"ok":true,"records":[...]}
    {"cmd":"ping"}                                                          -> {"ok":true}
    anything else                                        -> {"ok":false,"error":"..."}

Every instance is its own lean HTTP/1.1 server (``_server``) on 127.0.0.1:<ephemeral>.
``stop`` closes the listener and aborts open connections at once, as a crashed pod would; the
instance's records stay readable until its id is started again. ``env.HOSTNAME``
defaults to the instance id (reviews reports it as ``podname``). The host exits
on stdin EOF (so it dies with its parent), SIGTERM or SIGINT.

Startup is kept short: aiohttp and the apps are imported on a background thread
while the first command is awaited, so ``ping`` answers at once and ``start``
waits only for whatever of that import is left. With ``--workers N`` the host imports
once and forks N worker processes behind the same protocol (see ``_workers``), so a
mesh uses every core for the price of one import.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import signal
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from meshchaos.apps._outbound import Outbound
    from meshchaos.apps._server import LeanApp

APPS = ("productpage", "details", "reviews", "ratings", "httpbin")
_STOP_GRACE_S = 2.0
_LINE_LIMIT = 64 * 1024 * 1024


def _preload() -> None:
    importlib.import_module("aiohttp.web")
    for name in APPS:
        importlib.import_module(f"meshchaos.apps.{name}")


_preloader = threading.Thread(target=_preload, name="preload", daemon=True)


class CommandError(Exception):
    """A command that cannot be carried out; its message goes back to the caller."""


@dataclass
class _Instance:
    id: str
    app: LeanApp
    server: asyncio.Server
    outbound: Outbound
    port: int


class Host:
    """The instances of one host process and the commands that act on them."""

    def __init__(self) -> None:
        self.instances: dict[str, _Instance] = {}
        self.stopped_records: dict[str, list[dict[str, Any]]] = {}

    async def handle(self, command: Any) -> dict[str, Any]:
        """Run one decoded command and return its answer."""
        if not isinstance(command, dict):
            raise CommandError("a command must be a JSON object")
        name = command.get("cmd")
        if name == "ping":
            return {"ok": True}
        if name == "start":
            return {"ok": True, "ports": await self.start(command.get("instances"))}
        if name == "proxy":
            self.set_proxies(command.get("proxies"))
            return {"ok": True}
        if name == "stop":
            await self.stop(command.get("ids"))
            return {"ok": True}
        if name == "records":
            return {"ok": True, "records": self.records(command.get("id"))}
        raise CommandError(f"unknown cmd {name!r}; known: ping, start, proxy, stop, records")

    async def start(self, specs: Any) -> dict[str, int]:
        """Start every instance of ``specs``, or none of them."""
        if not isinstance(specs, list) or not specs:
            raise CommandError("start: 'instances' must be a non-empty list")
        checked = [_check_spec(spec, i) for i, spec in enumerate(specs)]
        ids = [c[0] for c in checked]
        duplicates = sorted({i for i in ids if ids.count(i) > 1 or i in self.instances})
        if duplicates:
            raise CommandError(f"start: ids already running or repeated: {duplicates}")
        if _preloader.ident is not None:  # started by main(); not when Host is used in-process
            _preloader.join()
        _preload()  # no-op once imported
        results = await asyncio.gather(*(_launch(*c) for c in checked), return_exceptions=True)
        started = [r for r in results if isinstance(r, _Instance)]
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await asyncio.gather(*(_abort(inst) for inst in started))
            raise CommandError(f"start failed: {failures[0]!r}")
        for inst in started:
            self.instances[inst.id] = inst
            self.stopped_records.pop(inst.id, None)
        return {inst.id: inst.port for inst in started}

    def set_proxies(self, proxies: Any) -> None:
        """Point instances' outbound calls at their sidecars (None unsets)."""
        if not isinstance(proxies, dict):
            raise CommandError("proxy: 'proxies' must be an object of id -> URL")
        unknown = sorted(set(proxies) - set(self.instances))
        if unknown:
            raise CommandError(f"proxy: unknown instance ids {unknown}")
        for inst_id, url in proxies.items():
            if url is not None and not isinstance(url, str):
                raise CommandError(f"proxy: URL of {inst_id!r} must be a string or null")
        for inst_id, url in proxies.items():
            self.instances[inst_id].outbound.proxy = url

    async def stop(self, ids: Any) -> None:
        """Crash the instances ``ids``: listener closed, connections reset at once."""
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise CommandError("stop: 'ids' must be a list of instance ids")
        known = [self.instances.pop(i) for i in ids if i in self.instances]
        for inst in known:
            self.stopped_records[inst.id] = _records(inst.app)
        await asyncio.gather(*(_abort(inst) for inst in known))
        unknown = sorted(set(ids) - {inst.id for inst in known})
        if unknown:
            raise CommandError(f"stop: unknown instance ids {unknown} (the others were stopped)")

    def records(self, inst_id: Any) -> list[dict[str, Any]]:
        """The requests instance ``inst_id`` received (also after it was stopped)."""
        if isinstance(inst_id, str):
            if inst_id in self.instances:
                return _records(self.instances[inst_id].app)
            if inst_id in self.stopped_records:
                return self.stopped_records[inst_id]
        raise CommandError(f"records: unknown instance id {inst_id!r}")

    async def close(self) -> None:
        """Crash every instance (used on exit)."""
        instances, self.instances = list(self.instances.values()), {}
        await asyncio.gather(*(_abort(inst) for inst in instances))


def _check_spec(spec: Any, index: int) -> tuple[str, str, dict[str, str], str | None]:
    where = f"start: instances[{index}]"
    if not isinstance(spec, dict):
        raise CommandError(f"{where}: must be an object")
    inst_id, app, env, proxy = spec.get("id"), spec.get("app"), spec.get("env") or {}, None
    if not isinstance(inst_id, str) or not inst_id:
        raise CommandError(f"{where}.id: must be a non-empty string")
    if app not in APPS:
        raise CommandError(f"{where}.app: {app!r} is not an app; known: {', '.join(APPS)}")
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        raise CommandError(f"{where}.env: must be an object of strings")
    proxy = spec.get("proxy")
    if proxy is not None and not isinstance(proxy, str):
        raise CommandError(f"{where}.proxy: must be a string or null")
    return inst_id, str(app), {"HOSTNAME": inst_id, **env}, proxy


async def _launch(inst_id: str, app_name: str, env: dict[str, str], proxy: str | None) -> _Instance:
    from meshchaos.apps._outbound import Outbound
    from meshchaos.apps._server import serve

    module = importlib.import_module(f"meshchaos.apps.{app_name}")
    outbound = Outbound(proxy)
    # The lean server of _server, not aiohttp.web: see that module for why.
    app, server, port = await serve(module.make_routes(env, outbound))
    return _Instance(inst_id, app, server, outbound, port)


async def _abort(inst: _Instance) -> None:
    inst.server.close()
    inst.app.abort()  # connections reset, handlers cancelled
    await inst.outbound.close()
    # The listener is already gone; whatever a slow close leaves dies with the process.
    with contextlib.suppress(TimeoutError, OSError):
        await asyncio.wait_for(inst.server.wait_closed(), _STOP_GRACE_S)


def _records(app: LeanApp) -> list[dict[str, Any]]:
    return list(app.records)


def _reply(answer: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(answer, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def _serve() -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    reader = asyncio.StreamReader(limit=_LINE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    host = Host()
    try:
        while True:
            try:
                line = await reader.readline()
            except ValueError as exc:  # a line over the limit
                _reply({"ok": False, "error": f"command too long: {exc}"})
                continue
            if not line:
                return  # stdin EOF: our parent is gone or done with us
            if not line.strip():
                continue
            try:
                answer = await host.handle(json.loads(line))
            except CommandError as exc:
                answer = {"ok": False, "error": str(exc)}
            except ValueError as exc:
                answer = {"ok": False, "error": f"bad JSON: {exc}"}
            except Exception as exc:  # a broken command must not kill every instance
                answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            _reply(answer)
    finally:
        await host.close()


def _serve_forever() -> int:
    loop_factory = None
    # uvloop is a dependency (not on Windows): a quarter less app CPU per Bookinfo page.
    with contextlib.suppress(ImportError):
        loop_factory = importlib.import_module("uvloop").new_event_loop
    # CancelledError: SIGTERM or SIGINT cancelled the command loop.
    with (
        asyncio.Runner(loop_factory=loop_factory) as runner,
        contextlib.suppress(asyncio.CancelledError),
    ):
        runner.run(_serve())
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m meshchaos.apps.host [--workers N] [--state-dir DIR]``.

    ``--state-dir`` is a name tag only: the mesh's state dir on the host's command line
    lets ``meshchaos down --force`` find the host when the mesh's state is lost.
    """
    args = sys.argv[1:] if argv is None else argv
    workers = 1
    rest = list(args)
    while rest:
        flag, value = rest[0], rest[1] if len(rest) > 1 else ""
        if flag == "--workers" and value.isdigit():
            workers = int(value)
        elif flag != "--state-dir" or not value:
            usage = "usage: python -m meshchaos.apps.host [--workers N] [--state-dir DIR]"
            print(f"{usage}; got {args}", file=sys.stderr)
            return 2
        del rest[:2]
    if workers <= 1:
        _preloader.start()
        return _serve_forever()
    from meshchaos.apps import _workers

    _preload()  # in the main thread, before forking: the workers inherit it all
    return _workers.run_relay(_workers.fork_workers(workers, _serve_forever))


if __name__ == "__main__":
    sys.exit(main())
