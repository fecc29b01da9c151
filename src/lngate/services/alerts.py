"""Alert rules: small state machines fed with provider calls and health probes.

The three rules of the original note, thresholds configurable:

- ``failures``: at least ``failure_count`` (4) failed calls among a provider's last
  ``failure_window`` (5) calls. Resolved once fewer than ``failure_count`` of the last calls
  failed. A refusal of one request (``provider_rejected``) says nothing about the provider and
  is not counted; timeouts and auth failures are (one classification for the breaker, the
  router and these rules: :mod:`lngate.resilience.failures`).
- ``slow_response``: a call that took longer than ``slow_response_s`` (10 s); resolved after
  ``recovery_calls`` (3) consecutive calls within the threshold.
- ``unavailable``: health probes have said unhealthy for more than ``unavailable_s`` (300 s)
  without interruption; resolved by the first healthy probe.

Each (rule, provider) pair is an incident tracker::

    OK ──condition──▶ FIRING      "fired" sent            (the cool-down since the last
    OK ──condition──▶ MUTED       nothing sent             "fired" of this pair has elapsed,
    MUTED ──cool-down over, still true──▶ FIRING           or not)
    FIRING ──recovered──▶ OK      "resolved" sent
    MUTED ──recovered──▶ OK       nothing sent (nothing was announced)

So an incident is announced once, its end is announced once, and a flapping provider produces
at most one "fired" per cool-down. Time comes from an injected clock.

With several instances only the leader runs an engine, fed with every instance's stored calls
and its own probes. A new leader starts from what is stored (:meth:`AlertEngine.resume`): the
last calls of each provider replayed without announcing anything, then the incidents still
open (announced and not resolved) and the time of each pair's last "fired" (the cool-down).
Whatever the engine emits is announced only once across instances: the dispatcher records an
incident as open, or closes it, in the database first (one open incident per rule and
provider), and announces only what it recorded.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lngate.resilience.failures import classify_code
from lngate.services.clock import WallClock



class AlertKind(enum.StrEnum):
    """Whether an alert opens or closes an incident."""

    FIRED = "fired"
    RESOLVED = "resolved"


class Rule(enum.StrEnum):
    """The alert rules."""

    FAILURES = "failures"
    SLOW_RESPONSE = "slow_response"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class AlertThresholds:
    """Configurable thresholds (settings ``ALERT_*``)."""

    failure_count: int = 4
    failure_window: int = 5
    slow_response_s: float = 10.0
    unavailable_s: float = 300.0
    cooldown_s: float = 900.0
    recovery_calls: int = 3

    def __post_init__(self) -> None:
        if not 1 <= self.failure_count <= self.failure_window:
            raise ValueError("need 1 <= failure_count <= failure_window")
        if self.recovery_calls < 1:
            raise ValueError("recovery_calls must be at least 1")


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One alert to store and deliver."""

    rule: Rule
    provider: str
    kind: AlertKind
    at: datetime
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        """A one-line summary for a subject line or a chat message."""
        tag = "ALERT" if self.kind is AlertKind.FIRED else "RESOLVED"
        return f"[lngate {tag}] {self.provider}: {self.message}"


class _State(enum.Enum):
    OK = "ok"
    FIRING = "firing"
    MUTED = "muted"


class Incident:
    """The incident tracker of one (rule, provider) pair (see the module docstring)."""

    def __init__(self, rule: Rule, provider: str, *, cooldown: timedelta) -> None:
        self.rule, self.provider, self.cooldown = rule, provider, cooldown
        self.state = _State.OK
        self.last_fired_at: datetime | None = None
        self.started_at: datetime | None = None

    @property
    def active(self) -> bool:
        """Whether the condition currently holds (announced or muted)."""
        return self.state is not _State.OK

    def update(self, condition: bool, now: datetime, message: str,
               details: dict[str, Any]) -> AlertEvent | None:
        """Feed the rule's current verdict; the event to send, if any."""
        if condition:
            if self.state is _State.OK:
                self.started_at = now
            if self.state is not _State.FIRING and self._cooled_down(now):
                self.state, self.last_fired_at = _State.FIRING, now
                return AlertEvent(self.rule, self.provider, AlertKind.FIRED, now, message,
                                  {**details, "incident_started_at": _iso(self.started_at)})
            if self.state is _State.OK:
                self.state = _State.MUTED
            return None
        was, self.state = self.state, _State.OK
        if was is _State.FIRING:
            started, self.started_at = self.started_at, None
            return AlertEvent(self.rule, self.provider, AlertKind.RESOLVED, now, message,
                              {**details, "incident_started_at": _iso(started)})
        self.started_at = None
        return None

    def _cooled_down(self, now: datetime) -> bool:
        return self.last_fired_at is None or now - self.last_fired_at >= self.cooldown

    def resume(self, *, announced_at: datetime | None, last_fired_at: datetime | None) -> None:
        """Take up what is stored: ``announced_at`` is when the open incident of this pair was
        announced (``None``: none is open), ``last_fired_at`` its latest "fired"."""
        self.last_fired_at = last_fired_at
        if announced_at is not None:
            self.state = _State.FIRING
            self.started_at = self.started_at or announced_at
        elif self.state is _State.FIRING:  # the condition holds, but nobody announced it
            self.state = _State.MUTED


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


