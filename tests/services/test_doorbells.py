"""NWC doorbells against a real relay and wallet service: a payment_received notification settles
the order; a notification nobody heard is caught by the reconciler."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from lngate.domain import OrderStatus, Product
from lngate.providers.nwc import NWCConfig, NWCProvider
from lngate.services.doorbells import listen_paid_stream
from lngate.services.reconciler import ReconcilerConfig, reconcile_once
from lngate.store import Database
from tests.peers.nwc_peer import NWCPeer
from tests.services.conftest import Kit, SettableClock, make_kit

pytestmark = pytest.mark.nwc


@pytest.fixture
async def nwc_kit(db: Database, clock: SettableClock, nwc_peer: NWCPeer) -> AsyncIterator[Kit]:
    provider = NWCProvider(NWCConfig(uri=nwc_peer.uri, timeout=3.0, connect_timeout=2.0))
    try:
        yield await make_kit(db, provider, clock, pin=nwc_peer.node_pubkey)
    finally:
        await provider.aclose()


async def wait_settled(kit: Kit, payment_hash: str, timeout: float = 10) -> None:
    for _ in range(int(timeout / 0.05)):
        if payment_hash in kit.settled_hashes:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not settled within {timeout} s")


async def test_payment_received_notification_settles_the_order(nwc_kit: Kit,
                                                               nwc_peer: NWCPeer) -> None:
    """The wallet's payment_received notification rings settle, which verifies and settles."""
    listener = asyncio.create_task(listen_paid_stream(
        nwc_kit.provider, name="nwc", settle=nwc_kit.settler.settle))  # type: ignore[arg-type]
    try:
        await asyncio.sleep(0.5)  # the subscription reaches the relay
        created = await nwc_kit.order(Product.DAZPAY, amount_sat=21)
        await asyncio.to_thread(nwc_peer.settle, created.invoice.payment_hash)
        await wait_settled(nwc_kit, created.invoice.payment_hash)
    finally:
        listener.cancel()
    snap = await nwc_kit.snapshot(created.order.id)
    assert snap["order"].status is OrderStatus.PAID
    assert [row["kind"] for row in snap["outbox"]] == ["dazpay_receipt"]


async def test_missed_notification_is_caught_by_the_reconciler(nwc_kit: Kit,
                                                               nwc_peer: NWCPeer) -> None:
    """Paid while nobody listened, the order is settled by the reconciler's first check."""
    created = await nwc_kit.order(Product.DAZNODE)
    await asyncio.to_thread(nwc_peer.settle, created.invoice.payment_hash)
    await asyncio.sleep(0.3)
    assert nwc_kit.settled_hashes == []
    nwc_kit.clock.advance(60)  # the first check is due a minute after creation
    report = await reconcile_once(db=nwc_kit.db, settle=nwc_kit.settler.settle,
                                  clock=nwc_kit.clock,
                                  config=ReconcilerConfig(late_margin=timedelta(minutes=10)))
    assert report.outcomes["settled"] == 1
    assert (await nwc_kit.snapshot(created.order.id))["order"].status is OrderStatus.PAID
