"""Route invoice creation across providers; look invoices up at the provider that issued them.

Routing rule (:meth:`Router.plan`)
----------------------------------
1. Start from the configured priority order.
2. Skip each provider whose circuit breaker refuses calls: open ("circuit open, retry in 12 s"),
   or half-open with its single trial call already in flight.
3. Sort the others, stably, into three groups; within a group the priority order holds:

   a. *preferred*: nothing below applies (no data counts as good);
   b. *degraded*: over its recent calls (the last ``stats_window`` calls no older than
      ``stats_max_age`` seconds, at least ``min_calls`` of them) its success rate is below
      ``min_success_rate``, or the p95 latency of its answered and timed-out calls is above
      ``slow_after`` seconds;
   c. *down*: the latest health probe (:meth:`Router.mark_health`) said unhealthy.

   Providers named ``last_resort`` (the test provider in demo mode) always come after all
   others, so a fake invoice is never preferred to a degraded real provider.

4. When no breaker lets a call through (every provider skipped in step 2), the *panic rule*:
   the provider whose cool-down ends first (priority order breaks ties; ``last_resort`` ones
   come last) is tried at once, as an early half-open trial (:meth:`CircuitBreaker.allow_early`):
   one call at a time in the whole pool, so a still-dead provider costs one attempt per request,
   never a stampede, and a recovered one serves at once instead of after its cool-down (with a
   single provider, customers were refused for the whole cool-down). While that trial is in
   flight, other requests are refused as before. Like Envoy's panic threshold, which balances
   over every host rather than none when too few are healthy, the breakers never eject the
   whole pool; unlike it, the panic traffic is one trial at a time.

Priority is overridden only on evidence, and the evidence ages out: a demoted provider gets its
place back once its bad calls are older than ``stats_max_age``, or at once when a health probe
says it is healthy: :meth:`Router.mark_health` with ``True`` forgets the failed calls seen
before it (its successful calls, and their latencies, stay), as Envoy un-ejects a host on a
successful active health check. A success counts as success; what counts as a failure is
:func:`lngate.resilience.failures.classify`'s rule (an outage or a refused key; a plain
rejection of the request is not counted), the same one the breaker and the alert rules use.

Creating (:meth:`Router.run_create`)
------------------------------------
The planned providers are tried in order while the request's deadline (default 3 s) leaves at
least ``timeouts.floor`` seconds. Each attempt gets ``min(timeouts.timeout_for(provider),
time left)`` seconds, enforced with :func:`asyncio.wait_for`. Then:

- success: the result is returned;
- ``ProviderUnavailable``: retried once on the same provider, unless it was our own timeout (a
  hung provider: a retry only spends the deadline), the provider asked to back off
  (``retry_after``), its breaker now refuses, or the retry would cut into the next provider's
  attempt timeout; then the next provider. Only answers set the attempt timeout (timeouts
  would make it grow with every timeout of a hung provider). A retried create may
  mint a second invoice that is never shown: the retry's :class:`AttemptRecord` has
  ``retry=True`` and a warning is logged;
- ``InvalidInvoice``: the next provider, no retry;
- ``ProviderRejected`` / ``ProviderAuthFailed``: the next provider (the request may be fine
  elsewhere); the breaker is untouched;
- any other exception is a bug in the provider or in the attempt callable. It is logged with
  its traceback and treated like an unavailable provider (counts for the breaker, no retry):
  a bug in one provider must not block failover.

When every provider fails or is skipped, :class:`~lngate.errors.NoProviderAvailable` is raised
with one reason per configured provider.

Our own lag is not the provider's failure. Given a ``lag`` source (the process's
:class:`~lngate.resilience.looplag.LoopLagMonitor`), an attempt's timeout counts only the time
the event loop ran for it: past its timeout it gets the lagged time again, within the
request's deadline (:func:`~lngate.resilience.deadline.bounded`), and the lag is taken out of
the latency it records (timeouts, demotion for slowness, slow-response alerts). An attempt that
still runs out of time, or fails only after its timeout's worth of wall time, while the loop
lagged for at least half of it and ran for it less than its timeout, is
:class:`~lngate.errors.GatewayOverloaded`: the breaker, the statistics and the timeouts are
left alone, and its record is ``skipped`` with the code ``gateway_overloaded`` (so the alert
rules and the provider's metrics ignore it too).

Looking up (:meth:`Router.run_lookup`)
--------------------------------------
Never fails over: an invoice is only known to the provider that issued it. Lookups are retried
(:func:`~lngate.resilience.retry.retry_read`) and are *not* gated by the breaker, since there is
nobody else to ask and refusing would only delay settlement. Nor do they feed the breaker, the
timeouts or the statistics, which are about creating: the reconciler's bursts of lookups (a
rate-limited relay answering "too many queries") once opened both breakers and turned healthy
providers into 503s. Their records still reach ``on_attempt`` (provider_calls, alerts).
Our own lag is given back to a lookup's attempt as to a create's (within the lookup's
deadline): cut off and retried, an answer that sat unread behind our overload cost the provider
a second look-up, and the overload more work.
"""