class AlertEngine:
    """Applies the rules to what it is fed and hands each alert to ``emit`` (synchronously)."""

    def __init__(self, thresholds: AlertThresholds, *, clock: WallClock,
                 emit: Callable[[AlertEvent], object]) -> None:
        self.thresholds = thresholds
        self._clock = clock
        self._emit = emit
        self._cooldown = timedelta(seconds=thresholds.cooldown_s)
        self._incidents: dict[tuple[Rule, str], Incident] = {}
        self._recent: dict[str, deque[bool]] = {}
        self._fast_streak: dict[str, int] = {}
        self._down_since: dict[str, datetime] = {}

    def reset(self) -> None:
        """Forget everything observed (this process stopped leading)."""
        self._incidents.clear()
        self._recent.clear()
        self._fast_streak.clear()
        self._down_since.clear()

    def resume(self, recent_calls: Iterable[tuple[str, bool, float, str | None]],
               announced: Mapping[tuple[str, str], datetime],
               last_fired: Mapping[tuple[str, str], datetime]) -> None:
        """Start over from what is stored: replay ``recent_calls`` (``(provider, ok,
        duration_s, error_type)``, oldest first) without emitting, then take up the incidents
        ``announced`` and still open and each pair's ``last_fired`` time, both keyed by
        ``(rule, provider)``."""
        self.reset()
        emit, self._emit = self._emit, lambda _event: None
        try:
            for provider, ok, duration_s, error_type in recent_calls:
                self.observe_call(provider, ok=ok, duration_s=duration_s, error_type=error_type)
        finally:
            self._emit = emit
        known = {rule.value for rule in Rule}
        for rule, provider in {*announced, *last_fired}:
            if rule in known:  # a rule of another version of lngate is left alone
                self.incident(Rule(rule), provider)
        for (rule, provider), incident in self._incidents.items():
            incident.resume(announced_at=announced.get((rule.value, provider)),
                            last_fired_at=last_fired.get((rule.value, provider)))

    def incident(self, rule: Rule, provider: str) -> Incident:
        """The tracker of ``rule`` for ``provider`` (created on first use)."""
        key = (rule, provider)
        if key not in self._incidents:
            self._incidents[key] = Incident(rule, provider, cooldown=self._cooldown)
        return self._incidents[key]

    def active(self) -> list[tuple[str, str]]:
        """``(rule, provider)`` of every incident whose condition currently holds."""
        return [(r.value, p) for (r, p), i in self._incidents.items() if i.active]

    # -- inputs ---------------------------------------------------------------------------

    def observe_call(self, provider: str, *, ok: bool, duration_s: float,
                     error_type: str | None = None) -> None:
        """Feed one finished provider call (a skipped one must not be fed)."""
        now = self._clock()
        t = self.thresholds
        if ok or classify_code(error_type).counts_against_provider:
            recent = self._recent.setdefault(provider, deque(maxlen=t.failure_window))
            recent.append(not ok)
            failures = sum(recent)
            self._fire(self.incident(Rule.FAILURES, provider).update(
                failures >= t.failure_count, now,
                f"{failures} of the last {len(recent)} calls failed" if failures >= t.failure_count
                else f"calls succeed again ({failures} of the last {len(recent)} failed)",
                {"failures": failures, "calls": len(recent), "last_error": error_type},
            ))
        slow = self.incident(Rule.SLOW_RESPONSE, provider)
        if duration_s > t.slow_response_s:
            self._fast_streak[provider] = 0
            self._fire(slow.update(True, now, f"a call took {duration_s:.1f} s "
                                   f"(threshold {t.slow_response_s:g} s)",
                                   {"duration_s": round(duration_s, 3)}))
        elif slow.active:
            streak = self._fast_streak.get(provider, 0) + 1
            self._fast_streak[provider] = streak
            if streak >= t.recovery_calls:
                self._fire(slow.update(False, now, f"response times are back under "
                                       f"{t.slow_response_s:g} s", {"fast_calls": streak}))

    def observe_probe(self, provider: str, *, healthy: bool, error: str | None = None) -> None:
        """Feed one health probe result."""
        now = self._clock()
        incident = self.incident(Rule.UNAVAILABLE, provider)
        if healthy:
            down_since = self._down_since.pop(provider, None)
            if incident.active:
                minutes = (now - down_since).total_seconds() / 60 if down_since else 0
                self._fire(incident.update(False, now, f"available again after "
                                           f"{minutes:.1f} min", {"down_minutes": round(minutes, 2)}))
            return
        down_since = self._down_since.setdefault(provider, now)
        down_s = (now - down_since).total_seconds()
        if down_s > self.thresholds.unavailable_s:
            self._fire(incident.update(True, now, f"unavailable for {down_s / 60:.1f} min "
                                       f"({error or 'unhealthy'})",
                                       {"down_since": down_since.isoformat(), "error": error}))

    def _fire(self, event: AlertEvent | None) -> None:
        if event is not None:
            self._emit(event)
