"""settle: verified at the issuing provider, exactly once, with each product's post-payment step
and its emails in the same transaction (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest

from lngate.domain import InvoiceState, OrderStatus, Plan, Product
from lngate.providers.testprovider import TestProvider
from lngate.services.fulfilment import add_months
from lngate.services.invoices import InvoiceRequest, create_invoice
from lngate.services.settlement import SettleOutcome
from tests.doubles.lnbits_double import LNbitsDouble, Reply
from tests.services.conftest import Kit


async def pay(kit: Kit, payment_hash: str) -> None:
    assert isinstance(kit.provider, TestProvider)
    assert await kit.provider.mark_paid(payment_hash)


async def test_paid_dazbox_settles_with_a_shipment_and_two_emails(kit: Kit) -> None:
    """A paid DazBox order becomes paid, gets a shipment to make and two queued emails."""
    created = await kit.order(Product.DAZBOX, quantity=2)
    await pay(kit, created.invoice.payment_hash)
    assert await kit.settler.settle(created.invoice.payment_hash, source="test") \
        is SettleOutcome.SETTLED
    snap = await kit.snapshot(created.order.id)
    assert snap["invoice"].state is InvoiceState.PAID and not snap["invoice"].paid_late
    assert snap["order"].status is OrderStatus.PAID and snap["order"].paid_at is not None
    [shipment] = snap["shipments"]
    assert shipment["status"] == "to_ship" and shipment["quantity"] == 2
    assert shipment["address"]["city"] == "Lyon"
    assert snap["order"].fulfilment == {"shipment": {"id": shipment["id"], "status": "to_ship"}}
    kinds = {(row["kind"], row["recipient"]) for row in snap["outbox"]}
    assert kinds == {("dazbox_confirmation", "alice@example.com"),
                     ("dazbox_shop_notification", None)}
    assert all(row["status"] == "pending" for row in snap["outbox"])
    assert snap["outbox"][0]["payload"]["amount_sat"] == 800_000
    assert kit.settled_hashes == [created.invoice.payment_hash]


async def test_second_settle_is_a_no_op(kit: Kit) -> None:
    """Settling an already paid invoice changes nothing and says so."""
    created = await kit.order(Product.DAZBOX)
    await pay(kit, created.invoice.payment_hash)
    await kit.settler.settle(created.invoice.payment_hash, source="test")
    before = await kit.snapshot(created.order.id)
    kit.clock.advance(5)
    assert await kit.settler.settle(created.invoice.payment_hash, source="test") \
        is SettleOutcome.ALREADY_SETTLED
    assert await kit.snapshot(created.order.id) == before


async def test_twenty_concurrent_settles_settle_once(kit: Kit) -> None:
    """Twenty concurrent doorbells for one payment give one settlement and one set of emails."""
    created = await kit.order(Product.DAZBOX)
    await pay(kit, created.invoice.payment_hash)
    outcomes = await asyncio.gather(*(
        kit.settler.settle(created.invoice.payment_hash, source="test") for _ in range(20)
    ))
    counts = Counter(outcomes)
    assert counts[SettleOutcome.SETTLED] == 1
    assert counts[SettleOutcome.ALREADY_SETTLED] == 19
    snap = await kit.snapshot(created.order.id)
    assert len(snap["shipments"]) == 1 and len(snap["outbox"]) == 2
    assert kit.settled_hashes == [created.invoice.payment_hash]


async def test_extra_writes_commit_with_the_settlement_and_only_the_winner_runs_them(
        kit: Kit) -> None:
    """``also`` runs once, for the caller that settles, in the settlement's transaction: when it
    fails, the invoice, the order and the emails are rolled back with it."""
    created = await kit.order(Product.DAZPAY)
    await pay(kit, created.invoice.payment_hash)
    before = await kit.snapshot(created.order.id)

    async def fails(_conn) -> None:  # type: ignore[no-untyped-def]
        raise RuntimeError("the extra write failed")

    with pytest.raises(RuntimeError, match="the extra write failed"):
        await kit.settler.settle(created.invoice.payment_hash, source="test", also=fails)
    assert await kit.snapshot(created.order.id) == before
    ran: list[object] = []

    async def records(conn) -> None:  # type: ignore[no-untyped-def]
        ran.append(conn)

    outcomes = await asyncio.gather(*(
        kit.settler.settle(created.invoice.payment_hash, source="test", also=records)
        for _ in range(5)))
    assert Counter(outcomes)[SettleOutcome.SETTLED] == 1 and len(ran) == 1
    assert (await kit.snapshot(created.order.id))["order"].status is OrderStatus.PAID


async def test_unpaid_invoice_changes_nothing(kit: Kit) -> None:
    """An invoice the provider reports unpaid stays pending with its order."""
    created = await kit.order(Product.DAZPAY)
    before = await kit.snapshot(created.order.id)
    assert await kit.settler.settle(created.invoice.payment_hash, source="test") \
        is SettleOutcome.NOT_PAID
    assert await kit.snapshot(created.order.id) == before
    assert before["order"].status is OrderStatus.PENDING and before["outbox"] == []


async def test_unknown_hash_is_reported_and_harmless(kit: Kit) -> None:
    """A hash the gateway never issued is unknown; no provider is asked."""
    assert await kit.settler.settle("ab" * 32, source="test") is SettleOutcome.UNKNOWN_INVOICE


async def test_unpaid_invoice_past_expiry_expires_with_its_order(kit: Kit) -> None:
    """Past its expiry and unpaid at the provider, the invoice and its order become expired."""
    created = await kit.order(Product.DAZNODE)
    kit.clock.advance(601)
    assert await kit.settler.settle(created.invoice.payment_hash, source="test") \
        is SettleOutcome.EXPIRED
    snap = await kit.snapshot(created.order.id)
    assert snap["invoice"].state is InvoiceState.EXPIRED
    assert snap["order"].status is OrderStatus.EXPIRED and snap["outbox"] == []


async def test_payment_after_expiry_settles_flagged_late(kit: Kit) -> None:
    """A payment the provider confirms after expiry settles the expired order, flagged late."""
    created = await kit.order(Product.DAZPAY)
    kit.clock.advance(601)
    await kit.settler.settle(created.invoice.payment_hash, source="test")
    await pay(kit, created.invoice.payment_hash)  # paid_at = the (late) clock time
    assert await kit.settler.settle(created.invoice.payment_hash, source="test") \
        is SettleOutcome.SETTLED
    snap = await kit.snapshot(created.order.id)
    assert snap["invoice"].state is InvoiceState.PAID and snap["invoice"].paid_late
    assert snap["order"].status is OrderStatus.PAID and snap["order"].paid_late
    [receipt] = snap["outbox"]
    assert receipt["kind"] == "dazpay_receipt" and receipt["payload"]["paid_late"] is True


async def test_daznode_subscription_is_activated_then_extended(kit: Kit) -> None:
    """A first DazNode payment starts a month; a yearly renewal extends from its end."""
    first = await kit.order(Product.DAZNODE)
    await pay(kit, first.invoice.payment_hash)
    await kit.settler.settle(first.invoice.payment_hash, source="test")
    started = kit.clock.now
    kit.clock.advance(86400)
    second = await kit.order(Product.DAZNODE, plan=Plan.YEARLY)
    assert second.order.amount_msat == 960_000_000
    await pay(kit, second.invoice.payment_hash)
    await kit.settler.settle(second.invoice.payment_hash, source="test")
    snap = await kit.snapshot(second.order.id)
    [sub] = snap["subscriptions"]
    assert sub["period_start"] == started
    assert sub["period_end"] == add_months(add_months(started, 1), 12)
    assert sub["last_order_id"] == second.order.id
    assert snap["order"].fulfilment["subscription"]["renewed"] is True
    [email] = snap["outbox"]
    assert email["kind"] == "daznode_confirmation" and email["payload"]["renewed"] is True


async def test_lapsed_subscription_restarts_at_the_payment(kit: Kit) -> None:
    """A renewal after the subscription ended starts a new period at the payment time."""
    first = await kit.order(Product.DAZNODE)
    await pay(kit, first.invoice.payment_hash)
    await kit.settler.settle(first.invoice.payment_hash, source="test")
    kit.clock.advance(40 * 86400)
    second = await kit.order(Product.DAZNODE)
    await pay(kit, second.invoice.payment_hash)
    await kit.settler.settle(second.invoice.payment_hash, source="test")
    [sub] = (await kit.snapshot(second.order.id))["subscriptions"]
    assert sub["period_start"] == kit.clock.now
    assert timedelta(days=28) <= sub["period_end"] - kit.clock.now <= timedelta(days=31)


async def test_bare_invoice_settles_without_an_order(kit: Kit) -> None:
    """An invoice from create-invoice (no order) settles like any other."""
    issued = await create_invoice(InvoiceRequest(amount_sat=10, description="tip", expiry=600),
                                  kit.orders.invoices)
    await pay(kit, issued.invoice.payment_hash)
    assert await kit.settler.settle(issued.invoice.payment_hash, source="test") \
        is SettleOutcome.SETTLED


# -- what the provider says decides (LNbits double) ---------------------------------------------


async def test_amount_mismatch_changes_nothing(lnbits_kit: Kit,
                                               lnbits_double: LNbitsDouble) -> None:
    """LNbits reporting a paid invoice for less than the order's amount settles nothing."""
    created = await lnbits_kit.order(Product.DAZPAY, amount_sat=5000)
    before = await lnbits_kit.snapshot(created.order.id)
    lnbits_double.mark_paid(created.invoice.payment_hash)
    lnbits_double.invoices[created.invoice.payment_hash]["amount"] = 1000
    assert await lnbits_kit.settler.settle(created.invoice.payment_hash, source="test") \
        is SettleOutcome.MISMATCH
    assert await lnbits_kit.snapshot(created.order.id) == before


