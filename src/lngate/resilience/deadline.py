"""Time budgets: recent latencies, per-attempt timeouts derived from them, and deadlines.

Every function here takes an injected ``clock`` (a callable returning monotonic seconds) so
tests control time. Timeouts themselves are enforced in real time by :func:`bounded`; given a
:class:`LagSource` it counts only the time the event loop actually ran for the call (see
:mod:`lngate.resilience.looplag`).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from lngate.errors import ProviderUnavailable
from lngate.percentiles import percentile

T = TypeVar("T")

Clock = Callable[[], float]
"""Returns monotonic seconds (``time.monotonic`` in production, a fake in tests)."""


class LagSource(Protocol):
    """Tells how much event-loop lag was seen since a moment (a
    :class:`~lngate.resilience.looplag.LoopLagMonitor`)."""

    def lag_since(self, start: float) -> float:
        """Seconds of event-loop lag seen since ``start`` (``time.monotonic`` seconds)."""
        ...


class LatencyWindow:
    """The last ``size`` latencies (seconds) of each provider."""

    def __init__(self, size: int = 50) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self.size = size
        self._samples: dict[str, deque[float]] = {}

    def add(self, provider: str, seconds: float) -> None:
        """Record one latency for ``provider``, forgetting the oldest beyond ``size``."""
        self._samples.setdefault(provider, deque(maxlen=self.size)).append(seconds)

    def count(self, provider: str) -> int:
        """How many latencies are held for ``provider``."""
        return len(self._samples.get(provider, ()))

    def percentile(self, provider: str, q: float) -> float | None:
        """The ``q``-th percentile of ``provider``'s latencies; ``None`` when there are none."""
        samples = self._samples.get(provider)
        return percentile(samples, q) if samples else None

    def p95(self, provider: str) -> float | None:
        """95th-percentile latency of ``provider``, or ``None``."""
        return self.percentile(provider, 95)


@dataclass
class AttemptTimeoutPolicy:
    """How long one attempt at a provider may take: ``clamp(p95 × k, floor, ceiling)``.

    With fewer than ``min_samples`` latencies for a provider the timeout is ``default``.
    """

    k: float = 3.0
    floor: float = 0.25
    ceiling: float = 2.0
    default: float = 1.5
    min_samples: int = 5
    latencies: LatencyWindow = field(default_factory=LatencyWindow)

    def __post_init__(self) -> None:
        if not 0 < self.floor <= self.default <= self.ceiling:
            raise ValueError("need 0 < floor <= default <= ceiling")
        if self.k <= 0:
            raise ValueError("k must be positive")

    def timeout_for(self, provider: str) -> float:
        """The timeout, in seconds, for the next attempt at ``provider``."""
        if self.latencies.count(provider) < self.min_samples:
            return self.default
        p95 = self.latencies.p95(provider)
        assert p95 is not None
        return min(max(p95 * self.k, self.floor), self.ceiling)

    def observe(self, provider: str, seconds: float) -> None:
        """Feed one observed latency of ``provider``."""
        self.latencies.add(provider, seconds)


@dataclass(frozen=True, slots=True)
class Deadline:
    """A time budget of ``budget`` seconds that began at ``start`` on ``clock``."""

    start: float
    budget: float
    clock: Clock

    @classmethod
    def after(cls, budget: float, *, clock: Clock) -> Deadline:
        """A deadline ``budget`` seconds from now."""
        return cls(clock(), budget, clock)

    def elapsed(self) -> float:
        """Seconds since the start."""
        return self.clock() - self.start

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.budget - self.elapsed())

    def expired(self) -> bool:
        """Whether no time is left."""
        return self.remaining() <= 0


async def bounded(
    call: Callable[[], Awaitable[T]], timeout: float, *, provider: str | None = None,
    lag: LagSource | None = None, limit: float | None = None,
) -> T:
    """Await ``call()`` for at most ``timeout`` seconds.

    When the time is up the call is cancelled and :class:`ProviderUnavailable` ("timed out
    after …") is raised from the :class:`TimeoutError`; :func:`is_timeout` recognises it.

    With ``lag``, the time the event loop lagged while the call ran does not count: when
    ``timeout`` has passed, the call is given the lagged time again, up to ``limit`` seconds of
    real time in all (the request's deadline), so an answer that sat unread behind our own
    backlog is not a timeout. It runs in the caller's task (no task is created), with one
    timer that is only re-armed when it fires.
    """
    if lag is None:
        try:
            return await asyncio.wait_for(call(), timeout)
        except TimeoutError as exc:
            raise ProviderUnavailable(f"timed out after {timeout:.2f} s",
                                      provider=provider) from exc
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    hard = max(timeout, limit if limit is not None else timeout)
    started = time.monotonic()
    cancelling = task.cancelling()
    expired = False
    handle: asyncio.TimerHandle | None = None

    def check() -> None:
        nonlocal handle, expired
        elapsed = time.monotonic() - started
        ran = elapsed - lag.lag_since(started)
        if ran < timeout and elapsed < hard:
            handle = loop.call_later(min(timeout - ran, hard - elapsed), check)
            return
        expired = True
        task.cancel()

    handle = loop.call_later(timeout, check)
    try:
        return await call()
    except BaseException:
        if not expired or task.uncancel() > cancelling:
            raise  # not our timer, or cancelled from outside as well
        elapsed = time.monotonic() - started
        raise ProviderUnavailable(f"timed out after {elapsed:.2f} s",
                                  provider=provider) from TimeoutError()
    finally:
        if handle is not None:
            handle.cancel()


def is_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` is a timeout raised by :func:`bounded` (or a provider's own timeout)."""
    return isinstance(exc, TimeoutError) or (
        isinstance(exc, ProviderUnavailable) and isinstance(exc.__cause__, TimeoutError)
    )
