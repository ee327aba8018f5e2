"""The local mesh's state dir: what runs, on which ports, and which Istio config is in force.

Layout of a state dir (``.meshchaos/`` by default)::

    state.json     MeshState: owner, processes, ports, workloads, resources, config version
    mesh.json      the backend-neutral handle other processes attach through (meshchaos.mesh.handle)
    lock           fcntl lock shared by the owner and every attached process
    proxies/NAME/  bootstrap.json, admin.txt, envoy.log and xds/ (the files Envoy watches)

``state.json`` is the single source of truth: the owner and attached processes (``meshchaos
apply`` in another terminal) read it, change it and write it back under the lock. It
carries its schema (``"schema": "meshchaos.local-state"``, ``"schema_version"``) and the
meshchaos version that wrote it. A file that cannot be read, or that another state schema
wrote, raises :class:`StateError` (what was found, what was expected, and that
``meshchaos down --force`` clears it); it is never taken for "no mesh".
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from meshchaos import __version__
from meshchaos.apps.catalog import WorkloadSpec
from meshchaos.errors import MeshError
from meshchaos.mesh.handle import HANDLE_FILE, MeshHandle, write_handle
from meshchaos.mesh.local.service_registry import GATEWAY_LISTENER

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "HostRecord",
    "LockTimeout",
    "MeshState",
    "ProxyRecord",
    "StateDir",
    "StateError",
    "is_same_process",
    "proc_cmdline",
    "proc_start_ticks",
    "write_json_atomic",
]

STATE_FILE = "state.json"
MESH_FILE = HANDLE_FILE  # the backend-neutral handle (meshchaos.mesh.handle)
LOCK_FILE = "lock"
# Longest a lock holder may take: a start or a scale (processes, a push and its rollback,
# each instance's readiness), with room to spare on a loaded machine.
LOCK_TIMEOUT = 120.0
SCHEMA = "meshchaos.local-state"
# 1: the files before the schema was recorded (no "schema" key). 2: this layout.
SCHEMA_VERSION = 2


class LockTimeout(MeshError):
    """The state dir's lock stayed held by another process past the deadline."""


class StateError(MeshError):
    """``state.json`` exists but cannot be used: unreadable, or another schema's.

    The message names the file, what was found and what was expected, and the way out.
    """

    def __init__(self, path: Path, found: str, state_dir: Path) -> None:
        self.path = path
        self.found = found
        super().__init__(
            f"{path}: {found}; expected a meshchaos state file, schema {SCHEMA!r} version "
            f"{SCHEMA_VERSION} (this is meshchaos {__version__}). If a mesh it recorded may "
            f"still run, stop it by command line and remove the state with "
            f"'meshchaos down --force --state-dir {state_dir}'"
        )


@dataclass
class ProxyRecord:
    """One Envoy (and, for a sidecar with an app, its app instance)."""

    name: str  # "reviews-v2-0" or "istio-ingressgateway"
    role: str  # "sidecar" | "gateway"
    workload: str | None  # "reviews-v2"; None for the gateway
    instance: int
    pid: int = 0
    start_ticks: int = 0  # /proc/PID/stat starttime: tells our process from a reused pid
    admin: str = ""  # "127.0.0.1:PORT"
    listeners: dict[str, int] = field(default_factory=dict)  # listener name -> port
    app_port: int | None = None
    host: int | None = None  # index of the app host running the app, None without an app
    endpoint: bool = True  # registered as an endpoint of its Service (a kill keeps it)
    alive: bool = True

    @property
    def admin_url(self) -> str:
        return f"http://{self.admin}"


@dataclass
class HostRecord:
    """One app host process (``python -m meshchaos.apps.host``)."""

    index: int
    pid: int
    start_ticks: int


