"""A payment found after its invoice expired is judged by the provider's time of payment, not by
when the gateway noticed it (LNbits double, real LNbits, real NWC wallet; SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from lngate.domain import InvoiceState, OrderStatus, Product
from lngate.providers.lnbits import LNbitsConfig, LNbitsProvider, make_session
from lngate.providers.nwc import NWCConfig, NWCProvider
from lngate.services.settlement import SettleOutcome
from lngate.store import Database
from tests.doubles.lnbits_double import LNbitsDouble
from tests.peers.lnbits_peer import LNbitsPeer
from tests.peers.nwc_peer import NWCPeer
from tests.services.conftest import Kit, SettableClock, make_kit


async def settle_late(kit: Kit, payment_hash: str) -> SettleOutcome:
    """``settle`` as the reconciler calls it, with the gateway's clock where the kit has it."""
    return await kit.settler.settle(payment_hash, source="reconciler")


async def assert_paid(kit: Kit, order_id: str, *, paid_at: datetime, late: bool) -> None:
    """The invoice, the order and the queued receipt all carry ``paid_at`` and ``late``."""
    snap = await kit.snapshot(order_id)
    invoice, order = snap["invoice"], snap["order"]
    assert invoice.state is InvoiceState.PAID and order.status is OrderStatus.PAID
    assert invoice.paid_at == paid_at and order.paid_at == paid_at
    assert invoice.paid_late is late and order.paid_late is late
    [receipt] = snap["outbox"]
    assert receipt["payload"]["paid_late"] is late
    assert datetime.fromisoformat(receipt["payload"]["paid_at"].replace("Z", "+00:00")) == paid_at


async def test_lnbits_payment_7s_before_expiry_found_after_it_is_on_time(
    lnbits_kit: Kit, lnbits_double: LNbitsDouble
) -> None:
    """An invoice LNbits marked paid 7 s before its expiry, settled by the reconciler after the
    expiry, is paid on time with LNbits' time of payment."""
    created = await lnbits_kit.order(Product.DAZPAY)
    paid_at = created.invoice.expires_at - timedelta(seconds=7)
    lnbits_double.mark_paid(created.invoice.payment_hash, at=paid_at)
    lnbits_kit.clock.advance(600 + 45)
    assert lnbits_kit.clock.now > created.invoice.expires_at

    assert await settle_late(lnbits_kit, created.invoice.payment_hash) is SettleOutcome.SETTLED

    await assert_paid(lnbits_kit, created.order.id, paid_at=paid_at, late=False)


async def test_lnbits_payment_after_expiry_is_late_with_its_own_time(
    lnbits_kit: Kit, lnbits_double: LNbitsDouble
) -> None:
    """An invoice LNbits marked paid after its expiry is flagged late, with LNbits' time."""
    created = await lnbits_kit.order(Product.DAZPAY)
    paid_at = created.invoice.expires_at + timedelta(seconds=5)
    lnbits_double.mark_paid(created.invoice.payment_hash, at=paid_at)
    lnbits_kit.clock.advance(600 + 300)

    assert await settle_late(lnbits_kit, created.invoice.payment_hash) is SettleOutcome.SETTLED

    await assert_paid(lnbits_kit, created.order.id, paid_at=paid_at, late=True)


@pytest.fixture
async def lnbits_peer_kit(
    db: Database, clock: SettableClock, lnbits_peer: LNbitsPeer
) -> AsyncIterator[Kit]:
    """A kit on the real LNbits, with invoices that expire 4 s after they are made."""
    provider = LNbitsProvider(
        LNbitsConfig(lnbits_peer.url, lnbits_peer.merchant_inkey, timeout=5.0), make_session(5.0)
    )
    try:
        yield await make_kit(db, provider, clock, pin=lnbits_peer.payee_pubkey, expiry=4)
    finally:
        await provider.aclose()


@pytest.mark.lnbits
async def test_real_lnbits_payment_just_before_expiry_found_after_it_is_on_time(
    lnbits_peer_kit: Kit, lnbits_peer: LNbitsPeer
) -> None:
    """An invoice paid on the real LNbits shortly before its expiry and settled after the
    expiry is on time, with the time LNbits marked it paid."""
    kit = lnbits_peer_kit
    created = await kit.order(Product.DAZPAY)
    await asyncio.sleep(2)
    await lnbits_peer.apay(created.invoice.bolt11)
    assert datetime.now(UTC) < created.invoice.expires_at  # paid in time, if only just
    kit.clock.advance(60)
    assert kit.clock.now > created.invoice.expires_at

    assert await settle_late(kit, created.invoice.payment_hash) is SettleOutcome.SETTLED

    _, body = lnbits_peer.request("GET", f"/api/v1/payments/{created.invoice.payment_hash}",
                                  key=lnbits_peer.merchant_inkey)
    lnbits_paid_at = datetime.fromisoformat(body["details"]["updated_at"])
    assert lnbits_paid_at < created.invoice.expires_at
    await assert_paid(kit, created.order.id, paid_at=lnbits_paid_at, late=False)


@pytest.fixture
async def nwc_kit(db: Database, clock: SettableClock, nwc_peer: NWCPeer) -> AsyncIterator[Kit]:
    """A kit on the real NWC wallet service."""
    provider = NWCProvider(NWCConfig(uri=nwc_peer.uri, timeout=3.0, connect_timeout=2.0))
    try:
        yield await make_kit(db, provider, clock, pin=nwc_peer.node_pubkey)
    finally:
        await provider.aclose()


@pytest.mark.nwc
async def test_nwc_payment_7s_before_expiry_found_after_it_is_on_time(
    nwc_kit: Kit, nwc_peer: NWCPeer
) -> None:
    """An invoice the NWC wallet settled 7 s before its expiry (its settled_at), settled by the
    reconciler after the expiry, is paid on time with the wallet's time."""
    created = await nwc_kit.order(Product.DAZPAY)
    paid_at = created.invoice.expires_at - timedelta(seconds=7)
    await asyncio.to_thread(nwc_peer.settle, created.invoice.payment_hash,
                            settled_at=int(paid_at.timestamp()))
    nwc_kit.clock.advance(600 + 45)

    assert await settle_late(nwc_kit, created.invoice.payment_hash) is SettleOutcome.SETTLED

    await assert_paid(nwc_kit, created.order.id, paid_at=paid_at, late=False)
