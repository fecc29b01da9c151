"""The open-loop scheduler: requests leave on schedule, whatever the earlier ones are doing.

A closed loop (send, wait for the answer, send the next) slows down with the server and so
measures a queue; here request *i* is started at ``start + i / rate`` as its own task. If the
server is slow, more requests are in flight, never fewer sent. Only ``max_in_flight`` bounds the
tester itself: a request that would exceed it is not sent and counted as dropped (an error), so
an overwhelmed target fails its objectives instead of silently lowering the rate.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(slots=True)
class ScheduleReport:
    """How the schedule was kept."""

    planned: int
    sent: int = 0
    dropped: int = 0
    """Not sent: ``max_in_flight`` requests were already waiting for an answer."""
    max_lag_ms: float = 0.0
    """The latest any request left after its slot (the tester's own delay)."""
    peak_in_flight: int = 0
    unfinished: int = 0
    """Still unanswered after the drain timeout (cancelled)."""


def planned_requests(rate: float, duration: float) -> int:
    """How many requests a run of ``duration`` seconds at ``rate`` per second sends."""
    return max(1, math.floor(rate * duration + 1e-9))


async def run_open_loop(
    fire: Callable[[int], Awaitable[None]],
    *,
    rate: float,
    duration: float,
    max_in_flight: int = 1000,
    drain_timeout: float = 30.0,
    on_drop: Callable[[int], None] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> ScheduleReport:
    """Start ``fire(i)`` at ``start + i / rate`` for every slot of ``duration`` seconds, then
    wait up to ``drain_timeout`` for the ones in flight. ``fire`` records its own result and
    must not raise."""
    if rate <= 0 or duration <= 0:
        raise ValueError("rate and duration must be positive")
    report = ScheduleReport(planned=planned_requests(rate, duration))
    in_flight: set[asyncio.Task[None]] = set()
    start = monotonic()
    for i in range(report.planned):
        slot = start + i / rate
        delay = slot - monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        report.max_lag_ms = max(report.max_lag_ms, (monotonic() - slot) * 1000)
        if len(in_flight) >= max_in_flight:
            report.dropped += 1
            if on_drop is not None:
                on_drop(i)
            continue
        task = asyncio.ensure_future(fire(i))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        report.sent += 1
        report.peak_in_flight = max(report.peak_in_flight, len(in_flight))
    if in_flight:
        _done, pending = await asyncio.wait(set(in_flight), timeout=drain_timeout)
        report.unfinished = len(pending)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    return report
