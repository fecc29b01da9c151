"""Health probes: every provider in parallel, each bounded by its own timeout.

A probe round calls every provider's ``health()`` at once, each under ``asyncio.wait_for``, so
a hung provider costs its own timeout and delays nobody. Results are stored in
``health_checks`` and fed to the router (:meth:`Router.mark_health`), to the breakers and to any
listeners (alert rules, Prometheus gauges).

A round (:meth:`HealthMonitor.run_once`) has one deadline, ``timeout`` seconds on the monotonic
clock from its start, and the bookkeeping around the probes is inside it: the probes get what
is left of it less a reserve (:func:`bookkeeping_reserve`, 50 ms of the default 1 s) for
feeding the results on and storing them; the store is awaited until the deadline at most, and
a store that is late (a slow database) finishes in the background, before the next round's.
So a round with a hung provider ends by its deadline, whatever the database does.

Our own overload is not the provider's: given the process's event-loop ``lag``, a probe that
timed out while the loop lagged for at least half of its time is *not judged*
(``ProbeResult.judged`` false): it is returned, and logged, but neither applied (routing,
breaker, listeners, alert rules) nor stored, as :mod:`lngate.resilience.router` does for creates.

Breakers and probes: a probe touches a provider's breaker only when the breaker is open and its
cooldown has elapsed, that is when a trial call is due anyway. The probe then *is* the trial
call: healthy closes the breaker, unhealthy reopens it (the cooldown starts again). So a dead
provider's recovery is noticed without sacrificing a customer's request as the trial, and a
customer's request is not sent to a provider that still fails its probe. While the breaker is
closed, or open within its cooldown, probes leave it alone: it counts real calls, and an
unhealthy probe already demotes the provider in the routing order through ``mark_health``.

Several instances: only the leader probes (:meth:`HealthMonitor.run_once`); the others read the
latest stored result of each provider every few seconds (:meth:`HealthMonitor.follow_once`)
and apply each new one as if they had probed: routing order, breaker trial, readiness, gauges.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog

from lngate.providers.base import Provider
from lngate.resilience.breaker import BreakerState
from lngate.resilience.deadline import Clock, Deadline, LagSource
from lngate.resilience.router import Router
from lngate.services.clock import WallClock
from lngate.store import Database
from lngate.store.database import is_transient
from lngate.store.monitoring import HealthCheckRow, insert_health_checks, latest_health_checks

log = structlog.get_logger("lngate.health")


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One provider's probe: when, whether healthy, how long it took, what went wrong."""

    provider: str
    checked_at: datetime
    healthy: bool
    response_ms: float
    error: str | None = None
    node_pubkey: str | None = None
    """The node key the provider reported (NWC ``get_info``, CLN/LND ``getinfo``), if any."""
    judged: bool = True
    """False when the probe ran out of time because our own event loop lagged: it says
    nothing about the provider."""


ProbeListener = Callable[[ProbeResult], object]
BOOKKEEPING_RESERVE = 0.05
"""Seconds of a round kept for the work after the probes (at most a tenth of the round)."""


def bookkeeping_reserve(timeout: float) -> float:
    """The part of a round of ``timeout`` seconds kept for feeding and storing the results."""
    return min(BOOKKEEPING_RESERVE, timeout / 10)


async def probe(provider: Provider, *, timeout: float, clock: WallClock,
                lag: LagSource | None = None) -> ProbeResult:
    """Probe one provider within ``timeout`` seconds; never raises (except cancellation).

    With ``lag``, a timeout the event loop's lag caused gives a result that is not judged."""
    checked_at = clock()
    started = time.perf_counter()
    began = time.monotonic()
    try:
        report = await asyncio.wait_for(provider.health(), timeout)
    except TimeoutError:
        elapsed = time.monotonic() - began
        lagged = lag.lag_since(began) if lag is not None else 0.0
        if lag is not None and lagged >= elapsed / 2:
            return ProbeResult(provider.name, checked_at, False, elapsed * 1000,
                               f"not judged: the gateway's event loop lagged {lagged:.2f} s "
                               f"of the {timeout:g} s (overloaded)", judged=False)
        return ProbeResult(provider.name, checked_at, False, (time.perf_counter() - started) * 1000,
                           f"no answer within {timeout:g} s")
    except Exception as exc:  # health() must not raise; a bug in it is an unhealthy provider
        return ProbeResult(provider.name, checked_at, False, (time.perf_counter() - started) * 1000,
                           f"{type(exc).__name__}: {exc}")
    return ProbeResult(provider.name, checked_at, report.healthy,
                       round((time.perf_counter() - started) * 1000, 3), report.error,
                       report.node_pubkey)


async def probe_all(
    providers: Sequence[Provider], *, timeout: float, clock: WallClock,
    lag: LagSource | None = None,
) -> list[ProbeResult]:
    """Probe every provider in parallel; results in the providers' order."""
    return list(await asyncio.gather(*(probe(p, timeout=timeout, clock=clock, lag=lag)
                                       for p in providers)))


