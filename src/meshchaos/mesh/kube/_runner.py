"""Run the cluster tools (docker, kind, kubectl, istioctl) as child processes.

Everything the kube backend does through a command goes through a :class:`Runner`, so
tests replace this one seam with a recorded runner (expected argv, canned results) and
nothing inside the product is faked.

:class:`SubprocessRunner` is the real one: an argv list (never a shell), a deadline on
every call, its own process group per command so a timeout kills the command together
with whatever it started (``kind`` runs ``docker``, ``istioctl`` may fork helpers), and
stdout and stderr captured separately.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from meshchaos.errors import MeshError

__all__ = [
    "CommandFailed",
    "CommandNotFound",
    "CommandTimedOut",
    "Completed",
    "Runner",
    "SubprocessRunner",
]

# How long to wait for the pipes to drain after the process group was killed. A child
# that escaped the group (setsid) could hold them open for ever; we stop reading then.
_DRAIN_AFTER_KILL_S = 5.0
# How much of a failed command's output goes into the error message.
_TAIL_CHARS = 2000


@dataclass(frozen=True)
class Completed:
    """A finished command: its argv, exit code and captured output."""

    argv: tuple[str, ...]
    returncode: int
    stdout: bytes = b""
    stderr: bytes = b""

    @property
    def ok(self) -> bool:
        """Whether the command exited 0."""
        return self.returncode == 0

    @property
    def text(self) -> str:
        """stdout decoded as UTF-8 (undecodable bytes replaced)."""
        return self.stdout.decode("utf-8", "replace")

    @property
    def error_text(self) -> str:
        """stderr decoded as UTF-8 (undecodable bytes replaced)."""
        return self.stderr.decode("utf-8", "replace")

    def check(self, what: str) -> Completed:
        """Self when the command succeeded; else :class:`CommandFailed` saying ``what``
        was being done, the command, its exit code and the end of its output."""
        if not self.ok:
            raise CommandFailed(what, self)
        return self


class CommandFailed(MeshError):
    """A command exited non-zero; carries the :class:`Completed` result."""

    def __init__(self, what: str, result: Completed) -> None:
        self.result = result
        out = (result.error_text.strip() or result.text.strip())[-_TAIL_CHARS:]
        detail = f":\n{out}" if out else " (no output)"
        super().__init__(
            f"{what} failed: `{_show(result.argv)}` exited {result.returncode}{detail}"
        )


class CommandTimedOut(MeshError):
    """A command ran past its deadline and was killed with its process group."""

    def __init__(self, argv: Sequence[str], timeout: float, stdout: bytes, stderr: bytes) -> None:
        self.argv = tuple(argv)
        self.timeout = timeout
        self.stdout = stdout
        self.stderr = stderr
        tail = stderr.decode("utf-8", "replace").strip()[-_TAIL_CHARS:]
        detail = f"; its last output:\n{tail}" if tail else ""
        super().__init__(
            f"`{_show(self.argv)}` did not finish within {timeout:g} s and was killed{detail}"
        )


class CommandNotFound(MeshError):
    """The program of a command is not installed (not on ``PATH``)."""

    def __init__(self, argv: Sequence[str]) -> None:
        self.argv = tuple(argv)
        super().__init__(f"{self.argv[0]!r} is not installed (not found on PATH)")


class Runner(Protocol):
    """Runs one command to completion, or raises :class:`CommandTimedOut` at the deadline.

    ``env`` holds variables set on top of this process's environment. A non-zero exit
    is not an error here: callers decide with :meth:`Completed.check`.
    """

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Completed:
        """Run ``argv`` (no shell) and return what it did."""
        ...


class SubprocessRunner:
    """The real :class:`Runner`: ``subprocess`` with a deadline and a process group."""

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Completed:
        """Run ``argv`` and wait at most ``timeout`` seconds for it."""
        args = [str(a) for a in argv]
        if not args:
            raise ValueError("an empty command")
        full_env = {**os.environ, **env} if env is not None else None
        try:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=full_env,
                # Its own group, so a timeout can kill the command and its children at once.
                start_new_session=True,
            )
        except FileNotFoundError:
            raise CommandNotFound(args) from None
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, err = _drain(proc)
            raise CommandTimedOut(args, timeout, out, err) from None
        except BaseException:  # Ctrl-C while waiting: leave nothing behind
            _kill_group(proc)
            _drain(proc)
            raise
        return Completed(tuple(args), proc.returncode, out or b"", err or b"")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone, with its whole group
        os.killpg(proc.pid, signal.SIGKILL)


def _drain(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    try:
        out, err = proc.communicate(timeout=_DRAIN_AFTER_KILL_S)
    except subprocess.TimeoutExpired:
        for pipe in (proc.stdout, proc.stderr, proc.stdin):
            if pipe is not None:
                pipe.close()
        proc.wait(timeout=_DRAIN_AFTER_KILL_S)
        return b"", b""
    return out or b"", err or b""


def _show(argv: Sequence[str]) -> str:
    """A command as a person would type it (for messages only, never to run)."""
    return shlex.join(argv)