from __future__ import annotations

import enum
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import structlog

from lngate.errors import (
    CallFailed,
    GatewayOverloaded,
    NoProviderAvailable,
    ProviderUnavailable,
)
from lngate.percentiles import percentile
from lngate.providers.base import Provider
from lngate.resilience.breaker import BreakerState, CircuitBreaker
from lngate.resilience.deadline import (
    AttemptTimeoutPolicy,
    Clock,
    Deadline,
    LagSource,
    bounded,
    is_timeout,
)
from lngate.resilience.failures import FailureKind, classify, error_code
from lngate.resilience.retry import is_transient, retry_read

T = TypeVar("T")

log = structlog.get_logger("lngate.resilience.router")

CREATE_INVOICE = "create_invoice"
OVERLOAD_LOG_INTERVAL = 1.0
"""Seconds between two warnings of attempts abandoned for our own overload."""


class Outcome(enum.StrEnum):
    """How one attempt ended."""

    SUCCESS = "success"
    FAILURE = "failure"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"
    """Not tried (breaker, deadline), or abandoned because our own event loop lagged it out
    of its time (code ``gateway_overloaded``): says nothing about the provider."""


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One call (or skipped call) to a provider, for ``provider_calls`` and the logs."""

    provider: str
    operation: str
    started_at: float
    """Clock (monotonic) time the attempt started."""
    duration_s: float
    outcome: Outcome
    error_type: str | None = None
    """The error's ``code`` (``internal_error`` for a bug, ``circuit_open``, ...)."""
    error_message: str | None = None
    retry: bool = False
    """A second create on the same provider: the first may have minted an unused invoice."""


AttemptHook = Callable[[AttemptRecord], object]
"""Receives each :class:`AttemptRecord` synchronously; it must be quick (e.g. enqueue)."""


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """The providers to try, in order, and those skipped with why."""

    candidates: list[Provider]
    skipped: dict[str, str]
    panic: str | None = None
    """The provider tried early under the panic rule (every breaker open), if any."""


@dataclass(frozen=True, slots=True)
class RouteResult(Generic[T]):
    """A successful routed create: the value, who served it, and every attempt made."""

    value: T
    provider: str
    attempts: list[AttemptRecord]
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Sample:
    at: float
    ok: bool
    latency: float | None