class HealthMonitor:
    """Runs probe rounds, keeps the latest result per provider and feeds the results on."""

    def __init__(
        self,
        providers: Sequence[Provider],
        *,
        router: Router,
        db: Database,
        timeout: float,
        clock: WallClock,
        listeners: Sequence[ProbeListener] = (),
        monotonic: Clock = time.monotonic,
        lag: LagSource | None = None,
    ) -> None:
        """``timeout`` bounds a whole round (see the module docstring); ``monotonic`` is the
        clock of its deadline; ``lag`` the process's event-loop lag."""
        self._providers = list(providers)
        self._router = router
        self._db = db
        self.timeout = timeout
        self._clock = clock
        self._listeners = list(listeners)
        self._monotonic = monotonic
        self._lag = lag
        self.latest: dict[str, ProbeResult] = {}
        self.rounds = 0
        self._storing: asyncio.Future[None] | None = None
        """The latest round's store, while it runs."""

    def add_listener(self, listener: ProbeListener) -> None:
        """Also call ``listener`` with each probe result."""
        self._listeners.append(listener)

    @property
    def provider_names(self) -> list[str]:
        """The probed providers, in priority order."""
        return [p.name for p in self._providers]

    async def run_once(self) -> list[ProbeResult]:
        """One round within ``timeout``: probe all, feed router, breakers and listeners, store
        the results (see the module docstring for the deadline)."""
        deadline = Deadline.after(self.timeout, clock=self._monotonic)
        budget = max(0.0, deadline.remaining() - bookkeeping_reserve(self.timeout))
        results = await probe_all(self._providers, timeout=budget, clock=self._clock,
                                  lag=self._lag)
        for result in results:
            if not result.judged:
                log.warning("probe_not_judged", provider=result.provider, error=result.error)
                continue
            self._apply(result)
            if not result.healthy:
                log.warning("provider_unhealthy", provider=result.provider,
                            response_ms=round(result.response_ms, 1), error=result.error)
        self.rounds += 1
        judged = [r for r in results if r.judged]
        storing = asyncio.ensure_future(self._store(judged, self._storing))
        storing.add_done_callback(_report_late_failure)
        self._storing = storing
        try:
            await asyncio.wait_for(asyncio.shield(storing), deadline.remaining())
        except TimeoutError:
            log.warning("health_checks_store_late", message="the probe results are stored "
                        "after the round's deadline")
        return results

    @property
    def store_pending(self) -> bool:
        """Whether a round's results are still being stored (after its deadline)."""
        return self._storing is not None and not self._storing.done()

    async def flush(self) -> None:
        """Wait for the latest round's results to be stored (a late store goes on after its
        round)."""
        if self._storing is not None:
            await asyncio.shield(self._storing)

    async def _store(self, results: list[ProbeResult],
                     previous: asyncio.Future[None] | None) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])  # rounds stored in order; its failure is its own
        if not results:
            return
        try:
            async with self._db.transaction() as conn:
                await insert_health_checks(conn, [
                    HealthCheckRow(r.provider, r.checked_at, r.healthy, r.response_ms, r.error,
                                   r.node_pubkey)
                    for r in results
                ])
        except Exception as exc:
            if not is_transient(exc):
                raise
            # a database hiccup: the probes' effects above stand; the history misses a round
            log.error("health_checks_store_failed", error=type(exc).__name__)

    async def follow_once(self) -> list[ProbeResult]:
        """Apply each provider's latest stored probe result that is newer than the one known
        here (the leader's probes, on the other instances); the results applied."""
        async with self._db.connect() as conn:
            stored = await latest_health_checks(conn, self.provider_names)
        applied = []
        for row in stored.values():
            known = self.latest.get(row.provider)
            if known is not None and known.checked_at >= row.checked_at:
                continue
            result = ProbeResult(row.provider, row.checked_at, row.healthy, row.response_ms,
                                 row.error, row.node_pubkey)
            self._apply(result)
            applied.append(result)
        return applied

    def _apply(self, result: ProbeResult) -> None:
        """Make ``result`` the latest probe of its provider: routing, breaker, listeners."""
        self.latest[result.provider] = result
        self._router.mark_health(result.provider, result.healthy)
        self._trial(result)
        for listener in self._listeners:
            try:
                listener(result)
            except Exception:  # a broken listener must not stop the probes
                log.exception("probe_listener_failed", provider=result.provider)

    def _trial(self, result: ProbeResult) -> None:
        """Use the probe as the trial call of an open breaker whose cooldown has elapsed."""
        breaker = self._router.breaker(result.provider)
        if breaker.state is not BreakerState.OPEN or breaker.retry_in() > 0:
            return
        if not breaker.allow():  # moves it to half-open and claims the trial slot
            return
        if result.healthy:
            breaker.record_success()
            log.info("breaker_closed_by_probe", provider=result.provider)
        else:
            breaker.record_failure()


def _report_late_failure(storing: asyncio.Future[None]) -> None:
    """Log a failed store (one that ends within its round also raises in :meth:`run_once`);
    reading the exception here also keeps asyncio from warning that nobody did."""
    if not storing.cancelled() and storing.exception() is not None:
        log.error("health_checks_store_failed", error=type(storing.exception()).__name__)
