"""Drive an app host (``python -m meshchaos.apps.host``) from synchronous code.

The process is started by the local mesh's supervisor (every child of the mesh starts
there, in its own process group and dying with its parent)::

    client = meshchaos.mesh.local.supervisor.spawn_app_host()
    ports = client.start([{"id": "reviews-v2-0", "app": "reviews", "env": {...}}])
    client.set_proxies({"reviews-v2-0": "http://127.0.0.1:41000"})
    ...
    client.close()

Every call has a deadline and raises ``MeshError`` with the tail of the host's
stderr when the host answers with an error, dies, or stays silent. After a
timeout the client is unusable (answers could no longer be matched to calls).
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import IO, Any, NotRequired, TypedDict

from meshchaos.errors import MeshError

DEFAULT_TIMEOUT_S = 10.0
_STDERR_LINES = 50
_EOF = None


class InstanceSpec(TypedDict):
    """One app instance for :meth:`AppHostClient.start`."""

    id: str  # unique in the host, e.g. "reviews-v2-0"
    app: str  # WorkloadSpec.app: productpage, details, reviews, ratings or httpbin
    env: NotRequired[dict[str, str]]
    proxy: NotRequired[str | None]  # the sidecar's outbound listener, if known yet


class AppHostClient:
    """The parent's end of an app host process (JSON lines over its stdin/stdout)."""

    def __init__(
        self, process: subprocess.Popen[str], *, timeout: float = DEFAULT_TIMEOUT_S
    ) -> None:
        if process.stdin is None or process.stdout is None:
            raise ValueError("the app host needs stdin and stdout pipes")
        self.process = process
        self.timeout = timeout
        self._stdin: IO[str] = process.stdin
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=_STDERR_LINES)
        self._lock = threading.Lock()
        self._broken = ""
        self._threads = [threading.Thread(target=self._pump_stdout, daemon=True)]
        if process.stderr is not None:
            self._threads.append(threading.Thread(target=self._pump_stderr, daemon=True))
        for thread in self._threads:
            thread.start()

    # -- commands -----------------------------------------------------------
    def ping(self, *, timeout: float | None = None) -> None:
        """Check that the host answers."""
        self._call({"cmd": "ping"}, timeout)

    def start(
        self, instances: Sequence[InstanceSpec | Mapping[str, Any]], *, timeout: float | None = None
    ) -> dict[str, int]:
        """Start instances (all or none); returns id -> port on 127.0.0.1."""
        answer = self._call({"cmd": "start", "instances": [dict(i) for i in instances]}, timeout)
        return {str(k): int(v) for k, v in answer["ports"].items()}

    def set_proxies(
        self, proxies: Mapping[str, str | None], *, timeout: float | None = None
    ) -> None:
        """Set each instance's sidecar proxy URL (None: calls fail as connection errors)."""
        self._call({"cmd": "proxy", "proxies": dict(proxies)}, timeout)

    def stop(self, ids: Sequence[str], *, timeout: float | None = None) -> None:
        """Crash instances: listener closed and connections reset at once."""
        self._call({"cmd": "stop", "ids": list(ids)}, timeout)

    def records(self, instance_id: str, *, timeout: float | None = None) -> list[dict[str, Any]]:
        """Requests the instance received, oldest first (the last 10,000).

        Each is ``{"time", "method", "path", "headers": {...}, "status"}``; ``status`` is
        None for a request still in flight or cut off by ``stop``.
        """
        answer = self._call({"cmd": "records", "id": instance_id}, timeout)
        records: list[dict[str, Any]] = answer["records"]
        return records

    def close(self, *, timeout: float = 5.0) -> None:
        """End the host: EOF on its stdin, then SIGTERM, then SIGKILL, each with a deadline."""
        with contextlib.suppress(OSError):  # a dead host's pipe may be broken
            self._stdin.close()
        if self.process.poll() is None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.terminate()
                try:
                    self.process.wait(2.0)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(2.0)
        for thread in self._threads:
            thread.join(1.0)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        self._broken = self._broken or "closed"

    def __enter__(self) -> AppHostClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def stderr_tail(self) -> str:
        """The last lines the host wrote to stderr (when stderr is a pipe)."""
        return "".join(self._stderr)

    # -- plumbing -----------------------------------------------------------
    def _call(self, command: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        deadline = self.timeout if timeout is None else timeout
        name = command["cmd"]
        with self._lock:
            if self._broken:
                raise MeshError(f"app host {name}: client unusable ({self._broken})")
            try:
                self._stdin.write(json.dumps(command, separators=(",", ":")) + "\n")
                self._stdin.flush()
            except (OSError, ValueError) as exc:
                self._broken = "host stdin closed"
                raise self._error(f"{name}: cannot write to the host: {exc}") from exc
            try:
                line = self._lines.get(timeout=deadline)
            except queue.Empty:
                self._broken = f"{name} timed out"
                raise self._error(f"{name}: no answer within {deadline:g} s") from None
            if line is _EOF:
                self._broken = "host exited"
                raise self._error(f"{name}: the host exited (code {self.process.poll()})")
        try:
            answer = json.loads(line)
        except ValueError as exc:
            raise self._error(f"{name}: unreadable answer {line!r}") from exc
        if not isinstance(answer, dict) or answer.get("ok") is not True:
            error = answer.get("error") if isinstance(answer, dict) else answer
            raise self._error(f"{name} failed: {error}")
        return answer

    def _error(self, message: str) -> MeshError:
        if self.process.poll() is not None:  # a dead host's last words: pumped up to EOF
            for thread in self._threads[1:]:
                thread.join(1.0)
        tail = self.stderr_tail().strip()
        evidence = f"\nhost stderr (tail):\n{tail}" if tail else ""
        return MeshError(f"app host (pid {self.process.pid}) {message}{evidence}")

    def _pump_stdout(self) -> None:
        assert self.process.stdout is not None
        try:
            for line in self.process.stdout:
                self._lines.put(line)
        except (OSError, ValueError):
            pass  # closed under us by close()
        self._lines.put(_EOF)

    def _pump_stderr(self) -> None:
        assert self.process.stderr is not None
        try:
            for line in self.process.stderr:
                self._stderr.append(line)
        except (OSError, ValueError):
            pass
