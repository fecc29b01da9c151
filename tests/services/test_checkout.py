"""The checkout page's services: an invoice with its order and state, and a new invoice for an
order whose invoice expired unpaid."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from lngate.domain import InvoiceState, OrderStatus, Product
from lngate.services.checkout import (
    RenewalRefusal,
    RenewalRefused,
    find_checkout,
    renew_order_invoice,
)
from lngate.services.invoices import InvoiceRequest, create_invoice
from lngate.services.settlement import SettleOutcome
from lngate.store.tables import invoices
from tests.services.conftest import Kit


async def _expired_order(kit: Kit) -> tuple[str, str]:
    """A DazPay order whose invoice the provider has confirmed expired: (order id, hash)."""
    created = await kit.order(Product.DAZPAY)
    kit.clock.advance(kit.orders.expiry + 1)
    assert await kit.settler.settle(created.invoice.payment_hash, source="test") \
        is SettleOutcome.EXPIRED
    return created.order.id, created.invoice.payment_hash


async def _invoice_count(kit: Kit) -> int:
    async with kit.db.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(invoices))).scalar_one()


async def test_renewal_gives_the_expired_order_a_new_invoice(kit: Kit) -> None:
    """The order keeps its id and price, is pending again, and is paid by a fresh invoice with
    the same description; the old invoice stays expired."""
    order_id, old_hash = await _expired_order(kit)
    renewed = await renew_order_invoice(old_hash, ctx=kit.orders, settler=kit.settler)
    new = renewed.invoice
    assert renewed.order_id == order_id and new.payment_hash != old_hash
    snap = await kit.snapshot(order_id)
    assert snap["order"].status is OrderStatus.PENDING
    assert snap["order"].payment_hash == new.payment_hash
    assert new.state is InvoiceState.PENDING and new.amount_msat == snap["order"].amount_msat
    assert new.description.endswith(f"commande {order_id}")
    assert new.metadata == {"order_id": order_id, "replaces": old_hash}
    old = await find_checkout(kit.db, kit.settler, payment_hash=old_hash)
    assert old is not None and old.state is InvoiceState.EXPIRED and old.order is None


async def test_paying_the_new_invoice_pays_the_order(kit: Kit) -> None:
    """The renewed invoice settles through the normal path and fulfils the order once."""
    order_id, old_hash = await _expired_order(kit)
    renewed = await renew_order_invoice(old_hash, ctx=kit.orders, settler=kit.settler)
    await kit.provider.mark_paid(renewed.invoice.payment_hash)  # type: ignore[attr-defined]
    outcome = await kit.settler.settle(renewed.invoice.payment_hash, source="test")
    assert outcome is SettleOutcome.SETTLED
    snap = await kit.snapshot(order_id)
    assert snap["order"].status is OrderStatus.PAID and len(snap["outbox"]) == 1


async def test_a_pending_invoice_past_expiry_is_checked_then_renewed(kit: Kit) -> None:
    """An order still pending in the database but past its expiry is confirmed expired at the
    provider, then renewed."""
    created = await kit.order(Product.DAZPAY)
    kit.clock.advance(kit.orders.expiry + 1)
    renewed = await renew_order_invoice(created.invoice.payment_hash, ctx=kit.orders,
                                        settler=kit.settler)
    assert (await kit.snapshot(created.order.id))["order"].payment_hash \
        == renewed.invoice.payment_hash


async def test_an_invoice_paid_after_its_expiry_is_not_renewed(kit: Kit) -> None:
    """When the provider says the expired-looking invoice was paid, it settles instead."""
    created = await kit.order(Product.DAZPAY)
    await kit.provider.mark_paid(created.invoice.payment_hash)  # type: ignore[attr-defined]
    kit.clock.advance(kit.orders.expiry + 1)
    with pytest.raises(RenewalRefused) as refused:
        await renew_order_invoice(created.invoice.payment_hash, ctx=kit.orders,
                                  settler=kit.settler)
    assert refused.value.reason is RenewalRefusal.PAID
    assert (await kit.snapshot(created.order.id))["order"].status is OrderStatus.PAID


async def test_what_cannot_be_renewed(kit: Kit) -> None:
    """A payable order, a bare invoice, an unknown hash and a replaced invoice are refused, and
    no invoice is issued for them."""
    _order_id, old_hash = await _expired_order(kit)
    await renew_order_invoice(old_hash, ctx=kit.orders, settler=kit.settler)
    payable = await kit.order(Product.DAZPAY)
    bare = await create_invoice(InvoiceRequest(amount_sat=5, description="x", expiry=600),
                                kit.orders.invoices)
    cases = [(payable.invoice.payment_hash, RenewalRefusal.STILL_PENDING),
             (bare.invoice.payment_hash, RenewalRefusal.NOT_AN_ORDER),
             ("ab" * 32, RenewalRefusal.NOT_AN_ORDER),
             (old_hash, RenewalRefusal.NOT_AN_ORDER)]
    count = await _invoice_count(kit)
    for payment_hash, reason in cases:
        with pytest.raises(RenewalRefused) as refused:
            await renew_order_invoice(payment_hash, ctx=kit.orders, settler=kit.settler)
        assert refused.value.reason is reason, payment_hash
    assert await _invoice_count(kit) == count


async def test_two_renewals_at_once_give_one_new_invoice(kit: Kit) -> None:
    """Two clicks at once: one renewal wins, the other is refused and its invoice not stored."""
    order_id, old_hash = await _expired_order(kit)
    count = await _invoice_count(kit)
    results = await asyncio.gather(
        *(renew_order_invoice(old_hash, ctx=kit.orders, settler=kit.settler) for _ in range(2)),
        return_exceptions=True)
    [won] = [r for r in results if not isinstance(r, BaseException)]
    [lost] = [r for r in results if isinstance(r, BaseException)]
    assert isinstance(lost, RenewalRefused)
    assert lost.reason in (RenewalRefusal.CHANGED, RenewalRefusal.NOT_AN_ORDER)
    assert (await kit.snapshot(order_id))["order"].payment_hash == won.invoice.payment_hash
    assert await _invoice_count(kit) == count + 1


async def test_find_checkout_by_order_follows_its_current_invoice(kit: Kit) -> None:
    """An order's checkout is its current invoice; a pending invoice past expiry reads expired."""
    created = await kit.order(Product.DAZPAY)
    found = await find_checkout(kit.db, kit.settler, order_id=created.order.id)
    assert found is not None and found.state is InvoiceState.PENDING
    assert found.order is not None and found.order.id == created.order.id
    kit.clock.advance(kit.orders.expiry + 1)
    found = await find_checkout(kit.db, kit.settler, payment_hash=created.invoice.payment_hash)
    assert found is not None and found.state is InvoiceState.EXPIRED
    renewed = await renew_order_invoice(created.invoice.payment_hash, ctx=kit.orders,
                                        settler=kit.settler)
    found = await find_checkout(kit.db, kit.settler, order_id=created.order.id)
    assert found is not None and found.invoice == renewed.invoice
    assert await find_checkout(kit.db, kit.settler, order_id="no-such-order-id") is None
