"""Orders and their fulfilment records: ``orders``, ``shipments``, ``subscriptions``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from lngate.domain import OrderStatus, Plan, Product
from lngate.store.tables import orders, shipments, subscriptions
from lngate.store.upsert import insert_ignore


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """One stored order."""

    id: str
    product: Product
    customer: dict[str, Any]
    plan: Plan | None
    quantity: int
    amount_msat: int
    status: OrderStatus
    payment_hash: str
    metadata: dict[str, Any] | None
    created_at: datetime
    paid_at: datetime | None = None
    paid_late: bool = False
    fulfilment: dict[str, Any] | None = None


_COLUMNS = (
    orders.c.id, orders.c.product, orders.c.customer, orders.c.plan, orders.c.quantity,
    orders.c.amount_msat, orders.c.status, orders.c.payment_hash, orders.c.metadata_,
    orders.c.created_at, orders.c.paid_at, orders.c.paid_late, orders.c.fulfilment,
)


def _record(row: Any) -> OrderRecord:
    (id_, product, customer, plan, quantity, amount_msat, status, payment_hash, metadata,
     created_at, paid_at, paid_late, fulfilment) = tuple(row)
    return OrderRecord(
        id=id_, product=Product(product), customer=customer,
        plan=Plan(plan) if plan else None, quantity=quantity, amount_msat=amount_msat,
        status=OrderStatus(status), payment_hash=payment_hash, metadata=metadata,
        created_at=created_at, paid_at=paid_at, paid_late=bool(paid_late), fulfilment=fulfilment,
    )


async def insert_order(conn: AsyncConnection, record: OrderRecord) -> None:
    """Store a new order (its invoice must already be stored, in the same transaction)."""
    await conn.execute(insert(orders), {
        "id": record.id, "product": record.product.value, "customer": record.customer,
        "plan": record.plan.value if record.plan else None, "quantity": record.quantity,
        "amount_msat": record.amount_msat, "status": record.status.value,
        "payment_hash": record.payment_hash, "metadata_": record.metadata,
        "created_at": record.created_at, "paid_at": record.paid_at,
        "paid_late": record.paid_late, "fulfilment": record.fulfilment,
    })


async def get_order(conn: AsyncConnection, order_id: str) -> OrderRecord | None:
    """The order with this id, or ``None``."""
    row = (await conn.execute(select(*_COLUMNS).where(orders.c.id == order_id))).first()
    return None if row is None else _record(row)


_BY_PAYMENT_HASH = select(*_COLUMNS).where(orders.c.payment_hash == bindparam("hash"))
"""Built once (settlement reads it for every payment)."""


async def get_order_by_payment_hash(
    conn: AsyncConnection, payment_hash: str
) -> OrderRecord | None:
    """The order paid by the invoice with this hash, or ``None`` (a bare invoice)."""
    row = (await conn.execute(_BY_PAYMENT_HASH, {"hash": payment_hash})).first()
    return None if row is None else _record(row)


async def replace_order_invoice(
    conn: AsyncConnection, order_id: str, *, old_payment_hash: str, new_payment_hash: str
) -> bool:
    """Give an expired order a new invoice: it is pending again, paid by ``new_payment_hash``.

    Conditional, like every state change: ``False`` (nothing changed) when the order is no longer
    expired or no longer paid by ``old_payment_hash`` (a concurrent renewal won).
    """
    result = await conn.execute(
        update(orders)
        .where(orders.c.id == order_id, orders.c.status == OrderStatus.EXPIRED.value,
               orders.c.payment_hash == old_payment_hash)
        .values(payment_hash=new_payment_hash, status=OrderStatus.PENDING.value)
    )
    return result.rowcount == 1


async def order_transition(
    conn: AsyncConnection,
    order_id: str,
    *,
    from_statuses: tuple[OrderStatus, ...],
    to_status: OrderStatus,
    paid_at: datetime | None = None,
    paid_late: bool | None = None,
    fulfilment: dict[str, Any] | None = None,
) -> bool:
    """Conditionally change an order's status (and record its fulfilment); ``False`` when it
    was in none of ``from_statuses``."""
    values: dict[str, Any] = {"status": to_status.value}
    if fulfilment is not None:
        values["fulfilment"] = fulfilment
    if paid_at is not None:
        values["paid_at"] = paid_at
    if paid_late is not None:
        values["paid_late"] = paid_late
    result = await conn.execute(
        update(orders)
        .where(orders.c.id == order_id, orders.c.status.in_([s.value for s in from_statuses]))
        .values(**values)
    )
    return result.rowcount == 1


PAYABLE = (OrderStatus.PENDING, OrderStatus.EXPIRED)
"""The statuses an order is paid from."""
_MARK_PAID = (
    update(orders)
    .where(orders.c.id == bindparam("order_id"),
           orders.c.status.in_([status.value for status in PAYABLE]))
    .values(status=OrderStatus.PAID.value, paid_at=bindparam("at"), paid_late=bindparam("late"),
            fulfilment=bindparam("done"))
)
"""Built once (settlement runs it for every paid order)."""


async def mark_order_paid(conn: AsyncConnection, order_id: str, *, paid_at: datetime,
                          paid_late: bool, fulfilment: dict[str, Any]) -> bool:
    """Pending or expired -> paid, with its fulfilment: :func:`order_transition` for the one
    transition every payment makes; ``False`` when the order was in neither status."""
    result = await conn.execute(_MARK_PAID, {"order_id": order_id, "at": paid_at,
                                             "late": paid_late, "done": fulfilment})
    return result.rowcount == 1


async def insert_shipment(
    conn: AsyncConnection, *, order_id: str, quantity: int, address: dict[str, Any],
    recipient_name: str | None, email: str, now: datetime,
) -> int | None:
    """Create the order's shipment (status ``to_ship``); ``None`` if it already has one."""
    result = await conn.execute(
        insert_ignore(conn, shipments, ["order_id"]).returning(shipments.c.id),
        {"order_id": order_id, "status": "to_ship", "quantity": quantity, "address": address,
         "recipient_name": recipient_name, "email": email, "created_at": now},
    )
    return result.scalar()


