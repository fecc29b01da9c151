"""The post-payment step of each product, run inside the settlement's transaction.

Only the caller whose conditional ``UPDATE`` moved the invoice to paid gets here, so each
step runs once per paid order; the records it writes are unique per order as well
(``shipments.order_id``, ``outbox (order_id, kind)``), a second guard.

- DazBox: a shipment to make (status ``to_ship``, with the address), a confirmation email to the
  customer and a notification to the shop.
- DazNode: the subscription is activated, or extended from its current end while it runs
  (monthly: one calendar month, yearly: twelve), and a confirmation email.
- DazPay: a receipt email.

An order cancelled by the shop before its invoice was paid is not fulfilled when the payment
arrives after all: it is flagged for a refund instead
(:func:`lngate.services.order_actions.record_payment_on_cancelled_order`).
"""

from __future__ import annotations

import calendar
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from lngate.domain import OrderStatus, Plan, Product, msat_to_sat
from lngate.services.order_actions import record_payment_on_cancelled_order
from lngate.services.orders import MONTHS, PLAN_LABELS, PRODUCT_LABELS
from lngate.store.orders import (
    PAYABLE,
    OrderRecord,
    extend_subscription,
    get_order_by_payment_hash,
    insert_shipment,
    mark_order_paid,
    order_transition,
)
from lngate.store.outbox import OutboxMessage, enqueue

DAZBOX_CONFIRMATION = "dazbox_confirmation"
DAZBOX_SHOP_NOTIFICATION = "dazbox_shop_notification"
DAZNODE_CONFIRMATION = "daznode_confirmation"
DAZPAY_RECEIPT = "dazpay_receipt"


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus calendar months, the day clamped to the month's length.

    31 January + 1 month is 28 (or 29) February.
    """
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _base_payload(order: OrderRecord, paid_at: datetime, late: bool) -> dict[str, Any]:
    customer = order.customer
    return {
        "order_id": order.id,
        "product": order.product.value,
        "product_label": PRODUCT_LABELS[order.product],
        "amount_sat": msat_to_sat(order.amount_msat),
        "quantity": order.quantity,
        "plan": order.plan.value if order.plan else None,
        "plan_label": PLAN_LABELS[order.plan] if order.plan else None,
        "customer_name": customer.get("name"),
        "customer_email": customer["email"],
        "payment_hash": order.payment_hash,
        "paid_at": _iso(paid_at),
        "paid_late": late,
    }


async def fulfil_paid_order(
    conn: AsyncConnection, payment_hash: str, *, paid_at: datetime, late: bool, now: datetime
) -> OrderRecord | None:
    """Mark the order of this invoice paid, run its product's step, queue its emails.

    Returns the order (``None`` for an invoice without one). Must run in the transaction that
    moved the invoice to paid.
    """
    order = await get_order_by_payment_hash(conn, payment_hash)
    if order is not None and order.status is OrderStatus.CANCELLED:
        await record_payment_on_cancelled_order(
            conn, order, payload=_base_payload(order, paid_at, late), paid_at=paid_at, late=late,
            now=now)
        return order
    if order is None or order.status not in PAYABLE:
        return order
    payload = _base_payload(order, paid_at, late)
    email = order.customer["email"]
    messages: list[OutboxMessage]
    if order.product is Product.DAZBOX:
        address = order.customer.get("address") or {}
        shipment_id = await insert_shipment(
            conn, order_id=order.id, quantity=order.quantity, address=address,
            recipient_name=order.customer.get("name"), email=email, now=now,
        )
        fulfilment: dict[str, Any] = {"shipment": {"id": shipment_id, "status": "to_ship"}}
        payload["address"] = address
        messages = [OutboxMessage(order.id, DAZBOX_CONFIRMATION, email, payload),
                    OutboxMessage(order.id, DAZBOX_SHOP_NOTIFICATION, None, payload)]
    elif order.product is Product.DAZNODE:
        plan = order.plan or Plan.MONTHLY
        pubkey = order.customer.get("pubkey")
        subscriber_key = f"pubkey:{pubkey}" if pubkey else f"email:{email.lower()}"
        period = await extend_subscription(
            conn, subscriber_key=subscriber_key, pubkey=pubkey, email=email, plan=plan,
            order_id=order.id, paid_at=paid_at,
            period_end_from=lambda start: add_months(start, MONTHS[plan]),
        )
        fulfilment = {"subscription": {"id": period.subscription_id,
                                       "periodStart": _iso(period.period_start),
                                       "periodEnd": _iso(period.period_end),
                                       "renewed": period.renewed}}
        payload.update(period_start=_iso(period.period_start), period_end=_iso(period.period_end),
                       renewed=period.renewed, pubkey=pubkey)
        messages = [OutboxMessage(order.id, DAZNODE_CONFIRMATION, email, payload)]
    else:
        fulfilment = {"receipt": True}
        messages = [OutboxMessage(order.id, DAZPAY_RECEIPT, email, payload)]
    if not await mark_order_paid(conn, order.id, paid_at=paid_at, paid_late=late,
                                 fulfilment=fulfilment):
        # Only the caller that moved the invoice to paid gets here, so this cannot happen;
        # if it does, undo the step (the transaction rolls back) rather than fulfil twice.
        raise RuntimeError(f"order {order.id} changed during its settlement")
    await enqueue(conn, messages, now)
    return order


async def expire_order(conn: AsyncConnection, payment_hash: str) -> None:
    """The invoice expired unpaid: its order (if any) expires too."""
    order = await get_order_by_payment_hash(conn, payment_hash)
    if order is not None:
        await order_transition(conn, order.id, from_statuses=(OrderStatus.PENDING,),
                               to_status=OrderStatus.EXPIRED)
