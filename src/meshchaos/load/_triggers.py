"""A run's triggers: actions set off by its own progress while the load goes on.

The engine tells :class:`Triggers` how many requests have completed (only when
:attr:`Triggers.next_at` is reached, so the hot path compares one int); each due
action runs in a helper thread of the run's loop, and one with ``then`` keeps the run
going for that many requests after it has ended and settled (through ``extend``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable

from meshchaos.errors import LoadError
from meshchaos.load.plan import TRIGGER_TIMEOUT, Trigger
from meshchaos.load.result import Event

NEVER = 1 << 62  # next_at when no trigger is left


class Triggers:
    """The pending and fired triggers of one run (loop thread only, but :meth:`act`)."""

    def __init__(
        self,
        triggers: Iterable[Trigger],
        since_start: Callable[[], float],
        extend: Callable[[int], None],
    ) -> None:
        self.pending = sorted(triggers, key=lambda tr: tr.after)
        self.next_at = self.pending[0].after if self.pending else NEVER
        self.since_start = since_start  # seconds since the run began
        self.extend = extend  # let that many more requests be sent
        self.fired: list[asyncio.Future[Event]] = []
        self.holding: set[asyncio.Future[Event]] = set()  # actions whose end extends the run

    def fire_due(self, done: int) -> None:
        """Start every trigger whose count ``done`` has reached, each in a helper thread."""
        loop = asyncio.get_running_loop()
        while self.pending and self.pending[0].after <= done:
            trigger = self.pending.pop(0)
            future = loop.run_in_executor(None, self.act, trigger, done, self.since_start())
            if trigger.then:
                self.extend(trigger.then)  # the load goes on while the action runs...
                self.holding.add(future)
                future.add_done_callback(
                    functools.partial(self.release, more=trigger.then, settle=trigger.settle)
                )
            self.fired.append(future)
        self.next_at = self.pending[0].after if self.pending else NEVER

    def release(self, future: asyncio.Future[Event], more: int, settle: float) -> None:
        """...and for ``more`` requests once it has ended and settled."""

        def done() -> None:
            self.holding.discard(future)
            self.extend(more)

        asyncio.get_running_loop().call_later(settle, done)

    async def wait_holding(self) -> bool:
        """Wait for the actions that may extend the run; False if there are none."""
        if not self.holding:
            return False
        await asyncio.wait(list(self.holding))
        return True

    def act(self, trigger: Trigger, done: int, started: float) -> Event:
        """Run one trigger's action (in a helper thread); its failure is kept, not lost."""
        error = None
        try:
            trigger.action()
        except Exception as exc:  # reported in the event, and raised by whoever judges it
            error = f"{type(exc).__name__}: {exc}"
        finished = self.since_start()
        return Event(trigger.name, done, started, finished, error, finished + trigger.settle)

    async def events(self, completed: int, end: float) -> list[Event]:
        """What every trigger did; one that never fired is an event with an error."""
        try:
            async with asyncio.timeout(TRIGGER_TIMEOUT):
                events = list(await asyncio.gather(*self.fired))
        except TimeoutError as exc:
            raise LoadError(
                f"a trigger's action did not finish within {TRIGGER_TIMEOUT:.0f} s"
            ) from exc
        for left in self.pending:
            why = f"never fired: the run completed {completed} of {left.after} requests"
            events.append(Event(left.name, left.after, end, end, why))
        return events
