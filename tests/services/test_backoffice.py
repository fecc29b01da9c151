"""The back office's services on SQLite and PostgreSQL: order search and filters, pagination,
order details, shipping (its email exactly once), cancelling, a payment after a cancel,
subscriptions, the audit log and the CSV export."""

from __future__ import annotations

import asyncio
import csv
import io
from collections import Counter
from datetime import timedelta

from lngate.domain import InvoiceState, OrderAttention, OrderStatus, Plan, Product
from lngate.providers.testprovider import TestProvider
from lngate.services import backoffice
from lngate.services.backoffice import OrderQuery
from lngate.services.order_actions import (
    DAZBOX_SHIPPED,
    ORDER_PAID_AFTER_CANCEL,
    ActionOutcome,
    cancel_order,
    ship_order,
)
from lngate.services.order_export import COLUMNS, defuse, export_orders
from lngate.services.orders import Address, CreatedOrder, Customer
from lngate.services.settlement import SettleOutcome
from tests.services.conftest import ADDRESS, Kit

ACTOR = "admin-token"


async def pay(kit: Kit, payment_hash: str) -> None:
    assert isinstance(kit.provider, TestProvider)
    assert await kit.provider.mark_paid(payment_hash)


async def paid(kit: Kit, product: Product = Product.DAZBOX, **overrides: object) -> CreatedOrder:
    created = await kit.order(product, **overrides)
    await pay(kit, created.invoice.payment_hash)
    assert await kit.settler.settle(created.invoice.payment_hash, source="test") \
        is SettleOutcome.SETTLED
    return created


def customer(email: str, name: str | None = None, *, box: bool = False) -> Customer:
    return Customer(email=email, name=name, address=ADDRESS if box else None)


async def ids(kit: Kit, query: OrderQuery, **kwargs: object) -> list[str]:
    page = await backoffice.find_orders(kit.db, query, **kwargs)  # type: ignore[arg-type]
    return [row.order.id for row in page.items]


async def seed(kit: Kit) -> dict[str, CreatedOrder]:
    """Five orders, a minute apart: a shipped DazBox, a paid DazNode, a pending DazPay, an
    expired DazBox and a paid DazPay."""
    orders: dict[str, CreatedOrder] = {}
    orders["box_shipped"] = await paid(kit, Product.DAZBOX,
                                       customer=customer("alice@example.com", "Alice Martin",
                                                         box=True))
    kit.clock.advance(60)
    orders["node_paid"] = await paid(kit, Product.DAZNODE,
                                     customer=customer("bob@shop.test", "Bob Durand"))
    kit.clock.advance(60)
    orders["pay_pending"] = await kit.order(Product.DAZPAY,
                                            customer=customer("carol@example.com", "Carol 50%_off"))
    kit.clock.advance(60)
    orders["box_expired"] = await kit.order(Product.DAZBOX,
                                            customer=customer("dave@example.org", "Dave", box=True))
    kit.clock.advance(60)
    orders["pay_paid"] = await paid(kit, Product.DAZPAY,
                                    customer=customer("ALICE.two@Example.com", "Alicia"))
    kit.clock.advance(601)  # past the expiry of the DazBox left unpaid
    assert await kit.settler.settle(orders["box_expired"].invoice.payment_hash,
                                    source="test") is SettleOutcome.EXPIRED
    result = await ship_order(kit.db, orders["box_shipped"].order.id,
                              tracking_number="6A12345678901", carrier="Colissimo",
                              actor=ACTOR, clock=kit.clock)
    assert result.outcome is ActionOutcome.DONE
    return orders


