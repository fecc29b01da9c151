"""Alert rules with a fake clock: each fires once per incident, resolves, respects the cool-down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lngate.services.alerts import AlertEngine, AlertEvent, AlertKind, AlertThresholds, Rule


class FakeClock:
    """A wall clock that only moves when told."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock at a fixed instant."""
    return FakeClock()


def engine(clock: FakeClock, **thresholds: float) -> tuple[AlertEngine, list[AlertEvent]]:
    events: list[AlertEvent] = []
    return AlertEngine(AlertThresholds(**thresholds), clock=clock, emit=events.append), events


def kinds(events: list[AlertEvent], rule: Rule) -> list[str]:
    return [e.kind.value for e in events if e.rule is rule]


def test_failures_rule_fires_once_at_four_of_five(clock: FakeClock) -> None:
    """Four failures among the last five calls fire one alert; more failures fire nothing more."""
    alerts, events = engine(clock)
    for ok in (True, False, False, False):
        alerts.observe_call("lnbits", ok=ok, duration_s=0.1, error_type=None if ok else "x")
    assert events == []
    alerts.observe_call("lnbits", ok=False, duration_s=0.1, error_type="provider_unavailable")
    assert kinds(events, Rule.FAILURES) == ["fired"]
    assert events[0].provider == "lnbits" and "4 of the last 5" in events[0].message
    for _ in range(10):
        alerts.observe_call("lnbits", ok=False, duration_s=0.1, error_type="provider_unavailable")
    assert kinds(events, Rule.FAILURES) == ["fired"]


def test_failures_rule_resolves_when_calls_succeed_again(clock: FakeClock) -> None:
    """Once fewer than four of the last five calls failed, one "resolved" is sent."""
    alerts, events = engine(clock)
    for _ in range(5):
        alerts.observe_call("nwc", ok=False, duration_s=0.1, error_type="provider_unavailable")
    alerts.observe_call("nwc", ok=True, duration_s=0.1)  # F F F F S: still 4
    assert kinds(events, Rule.FAILURES) == ["fired"]
    alerts.observe_call("nwc", ok=True, duration_s=0.1)  # F F F S S: 3
    assert kinds(events, Rule.FAILURES) == ["fired", "resolved"]
    assert events[-1].kind is AlertKind.RESOLVED and events[-1].details["incident_started_at"]
    for _ in range(5):
        alerts.observe_call("nwc", ok=True, duration_s=0.1)
    assert kinds(events, Rule.FAILURES) == ["fired", "resolved"]


def test_failures_rule_respects_the_cooldown(clock: FakeClock) -> None:
    """A new incident inside the cool-down is not announced (nor its end); after it, it is."""
    alerts, events = engine(clock, cooldown_s=600)

    def fail(n: int) -> None:
        for _ in range(n):
            alerts.observe_call("lnbits", ok=False, duration_s=0.1, error_type="provider_unavailable")

    def recover() -> None:
        for _ in range(5):
            alerts.observe_call("lnbits", ok=True, duration_s=0.1)

    fail(4)
    recover()
    assert kinds(events, Rule.FAILURES) == ["fired", "resolved"]
    clock.advance(120)
    fail(4)  # a second incident two minutes after the first alert: muted
    assert kinds(events, Rule.FAILURES) == ["fired", "resolved"]
    recover()  # its end is not announced either
    assert kinds(events, Rule.FAILURES) == ["fired", "resolved"]
    clock.advance(300)
    fail(4)  # still within 600 s of the first alert
    clock.advance(200)  # 620 s after the first alert, the incident goes on
    fail(1)
    assert kinds(events, Rule.FAILURES) == ["fired", "resolved", "fired"]
    recover()
    assert kinds(events, Rule.FAILURES) == ["fired", "resolved", "fired", "resolved"]


def test_rejected_requests_do_not_count_as_failures(clock: FakeClock) -> None:
    """A provider refusing one request (provider_rejected) is not a failing provider."""
    alerts, events = engine(clock)
    for _ in range(10):
        alerts.observe_call("lnbits", ok=False, duration_s=0.1, error_type="provider_rejected")
    assert events == []


