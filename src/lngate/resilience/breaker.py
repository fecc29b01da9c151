"""A circuit breaker per provider: stop calling a provider that keeps failing, try it again later.

::

    CLOSED ──(failure_threshold consecutive failures)──▶ OPEN
    OPEN ──(cooldown elapsed; the next allow())──▶ HALF_OPEN   (one trial call at a time)
    HALF_OPEN ──success──▶ CLOSED
    HALF_OPEN ──failure──▶ OPEN                                (the cooldown starts again)

Which failures count is decided by :func:`lngate.resilience.failures.classify`. Time comes
from an injected clock, so tests drive the cooldown.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import structlog

from lngate.resilience.deadline import Clock
from lngate.resilience.failures import classify

log = structlog.get_logger("lngate.resilience.breaker")


class BreakerState(enum.StrEnum):
    """State of a :class:`CircuitBreaker`."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


def counts_for_breaker(exc: BaseException) -> bool:
    """Whether a failed call says the provider is unwell, and so counts towards opening.

    The rule is :func:`lngate.resilience.failures.classify`'s (the router's statistics and the
    alert rules use it too): an outage counts (``ProviderUnavailable``, ``InvalidInvoice``, any
    exception outside the error tree); a refusal, a refused key and a cancellation do not.
    """
    return classify(exc).opens_breaker


class CircuitBreaker:
    """Circuit breaker of one provider.

    Call :meth:`allow` before a call and :meth:`record_success` or :meth:`record_failure`
    after it; when the outcome does not count (see :func:`counts_for_breaker`) or the call was
    abandoned, call :meth:`release` so a half-open trial slot is given back.
    """

    def __init__(
        self,
        name: str,
        *,
        clock: Clock,
        failure_threshold: int = 3,
        cooldown: float = 30.0,
        on_change: Callable[[BreakerState, BreakerState], Any] | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if cooldown < 0:
            raise ValueError("cooldown must not be negative")
        self.name = name
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._opened_at: float | None = None
        self._failures = 0
        self._trial_started_at: float | None = None

    @property
    def state(self) -> BreakerState:
        """The current state (OPEN stays OPEN after the cooldown until the next :meth:`allow`)."""
        return self._state

    @property
    def opened_at(self) -> float | None:
        """Clock time at which the breaker last opened; ``None`` when closed."""
        return self._opened_at

    @property
    def consecutive_failures(self) -> int:
        """Counted failures since the last success."""
        return self._failures

    def retry_in(self) -> float:
        """Seconds until an open breaker lets a trial call through; 0 when not open."""
        if self._state is not BreakerState.OPEN or self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self.cooldown - self._clock())

    def available(self) -> bool:
        """Whether :meth:`allow` would let a call through now; claims nothing."""
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.OPEN:
            return self.retry_in() <= 0
        return not self._trial_in_flight()

    def allow(self) -> bool:
        """Whether a call may go ahead now; in HALF_OPEN this claims the single trial slot."""
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.OPEN:
            if self.retry_in() > 0:
                return False
            self._transition(BreakerState.HALF_OPEN)
        if self._trial_in_flight():
            return False
        self._trial_started_at = self._clock()
        return True

    def allow_early(self) -> bool:
        """Claim the single trial call now, even before the cooldown ends.

        For the router's panic rule (every breaker open): OPEN moves to HALF_OPEN at once, so
        the call is an ordinary trial (success closes, failure reopens with a fresh cooldown).
        ``False`` while another trial is in flight: one call at a time, never a stampede.
        """
        if self._state is BreakerState.OPEN:
            self._transition(BreakerState.HALF_OPEN)
        return self.allow()

    def record_success(self) -> None:
        """A call succeeded: the provider works, close the breaker."""
        self._failures = 0
        self._trial_started_at = None
        if self._state is not BreakerState.CLOSED:
            self._opened_at = None
            self._transition(BreakerState.CLOSED)

    def record_failure(self) -> None:
        """A call failed in a way that counts: open after the threshold, or reopen a trial."""
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or (
            self._state is BreakerState.CLOSED and self._failures >= self.failure_threshold
        ):
            self._opened_at = self._clock()
            self._trial_started_at = None
            self._transition(BreakerState.OPEN)
        # Already OPEN (a lookup, which is not gated, failed meanwhile): the cooldown is not
        # extended, so the trial call comes when promised.

    def release(self) -> None:
        """End a call whose outcome says nothing about the provider, giving back a trial slot."""
        self._trial_started_at = None

    def snapshot(self) -> dict[str, Any]:
        """The breaker's state for the admin API and monitoring."""
        return {
            "name": self.name,
            "state": self._state.value,
            "consecutive_failures": self._failures,
            "opened_at": self._opened_at,
            "retry_in_s": round(self.retry_in(), 3),
            "failure_threshold": self.failure_threshold,
            "cooldown_s": self.cooldown,
        }

    def _trial_in_flight(self) -> bool:
        # A trial whose caller vanished without reporting would keep the breaker half-open for
        # ever; after one cooldown it is presumed lost.
        return (
            self._trial_started_at is not None
            and self._clock() - self._trial_started_at < self.cooldown
        )

    def _transition(self, new: BreakerState) -> None:
        old, self._state = self._state, new
        emit = log.warning if new is BreakerState.OPEN else log.info
        emit("breaker_state_changed", provider=self.name, old=old.value, new=new.value,
             consecutive_failures=self._failures)
        if self._on_change is not None:
            try:
                self._on_change(old, new)
            except Exception:
                # A broken metrics or logging hook must not break the provider calls it watches.
                log.exception("breaker_hook_failed", provider=self.name)