async def test_search_and_filters_combine(kit: Kit) -> None:
    """Orders are found by id, payment hash, part of an email, name or tracking number, and
    filtered by status, product and creation dates, alone and combined, newest first."""
    o = await seed(kit)
    oid = {name: created.order.id for name, created in o.items()}
    everything = await ids(kit, OrderQuery())
    assert everything == [oid[n] for n in ("pay_paid", "box_expired", "pay_pending", "node_paid",
                                           "box_shipped")]
    assert await ids(kit, OrderQuery(q=oid["node_paid"])) == [oid["node_paid"]]
    upper_hash = o["pay_pending"].invoice.payment_hash.upper()
    assert await ids(kit, OrderQuery(q=upper_hash)) == [oid["pay_pending"]]
    assert await ids(kit, OrderQuery(q="alice")) == [oid["pay_paid"], oid["box_shipped"]]
    assert await ids(kit, OrderQuery(q="EXAMPLE.COM")) == [oid["pay_paid"], oid["pay_pending"],
                                                          oid["box_shipped"]]
    assert await ids(kit, OrderQuery(q="durand")) == [oid["node_paid"]]
    assert await ids(kit, OrderQuery(q="345678")) == [oid["box_shipped"]]  # tracking number
    assert await ids(kit, OrderQuery(q="50%_")) == [oid["pay_pending"]]  # % and _ are literal
    assert await ids(kit, OrderQuery(q="%")) == [oid["pay_pending"]]
    assert await ids(kit, OrderQuery(q="nobody")) == []
    assert await ids(kit, OrderQuery(status=OrderStatus.PAID)) == [
        oid["pay_paid"], oid["node_paid"], oid["box_shipped"]]
    assert await ids(kit, OrderQuery(status=OrderStatus.EXPIRED)) == [oid["box_expired"]]
    assert await ids(kit, OrderQuery(product=Product.DAZBOX)) == [oid["box_expired"],
                                                                 oid["box_shipped"]]
    assert await ids(kit, OrderQuery(product=Product.DAZPAY, status=OrderStatus.PAID)) == [
        oid["pay_paid"]]
    assert await ids(kit, OrderQuery(q="alice", product=Product.DAZBOX,
                                     status=OrderStatus.PAID)) == [oid["box_shipped"]]
    node_at = o["node_paid"].order.created_at
    box_at = o["box_expired"].order.created_at
    assert await ids(kit, OrderQuery(created_from=node_at, created_to=box_at)) == [
        oid["pay_pending"], oid["node_paid"]]  # from inclusive, to exclusive
    assert await ids(kit, OrderQuery(created_from=box_at, q="example")) == [
        oid["pay_paid"], oid["box_expired"]]
    assert await ids(kit, OrderQuery(created_to=node_at)) == [oid["box_shipped"]]


async def test_pages_follow_each_other_without_repeat(kit: Kit) -> None:
    """Keyset pages of two cover every order once, newest first, even with orders created
    in the same instant, and the last page says there is no more."""
    made = [await kit.order(Product.DAZPAY) for _ in range(5)]  # same clock: same created_at
    kit.clock.advance(1)
    made.append(await kit.order(Product.DAZPAY))
    seen: list[str] = []
    after = None
    for _ in range(3):
        page = await backoffice.find_orders(kit.db, OrderQuery(), after=after, limit=2)
        seen += [row.order.id for row in page.items]
        after = page.next_after
    assert after is None
    assert len(seen) == 6 and set(seen) == {c.order.id for c in made}
    assert seen[0] == made[-1].order.id  # the newest first
    assert (await backoffice.find_orders(kit.db, OrderQuery(), limit=10_000)).next_after is None


async def test_order_detail_has_invoice_payment_fulfilment_emails_and_audit(kit: Kit) -> None:
    """An order's detail carries its invoice, payment, shipment, outbox emails and audit."""
    o = await seed(kit)
    detail = await backoffice.order_detail(kit.db, o["box_shipped"].order.id)
    assert detail is not None
    assert detail.invoice is not None and detail.invoice.state is InvoiceState.PAID
    assert detail.row.order.paid_at is not None and detail.invoice.provider == "test"
    assert detail.row.shipment is not None
    assert detail.row.shipment.tracking_number == "6A12345678901"
    kinds = [email["kind"] for email in detail.emails]
    assert kinds == ["dazbox_confirmation", "dazbox_shop_notification", DAZBOX_SHIPPED]
    assert [(e.action, e.actor) for e in detail.audit] == [("order.ship", ACTOR)]
    node = await backoffice.order_detail(kit.db, o["node_paid"].order.id)
    assert node is not None and node.subscription is not None
    assert node.subscription.email == "bob@shop.test"
    assert await backoffice.order_detail(kit.db, "x" * 22) is None


async def test_ship_only_a_paid_dazbox_waiting_to_ship(kit: Kit) -> None:
    """Shipping is refused for an unknown, unpaid, non-DazBox or already shipped order."""
    o = await seed(kit)

    async def ship(order_id: str) -> ActionOutcome:
        return (await ship_order(kit.db, order_id, tracking_number="T1", carrier=None,
                                 actor=ACTOR, clock=kit.clock)).outcome

    assert await ship("y" * 22) is ActionOutcome.NOT_FOUND
    assert await ship(o["node_paid"].order.id) is ActionOutcome.NOT_DAZBOX
    assert await ship(o["box_expired"].order.id) is ActionOutcome.NOT_PAID
    assert await ship(o["box_shipped"].order.id) is ActionOutcome.ALREADY_SHIPPED
    detail = await backoffice.order_detail(kit.db, o["box_shipped"].order.id)
    assert detail is not None and detail.row.shipment is not None
    assert detail.row.shipment.tracking_number == "6A12345678901"  # the first one stays