def test_slow_response_fires_once_and_resolves_after_fast_calls(clock: FakeClock) -> None:
    """A call over 10 s fires once; three calls under the threshold in a row resolve it."""
    alerts, events = engine(clock)
    alerts.observe_call("lnbits", ok=True, duration_s=9.9)
    assert events == []
    alerts.observe_call("lnbits", ok=True, duration_s=12.5)
    alerts.observe_call("lnbits", ok=True, duration_s=11.0)
    assert kinds(events, Rule.SLOW_RESPONSE) == ["fired"]
    assert events[0].details["duration_s"] == 12.5
    alerts.observe_call("lnbits", ok=True, duration_s=0.2)
    alerts.observe_call("lnbits", ok=True, duration_s=0.2)
    alerts.observe_call("lnbits", ok=True, duration_s=10.5)  # slow again: the streak restarts
    alerts.observe_call("lnbits", ok=True, duration_s=0.2)
    alerts.observe_call("lnbits", ok=True, duration_s=0.2)
    assert kinds(events, Rule.SLOW_RESPONSE) == ["fired"]
    alerts.observe_call("lnbits", ok=True, duration_s=0.2)
    assert kinds(events, Rule.SLOW_RESPONSE) == ["fired", "resolved"]


def test_slow_response_respects_the_cooldown(clock: FakeClock) -> None:
    """Slow calls again within the cool-down stay silent; after it they fire again."""
    alerts, events = engine(clock, cooldown_s=900)
    alerts.observe_call("lnbits", ok=True, duration_s=15)
    for _ in range(3):
        alerts.observe_call("lnbits", ok=True, duration_s=0.1)
    clock.advance(60)
    alerts.observe_call("lnbits", ok=True, duration_s=15)
    assert kinds(events, Rule.SLOW_RESPONSE) == ["fired", "resolved"]
    clock.advance(900)
    alerts.observe_call("lnbits", ok=True, duration_s=15)
    assert kinds(events, Rule.SLOW_RESPONSE) == ["fired", "resolved", "fired"]


def test_unavailable_fires_after_five_minutes_once_and_resolves(clock: FakeClock) -> None:
    """Unhealthy probes for more than 5 minutes fire once; the first healthy probe resolves."""
    alerts, events = engine(clock)
    for _ in range(10):  # 0 s .. 270 s
        alerts.observe_probe("lnbits", healthy=False, error="connection refused")
        clock.advance(30)
    alerts.observe_probe("lnbits", healthy=False, error="connection refused")  # 300 s: not over
    assert events == []
    clock.advance(30)
    alerts.observe_probe("lnbits", healthy=False, error="connection refused")  # 330 s
    assert kinds(events, Rule.UNAVAILABLE) == ["fired"]
    assert "connection refused" in events[0].message
    for _ in range(20):
        clock.advance(30)
        alerts.observe_probe("lnbits", healthy=False, error="connection refused")
    assert kinds(events, Rule.UNAVAILABLE) == ["fired"]
    alerts.observe_probe("lnbits", healthy=True)
    assert kinds(events, Rule.UNAVAILABLE) == ["fired", "resolved"]
    assert "available again" in events[-1].message


def test_a_short_outage_is_not_an_incident(clock: FakeClock) -> None:
    """Down for less than the threshold, then healthy: nothing is sent, and the count restarts."""
    alerts, events = engine(clock, unavailable_s=300)
    alerts.observe_probe("nwc", healthy=False)
    clock.advance(240)
    alerts.observe_probe("nwc", healthy=True)
    clock.advance(30)
    alerts.observe_probe("nwc", healthy=False)
    clock.advance(240)
    alerts.observe_probe("nwc", healthy=False)
    assert events == []


