"""How late this process's event loop runs: the gateway's own overload, measured.

A provider call's timeout runs in real time. When the event loop is saturated (more work than
one core does) or blocked (a long synchronous stretch, a garbage collection), the answer of an
instantaneous provider can sit unread for longer than the attempt's timeout: the call "times
out" although the provider answered at once. Counted as a provider failure, our own lag would
open the breaker and refuse every customer for its cool-down.

:class:`LoopLagMonitor` sleeps ``interval`` seconds at a time and records how late each wake-up
comes. The lateness of those wake-ups is time the loop spent on other work while a timer was
due; :meth:`LoopLagMonitor.lag_since` sums it over a window, including the wake-up that is due
but has not come yet (a loop blocked right now). :func:`lngate.resilience.deadline.bounded`
takes it to give a call its whole timeout in loop time, and the router classifies a timeout
that the loop's lag caused as our own overload (:class:`~lngate.errors.GatewayOverloaded`),
never as the provider's failure.

The estimate is conservative for saturation: a wake-up is late by at most one loop iteration,
so with iterations much longer than ``interval`` the lag found is about ``L / (L +
interval)`` of the wall time; the call is then credited with about ``interval`` of loop time
per iteration, which a call that needs a few iterations does not exhaust.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

from lngate.resilience.deadline import Clock

DEFAULT_INTERVAL = 0.02
"""Seconds between the monitor's wake-ups: ~50 a second, some tens of microseconds of CPU."""
DEFAULT_HISTORY = 30.0
"""Seconds of wake-ups kept: longer than any create's deadline."""
RECENT_WINDOW = 15.0
"""Seconds over which :meth:`LoopLagMonitor.recent_max` looks (the Prometheus gauge: one
default scrape interval, so no spike falls between two scrapes)."""


class LoopLagMonitor:
    """Measures the event loop's lag (run :meth:`run` as a background loop of the process)."""

    def __init__(self, *, interval: float = DEFAULT_INTERVAL, history: float = DEFAULT_HISTORY,
                 clock: Clock = time.monotonic) -> None:
        if interval <= 0 or history < interval:
            raise ValueError("need 0 < interval <= history")
        self.interval = interval
        self._clock = clock
        self._ticks: deque[tuple[float, float]] = deque(maxlen=int(history / interval) + 1)
        """(woke at, lateness) of each wake-up, oldest first."""
        self._due: float | None = None
        """When the next wake-up is due; ``None`` while the monitor is not running."""
        self.total_lag = 0.0
        """Summed lateness of every wake-up so far (its rate is the share of time lagging)."""

    async def run(self) -> None:
        """Measure forever (until cancelled)."""
        try:
            while True:
                self._due = self._clock() + self.interval
                await asyncio.sleep(self.interval)
                self.record(self._due, self._clock())
        finally:
            self._due = None

    def record(self, due: float, woke: float) -> None:
        """Record one wake-up due at ``due`` that came at ``woke`` (tests call it directly)."""
        lateness = max(0.0, woke - due)
        self._ticks.append((woke, lateness))
        self.total_lag += lateness

    def expect(self, due: float | None) -> None:
        """Say a wake-up is due at ``due`` (``None``: none is); :meth:`run` does it itself."""
        self._due = due

    def lag_since(self, start: float) -> float:
        """Seconds of loop lag seen since ``start``: the recorded wake-ups' lateness that fell
        after ``start``, plus the lateness of a wake-up that is overdue now."""
        total = 0.0
        for woke, lateness in reversed(self._ticks):
            if woke <= start:
                break
            total += min(lateness, woke - start)
        if self._due is not None:
            overdue_from = max(self._due, start)
            total += max(0.0, self._clock() - overdue_from)
        return total

    def recent_max(self, window: float = RECENT_WINDOW) -> float:
        """The largest lateness over the last ``window`` seconds, an overdue wake-up included."""
        now = self._clock()
        worst = max(0.0, now - self._due) if self._due is not None else 0.0
        for woke, lateness in reversed(self._ticks):
            if woke < now - window:
                break
            worst = max(worst, lateness)
        return worst
