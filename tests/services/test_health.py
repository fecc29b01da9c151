"""Health probes: parallel and bounded, stored, fed to the router, and trial calls for breakers."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from lngate.domain import HealthReport
from lngate.providers.base import Capabilities
from lngate.resilience.breaker import BreakerState, CircuitBreaker
from lngate.resilience.deadline import AttemptTimeoutPolicy
from lngate.resilience.looplag import LoopLagMonitor
from lngate.resilience.router import Router
from lngate.services.health import HealthMonitor, ProbeResult, probe_all
from lngate.store import Database
from lngate.store.tables import health_checks
from tests.resilience import FakeClock


class ProbedProvider:
    """A provider whose health() answers healthy, unhealthy, hangs or raises."""

    capabilities = Capabilities()

    def __init__(self, name: str, mode: str = "healthy", delay: float = 0.0) -> None:
        self.name, self.mode, self.delay = name, mode, delay
        self.probes = 0

    async def health(self) -> HealthReport:
        self.probes += 1
        await asyncio.sleep(self.delay)
        if self.mode == "hang":
            await asyncio.sleep(3600)
        if self.mode == "raise":
            raise RuntimeError("bug in health()")
        if self.mode == "unhealthy":
            return HealthReport(healthy=False, response_time_ms=1.0, error="HTTP 502")
        return HealthReport(healthy=True, response_time_ms=1.0)

    async def create_invoice(self, **_: object) -> None:
        raise NotImplementedError

    async def invoice_status(self, payment_hash: str) -> None:
        return None

    async def aclose(self) -> None:
        pass


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_router(providers: list[ProbedProvider], clock: FakeClock, cooldown: float = 30.0) -> Router:
    breakers = {p.name: CircuitBreaker(p.name, clock=clock, failure_threshold=1, cooldown=cooldown)
                for p in providers}
    return Router(providers, breakers=breakers, timeouts=AttemptTimeoutPolicy(), clock=clock)  # type: ignore[arg-type]


async def test_a_hung_provider_delays_nobody() -> None:
    """Three providers, one hung: the round ends at the timeout, the others' results intact."""
    providers = [ProbedProvider("a", delay=0.2), ProbedProvider("hung", "hang"),
                 ProbedProvider("c", "unhealthy", delay=0.25)]
    started = time.perf_counter()
    results = await probe_all(providers, timeout=0.3, clock=utcnow)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    assert 0.3 <= elapsed < 0.6, elapsed  # parallel: max(0.2, 0.3, 0.25); in turn: 0.75
    by_name = {r.provider: r for r in results}
    assert [r.provider for r in results] == ["a", "hung", "c"]
    assert by_name["a"].healthy and by_name["a"].error is None
    assert not by_name["hung"].healthy and by_name["hung"].error == "no answer within 0.3 s"
    assert 290 <= by_name["hung"].response_ms < 600
    assert not by_name["c"].healthy and by_name["c"].error == "HTTP 502"


async def test_a_raising_health_check_is_an_unhealthy_result() -> None:
    """A bug in a provider's health() is reported as unhealthy with the error, not raised."""
    [result] = await probe_all([ProbedProvider("x", "raise")], timeout=1, clock=utcnow)  # type: ignore[list-item]
    assert not result.healthy and result.error == "RuntimeError: bug in health()"


async def test_round_stores_results_and_feeds_router_and_listeners(sqlite_db: Database) -> None:
    """Each round is stored in health_checks, marks the router and reaches every listener."""
    providers = [ProbedProvider("a"), ProbedProvider("b", "unhealthy")]
    router = make_router(providers, FakeClock())
    heard = []
    monitor = HealthMonitor(providers, router=router, db=sqlite_db, timeout=0.5,  # type: ignore[arg-type]
                            clock=utcnow, listeners=[heard.append])
    await monitor.run_once()
    await monitor.run_once()
    snapshot = router.snapshot()
    assert snapshot["a"]["healthy"] is True and snapshot["b"]["healthy"] is False
    assert [r.provider for r in heard] == ["a", "b", "a", "b"]
    assert monitor.latest["b"].error == "HTTP 502"
    async with sqlite_db.connect() as conn:
        rows = (await conn.execute(select(health_checks.c.provider, health_checks.c.healthy,
                                          health_checks.c.error))).all()
    assert sorted(rows) == [("a", True, None), ("a", True, None), ("b", False, "HTTP 502"),
                            ("b", False, "HTTP 502")]
    assert router.plan().candidates[0].name == "a"


async def test_healthy_probe_closes_an_open_breaker_past_its_cooldown(sqlite_db: Database) -> None:
    """Past the cooldown, a healthy probe is the trial call and closes the breaker."""
    clock = FakeClock()
    providers = [ProbedProvider("a")]
    router = make_router(providers, clock, cooldown=30)
    monitor = HealthMonitor(providers, router=router, db=sqlite_db, timeout=0.5, clock=utcnow)  # type: ignore[arg-type]
    breaker = router.breaker("a")
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.advance(10)
    await monitor.run_once()  # within the cooldown: left alone
    assert breaker.state is BreakerState.OPEN
    clock.advance(25)
    await monitor.run_once()
    assert breaker.state is BreakerState.CLOSED


