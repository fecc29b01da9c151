"""The reconciler: each invoice is checked on its age-based schedule through settle (paid ones
settle, overdue ones expire, late payments are caught within the margin), a pass stays within
its lease and the per-provider look-up cap, and concurrent reconcilers claim work once."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from lngate.domain import InvoiceState, Network, OrderStatus, Product
from lngate.errors import ProviderUnavailable
from lngate.providers.testprovider import TestProvider
from lngate.services.orders import CreatedOrder
from lngate.services.reconciler import (
    ReconcilerConfig,
    ReconcilerState,
    TokenBucket,
    reconcile_once,
)
from lngate.tasks.payments import run_reconciler
from lngate.store import Database
from lngate.store.tables import invoices
from tests.services.conftest import Kit, SettableClock, make_kit

# The defaults, without the look-up cap (it runs in real time; its own test sets it).
CONFIG = ReconcilerConfig(batch_size=7, concurrency=4, lookups_per_second=0)
STEP = 15  # seconds between passes, as RECONCILE_INTERVAL_SECONDS


class CountingProvider(TestProvider):
    """The test provider, counting (and timing) status lookups per payment hash."""

    __test__ = False

    def __init__(self, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self.lookups: Counter[str] = Counter()
        self.lookup_times: list[float] = []
        self.delay = 0.002  # a little latency, so concurrent passes overlap
        self.down = False

    async def invoice_status(self, payment_hash: str):  # type: ignore[no-untyped-def]
        self.lookups[payment_hash] += 1
        self.lookup_times.append(time.monotonic())
        await asyncio.sleep(self.delay)
        if self.down:
            raise ProviderUnavailable("down for the test", provider=self.name)
        return await super().invoice_status(payment_hash)


@pytest.fixture
async def counting_kit(db: Database, clock: SettableClock) -> AsyncIterator[Kit]:
    """A kit on the counting provider, its event-loop lag measured as the process does (the
    router gives a look-up our own lag back: a loaded machine must not turn one check into a
    timed-out look-up and its retry, two look-ups)."""
    provider = CountingProvider(network=Network.BITCOIN, clock=clock)
    kit = await make_kit(db, provider, clock, pin=provider.node_pubkey)
    monitor = asyncio.create_task(kit.gateway.loop_lag.run())
    try:
        yield kit
    finally:
        monitor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await monitor


def provider_of(kit: Kit) -> CountingProvider:
    assert isinstance(kit.provider, CountingProvider)
    return kit.provider


async def reconcile(kit: Kit, config: ReconcilerConfig = CONFIG,  # type: ignore[no-untyped-def]
                    state: ReconcilerState | None = None):
    return await reconcile_once(db=kit.db, settle=kit.settler.settle, clock=kit.clock,
                                config=config, state=state)


async def run_passes(kit: Kit, seconds: float, config: ReconcilerConfig = CONFIG) -> None:
    """A pass every STEP seconds of the kit's clock, for ``seconds``."""
    for _ in range(int(seconds // STEP)):
        kit.clock.advance(STEP)
        await reconcile(kit, config)


async def state_of(kit: Kit, created: CreatedOrder) -> InvoiceState:
    snapshot = await kit.snapshot(created.order.id)
    return snapshot["invoice"].state


def test_the_schedule_backs_off_with_age_and_ends_after_the_margin() -> None:
    """A one-hour invoice is due at 1, 2, 4, 8, 16, 26, 36, 46, 56, 60 and 70 minutes."""
    created = datetime(2026, 1, 1, tzinfo=UTC)
    expires = created + timedelta(hours=1)
    now, ages = created + timedelta(minutes=1), []
    while True:
        ages.append(int((now - created).total_seconds() // 60))
        following = ReconcilerConfig().next_check(created_at=created, expires_at=expires, now=now)
        if following is None:
            break
        now = following
    assert ages == [1, 2, 4, 8, 16, 26, 36, 46, 56, 60, 70]


async def test_an_unpaid_invoice_gets_eleven_lookups_in_its_life(counting_kit: Kit) -> None:
    """Over its hour and the margin, an unpaid invoice is looked up 11 times, not ~280."""
    kit = counting_kit
    kit.gateway.orders = dataclasses.replace(kit.orders, expiry=3600)
    created = await kit.order(Product.DAZPAY)
    await run_passes(kit, 2 * 3600)
    assert provider_of(kit).lookups[created.invoice.payment_hash] == 11
    assert await state_of(kit, created) is InvoiceState.EXPIRED

    # what the previous reconciler did: every pending invoice at every interval
    every_interval = ReconcilerConfig(first_check=timedelta(seconds=STEP), backoff=1,
                                      max_gap=timedelta(seconds=STEP),
                                      lease=timedelta(seconds=STEP), lookups_per_second=0)
    before = await kit.order(Product.DAZPAY)
    await run_passes(kit, 2 * 3600, every_interval)
    assert provider_of(kit).lookups[before.invoice.payment_hash] == 280


async def test_a_payment_whose_webhook_was_lost_is_found_at_the_first_check(
    counting_kit: Kit,
) -> None:
    """Paid right after creation with no doorbell, the order settles at the first check (60 s)."""
    kit = counting_kit
    created = await kit.order(Product.DAZBOX)
    await provider_of(kit).mark_paid(created.invoice.payment_hash)
    kit.clock.advance(59)
    assert (await reconcile(kit)).checked == 0
    kit.clock.advance(1)
    report = await reconcile(kit)
    assert report.outcomes == {"settled": 1}
    assert (await kit.snapshot(created.order.id))["order"].status is OrderStatus.PAID
    assert kit.settled_hashes == [created.invoice.payment_hash]


async def test_one_pass_settles_the_paid_expires_the_overdue_and_leaves_the_rest(
    counting_kit: Kit,
) -> None:
    """One pass settles the paid, leaves the unpaid pending, and expires the overdue."""
    kit = counting_kit
    paid = await kit.order(Product.DAZBOX)
    waiting = await kit.order(Product.DAZPAY)
    kit.clock.advance(300)
    late = await kit.order(Product.DAZNODE)  # created later: still valid at the check
    await provider_of(kit).mark_paid(paid.invoice.payment_hash)
    kit.clock.advance(301)  # the first two are now past their 600 s expiry
    report = await reconcile(kit)
    assert report.checked == 3
    assert report.outcomes == {"settled": 1, "expired": 1, "not_paid": 1}
    assert (await kit.snapshot(paid.order.id))["order"].status is OrderStatus.PAID
    assert (await kit.snapshot(waiting.order.id))["order"].status is OrderStatus.EXPIRED
    assert (await kit.snapshot(late.order.id))["order"].status is OrderStatus.PENDING
    assert report.per_second > 0


async def test_a_checked_invoice_waits_for_its_next_scheduled_check(counting_kit: Kit) -> None:
    """After its first check at 60 s, an invoice is not checked again before 120 s."""
    kit = counting_kit
    created = await kit.order(Product.DAZPAY)
    kit.clock.advance(60)
    assert (await reconcile(kit)).checked == 1
    kit.clock.advance(59)
    assert (await reconcile(kit)).checked == 0
    kit.clock.advance(1)
    assert (await reconcile(kit)).checked == 1
    assert provider_of(kit).lookups[created.invoice.payment_hash] == 2


async def test_late_payment_is_caught_within_the_margin_only(counting_kit: Kit) -> None:
    """An invoice paid after expiry is settled (late) by the check at expiry plus the margin;
    one paid after that last check is never looked at again."""
    kit = counting_kit
    caught = await kit.order(Product.DAZPAY)
    missed = await kit.order(Product.DAZPAY)
    await run_passes(kit, 600)  # to the expiry: both checked and marked expired
    assert await state_of(kit, caught) is InvoiceState.EXPIRED
    assert await state_of(kit, missed) is InvoiceState.EXPIRED
    kit.clock.advance(30)
    await provider_of(kit).mark_paid(caught.invoice.payment_hash)
    await run_passes(kit, 600)
    snap = await kit.snapshot(caught.order.id)
    assert snap["order"].status is OrderStatus.PAID and snap["order"].paid_late
    lookups = provider_of(kit).lookups[missed.invoice.payment_hash]
    await provider_of(kit).mark_paid(missed.invoice.payment_hash)
    await run_passes(kit, 3600)
    assert provider_of(kit).lookups[missed.invoice.payment_hash] == lookups
    assert await state_of(kit, missed) is InvoiceState.EXPIRED


async def test_an_invoice_expired_by_a_poll_still_gets_its_late_payment_check(
    counting_kit: Kit,
) -> None:
    """Expired by a customer's poll before any reconciler check, an invoice is still checked
    for a late payment."""
    kit = counting_kit
    created = await kit.order(Product.DAZPAY)
    kit.clock.advance(600)
    assert await kit.settler.check(created.invoice.payment_hash) is InvoiceState.EXPIRED
    kit.clock.advance(60)
    await provider_of(kit).mark_paid(created.invoice.payment_hash)
    await run_passes(kit, 600)
    snap = await kit.snapshot(created.order.id)
    assert snap["order"].status is OrderStatus.PAID and snap["order"].paid_late


async def test_a_last_check_the_provider_could_not_answer_is_retried(counting_kit: Kit) -> None:
    """When the provider is down at an invoice's last check, the check is retried after the
    longest gap instead of being dropped, and a payment is still found."""
    kit = counting_kit
    created = await kit.order(Product.DAZPAY)
    await run_passes(kit, 600 + 600 - STEP)  # up to just before the last check
    provider_of(kit).down = True
    await provider_of(kit).mark_paid(created.invoice.payment_hash)
    await run_passes(kit, STEP)
    assert await state_of(kit, created) is InvoiceState.EXPIRED
    provider_of(kit).down = False
    await run_passes(kit, 600)
    snap = await kit.snapshot(created.order.id)
    assert snap["order"].status is OrderStatus.PAID and snap["order"].paid_late


async def test_a_paid_invoice_leaves_the_schedule(counting_kit: Kit) -> None:
    """Once settled (here by a doorbell), an invoice is never looked up by the reconciler."""
    kit = counting_kit
    created = await kit.order(Product.DAZPAY)
    kit.clock.advance(60)
    await reconcile(kit)
    await provider_of(kit).mark_paid(created.invoice.payment_hash)
    await kit.settler.settle(created.invoice.payment_hash, source="webhook")
    lookups = provider_of(kit).lookups[created.invoice.payment_hash]
    await run_passes(kit, 3600)
    assert provider_of(kit).lookups[created.invoice.payment_hash] == lookups
    async with kit.db.connect() as conn:
        row = (await conn.execute(select(invoices.c.next_check_at).where(
            invoices.c.payment_hash == created.invoice.payment_hash))).one()
    assert row.next_check_at is None


async def test_a_pass_ends_within_its_lease_and_the_rest_waits(counting_kit: Kit) -> None:
    """With slow look-ups, a pass starts no check it cannot finish within its lease; what it
    could not start is left due, and later passes check each invoice exactly once."""
    kit = counting_kit
    provider_of(kit).delay = 0.1
    created = [await kit.order(Product.DAZPAY) for _ in range(30)]
    kit.clock.advance(60)
    config = ReconcilerConfig(concurrency=2, lease=timedelta(seconds=1.5), check_timeout=1.0,
                              lookups_per_second=0)
    state = ReconcilerState(config)
    first = await reconcile(kit, config, state)
    assert first.behind and 0 < first.checked < 30
    assert first.seconds < 1.5
    passes = [first]
    while sum(p.checked for p in passes) < 30 and len(passes) < 30:
        passes.append(await reconcile(kit, config, state))
        assert passes[-1].seconds < 1.5
    assert sum(p.checked for p in passes) == 30
    assert Counter(provider_of(kit).lookups.values()) == {1: 30}
    assert {o.invoice.payment_hash for o in created} == set(provider_of(kit).lookups)


async def test_a_pass_left_behind_is_followed_by_the_next_at_once(counting_kit: Kit) -> None:
    """When a pass ends with invoices still due, the loop starts the next pass without
    waiting its interval (here an hour)."""
    kit = counting_kit
    provider_of(kit).delay = 0.1
    for _ in range(30):
        await kit.order(Product.DAZPAY)
    kit.clock.advance(60)
    config = ReconcilerConfig(interval=3600, concurrency=2, lease=timedelta(seconds=1.5),
                              check_timeout=1.0, lookups_per_second=0)
    task = asyncio.create_task(run_reconciler(db=kit.db, settle=kit.settler.settle,
                                              clock=kit.clock, config=config))
    try:
        for _ in range(300):
            if len(provider_of(kit).lookups) == 30:
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
    assert Counter(provider_of(kit).lookups.values()) == {1: 30}


async def test_lookups_are_capped_per_provider(counting_kit: Kit,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """With a cap of 10 look-ups a second, 25 due invoices take at least 1.5 s (a burst of
    10, then 10 a second), never faster."""
    kit = counting_kit
    for _ in range(25):
        await kit.order(Product.DAZPAY)
    kit.clock.advance(60)
    # The cap is on the tokens: record when each one may be used. The look-ups themselves come
    # after settle's read of the invoice, whose delay a loaded machine stretches and bunches.
    grants: list[float] = []
    reserve = TokenBucket.reserve

    def recording_reserve(bucket: TokenBucket, *, not_after: float) -> float | None:
        wait = reserve(bucket, not_after=not_after)
        if wait is not None:
            grants.append(bucket._updated + wait)  # the bucket's own clock reading of this grant
        return wait

    monkeypatch.setattr(TokenBucket, "reserve", recording_reserve)
    config = ReconcilerConfig(concurrency=16, lookups_per_second=10)
    report = await reconcile(kit, config)
    assert report.checked == 25 and len(grants) == 25
    grants.sort()
    assert grants[-1] - grants[0] >= 1.5 - 1e-6
    # each look-up comes after its token: the k-th look-up after the k-th grant
    times = sorted(provider_of(kit).lookup_times)
    assert all(looked >= granted for looked, granted in zip(times, grants, strict=True))
    # any window holds at most the burst and 10 a second (plus a token's worth of rounding)
    for j, start in enumerate(grants):
        for i in range(j, len(grants)):
            assert i - j + 1 <= 10 + 10 * (grants[i] - start) + 1e-6


def test_the_token_bucket_refuses_what_it_could_only_give_too_late() -> None:
    """A token available only after the deadline is not taken."""
    now = [0.0]
    bucket = TokenBucket(2.0, monotonic=lambda: now[0])
    assert bucket.reserve(not_after=10) == 0 and bucket.reserve(not_after=10) == 0
    assert bucket.reserve(not_after=10) == pytest.approx(0.5)
    assert bucket.reserve(not_after=0.9) is None  # would be 1.0 s away
    assert bucket.reserve(not_after=10) == pytest.approx(1.0)


async def test_concurrent_reconcilers_check_each_invoice_once(counting_kit: Kit) -> None:
    """Three reconcilers running at once check each of 40 invoices exactly once."""
    kit = counting_kit
    created = [await kit.order(Product.DAZPAY) for _ in range(40)]
    for order in created[::2]:
        await provider_of(kit).mark_paid(order.invoice.payment_hash)
    kit.clock.advance(60)
    reports = await asyncio.gather(*(reconcile(kit) for _ in range(3)))
    assert sum(r.checked for r in reports) == 40
    assert set(provider_of(kit).lookups.values()) == {1}
    assert sum(r.outcomes["settled"] for r in reports) == 20
    assert len(kit.settled_hashes) == 20


async def test_a_stalled_loop_does_not_look_an_invoice_up_twice(counting_kit: Kit) -> None:
    """Concurrent reconcilers on a loaded machine: one look-up's answer sits unread while the
    event loop is held up for longer than the attempt timeout the router learned from the
    creates (0.5 s). That is our lag, not the provider's slowness: the look-up is not cut off
    and retried, and each invoice is still looked up once (this failed once in CI)."""
    kit = counting_kit
    provider = provider_of(kit)
    created = [await kit.order(Product.DAZPAY) for _ in range(40)]
    for order in created[::2]:
        await provider.mark_paid(order.invoice.payment_hash)
    kit.clock.advance(60)
    lookup = provider.invoice_status
    stalled: list[str] = []

    async def stalling_lookup(payment_hash: str):  # type: ignore[no-untyped-def]
        if not stalled:
            stalled.append(payment_hash)
            time.sleep(0.6)  # noqa: ASYNC251 -- the point: hold the loop up
        return await lookup(payment_hash)

    provider.invoice_status = stalling_lookup  # type: ignore[method-assign]
    reports = await asyncio.gather(*(reconcile(kit) for _ in range(3)))
    assert stalled and sum(r.checked for r in reports) == 40
    assert set(provider.lookups.values()) == {1}
    assert sum(r.outcomes["settled"] for r in reports) == 20


async def test_the_loop_reconciles_at_start(counting_kit: Kit) -> None:
    """Started, the loop checks the due invoices at once, without waiting an interval."""
    kit = counting_kit
    created = await kit.order(Product.DAZBOX)
    await provider_of(kit).mark_paid(created.invoice.payment_hash)
    kit.clock.advance(60)
    task = asyncio.create_task(run_reconciler(db=kit.db, settle=kit.settler.settle,
                                              clock=kit.clock, config=CONFIG))
    try:
        for _ in range(200):
            if kit.settled_hashes:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert kit.settled_hashes == [created.invoice.payment_hash]


async def test_a_pass_keeps_no_more_tasks_than_checks_in_flight(counting_kit: Kit) -> None:
    """A batch of 30 due invoices with 2 checks at once keeps a task per check in flight (and
    the check's own), not one per invoice: a full batch is 500, whose tasks (32 here) were
    memory held through every pass."""
    kit = counting_kit
    provider = provider_of(kit)
    provider.delay = 0.02
    for _ in range(30):
        await kit.order(Product.DAZPAY)
    kit.clock.advance(60)
    before = len(asyncio.all_tasks())
    alive: list[int] = []
    lookup = provider.invoice_status

    async def counting_lookup(payment_hash: str):  # type: ignore[no-untyped-def]
        alive.append(len(asyncio.all_tasks()) - before)
        return await lookup(payment_hash)

    provider.invoice_status = counting_lookup  # type: ignore[method-assign]
    config = ReconcilerConfig(concurrency=2, lookups_per_second=0)
    report = await reconcile(kit, config)
    assert report.checked == 30 and len(alive) == 30
    assert max(alive) <= 2 * config.concurrency