def test_unavailable_respects_the_cooldown(clock: FakeClock) -> None:
    """A second long outage within the cool-down is announced only once the cool-down ends."""
    alerts, events = engine(clock, unavailable_s=60, cooldown_s=600)
    alerts.observe_probe("lnbits", healthy=False)
    clock.advance(61)
    alerts.observe_probe("lnbits", healthy=False)  # fired at t=61
    alerts.observe_probe("lnbits", healthy=True)   # resolved
    clock.advance(10)
    alerts.observe_probe("lnbits", healthy=False)
    clock.advance(61)
    alerts.observe_probe("lnbits", healthy=False)  # t=132: muted
    assert kinds(events, Rule.UNAVAILABLE) == ["fired", "resolved"]
    clock.advance(540)
    alerts.observe_probe("lnbits", healthy=False)  # t=672: cool-down over, still down
    assert kinds(events, Rule.UNAVAILABLE) == ["fired", "resolved", "fired"]


def test_providers_are_tracked_separately(clock: FakeClock) -> None:
    """One provider's failures never fire or resolve another's alert."""
    alerts, events = engine(clock)
    for _ in range(4):
        alerts.observe_call("lnbits", ok=False, duration_s=0.1, error_type="provider_unavailable")
        alerts.observe_call("nwc", ok=True, duration_s=0.1)
    assert [(e.provider, e.kind.value) for e in events] == [("lnbits", "fired")]
    assert alerts.active() == [("failures", "lnbits")]


def test_thresholds_are_configurable(clock: FakeClock) -> None:
    """Two failures of the last three fire when so configured."""
    alerts, events = engine(clock, failure_count=2, failure_window=3)
    alerts.observe_call("lnbits", ok=False, duration_s=0.1, error_type="provider_unavailable")
    alerts.observe_call("lnbits", ok=False, duration_s=0.1, error_type="provider_unavailable")
    assert kinds(events, Rule.FAILURES) == ["fired"]


def test_incoherent_thresholds_are_refused() -> None:
    """More failures than the window can hold is a configuration error."""
    with pytest.raises(ValueError):
        AlertThresholds(failure_count=6, failure_window=5)


FAILED = ("lnbits", False, 0.1, "provider_unavailable")
OK_CALL = ("lnbits", True, 0.1, None)


def test_a_new_leader_takes_up_an_announced_incident_and_announces_only_its_end(
    clock: FakeClock,
) -> None:
    """Resumed with the last calls (failing) and the incident announced by the previous
    leader, the engine announces nothing more while it lasts, and its end once."""
    alerts, events = engine(clock)
    alerts.resume([FAILED] * 5, {("failures", "lnbits"): clock.now}, {})
    assert events == []
    alerts.observe_call("lnbits", ok=False, duration_s=0.1, error_type="provider_unavailable")
    assert events == []
    for _ in range(3):
        alerts.observe_call("lnbits", ok=True, duration_s=0.1)
    assert kinds(events, Rule.FAILURES) == ["resolved"]


def test_an_incident_nobody_announced_is_announced_by_the_new_leader(clock: FakeClock) -> None:
    """Failing calls that the previous leader never announced (it died first) are announced at
    the next call, unless the pair fired within the cool-down."""
    alerts, events = engine(clock, cooldown_s=600)
    alerts.resume([FAILED] * 5, {}, {})
    assert events == []
    alerts.observe_call("lnbits", ok=False, duration_s=0.1, error_type="provider_unavailable")
    assert kinds(events, Rule.FAILURES) == ["fired"]

    muted, quiet = engine(clock, cooldown_s=600)
    muted.resume([FAILED] * 5, {}, {("failures", "lnbits"): clock.now})
    muted.observe_call("lnbits", ok=False, duration_s=0.1, error_type="provider_unavailable")
    assert quiet == []


def test_an_incident_that_ended_during_the_takeover_is_resolved(clock: FakeClock) -> None:
    """Announced by the previous leader, recovered since: the first call resolves it."""
    alerts, events = engine(clock)
    alerts.resume([OK_CALL] * 5, {("failures", "lnbits"): clock.now,
                                  ("unknown_rule", "lnbits"): clock.now}, {})
    alerts.observe_call("lnbits", ok=True, duration_s=0.1)
    assert kinds(events, Rule.FAILURES) == ["resolved"]
