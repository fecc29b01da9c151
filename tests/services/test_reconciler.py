"""The reconciler: pending invoices are checked through settle, expired ones marked expired,
late payments caught within the margin, and work claimed once across concurrent reconcilers."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest

from lngate.domain import InvoiceState, Network, OrderStatus, Product
from lngate.providers.testprovider import TestProvider
from lngate.services.reconciler import ReconcilerConfig, reconcile_once
from lngate.tasks.payments import run_reconciler
from lngate.store import Database
from tests.services.conftest import Kit, SettableClock, make_kit

CONFIG = ReconcilerConfig(interval=15, late_margin=timedelta(minutes=10), batch_size=7,
                          concurrency=4)


class CountingProvider(TestProvider):
    """The test provider, counting status lookups per payment hash."""

    __test__ = False

    def __init__(self, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self.lookups: Counter[str] = Counter()

    async def invoice_status(self, payment_hash: str):  # type: ignore[no-untyped-def]
        self.lookups[payment_hash] += 1
        await asyncio.sleep(0.002)  # a little latency, so concurrent passes overlap
        return await super().invoice_status(payment_hash)


@pytest.fixture
async def counting_kit(db: Database, clock: SettableClock) -> Kit:
    provider = CountingProvider(network=Network.BITCOIN, clock=clock)
    return await make_kit(db, provider, clock, pin=provider.node_pubkey)


def provider_of(kit: Kit) -> CountingProvider:
    assert isinstance(kit.provider, CountingProvider)
    return kit.provider


async def reconcile(kit: Kit, config: ReconcilerConfig = CONFIG):  # type: ignore[no-untyped-def]
    return await reconcile_once(db=kit.db, settle=kit.settler.settle, clock=kit.clock,
                                config=config)


async def test_paid_settle_unpaid_wait_expired_expire(counting_kit: Kit) -> None:
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


async def test_a_checked_invoice_waits_for_the_next_interval(counting_kit: Kit) -> None:
    """An invoice is not checked again before its lease (the interval) is over."""
    kit = counting_kit
    created = await kit.order(Product.DAZPAY)
    assert (await reconcile(kit)).checked == 1
    kit.clock.advance(14)
    assert (await reconcile(kit)).checked == 0
    kit.clock.advance(1)
    assert (await reconcile(kit)).checked == 1
    assert provider_of(kit).lookups[created.invoice.payment_hash] == 2


async def test_late_payment_is_caught_within_the_margin_only(counting_kit: Kit) -> None:
    """An expired invoice is re-checked for a late payment until expiry plus the margin."""
    kit = counting_kit
    caught = await kit.order(Product.DAZPAY)
    missed = await kit.order(Product.DAZPAY)
    kit.clock.advance(601)
    assert (await reconcile(kit)).outcomes == {"expired": 2}
    await provider_of(kit).mark_paid(caught.invoice.payment_hash)
    kit.clock.advance(15)
    assert (await reconcile(kit)).outcomes == {"settled": 1, "not_paid": 1}
    snap = await kit.snapshot(caught.order.id)
    assert snap["order"].status is OrderStatus.PAID and snap["order"].paid_late
    kit.clock.advance(600)  # now past expiry + 10 min
    await provider_of(kit).mark_paid(missed.invoice.payment_hash)
    assert (await reconcile(kit)).checked == 0
    assert (await kit.snapshot(missed.order.id))["invoice"].state is InvoiceState.EXPIRED


async def test_concurrent_reconcilers_check_each_invoice_once(counting_kit: Kit) -> None:
    """Three reconcilers running at once check each of 40 invoices exactly once."""
    kit = counting_kit
    created = [await kit.order(Product.DAZPAY) for _ in range(40)]
    for order in created[::2]:
        await provider_of(kit).mark_paid(order.invoice.payment_hash)
    reports = await asyncio.gather(*(reconcile(kit) for _ in range(3)))
    assert sum(r.checked for r in reports) == 40
    assert set(provider_of(kit).lookups.values()) == {1}
    assert sum(r.outcomes["settled"] for r in reports) == 20
    assert len(kit.settled_hashes) == 20


async def test_the_loop_reconciles_at_start(counting_kit: Kit) -> None:
    """Started, the loop checks pending invoices at once, without waiting an interval."""
    kit = counting_kit
    created = await kit.order(Product.DAZBOX)
    await provider_of(kit).mark_paid(created.invoice.payment_hash)
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
