"""The event-loop lag monitor, and that our own lag never counts as a provider's failure."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from lngate.domain import ProviderInvoice
from lngate.errors import NoProviderAvailable
from lngate.providers.base import Capabilities
from lngate.resilience.breaker import CircuitBreaker
from lngate.resilience.deadline import AttemptTimeoutPolicy
from lngate.resilience.failures import FailureKind, classify_code
from lngate.resilience.looplag import LoopLagMonitor
from lngate.resilience.router import AttemptRecord, Outcome, Router
from tests.resilience import FakeClock

# -- the monitor, on an injected clock ------------------------------------------------------


def test_lag_since_sums_the_lateness_after_a_moment() -> None:
    """The lateness of wake-ups after ``start`` is summed, clipped to the time since it."""
    clock = FakeClock(100.0)
    monitor = LoopLagMonitor(interval=0.02, clock=clock)
    monitor.record(due=100.02, woke=100.02)  # on time
    monitor.record(due=100.04, woke=100.54)  # 0.5 s late: the loop was busy
    monitor.record(due=100.56, woke=100.66)  # 0.1 s late
    clock.now = 100.7
    assert monitor.lag_since(100.0) == pytest.approx(0.6)
    assert monitor.lag_since(100.3) == pytest.approx(0.24 + 0.1)  # only what fell after it
    assert monitor.lag_since(100.66) == 0.0
    assert monitor.total_lag == pytest.approx(0.6)


def test_an_overdue_wake_up_counts_while_the_loop_is_still_blocked() -> None:
    """A wake-up that is due and has not come yet is lag now (a loop blocked this moment)."""
    clock = FakeClock(10.0)
    monitor = LoopLagMonitor(interval=0.02, clock=clock)
    monitor.expect(10.02)
    clock.now = 10.72
    assert monitor.lag_since(10.0) == pytest.approx(0.7)
    assert monitor.lag_since(10.5) == pytest.approx(0.22)
    assert monitor.recent_max() == pytest.approx(0.7)


def test_recent_max_forgets_old_spikes() -> None:
    """The gauge shows the worst lateness of the recent window only."""
    clock = FakeClock(0.0)
    monitor = LoopLagMonitor(interval=0.02, clock=clock)
    monitor.record(due=1.0, woke=1.8)
    monitor.record(due=2.0, woke=2.01)
    clock.now = 2.02
    assert monitor.recent_max(window=5) == pytest.approx(0.8)
    clock.now = 30.0
    assert monitor.recent_max(window=5) == 0.0


async def test_the_running_monitor_sees_a_blocked_loop() -> None:
    """Run for real, a loop blocked for 0.3 s shows as about 0.3 s of lag."""
    monitor = LoopLagMonitor(interval=0.01)
    task = asyncio.create_task(monitor.run())
    try:
        await asyncio.sleep(0.05)
        start = time.monotonic()
        time.sleep(0.3)  # noqa: ASYNC251 -- the point: block the loop
        assert monitor.lag_since(start) >= 0.25  # overdue, before the monitor even woke
        await asyncio.sleep(0.03)
        assert monitor.lag_since(start) >= 0.25
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_an_overload_code_counts_nowhere() -> None:
    """The code of an attempt abandoned for our own overload counts against no provider."""
    kind = classify_code("gateway_overloaded")
    assert kind is FailureKind.OVERLOAD
    assert not kind.opens_breaker and not kind.counts_against_provider


# -- the router, with a deliberately blocked loop, against a real local upstream -------------


class HttpProvider:
    """A provider whose create is a real HTTP call to a local, instantaneous upstream."""

    capabilities = Capabilities()

    def __init__(self, url: str, session: aiohttp.ClientSession, block: float) -> None:
        self.name = "upstream"
        self.url, self.session, self.block = url, session, block
        self.lookups = 0

    async def create_invoice(self, **_: object) -> ProviderInvoice:
        await self._blocked_call()
        return ProviderInvoice("lnbc1", "ab" * 32, 1000, "ref")

    async def invoice_status(self, payment_hash: str) -> None:
        self.lookups += 1
        await self._blocked_call()
        return None

    async def _blocked_call(self) -> None:
        # While the request is in flight, the event loop is blocked (a long synchronous
        # stretch of our own): the answer is there at once, but nobody reads it in time.
        asyncio.get_running_loop().call_soon(time.sleep, self.block)
        async with self.session.get(self.url) as response:
            await response.read()

    async def aclose(self) -> None:
        pass


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    app = web.Application()

    async def answer(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app.router.add_get("/", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def lag_monitor() -> AsyncIterator[LoopLagMonitor]:
    monitor = LoopLagMonitor(interval=0.01)
    task = asyncio.create_task(monitor.run())
    await asyncio.sleep(0.02)
    try:
        yield monitor
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def blocked_router(provider: HttpProvider, *, lag: LoopLagMonitor | None, deadline: float,
                   records: list[AttemptRecord]) -> Router:
    breaker = CircuitBreaker(provider.name, clock=time.monotonic, failure_threshold=1,
                             cooldown=30)
    return Router([provider], breakers={provider.name: breaker},  # type: ignore[list-item]
                  timeouts=AttemptTimeoutPolicy(default=0.3, floor=0.25),
                  clock=time.monotonic, deadline_seconds=deadline, lag=lag,
                  on_attempt=records.append)


async def attempt(provider: HttpProvider, _timeout: float) -> ProviderInvoice:
    return await provider.create_invoice()


async def test_without_the_lag_monitor_our_own_lag_opens_the_breaker(upstream: str) -> None:
    """The setup of the next tests, with no monitor: a 0.6 s block of our loop makes the
    instantaneous upstream "time out" and opens its breaker (what overload used to do)."""
    async with aiohttp.ClientSession() as session:
        provider = HttpProvider(upstream, session, block=0.6)
        records: list[AttemptRecord] = []
        router = blocked_router(provider, lag=None, deadline=3.0, records=records)
        with pytest.raises(NoProviderAvailable):
            await router.run_create(attempt)
        assert router.breaker(provider.name).state.value == "open"
        assert records[0].outcome is Outcome.TIMEOUT


async def test_loop_lag_is_given_back_to_the_attempt(upstream: str) -> None:
    """With the monitor, the same 0.6 s block is not held against the 0.3 s attempt timeout:
    the answer is read once the loop runs again, and the breaker stays closed."""
    async with aiohttp.ClientSession() as session, lag_monitor() as monitor:
        provider = HttpProvider(upstream, session, block=0.6)
        records: list[AttemptRecord] = []
        router = blocked_router(provider, lag=monitor, deadline=3.0, records=records)
        result = await router.run_create(attempt)
        assert result.provider == provider.name
        breaker = router.breaker(provider.name)
        assert breaker.state.value == "closed" and breaker.consecutive_failures == 0
        assert [r.outcome for r in records] == [Outcome.SUCCESS]
        # the 0.6 s block is ours: it is not the provider's latency (timeouts, demotion,
        # slow-response alerts)
        assert records[0].duration_s < 0.3


async def test_lag_past_the_deadline_is_our_overload_not_a_provider_failure(
        upstream: str) -> None:
    """A block longer than the whole request's deadline ends the request, as our own
    overload: the breaker, the router's statistics and the alert rules are left alone."""
    async with aiohttp.ClientSession() as session, lag_monitor() as monitor:
        provider = HttpProvider(upstream, session, block=1.0)
        records: list[AttemptRecord] = []
        router = blocked_router(provider, lag=monitor, deadline=0.6, records=records)
        with pytest.raises(NoProviderAvailable) as info:
            await router.run_create(attempt)
        assert info.value.codes == {provider.name: "gateway_overloaded"}
        breaker = router.breaker(provider.name)
        assert breaker.state.value == "closed" and breaker.consecutive_failures == 0
        assert router.snapshot()[provider.name]["calls"] == 0  # statistics untouched
        [record] = records
        # skipped: the alert rules and the provider's metrics ignore it
        assert record.outcome is Outcome.SKIPPED and record.error_type == "gateway_overloaded"


async def test_loop_lag_is_given_back_to_a_lookup(upstream: str) -> None:
    """A lookup's attempt gets our own lag back as a create's does: the 0.6 s block is not a
    timeout of the 0.3 s attempt, so the provider is asked once, not again by a retry (under
    load, the reconciler looked an invoice up twice)."""
    async with aiohttp.ClientSession() as session, lag_monitor() as monitor:
        provider = HttpProvider(upstream, session, block=0.6)
        router = blocked_router(provider, lag=monitor, deadline=3.0, records=[])
        status = await router.run_lookup(provider.name,
                                         lambda p: p.invoice_status("ab" * 32))
        assert status is None
        assert provider.lookups == 1