@dataclass
class MeshState:
    """Everything ``state.json`` holds."""

    owner_pid: int
    owner_start_ticks: int
    workloads: list[WorkloadSpec]
    envoy_concurrency: int = 1
    version: int = 0  # last xDS version written to any proxy
    proxies: dict[str, ProxyRecord] = field(default_factory=dict)
    hosts: list[HostRecord] = field(default_factory=list)
    resources: list[dict[str, Any]] = field(default_factory=list)  # {"source", "raw"} in order
    user_dir: bool = False  # the state dir was given by the user: empty it, never remove it

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MeshState:
        return cls(
            owner_pid=int(data["owner_pid"]),
            owner_start_ticks=int(data["owner_start_ticks"]),
            workloads=[WorkloadSpec(**w) for w in data["workloads"]],
            envoy_concurrency=int(data.get("envoy_concurrency", 1)),
            version=int(data.get("version", 0)),
            proxies={k: ProxyRecord(**v) for k, v in data.get("proxies", {}).items()},
            hosts=[HostRecord(**h) for h in data.get("hosts", [])],
            resources=list(data.get("resources", [])),
            user_dir=bool(data.get("user_dir", False)),
        )

    def gateway(self) -> ProxyRecord | None:
        return next((p for p in self.proxies.values() if p.role == "gateway"), None)

    def handle(self, state_dir: Path) -> MeshHandle:
        """The backend-neutral handle (``mesh.json``) other processes attach through."""
        gw = self.gateway()
        gateway_url = f"http://127.0.0.1:{gw.listeners.get(GATEWAY_LISTENER, 0)}" if gw else ""
        clients = {
            p.workload: f"http://127.0.0.1:{p.listeners['outbound']}"
            for p in self.proxies.values()
            if p.workload is not None
            and p.instance == 0
            and "outbound" in p.listeners
            and self._is_client(p.workload)
        }
        return MeshHandle(
            backend="local",
            gateway_url=gateway_url,
            clients=clients,
            owner_pid=self.owner_pid,
            backend_data={"state_dir": str(state_dir)},
        )

    def _is_client(self, workload: str) -> bool:
        return any(w.name == workload and not w.service for w in self.workloads)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temp file in the same dir and ``os.replace`` it into place.

    Readers (Envoy's file watcher, attached processes) never see a half-written file.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # json.dumps runs the C encoder; json.dump streams through the pure-Python one.
        text = json.dumps(data, separators=(",", ":"))
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class StateDir:
    """A state dir on disk: paths, the lock, and (de)serialisation of :class:`MeshState`."""

    def __init__(self, path: Path) -> None:
        self.path = path.absolute()

    @property
    def state_file(self) -> Path:
        return self.path / STATE_FILE

    @property
    def mesh_file(self) -> Path:
        return self.path / MESH_FILE

    def proxy_dir(self, name: str) -> Path:
        return self.path / "proxies" / name

    def xds_dir(self, name: str) -> Path:
        return self.proxy_dir(name) / "xds"

    def exists(self) -> bool:
        return self.state_file.exists()

    @contextlib.contextmanager
    def lock(self, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
        """Hold the state dir's exclusive lock (owner and attached processes share it).

        ``flock`` locks belong to the open file, so two opens in one process exclude each
        other too; callers must not nest this. Raises :class:`LockTimeout` when another
        process holds it for ``timeout`` seconds (a dead holder releases it at once).
        """
        self.path.mkdir(parents=True, exist_ok=True)
        path = self.path / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + timeout
            delay = 0.001
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockTimeout(
                            f"{path}: another process has held this lock for {timeout:.0f} s "
                            "(a start, push or scale still running?); try again, or if no "
                            f"meshchaos process should be running: 'meshchaos down --force "
                            f"--state-dir {self.path}'"
                        ) from None
                    time.sleep(delay)
                    delay = min(delay * 2, 0.05)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def load(self) -> MeshState | None:
        """The recorded state, or ``None`` when there is no ``state.json``.

        Raises :class:`StateError` when the file cannot be read, is not a state file, or
        was written under another schema version.
        """
        try:
            text = self.state_file.read_text()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise self._error(f"cannot be read ({exc})") from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise self._error("is empty" if not text.strip() else f"is not JSON ({exc})") from None
        if not isinstance(data, dict):
            kind = {list: "an array", str: "a string", bool: "a boolean"}.get(
                type(data), "a number"
            )
            raise self._error(f"holds {'null' if data is None else kind}, not a JSON object")
        schema, version = data.pop("schema", None), data.pop("schema_version", None)
        writer = data.pop("meshchaos_version", None)
        if schema != SCHEMA or version != SCHEMA_VERSION:
            if schema is None:
                what = "has no schema (written before state schema 2, or not by meshchaos)"
            else:
                what = f"has schema {schema!r} version {version!r}"
            by = f", written by meshchaos {writer}" if writer else ""
            raise self._error(what + by)
        try:
            return MeshState.from_json(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            detail = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
            raise self._error(
                f"is a damaged schema {SCHEMA_VERSION} state file ({detail})"
            ) from None

    def _error(self, found: str) -> StateError:
        return StateError(self.state_file, found, self.path)

    def load_running(self) -> MeshState:
        """The recorded state of a mesh that must be there; :class:`MeshError` if it is gone."""
        state = self.load()
        if state is None:
            raise MeshError(f"the local mesh in {self.path} is gone (no {STATE_FILE})")
        return state

    def save(self, state: MeshState) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        head = {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "meshchaos_version": __version__,
        }
        write_json_atomic(self.state_file, {**head, **state.to_json()})
        write_handle(self.path, state.handle(self.path))

    def clear(self, *, remove_dir: bool, keep_lock: bool = False) -> None:
        """Delete everything meshchaos put here; remove the dir itself if ``remove_dir``.

        ``keep_lock``: leave the lock file, because a process holding the lock must keep
        excluding the others (a new file would be a new, unlocked, lock).
        """
        if not self.path.exists():
            return
        for child in self.path.iterdir():
            if keep_lock and child.name == LOCK_FILE:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    child.unlink()
        if remove_dir:
            with contextlib.suppress(OSError):
                self.path.rmdir()


def proc_start_ticks(pid: int) -> int | None:
    """A process's start time in clock ticks since boot, or ``None`` if it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ")".
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie is dead for our purposes
        return None
    return int(fields[19])


def proc_cmdline(pid: int) -> list[str]:
    """A process's argv, or ``[]`` when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def is_same_process(pid: int, start_ticks: int) -> bool:
    """True when ``pid`` is alive and is the very process recorded (not a reused pid)."""
    return pid > 0 and proc_start_ticks(pid) == start_ticks
