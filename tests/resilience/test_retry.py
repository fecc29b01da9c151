import asyncio
import time

import pytest
import stamina

from lngate.errors import (
    InvalidInvoice,
    ProviderAuthFailed,
    ProviderRejected,
    ProviderUnavailable,
)
from lngate.resilience.retry import is_transient, retry_read
from tests.resilience import FakeClock

NO_WAIT = {"wait_initial": 0.0, "wait_max": 0.0, "wait_jitter": 0.0}


class Scripted:
    """An async callable that raises or returns the scripted outcomes in order."""

    def __init__(self, *outcomes, clock: FakeClock | None = None, cost: float = 0.0):
        self.outcomes = list(outcomes)
        self.calls = 0
        self.clock = clock
        self.cost = cost

    async def __call__(self):
        self.calls += 1
        if self.clock is not None:
            self.clock.advance(self.cost)
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def test_only_provider_unavailable_is_transient():
    """ProviderUnavailable is transient; rejections, auth failures and invalid invoices are not."""
    assert is_transient(ProviderUnavailable("503"))
    assert not is_transient(ProviderRejected("400"))
    assert not is_transient(ProviderAuthFailed("401"))
    assert not is_transient(InvalidInvoice("wrong amount"))
    assert not is_transient(ValueError("bug"))


async def test_retries_transient_failures_until_success():
    """Transient failures are retried and the eventual value returned."""
    call = Scripted(ProviderUnavailable("503"), ProviderUnavailable("reset"), "paid")
    assert await retry_read(call, clock=FakeClock(), attempts=3, **NO_WAIT) == "paid"
    assert call.calls == 3


@pytest.mark.parametrize(
    "error", [ProviderRejected("400"), ProviderAuthFailed("401"), InvalidInvoice("bad")]
)
async def test_never_retries_permanent_errors(error):
    """Rejected, auth-failed and invalid-invoice errors are raised after one attempt."""
    call = Scripted(error, "never")
    with pytest.raises(type(error)):
        await retry_read(call, clock=FakeClock(), attempts=5, **NO_WAIT)
    assert call.calls == 1


async def test_gives_up_after_max_attempts_with_the_last_error():
    """After the last attempt the last transient error is raised."""
    call = Scripted(ProviderUnavailable("first"), ProviderUnavailable("last"))
    with pytest.raises(ProviderUnavailable, match="last"):
        await retry_read(call, clock=FakeClock(), attempts=2, **NO_WAIT)
    assert call.calls == 2


async def test_works_with_stamina_testing_mode():
    """Under stamina.set_testing the retries happen without backoff."""
    call = Scripted(ProviderUnavailable("503"), "ok")
    with stamina.set_testing(True, attempts=2):
        started = time.monotonic()
        assert await retry_read(call, clock=FakeClock(), wait_initial=5.0, wait_max=5.0) == "ok"
    assert time.monotonic() - started < 1.0
    assert call.calls == 2


async def test_honours_retry_after():
    """A Retry-After that fits in the time left replaces the backoff."""
    call = Scripted(ProviderUnavailable("429", retry_after=0.05), "ok")
    started = time.monotonic()
    assert await retry_read(call, clock=time.monotonic, timeout=2.0, **NO_WAIT) == "ok"
    assert time.monotonic() - started >= 0.05


async def test_retry_after_beyond_the_deadline_gives_up_at_once():
    """A Retry-After longer than the time left raises now instead of sleeping into the deadline."""
    call = Scripted(ProviderUnavailable("429", retry_after=30.0), "ok")
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable, match="429"):
        await retry_read(call, clock=time.monotonic, timeout=1.0, **NO_WAIT)
    assert time.monotonic() - started < 0.5
    assert call.calls == 1


async def test_total_time_bounds_the_attempts():
    """No attempt starts once the total timeout is used up, whatever ``attempts`` says."""
    clock = FakeClock()
    call = Scripted(ProviderUnavailable("slow 503"), clock=clock, cost=0.4)
    with pytest.raises(ProviderUnavailable):
        await retry_read(call, clock=clock, timeout=1.0, attempts=10, **NO_WAIT)
    assert call.calls == 3  # at t=0, 0.4, 0.8; at 1.2 the budget is spent


async def test_no_retry_when_the_backoff_would_not_fit():
    """A retry is not made when the longest backoff would outlast the time left."""
    clock = FakeClock()
    call = Scripted(ProviderUnavailable("503"), clock=clock, cost=0.6)
    with pytest.raises(ProviderUnavailable):
        await retry_read(call, clock=clock, timeout=1.0, attempts=5, wait_max=0.5)
    assert call.calls == 1


async def test_hung_attempts_are_cut_off_within_the_total_time():
    """Each hung attempt is cut at min(attempt_timeout, time left), so the call ends in time."""

    async def hang():
        await asyncio.sleep(10)

    started = time.monotonic()
    with pytest.raises(ProviderUnavailable, match="timed out"):
        await retry_read(hang, clock=time.monotonic, timeout=0.2, attempt_timeout=0.15,
                         attempts=5, **NO_WAIT)
    assert time.monotonic() - started < 0.35


async def test_observe_sees_every_attempt():
    """The observer gets each attempt's start, duration and error (None on success)."""
    clock = FakeClock()
    seen = []
    call = Scripted(ProviderUnavailable("503"), "ok", clock=clock, cost=0.1)
    await retry_read(call, clock=clock, observe=lambda *a: seen.append(a), **NO_WAIT)
    assert [type(e).__name__ for _, _, e in seen] == ["ProviderUnavailable", "NoneType"]
    assert seen[0][1] == pytest.approx(0.1)
