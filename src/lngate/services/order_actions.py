"""What an operator does to an order: ship a DazBox, cancel an unpaid order. Each action, its
email and its audit row are written in one transaction.

Shipping
    Only a paid DazBox whose shipment is ``to_ship``. The conditional ``UPDATE`` of the shipment
    decides which of two concurrent requests ships it; only that one queues the customer's
    "shipped" email (the outbox is unique per ``(order_id, kind)`` besides), so the customer
    gets it exactly once.

Cancelling
    Only an unpaid order (``pending`` or ``expired``) becomes ``cancelled``. The invoice is left
    as it is: a BOLT11 invoice cannot be withdrawn from the payer's wallet, and the reconciler
    keeps checking it until its expiry (plus the late-payment margin). Cancel and settlement
    lock the invoice's row first, so they run one after the other:

    - settlement first: the order is paid, and the cancel is refused (``paid``);
    - cancel first: a payment arriving later still settles the invoice (the money arrived and
      is recorded), but the order is not fulfilled: it stays ``cancelled``, gets ``paid_at``
      and ``attention = refund_due``, an audit row by ``system:settlement``, an error log line
      ``cancelled_order_paid`` and an email to the shop (:func:`record_payment_on_cancelled_order`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from lngate.domain import InvoiceState, OrderStatus, Product, ShipmentStatus, msat_to_sat
from lngate.services.clock import WallClock
from lngate.store import Database
from lngate.store import audit
from lngate.store.backoffice import (
    OrderRow,
    flag_cancelled_order_paid,
    get_order_row,
    lock_invoice_state,
    mark_cancelled,
    mark_shipped,
    set_fulfilment,
)
from lngate.store.orders import OrderRecord
from lngate.store.outbox import OutboxMessage, enqueue

log = structlog.get_logger("lngate.backoffice")

DAZBOX_SHIPPED = "dazbox_shipped"
ORDER_PAID_AFTER_CANCEL = "order_paid_after_cancel"
SETTLEMENT_ACTOR = "system:settlement"
MAX_TRACKING = 100
MAX_CARRIER = 64


class ActionOutcome(enum.StrEnum):
    """What an order action did."""

    DONE = "done"
    NOT_FOUND = "not_found"
    NOT_DAZBOX = "not_dazbox"
    NOT_PAID = "not_paid"
    ALREADY_SHIPPED = "already_shipped"
    ALREADY_PAID = "already_paid"
    ALREADY_CANCELLED = "already_cancelled"


@dataclass(frozen=True, slots=True)
class ActionResult:
    """An action's outcome and the order as it is afterwards (``None`` when not found)."""

    outcome: ActionOutcome
    order: OrderRow | None


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def shipped_payload(order: OrderRecord, *, tracking_number: str, carrier: str | None,
                    shipped_at: datetime, address: dict[str, Any]) -> dict[str, Any]:
    """The data of the customer's "shipped" email."""
    return {
        "order_id": order.id,
        "product_label": "DazBox",
        "quantity": order.quantity,
        "customer_name": order.customer.get("name"),
        "customer_email": order.customer["email"],
        "tracking_number": tracking_number,
        "carrier": carrier,
        "shipped_at": _iso(shipped_at.replace(microsecond=0)),
        "address": address,
        "payment_hash": order.payment_hash,
        "paid_late": order.paid_late,
    }


