"""A single updating stderr line for long load runs."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["ProgressLine"]

SHOW_AFTER = 5.0  # seconds: short runs stay quiet


class ProgressLine:
    """A ``progress(completed, errors)`` callback drawing ``count, rps, errors`` in place.

    Silent unless ``stream`` is a terminal and the run has lasted :data:`SHOW_AFTER`
    seconds; :meth:`close` clears the line.
    """

    def __init__(self, stream: TextIO | None = None, *, force: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = force or self.stream.isatty()
        self.started = time.monotonic()
        self.shown = False

    def __call__(self, completed: int, errors: int) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        if elapsed < SHOW_AFTER:
            return
        rps = completed / elapsed if elapsed > 0 else 0.0
        self.stream.write(
            f"\r{completed:>9d} requests  {rps:>9.1f} rps  {errors:>7d} errors  {elapsed:6.1f}s"
        )
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False
