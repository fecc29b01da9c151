from lngate.errors import (
    InvalidInvoice,
    ProviderAuthFailed,
    ProviderRejected,
    ProviderUnavailable,
)
from lngate.resilience.breaker import BreakerState, CircuitBreaker, counts_for_breaker
from tests.resilience import FakeClock


def make(clock: FakeClock, **kwargs) -> CircuitBreaker:
    return CircuitBreaker("lnbits", clock=clock, failure_threshold=3, cooldown=30.0, **kwargs)


def trip(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.failure_threshold):
        assert breaker.allow()
        breaker.record_failure()


def test_starts_closed_and_allows_calls():
    """A new breaker is closed and lets every call through."""
    breaker = make(FakeClock())
    assert breaker.state is BreakerState.CLOSED
    assert all(breaker.allow() for _ in range(10))


def test_opens_after_threshold_consecutive_failures():
    """The breaker opens on the failure_threshold-th consecutive failure, not before."""
    clock = FakeClock()
    breaker = make(clock)
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.opened_at == clock.now
    assert breaker.consecutive_failures == 3


def test_success_resets_the_consecutive_count():
    """A success in between failures restarts the count towards the threshold."""
    breaker = make(FakeClock())
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


def test_stays_open_during_cooldown():
    """An open breaker refuses calls until the cooldown has elapsed."""
    clock = FakeClock()
    breaker = make(clock)
    trip(breaker)
    clock.advance(29.9)
    assert not breaker.allow()
    assert not breaker.available()
    assert abs(breaker.retry_in() - 0.1) < 1e-9


def test_half_opens_after_cooldown_with_one_trial_at_a_time():
    """After the cooldown one trial call goes through; others wait until it reports."""
    clock = FakeClock()
    breaker = make(clock)
    trip(breaker)
    clock.advance(30)
    assert breaker.available()
    assert breaker.allow()
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.available()
    assert not breaker.allow()


def test_closes_on_trial_success():
    """A successful trial closes the breaker and clears the failure count."""
    clock = FakeClock()
    breaker = make(clock)
    trip(breaker)
    clock.advance(30)
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.opened_at is None
    assert breaker.consecutive_failures == 0
    assert breaker.allow() and breaker.allow()


def test_reopens_on_trial_failure_and_restarts_cooldown():
    """A failed trial reopens the breaker with a fresh cooldown."""
    clock = FakeClock()
    breaker = make(clock)
    trip(breaker)
    clock.advance(30)
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.opened_at == clock.now
    clock.advance(29)
    assert not breaker.allow()


def test_release_gives_back_the_trial_slot():
    """A trial whose outcome does not count is released, so another trial may go."""
    clock = FakeClock()
    breaker = make(clock)
    trip(breaker)
    clock.advance(30)
    assert breaker.allow()
    breaker.release()
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()


def test_lost_trial_expires_after_a_cooldown():
    """A trial that never reports does not keep the breaker half-open for ever."""
    clock = FakeClock()
    breaker = make(clock)
    trip(breaker)
    clock.advance(30)
    assert breaker.allow()
    clock.advance(30)
    assert breaker.allow()


def test_client_errors_do_not_count():
    """Rejections and auth failures do not count; unavailability, invalid invoices and bugs do."""
    assert counts_for_breaker(ProviderUnavailable("down"))
    assert counts_for_breaker(InvalidInvoice("bad signature"))
    assert counts_for_breaker(KeyError("bug"))
    assert not counts_for_breaker(ProviderRejected("amount too large"))
    assert not counts_for_breaker(ProviderAuthFailed("401"))


def test_on_change_sees_every_transition():
    """on_change is called with (old, new) for each state change."""
    clock = FakeClock()
    changes = []
    breaker = make(clock, on_change=lambda old, new: changes.append((old, new)))
    trip(breaker)
    clock.advance(30)
    breaker.allow()
    breaker.record_success()
    assert changes == [
        (BreakerState.CLOSED, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.CLOSED),
    ]


def test_failing_on_change_does_not_break_the_breaker():
    """An exception in on_change is logged and the transition still happens."""

    def boom(old, new):
        raise RuntimeError("metrics down")

    breaker = make(FakeClock(), on_change=boom)
    trip(breaker)
    assert breaker.state is BreakerState.OPEN


def test_snapshot_reports_state_for_monitoring():
    """snapshot() gives the state, failure count and time until the next trial."""
    clock = FakeClock()
    breaker = make(clock)
    trip(breaker)
    clock.advance(18)
    snap = breaker.snapshot()
    assert snap["state"] == "open"
    assert snap["consecutive_failures"] == 3
    assert snap["retry_in_s"] == 12.0
    assert snap["opened_at"] == clock.now - 18


def test_state_changes_are_structured_log_events():
    """Each change of state is one structlog event naming the provider, the old and new
    states: WARNING when it opens, INFO when it recovers."""
    from structlog.testing import capture_logs

    clock = FakeClock()
    breaker = make(clock)
    with capture_logs() as logs:
        trip(breaker)
        clock.advance(31)
        assert breaker.allow()
        breaker.record_success()
    assert [(e["log_level"], e["event"], e["provider"], e["old"], e["new"]) for e in logs] == [
        ("warning", "breaker_state_changed", "lnbits", "closed", "open"),
        ("info", "breaker_state_changed", "lnbits", "open", "half_open"),
        ("info", "breaker_state_changed", "lnbits", "half_open", "closed"),
    ]