async def ship_order(
    db: Database, order_id: str, *, tracking_number: str, carrier: str | None, actor: str,
    clock: WallClock,
) -> ActionResult:
    """Mark a paid DazBox shipped with its tracking number, queue the customer's email once,
    and audit it. ``tracking_number`` and ``carrier`` must already be validated."""
    now = clock()
    async with db.transaction() as conn:
        row = await get_order_row(conn, order_id)
        if row is None:
            return ActionResult(ActionOutcome.NOT_FOUND, None)
        order = row.order
        if order.product is not Product.DAZBOX:
            return ActionResult(ActionOutcome.NOT_DAZBOX, row)
        if order.status is not OrderStatus.PAID or row.shipment is None:
            return ActionResult(ActionOutcome.NOT_PAID, row)
        if not await mark_shipped(conn, order_id, tracking_number=tracking_number,
                                  carrier=carrier, now=now):
            return ActionResult(ActionOutcome.ALREADY_SHIPPED, row)
        shipment = {"id": row.shipment.id, "status": ShipmentStatus.SHIPPED.value,
                    "trackingNumber": tracking_number, "carrier": carrier,
                    "shippedAt": _iso(now)}
        await set_fulfilment(conn, order_id, {**(order.fulfilment or {}), "shipment": shipment})
        payload = shipped_payload(order, tracking_number=tracking_number, carrier=carrier,
                                  shipped_at=now, address=row.shipment.address)
        await enqueue(conn, [OutboxMessage(order_id, DAZBOX_SHIPPED, order.customer["email"],
                                           payload)], now)
        await audit.record(conn, at=now, actor=actor, action="order.ship", target=order_id,
                           details={"trackingNumber": tracking_number, "carrier": carrier})
        after = await get_order_row(conn, order_id)
    log.info("order_shipped", order_id=order_id, actor=actor, carrier=carrier)
    return ActionResult(ActionOutcome.DONE, after)


async def cancel_order(
    db: Database, order_id: str, *, actor: str, clock: WallClock, reason: str | None = None,
) -> ActionResult:
    """Cancel an unpaid (pending or expired) order and audit it; a paid one is refused."""
    now = clock()
    async with db.transaction() as conn:
        row = await get_order_row(conn, order_id)
        if row is None:
            return ActionResult(ActionOutcome.NOT_FOUND, None)
        # Lock the invoice first, as settlement does, then decide on what is committed.
        invoice_state = await lock_invoice_state(conn, row.order.payment_hash)
        row = await get_order_row(conn, order_id)
        assert row is not None  # orders are never deleted
        if invoice_state is InvoiceState.PAID or row.order.status is OrderStatus.PAID:
            return ActionResult(ActionOutcome.ALREADY_PAID, row)
        if row.order.status is OrderStatus.CANCELLED:
            return ActionResult(ActionOutcome.ALREADY_CANCELLED, row)
        if not await mark_cancelled(conn, order_id, now):
            return ActionResult(ActionOutcome.ALREADY_CANCELLED, row)
        details: dict[str, Any] = {"previousStatus": row.order.status.value,
                                   "invoiceState": invoice_state.value if invoice_state else None}
        if reason:
            details["reason"] = reason
        await audit.record(conn, at=now, actor=actor, action="order.cancel", target=order_id,
                           details=details)
        after = await get_order_row(conn, order_id)
    log.info("order_cancelled", order_id=order_id, actor=actor,
             previous_status=row.order.status.value)
    return ActionResult(ActionOutcome.DONE, after)


async def record_payment_on_cancelled_order(
    conn: AsyncConnection, order: OrderRecord, *, payload: dict[str, Any], paid_at: datetime,
    late: bool, now: datetime,
) -> None:
    """The invoice of a cancelled order was just settled (in this transaction): flag the order
    ``refund_due``, audit it, tell the shop, log it. Nothing is shipped or activated."""
    if not await flag_cancelled_order_paid(conn, order.id, paid_at=paid_at, paid_late=late):
        return
    await audit.record(conn, at=now, actor=SETTLEMENT_ACTOR, action="order.paid_after_cancel",
                       target=order.id, details={
                           "paymentHash": order.payment_hash,
                           "amountSat": msat_to_sat(order.amount_msat),
                           "paidAt": _iso(paid_at), "paidLate": late,
                           "attention": "refund_due"})
    await enqueue(conn, [OutboxMessage(order.id, ORDER_PAID_AFTER_CANCEL, None, payload)], now)
    log.error("cancelled_order_paid", order_id=order.id, payment_hash=order.payment_hash,
              amount_msat=order.amount_msat, attention="refund_due",
              reason="the invoice of a cancelled order was paid; the money must be returned")