async def test_unhealthy_probe_reopens_an_open_breaker_past_its_cooldown(sqlite_db: Database) -> None:
    """Past the cooldown, an unhealthy probe is a failed trial: the cooldown starts again."""
    clock = FakeClock()
    providers = [ProbedProvider("a", "unhealthy")]
    router = make_router(providers, clock, cooldown=30)
    monitor = HealthMonitor(providers, router=router, db=sqlite_db, timeout=0.5, clock=utcnow)  # type: ignore[arg-type]
    breaker = router.breaker("a")
    breaker.record_failure()
    first_opened = breaker.opened_at
    clock.advance(31)
    await monitor.run_once()
    assert breaker.state is BreakerState.OPEN and breaker.opened_at == first_opened + 31
    assert breaker.retry_in() == 30


async def test_probes_leave_a_closed_breaker_alone(sqlite_db: Database) -> None:
    """Unhealthy probes do not open a closed breaker (it counts real calls)."""
    clock = FakeClock()
    providers = [ProbedProvider("a", "unhealthy")]
    router = make_router(providers, clock)
    monitor = HealthMonitor(providers, router=router, db=sqlite_db, timeout=0.5, clock=utcnow)  # type: ignore[arg-type]
    for _ in range(5):
        await monitor.run_once()
    assert router.breaker("a").state is BreakerState.CLOSED


class ClockJumpingProvider(ProbedProvider):
    """Hangs, after moving the round's clock past its deadline (time spent elsewhere)."""

    def __init__(self, name: str, clock: FakeClock, jump: float) -> None:
        super().__init__(name, "hang")
        self.clock, self.jump = clock, jump

    async def health(self) -> HealthReport:
        self.clock.advance(self.jump)
        return await super().health()


async def test_a_round_keeps_its_bookkeeping_within_its_deadline(sqlite_db: Database) -> None:
    """A round of ``timeout`` has one deadline: a hung provider's probe gets the round less
    the bookkeeping reserve, and the store is not waited for past the deadline (it finishes
    in the background, before the next round's)."""
    clock = FakeClock()
    providers = [ProbedProvider("a"), ClockJumpingProvider("hung", clock, jump=5.0)]
    router = make_router(providers, FakeClock())
    monitor = HealthMonitor(providers, router=router, db=sqlite_db, timeout=0.3,  # type: ignore[arg-type]
                            clock=utcnow, monotonic=clock)
    results = await monitor.run_once()
    by_name = {r.provider: r for r in results}
    # 0.3 s less the reserve (a tenth of it): the probe alone can no longer fill the round
    assert by_name["hung"].error == "no answer within 0.27 s"
    assert by_name["a"].healthy
    # the deadline had passed when the probes ended: run_once returned without waiting for
    # the store; flush waits for it, and nothing is lost
    assert monitor.store_pending
    await monitor.flush()
    assert not monitor.store_pending
    async with sqlite_db.connect() as conn:
        rows = (await conn.execute(select(health_checks.c.provider))).all()
    assert sorted(rows) == [("a",), ("hung",)]


class LoopBlockingProvider(ProbedProvider):
    """Answers healthy, but only after our own loop was blocked past the probe's timeout."""

    async def health(self) -> HealthReport:
        time.sleep(0.4)  # noqa: ASYNC251 -- the point: our own loop is stuck, not the provider
        await asyncio.sleep(3600)
        return await super().health()


@pytest.mark.parametrize("with_lag", [False, True])
async def test_a_probe_our_own_lag_timed_out_is_not_judged(sqlite_db: Database,
                                                           with_lag: bool) -> None:
    """A probe that ran out of time while our event loop was blocked is not held against the
    provider when the loop's lag is known: not applied to the router, nor to the listeners
    (alert rules), nor stored. Without the lag monitor, the same probe marks it unhealthy."""
    providers = [ProbedProvider("a"), LoopBlockingProvider("b")]
    router = make_router(providers, FakeClock())
    heard: list[ProbeResult] = []
    monitor_lag = LoopLagMonitor(interval=0.01)
    task = asyncio.create_task(monitor_lag.run())
    await asyncio.sleep(0.02)
    try:
        monitor = HealthMonitor(providers, router=router, db=sqlite_db, timeout=0.3,  # type: ignore[arg-type]
                                clock=utcnow, listeners=[heard.append],
                                lag=monitor_lag if with_lag else None)
        results = await monitor.run_once()
        await monitor.flush()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    b = results[1]
    async with sqlite_db.connect() as conn:
        stored = {row[0] for row in (await conn.execute(select(health_checks.c.provider))).all()}
    if with_lag:
        assert not b.judged and b.error is not None and b.error.startswith("not judged")
        assert router.snapshot()["b"]["healthy"] is None
        assert [r.provider for r in heard] == ["a"] and stored == {"a"}
    else:
        assert b.judged and router.snapshot()["b"]["healthy"] is False
        assert [r.provider for r in heard] == ["a", "b"] and stored == {"a", "b"}
