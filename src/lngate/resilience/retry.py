"""Which failures are worth retrying, and retries for read calls (status lookups, health).

Only :class:`~lngate.errors.ProviderUnavailable` is transient. ``ProviderRejected``,
``ProviderAuthFailed`` and ``InvalidInvoice`` are never retried: asking again gets the same
answer.

Creating an invoice is not retried here: a retried create can mint a second invoice, so the
router allows at most one retry on the same provider before failing over (see
:mod:`lngate.resilience.router`).

In tests, use ``stamina.set_testing(True, attempts=n)`` or pass zero waits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import stamina

from lngate.errors import ProviderUnavailable
from lngate.resilience.deadline import Clock, Deadline, LagSource, bounded

T = TypeVar("T")

AttemptObserver = Callable[[float, float, Exception | None], object]
"""Called after each attempt with ``(started_at, duration_s, error or None)``."""


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a transient provider failure, worth retrying."""
    return isinstance(exc, ProviderUnavailable)


async def retry_read(
    call: Callable[[], Awaitable[T]],
    *,
    clock: Clock,
    timeout: float = 5.0,
    attempts: int = 3,
    attempt_timeout: float | None = None,
    provider: str | None = None,
    wait_initial: float = 0.1,
    wait_max: float = 1.0,
    wait_jitter: float = 0.1,
    observe: AttemptObserver | None = None,
    lag: LagSource | None = None,
) -> T:
    """Await ``call()``, retrying transient failures within ``attempts`` and ``timeout`` seconds.

    Each attempt is cut off after ``min(attempt_timeout, time left)`` (a cut-off attempt raises
    ``ProviderUnavailable``). Between attempts stamina backs off exponentially with jitter,
    never more than ``wait_max``; a retry is only made when that backoff still fits in the time
    left, so the whole call ends within ``timeout``. A ``ProviderUnavailable.retry_after`` (HTTP
    429/503 ``Retry-After``) replaces the backoff when it fits in the time left; when it does not,
    the error is raised at once instead of sleeping into the deadline. Other errors are raised
    unchanged on the first occurrence. After the last attempt, the last error is raised.

    With ``lag`` (the process's event-loop lag), an attempt's timeout counts only the time the
    loop ran for it, within the time left (:func:`~lngate.resilience.deadline.bounded`): an
    answer that sat unread behind our own overload is not a timeout, so it is not asked for
    again.
    """
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    deadline = Deadline.after(timeout, clock=clock)

    def retry_on(exc: Exception) -> bool | float:
        if not isinstance(exc, ProviderUnavailable):
            return False
        remaining = deadline.remaining()
        if exc.retry_after is not None:
            return float(exc.retry_after) if exc.retry_after < remaining else False
        # stamina sleeps at most wait_max (nothing in testing mode); retry only if that fits.
        return remaining > (0.0 if stamina.is_testing() else wait_max)

    async for attempt in stamina.retry_context(
        on=retry_on,
        attempts=attempts,
        timeout=timeout,
        wait_initial=wait_initial,
        wait_max=wait_max,
        wait_jitter=wait_jitter,
    ):
        with attempt:
            remaining = deadline.remaining()
            limit = remaining if attempt_timeout is None else min(attempt_timeout, remaining)
            started_at = clock()
            try:
                value = await bounded(call, limit, provider=provider, lag=lag, limit=remaining)
            except Exception as exc:
                if observe is not None:
                    observe(started_at, clock() - started_at, exc)
                raise
            if observe is not None:
                observe(started_at, clock() - started_at, None)
            return value
    raise AssertionError("unreachable: stamina raises the last error")
