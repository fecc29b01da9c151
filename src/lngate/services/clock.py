"""The clocks services receive, so tests can control time."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

WallClock = Callable[[], datetime]
MonotonicClock = Callable[[], float]


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


monotonic: MonotonicClock = time.monotonic
