"""Stop the local mesh in a state dir from any process: ``meshchaos down [--force]``.

Without ``force``: ask the live owner to stop (SIGTERM: it tears down itself), wait, sweep
what a dead owner left (the recorded pids), and remove the state. A state file that
cannot be used (unreadable, another schema) stops here with a :class:`StateError` that
says to use ``force``. With ``force``: the same where the state is readable, and in any
case every process whose command line names the state dir is killed with its process
group (:func:`~meshchaos.mesh.local.supervisor.sweep_by_cmdline`) before the state goes.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from meshchaos.errors import MeshError
from meshchaos.mesh.local.state import LockTimeout, StateDir, StateError, is_same_process
from meshchaos.mesh.local.supervisor import sweep, sweep_by_cmdline, wait_gone
from meshchaos.mesh.registry import Down

__all__ = ["DOWN_TIMEOUT", "down"]

DOWN_TIMEOUT = 10.0  # seconds the owner gets to tear down after SIGTERM
FORCE_LOCK_TIMEOUT = 5.0  # force: how long to wait for the lock before clearing without it


def down(state_dir: Path, *, force: bool = False, timeout: float = DOWN_TIMEOUT) -> Down:
    """Stop the mesh in ``state_dir`` and remove its state; see the module docstring."""
    sd = StateDir(state_dir)
    unreadable = ""
    try:
        state = sd.load()
    except StateError as exc:
        if not force:
            raise
        state, unreadable = None, str(exc)
    if state is None and not unreadable and not force:
        return Down(found=False)
    found = state is not None or bool(unreadable)
    owner_stopped = False
    if state is not None and is_same_process(state.owner_pid, state.owner_start_ticks):
        os.kill(state.owner_pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while is_same_process(state.owner_pid, state.owner_start_ticks):
            if time.monotonic() >= deadline:
                if not force:
                    raise MeshError(
                        f"the mesh owner (pid {state.owner_pid}) did not stop within "
                        f"{timeout:.0f} s of SIGTERM; its children die with it (kill it, "
                        f"or 'meshchaos down --force --state-dir {sd.path}')"
                    )
                os.kill(state.owner_pid, signal.SIGKILL)
                wait_gone([state.owner_pid], timeout)
                break
            time.sleep(0.02)
        owner_stopped = True
    swept: list[int] = []
    if state is not None:
        try:  # what the owner wrote last, e.g. before it was killed
            swept += sweep(sd, sd.load())
        except StateError as exc:
            if not force:
                raise
            unreadable = unreadable or str(exc)
    if force:
        swept += sweep_by_cmdline(sd.path, timeout=timeout)
    if not sd.path.exists():
        return Down(found, owner_stopped, tuple(sorted(set(swept))), unreadable)
    try:
        with sd.lock(timeout=FORCE_LOCK_TIMEOUT if force else timeout):
            sd.clear(remove_dir=False)
    except LockTimeout:
        if not force:
            raise
        sd.clear(remove_dir=False)  # its holder names no state dir: not a mesh process
    return Down(found, owner_stopped, tuple(sorted(set(swept))), unreadable)