async def get_shipment(conn: AsyncConnection, order_id: str) -> dict[str, Any] | None:
    """The shipment of an order as a dict of its columns, or ``None``."""
    row = (await conn.execute(select(shipments).where(shipments.c.order_id == order_id))).first()
    return None if row is None else dict(row._mapping)


@dataclass(frozen=True, slots=True)
class SubscriptionPeriod:
    """A subscription after activation or extension."""

    subscription_id: int
    period_start: datetime
    period_end: datetime
    renewed: bool


async def extend_subscription(
    conn: AsyncConnection,
    *,
    subscriber_key: str,
    pubkey: str | None,
    email: str,
    plan: Plan,
    order_id: str,
    paid_at: datetime,
    period_end_from: Any,
) -> SubscriptionPeriod:
    """Activate a subscription, or extend it from its current end when still running.

    ``period_end_from(start)`` gives the end of a period beginning at ``start``. The row is
    locked (``FOR UPDATE`` on PostgreSQL) so two renewals of one subscriber in concurrent
    transactions extend it twice, one after the other.
    """
    await conn.execute(
        insert_ignore(conn, subscriptions, ["subscriber_key"]),
        {"subscriber_key": subscriber_key, "pubkey": pubkey, "email": email, "plan": plan.value,
         "period_start": paid_at, "period_end": paid_at, "last_order_id": None,
         "created_at": paid_at, "updated_at": paid_at},
    )
    row = (await conn.execute(
        select(subscriptions.c.id, subscriptions.c.period_start, subscriptions.c.period_end,
               subscriptions.c.last_order_id)
        .where(subscriptions.c.subscriber_key == subscriber_key)
        .with_for_update()
    )).one()
    renewed = row.last_order_id is not None and row.period_end > paid_at
    start = row.period_start if renewed else paid_at
    end = period_end_from(row.period_end if renewed else paid_at)
    await conn.execute(
        update(subscriptions).where(subscriptions.c.id == row.id).values(
            period_start=start, period_end=end, plan=plan.value, email=email,
            pubkey=pubkey or None, last_order_id=order_id, updated_at=paid_at,
        )
    )
    return SubscriptionPeriod(row.id, start, end, renewed)