class Router:
    """Chooses providers for creates and runs calls with timeouts, retries and breakers."""

    def __init__(
        self,
        providers: Sequence[Provider],
        *,
        breakers: Mapping[str, CircuitBreaker],
        timeouts: AttemptTimeoutPolicy,
        clock: Clock,
        deadline_seconds: float = 3.0,
        stats_window: int = 20,
        stats_max_age: float = 300.0,
        min_calls: int = 5,
        min_success_rate: float = 0.5,
        slow_after: float = 1.0,
        lookup_timeout: float = 5.0,
        lookup_attempts: int = 3,
        on_attempt: AttemptHook | None = None,
        last_resort: frozenset[str] = frozenset(),
        lookup_only: Sequence[Provider] = (),
        lag: LagSource | None = None,
    ) -> None:
        """``providers`` in priority order; one missing from ``breakers`` gets a default breaker.

        Providers named in ``last_resort`` (the test provider in demo mode) stay behind every
        other one, however degraded the others are. ``lookup_only`` providers are never asked
        to create an invoice, but invoices they issued elsewhere (the admin's simulations on
        the private test provider) can still be looked up, hence settled. ``lag`` (the
        process's event-loop lag) keeps our own overload from counting against a provider (see
        the module's docstring).
        """
        names = [p.name for p in providers]
        every = names + [p.name for p in lookup_only]
        if len(set(every)) != len(every):
            raise ValueError(f"provider names must be unique: {every}")
        self._providers = list(providers)
        self._by_name = {p.name: p for p in providers}
        self._lookup = {p.name: p for p in [*providers, *lookup_only]}
        self._breakers = {
            name: breakers.get(name) or CircuitBreaker(name, clock=clock) for name in names
        }
        self._timeouts = timeouts
        self._clock = clock
        self._deadline_seconds = deadline_seconds
        self._stats_max_age = stats_max_age
        self._min_calls = min_calls
        self._min_success_rate = min_success_rate
        self._slow_after = slow_after
        self._lookup_timeout = lookup_timeout
        self._lookup_attempts = lookup_attempts
        self._on_attempt = on_attempt
        self._last_resort = last_resort
        self._lag = lag
        self._overload_logged_at = -OVERLOAD_LOG_INTERVAL
        self._stats: dict[str, deque[_Sample]] = {n: deque(maxlen=stats_window) for n in names}
        self._health: dict[str, bool | None] = dict.fromkeys(names)

    # -- planning -------------------------------------------------------------------------

    def breaker(self, name: str) -> CircuitBreaker:
        """The circuit breaker of provider ``name`` (e.g. for an admin reset)."""
        return self._breakers[name]

    def mark_health(self, name: str, healthy: bool) -> None:
        """Record the latest health probe result of provider ``name``.

        A healthy probe also forgets the failed calls recorded before it, so a provider demoted
        for its failures gets its place back now, not once they age out.
        """
        if name not in self._by_name:
            raise KeyError(name)
        self._health[name] = healthy
        if healthy:
            samples = self._stats[name]
            kept = [sample for sample in samples if sample.ok]
            samples.clear()
            samples.extend(kept)

    def plan(self) -> RoutePlan:
        """The providers to try for a create, in order, per the module's routing rule."""
        skipped: dict[str, str] = {}
        ranked: list[tuple[bool, int, Provider]] = []  # (last resort, group, provider)
        for provider in self._providers:
            breaker = self._breakers[provider.name]
            if breaker.available():
                last = provider.name in self._last_resort
                ranked.append((last, self._standing(provider.name)[0], provider))
            else:
                skipped[provider.name] = _refusal(breaker)
        ranked.sort(key=lambda entry: entry[:2])  # stable: priority order within a group
        if not ranked and (panic := self._panic_candidate()) is not None:
            del skipped[panic.name]
            return RoutePlan([panic], skipped, panic=panic.name)
        return RoutePlan([p for *_, p in ranked], skipped)

    def _panic_candidate(self) -> Provider | None:
        """The provider the panic rule tries early: the first out of its cool-down; ``None``
        while any trial call is in flight (one at a time in the whole pool)."""
        breakers = [self._breakers[p.name] for p in self._providers]
        if any(b.state is BreakerState.HALF_OPEN and not b.available() for b in breakers):
            return None
        order = sorted(
            enumerate(self._providers),
            key=lambda entry: (entry[1].name in self._last_resort,
                               self._breakers[entry[1].name].retry_in(), entry[0]),
        )
        return order[0][1] if order else None

    def _standing(self, name: str) -> tuple[int, str | None]:
        """(group, why): 0 preferred, 1 degraded, 2 down."""
        if self._health[name] is False:
            return 2, "unhealthy by the latest health probe"
        samples = self._recent(name)
        if len(samples) >= self._min_calls:
            rate = sum(s.ok for s in samples) / len(samples)
            if rate < self._min_success_rate:
                return 1, f"recent success rate {rate:.0%}"
        latencies = [s.latency for s in samples if s.latency is not None]
        if len(latencies) >= self._min_calls:
            p95 = percentile(latencies, 95)
            if p95 > self._slow_after:
                return 1, f"recent p95 latency {p95:.2f} s"
        return 0, None

    def _recent(self, name: str) -> list[_Sample]:
        oldest = self._clock() - self._stats_max_age
        return [s for s in self._stats[name] if s.at >= oldest]

    # -- creating -------------------------------------------------------------------------

    async def run_create(
        self,
        attempt: Callable[[Provider, float], Awaitable[T]],
        *,
        on_attempt: AttemptHook | None = None,
    ) -> RouteResult[T]:
        """Run ``attempt(provider, timeout)`` on the planned providers until one succeeds.

        ``attempt`` creates and validates an invoice and raises from the error tree; it should
        finish within ``timeout`` seconds, which is enforced anyway. ``on_attempt`` receives
        this request's attempt records, in addition to the router's hook. Raises
        :class:`NoProviderAvailable` when all fail.
        """
        deadline = Deadline.after(self._deadline_seconds, clock=self._clock)
        plan = self.plan()
        records: list[AttemptRecord] = []
        reasons: dict[str, str] = {}
        codes: dict[str, str] = {}
        skipped = dict(plan.skipped)

        def emit(record: AttemptRecord) -> None:
            records.append(record)
            self._emit(record, on_attempt)

        def skip(name: str, why: str, error_type: str) -> None:
            reasons[name] = skipped[name] = why
            codes[name] = error_type
            emit(AttemptRecord(name, CREATE_INVOICE, self._clock(), 0.0, Outcome.SKIPPED,
                               error_type, why))

        for name, why in plan.skipped.items():
            skip(name, why, "circuit_open")

        for index, provider in enumerate(plan.candidates):
            name = provider.name
            breaker = self._breakers[name]
            following = plan.candidates[index + 1 :]
            retry = False
            if name == plan.panic:
                log.warning("panic_trial", provider=name,
                            cooldown_left_s=round(breaker.retry_in(), 1),
                            message="every circuit is open: trying this provider before its "
                            "cool-down ends, one trial call at a time")
            while True:
                budget = deadline.remaining()
                if retry and following:
                    budget -= self._timeouts.timeout_for(following[0].name)
                if budget < self._timeouts.floor:
                    if not retry:
                        skip(name, f"not tried: deadline of {self._deadline_seconds:g} s reached",
                             "deadline_exceeded")
                    break
                early = name == plan.panic and not retry
                if not (breaker.allow_early() if early else breaker.allow()):
                    if not retry:
                        skip(name, _refusal(breaker), "circuit_open")
                    break
                timeout = min(self._timeouts.timeout_for(name), budget)
                if retry:
                    log.warning("create_retried", provider=name,
                                message="the failed attempt may have minted an invoice that "
                                "will never be shown")
                started_at = self._clock()
                began = time.monotonic()
                try:
                    value = await bounded(lambda: attempt(provider, timeout), timeout,
                                          provider=name, lag=self._lag, limit=budget)
                except Exception as exc:
                    exc = self._overloaded(exc, began, timeout) or exc
                    emit(self._finish(name, CREATE_INVOICE, started_at, exc, retry=retry,
                                      gated=True, lagged=self._lagged(exc, began)))
                    reasons[name], codes[name] = _reason(exc), _code(exc)
                    if retry or not _retry_create(exc):
                        break
                    retry = True
                    continue
                except BaseException:
                    breaker.release()  # cancelled: not the provider's fault
                    raise
                emit(self._finish(name, CREATE_INVOICE, started_at, None, retry=retry,
                                  gated=True, lagged=self._lagged(None, began)))
                return RouteResult(value, name, records, skipped)

        raise NoProviderAvailable({p.name: reasons[p.name] for p in self._providers},
                                  {p.name: codes[p.name] for p in self._providers})

    def _lagged(self, exc: Exception | None, began: float) -> float:
        """Seconds of our own loop lag within an attempt that began at ``began``, taken out of
        its recorded duration (not for one abandoned as overloaded: its record says how long
        the customer waited)."""
        if self._lag is None or isinstance(exc, GatewayOverloaded):
            return 0.0
        return self._lag.lag_since(began)

    def _overloaded(self, exc: Exception, began: float, timeout: float) -> Exception | None:
        """``exc`` as :class:`GatewayOverloaded` when our own lag, not the provider, ran the
        attempt out of time (rule in the module's docstring); else ``None``."""
        if self._lag is None or not isinstance(exc, ProviderUnavailable):
            return None
        elapsed = time.monotonic() - began
        if elapsed < timeout and not is_timeout(exc):
            return None  # it failed before its time was up: the provider's own answer
        lagged = min(self._lag.lag_since(began), elapsed)
        if lagged < elapsed / 2 or elapsed - lagged >= timeout:
            return None
        overloaded = GatewayOverloaded(
            f"abandoned after {elapsed:.2f} s, {lagged:.2f} s of them the gateway's own event-loop "
            f"lag (overloaded): not the provider's failure", provider=exc.provider)
        overloaded.__cause__ = exc
        now = time.monotonic()
        if now - self._overload_logged_at >= OVERLOAD_LOG_INTERVAL:
            # once a second at most: under overload, a line per request adds to the overload
            self._overload_logged_at = now
            log.warning("create_attempt_overloaded", provider=exc.provider,
                        elapsed_s=round(elapsed, 3), loop_lag_s=round(lagged, 3),
                        timeout_s=round(timeout, 3))
        return overloaded

    # -- looking up -----------------------------------------------------------------------

    async def run_lookup(
        self,
        provider_name: str,
        call: Callable[[Provider], Awaitable[T]],
        *,
        operation: str = "invoice_status",
        on_attempt: AttemptHook | None = None,
    ) -> T:
        """Run ``call(provider)`` at provider ``provider_name`` only, with retries.

        Transient failures are retried within ``lookup_attempts`` and ``lookup_timeout``; each
        attempt is cut off at the provider's attempt timeout. Returns the value or raises the
        last error; an unconfigured provider raises ``ProviderUnavailable``.
        """
        provider = self._lookup.get(provider_name)
        if provider is None:
            raise ProviderUnavailable("provider is not configured", provider=provider_name)

        def observe(started_at: float, _duration: float, exc: Exception | None) -> None:
            self._emit(self._finish(provider_name, operation, started_at, exc, gated=False),
                       on_attempt)

        return await retry_read(
            lambda: call(provider),
            clock=self._clock,
            timeout=self._lookup_timeout,
            attempts=self._lookup_attempts,
            attempt_timeout=self._timeouts.timeout_for(provider_name),
            provider=provider_name,
            observe=observe,
            lag=self._lag,
        )

    # -- bookkeeping ----------------------------------------------------------------------

    def _finish(
        self,
        name: str,
        operation: str,
        started_at: float,
        exc: Exception | None,
        *,
        gated: bool,
        retry: bool = False,
        lagged: float = 0.0,
    ) -> AttemptRecord:
        """Feed a create's outcome to the breaker, latencies and stats; return its record.

        Lookups (``gated=False``) only produce their record: a burst of reconciler lookups
        failing (a rate-limited relay, a slow status endpoint) must not open the breaker that
        gates invoice creation, nor drag the create timeouts. ``lagged`` seconds of our own
        event-loop lag are not the provider's latency: they are taken out of the duration
        that feeds the timeouts, the statistics (demotion for slowness), the record and so the
        alert rules' slow-response rule.
        """
        now = self._clock()
        duration = max(0.0, now - started_at - lagged)
        timed_out = exc is not None and is_timeout(exc)
        kind = None if exc is None else classify(exc)
        if gated:
            breaker = self._breakers[name]
            if kind is None:
                breaker.record_success()
            elif kind.opens_breaker:
                breaker.record_failure()
            else:
                breaker.release()
        if exc is not None and not isinstance(exc, CallFailed):
            log.error("provider_unexpected_error", provider=name, operation=operation,
                      error=type(exc).__name__, exc_info=exc)

        if gated:
            # Only answers set the attempt timeout: fed with timeouts, p95 x k would grow with
            # every timeout of a hung provider. Timeouts still count as slow for demotion.
            if exc is None:
                self._timeouts.observe(name, duration)
            latency = duration if exc is None or timed_out else None
            if kind is None or kind.counts_against_provider:
                self._stats[name].append(_Sample(now, kind is None, latency))

        if exc is None:
            return AttemptRecord(name, operation, started_at, duration, Outcome.SUCCESS,
                                 retry=retry)
        if kind is FailureKind.OVERLOAD:
            outcome = Outcome.SKIPPED  # ignored by the alert rules and the provider's metrics
        else:
            outcome = Outcome.TIMEOUT if timed_out else Outcome.FAILURE
        return AttemptRecord(
            name,
            operation,
            started_at,
            duration,
            outcome,
            _code(exc),
            _message(exc),
            retry,
        )

    def _emit(self, record: AttemptRecord, extra: AttemptHook | None) -> None:
        for hook in (self._on_attempt, extra):
            if hook is None:
                continue
            try:
                hook(record)
            except Exception:
                # Metrics must never cost a customer an invoice.
                log.exception("attempt_hook_failed", provider=record.provider)

    # -- monitoring -----------------------------------------------------------------------

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Per provider, in priority order: breaker, health, recent success rate, latencies."""
        result: dict[str, dict[str, Any]] = {}
        for priority, provider in enumerate(self._providers):
            name = provider.name
            samples = self._recent(name)
            latencies = [s.latency for s in samples if s.latency is not None]
            group, why = self._standing(name)
            result[name] = {
                "priority": priority,
                "healthy": self._health[name],
                "breaker": self._breakers[name].snapshot(),
                "calls": len(samples),
                "success_rate": (sum(s.ok for s in samples) / len(samples)) if samples else None,
                "p50_s": percentile(latencies, 50) if latencies else None,
                "p95_s": percentile(latencies, 95) if latencies else None,
                "attempt_timeout_s": self._timeouts.timeout_for(name),
                "demoted": why,
            }
        return result


def _refusal(breaker: CircuitBreaker) -> str:
    if breaker.state is BreakerState.OPEN:
        return f"circuit open, retry in {math.ceil(breaker.retry_in())} s"
    return "circuit half-open, trial call in progress"


def _retry_create(exc: Exception) -> bool:
    # A provider that sent Retry-After asked us to back off; one that timed out is hung, and
    # a retry would only spend the deadline: in both cases another provider can serve now.
    return (is_transient(exc) and getattr(exc, "retry_after", None) is None
            and not is_timeout(exc))


def _code(exc: Exception) -> str:
    return error_code(exc)


def _message(exc: Exception) -> str:
    if isinstance(exc, CallFailed):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


def _reason(exc: Exception) -> str:
    return f"{_code(exc)}: {_message(exc)}"