async def test_concurrent_ship_requests_ship_once_with_one_email(kit: Kit) -> None:
    """Eight concurrent ship requests for one order: one ships it, with one queued email and
    one audit row; the others are told it is already shipped."""
    created = await paid(kit, Product.DAZBOX)
    results = await asyncio.gather(*(
        ship_order(kit.db, created.order.id, tracking_number=f"TRK{i}", carrier=None,
                   actor=ACTOR, clock=kit.clock) for i in range(8)))
    outcomes = Counter(r.outcome for r in results)
    assert outcomes == {ActionOutcome.DONE: 1, ActionOutcome.ALREADY_SHIPPED: 7}
    snap = await kit.snapshot(created.order.id)
    shipped = [row for row in snap["outbox"] if row["kind"] == DAZBOX_SHIPPED]
    assert len(shipped) == 1 and shipped[0]["recipient"] == "alice@example.com"
    winner = next(r for r in results if r.outcome is ActionOutcome.DONE)
    assert winner.order is not None and winner.order.shipment is not None
    assert shipped[0]["payload"]["tracking_number"] == winner.order.shipment.tracking_number
    trail = await backoffice.audit_log(kit.db, target=created.order.id)
    assert [e.action for e in trail.items] == ["order.ship"]
    assert snap["order"].fulfilment["shipment"]["status"] == "shipped"


async def test_cancel_an_unpaid_order_pending_or_expired(kit: Kit) -> None:
    """A pending or an expired order is cancelled and audited; cancelling again is refused."""
    pending = await kit.order(Product.DAZPAY)
    expired = await kit.order(Product.DAZBOX)
    kit.clock.advance(601)
    assert await kit.settler.settle(expired.invoice.payment_hash, source="test") \
        is SettleOutcome.EXPIRED
    for created, before in ((pending, "pending"), (expired, "expired")):
        result = await cancel_order(kit.db, created.order.id, actor="session:abc",
                                    clock=kit.clock, reason="client request")
        assert result.outcome is ActionOutcome.DONE and result.order is not None
        assert result.order.order.status is OrderStatus.CANCELLED
        assert result.order.cancelled_at == kit.clock.now
        [entry] = (await backoffice.audit_log(kit.db, target=created.order.id)).items
        assert (entry.actor, entry.action) == ("session:abc", "order.cancel")
        assert entry.details is not None and entry.details["previousStatus"] == before
        assert entry.details["reason"] == "client request"
        again = await cancel_order(kit.db, created.order.id, actor=ACTOR, clock=kit.clock)
        assert again.outcome is ActionOutcome.ALREADY_CANCELLED
    assert (await cancel_order(kit.db, "z" * 22, actor=ACTOR, clock=kit.clock)).outcome \
        is ActionOutcome.NOT_FOUND


async def test_cancelling_a_paid_order_is_refused(kit: Kit) -> None:
    """A paid order cannot be cancelled; nothing about it changes and nothing is audited."""
    created = await paid(kit, Product.DAZBOX)
    before = await kit.snapshot(created.order.id)
    result = await cancel_order(kit.db, created.order.id, actor=ACTOR, clock=kit.clock)
    assert result.outcome is ActionOutcome.ALREADY_PAID
    assert await kit.snapshot(created.order.id) == before
    assert (await backoffice.audit_log(kit.db, target=created.order.id)).items == []


async def test_payment_after_cancel_is_kept_and_flagged_for_refund(kit: Kit) -> None:
    """A cancelled order whose invoice is paid later: the invoice settles (the money is
    recorded), the order stays cancelled with refund_due, nothing is shipped, the customer gets
    no confirmation, the shop gets an email and the audit log says it."""
    created = await kit.order(Product.DAZBOX)
    assert (await cancel_order(kit.db, created.order.id, actor=ACTOR, clock=kit.clock)).outcome \
        is ActionOutcome.DONE
    kit.clock.advance(30)
    await pay(kit, created.invoice.payment_hash)
    assert await kit.settler.settle(created.invoice.payment_hash, source="webhook") \
        is SettleOutcome.SETTLED
    snap = await kit.snapshot(created.order.id)
    assert snap["invoice"].state is InvoiceState.PAID
    order = snap["order"]
    assert order.status is OrderStatus.CANCELLED and order.paid_at == kit.clock.now
    assert snap["shipments"] == []
    assert [(r["kind"], r["recipient"]) for r in snap["outbox"]] == [
        (ORDER_PAID_AFTER_CANCEL, None)]
    row = (await backoffice.find_orders(kit.db, OrderQuery(attention=True))).items
    assert [r.order.id for r in row] == [created.order.id]
    assert row[0].attention is OrderAttention.REFUND_DUE
    trail = (await backoffice.audit_log(kit.db, target=created.order.id)).items
    assert [(e.action, e.actor) for e in trail] == [
        ("order.paid_after_cancel", "system:settlement"), ("order.cancel", ACTOR)]
    # a second doorbell changes nothing
    assert await kit.settler.settle(created.invoice.payment_hash, source="reconciler") \
        is SettleOutcome.ALREADY_SETTLED
    assert await kit.snapshot(created.order.id) == snap