async def test_wrong_preimage_changes_nothing(lnbits_kit: Kit, lnbits_double: LNbitsDouble) -> None:
    """A paid answer whose preimage does not hash to the payment hash settles nothing."""
    created = await lnbits_kit.order(Product.DAZPAY)
    before = await lnbits_kit.snapshot(created.order.id)
    lnbits_double.mark_paid(created.invoice.payment_hash)
    lnbits_double.invoices[created.invoice.payment_hash]["preimage"] = "00" * 32
    assert await lnbits_kit.settler.settle(created.invoice.payment_hash, source="test") \
        is SettleOutcome.MISMATCH
    assert await lnbits_kit.snapshot(created.order.id) == before


async def test_unreachable_provider_changes_nothing(lnbits_kit: Kit,
                                                    lnbits_double: LNbitsDouble) -> None:
    """When LNbits cannot answer, nothing is settled or expired; it is reported unavailable."""
    created = await lnbits_kit.order(Product.DAZBOX)
    lnbits_double.mark_paid(created.invoice.payment_hash)
    lnbits_kit.clock.advance(3600)
    before = await lnbits_kit.snapshot(created.order.id)
    lnbits_double.always("status", Reply(503, json={"detail": "down"}))
    assert await lnbits_kit.settler.settle(created.invoice.payment_hash, source="test") \
        is SettleOutcome.PROVIDER_UNAVAILABLE
    assert await lnbits_kit.snapshot(created.order.id) == before


async def test_paid_at_lnbits_settles(lnbits_kit: Kit, lnbits_double: LNbitsDouble) -> None:
    """A payment LNbits confirms with the right amount and preimage settles the order."""
    created = await lnbits_kit.order(Product.DAZPAY)
    lnbits_double.mark_paid(created.invoice.payment_hash)
    assert await lnbits_kit.settler.settle(created.invoice.payment_hash, source="test") \
        is SettleOutcome.SETTLED
    assert (await lnbits_kit.snapshot(created.order.id))["order"].status is OrderStatus.PAID
