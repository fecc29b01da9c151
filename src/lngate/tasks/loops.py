"""The one shape of a background loop: run a pass on a cadence, forever.

A pass that fails on a database hiccup (:func:`~lngate.store.database.is_transient`: a lost
connection, a timeout, a transaction to retry) is logged, and the next pass runs at its time:
the work is still there and nothing is lost by waiting. Any other exception is a bug; it ends
the loop, and the :class:`~lngate.tasks.supervisor.Supervisor` logs it with its traceback and
restarts the loop with backoff, so a bug is loud rather than retried quietly every interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog

from lngate.store.database import is_transient

log = structlog.get_logger("lngate.tasks")

Pass = Callable[[], Awaitable[object]]


async def every(interval: float, pass_: Pass, *, name: str, wake: asyncio.Event | None = None,
                first_after: float = 0.0) -> None:
    """Run ``pass_`` after ``first_after`` seconds, then every ``interval`` seconds on a fixed
    cadence (at once if a pass overran it), or as soon as ``wake`` is set; forever."""
    next_at = time.monotonic() + first_after
    while True:
        delay = next_at - time.monotonic()
        if delay > 0:
            if wake is None:
                await asyncio.sleep(delay)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), delay)
        if wake is not None:
            wake.clear()
        next_at = max(next_at + interval, time.monotonic())
        try:
            await pass_()
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.error("task_pass_failed", task=name, error=type(exc).__name__,
                      detail=str(exc)[:200], next_in_s=round(max(0.0, next_at - time.monotonic()), 3))


class DelayedWake:
    """Sets ``event`` ``delay`` seconds after a ring; the rings until then join that one.

    A loop woken by every settlement would otherwise run a pass per settlement under load (each
    ring its own timer): one pass now takes what a quiet spell of ``delay`` brought. No ring
    waits longer than ``delay`` for its wake.
    """

    def __init__(self, event: asyncio.Event, delay: float) -> None:
        self._event, self._delay = event, delay
        self._timer: asyncio.TimerHandle | None = None

    def ring(self) -> None:
        """Wake the loop ``delay`` seconds from now, unless a wake is already on its way."""
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._delay, self._wake)

    def _wake(self) -> None:
        self._timer = None
        self._event.set()