async def test_cancel_racing_settlement_never_loses_the_payment(kit: Kit) -> None:
    """A cancel and a settlement of the same paid invoice run at once: either the order is
    paid and the cancel refused, or it is cancelled and flagged refund_due; never a cancelled
    order with its payment unflagged."""
    for _ in range(6):
        created = await kit.order(Product.DAZPAY)
        await pay(kit, created.invoice.payment_hash)
        cancelled, settled = await asyncio.gather(
            cancel_order(kit.db, created.order.id, actor=ACTOR, clock=kit.clock),
            kit.settler.settle(created.invoice.payment_hash, source="test"))
        assert settled is SettleOutcome.SETTLED
        snap = await kit.snapshot(created.order.id)
        assert snap["invoice"].state is InvoiceState.PAID
        if cancelled.outcome is ActionOutcome.DONE:
            assert snap["order"].status is OrderStatus.CANCELLED
            assert [r["kind"] for r in snap["outbox"]] == [ORDER_PAID_AFTER_CANCEL]
        else:
            assert cancelled.outcome is ActionOutcome.ALREADY_PAID
            assert snap["order"].status is OrderStatus.PAID
            assert [r["kind"] for r in snap["outbox"]] == ["dazpay_receipt"]


async def test_subscriptions_listed_with_their_end_dates(kit: Kit) -> None:
    """Subscriptions are listed latest end first, as active while running, expired after."""
    monthly = await paid(kit, Product.DAZNODE, customer=customer("m@example.com"))
    yearly = await paid(kit, Product.DAZNODE, customer=customer("y@example.com"),
                        plan=Plan.YEARLY)
    assert monthly.order.id and yearly.order.id
    now = kit.clock.now
    page = await backoffice.subscriptions(kit.db, now=now)
    assert [s.email for s in page.items] == ["y@example.com", "m@example.com"]
    assert all(s.period_end > now for s in page.items)
    later = now + timedelta(days=40)
    assert [s.email for s in (await backoffice.subscriptions(kit.db, now=later,
                                                             active=True)).items] == \
        ["y@example.com"]
    assert [s.email for s in (await backoffice.subscriptions(kit.db, now=later,
                                                             active=False)).items] == \
        ["m@example.com"]
    assert [s.email for s in (await backoffice.subscriptions(kit.db, now=now, q="Y@EX")).items] \
        == ["y@example.com"]
    first = await backoffice.subscriptions(kit.db, now=now, limit=1)
    second = await backoffice.subscriptions(kit.db, now=now, limit=1, after=first.next_after)
    assert [s.email for s in first.items + second.items] == ["y@example.com", "m@example.com"]
    assert second.next_after is None


async def test_csv_export_quotes_and_defuses_every_cell(kit: Kit) -> None:
    """The CSV has one row per matching order; commas, quotes and line breaks are quoted, and
    cells starting with = + - @ are prefixed with a quote."""
    hostile = Address(line1='=HYPERLINK("http://evil.test","x")', line2="+33 1 23",
                      city="-Lyon", postal_code="@69001", country='France, "FR"\nEU')
    box = await kit.order(Product.DAZBOX, customer=Customer(
        email="eve@example.com", name="=1+2", address=hostile))
    kit.clock.advance(1)
    await kit.order(Product.DAZPAY, customer=customer("zed@example.com", "Zed"))
    text = "".join([chunk async for chunk in export_orders(kit.db, OrderQuery(q="eve"))])
    assert text.startswith("\ufeff") and "\r\n" in text
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))
    assert rows[0] == list(COLUMNS) and len(rows) == 2
    cells = dict(zip(COLUMNS, rows[1], strict=True))
    assert cells["order_id"] == defuse(box.order.id)
    assert cells["customer_name"] == "'=1+2"
    assert cells["address_line1"] == """'=HYPERLINK("http://evil.test","x")"""
    assert cells["address_line2"] == "'+33 1 23"
    assert cells["city"] == "'-Lyon" and cells["postal_code"] == "'@69001"
    assert cells["country"] == 'France, "FR"\nEU'
    assert cells["amount_sat"] == "400000" and cells["status"] == "pending"
    everything = "".join([c async for c in export_orders(kit.db, OrderQuery(), batch=1)])
    assert len(list(csv.reader(io.StringIO(everything.removeprefix("\ufeff"),
                                           newline="")))) == 3


def test_defuse_prefixes_only_formula_starts() -> None:
    """Only a cell starting with = + - @ tab or carriage return is prefixed."""
    for risky in ("=SUM(A1)", "+1", "-1", "@cmd", "\tx", "\rx"):
        assert defuse(risky) == "'" + risky
    for safe in ("alice", "1-2", "a=b", "", "'=x"):
        assert defuse(safe) == safe
