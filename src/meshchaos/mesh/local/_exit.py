"""Close what the local mesh owns at interpreter exit and on SIGTERM (``kill``, ``down``).

SIGINT needs nothing here: it raises KeyboardInterrupt, which unwinds through the
owner's ``with``/``finally`` (and, at worst, reaches the atexit hook). A child outlives
none of this: each dies with its parent (``PR_SET_PDEATHSIG``, see ``supervisor``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import threading
from typing import Protocol

__all__ = ["close_at_exit", "forget_at_exit"]


class Closable(Protocol):
    def close(self) -> None: ...


_LIVE: set[Closable] = set()
_registry_lock = threading.Lock()
_hooks_installed = False


def _close_all() -> None:
    with _registry_lock:
        objs = list(_LIVE)
    for obj in objs:
        with contextlib.suppress(Exception):
            obj.close()


def _on_sigterm(signum: int, frame: object) -> None:
    # Tear down, then die of SIGTERM as if we had not handled it.
    _close_all()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def close_at_exit(obj: Closable) -> None:
    """Call ``obj.close()`` at interpreter exit and on SIGTERM, unless forgotten first."""
    global _hooks_installed
    with _registry_lock:
        _LIVE.add(obj)
        if _hooks_installed:
            return
        _hooks_installed = True
    atexit.register(_close_all)
    # Only the main thread may set handlers; never replace a handler someone else set.
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _on_sigterm)


def forget_at_exit(obj: Closable) -> None:
    """Undo :func:`close_at_exit` (``obj`` closed itself)."""
    with _registry_lock:
        _LIVE.discard(obj)
