"""The back office's reads and writes: order search, shipping, cancelling, subscriptions.

Lists are paginated by keyset (newest first): a page ends with the sort key of its last row,
and the next page starts strictly after it, so a page never repeats or skips a row when orders
arrive meanwhile, and a deep page costs what the first one does (index ``(created_at, id)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from lngate.domain import (
    InvoiceState,
    OrderAttention,
    OrderStatus,
    Product,
    ShipmentStatus,
    is_payment_hash,
)
from lngate.store.orders import _COLUMNS as ORDER_COLUMNS
from lngate.store.orders import OrderRecord
from lngate.store.orders import _record as order_record
from lngate.store.tables import invoices, orders, shipments, subscriptions

_UNPAID = (OrderStatus.PENDING.value, OrderStatus.EXPIRED.value)


@dataclass(frozen=True, slots=True)
class OrderQuery:
    """Which orders to list. ``q`` matches an order id or payment hash exactly, or a part of
    the customer's email or name or of a tracking number (case-insensitive)."""

    q: str | None = None
    status: OrderStatus | None = None
    product: Product | None = None
    created_from: datetime | None = None
    """Inclusive."""
    created_to: datetime | None = None
    """Exclusive."""
    attention: bool = False
    """Only orders that need the shop's attention."""


@dataclass(frozen=True, slots=True)
class ShipmentInfo:
    """A DazBox shipment."""

    id: int
    status: ShipmentStatus
    quantity: int
    address: dict[str, Any]
    recipient_name: str | None
    created_at: datetime
    shipped_at: datetime | None
    tracking_number: str | None
    carrier: str | None


@dataclass(frozen=True, slots=True)
class OrderRow:
    """An order as the back office sees it: the order, its back-office columns, its shipment."""

    order: OrderRecord
    cancelled_at: datetime | None
    attention: OrderAttention | None
    shipment: ShipmentInfo | None

    @property
    def key(self) -> tuple[datetime, str]:
        """Its place in the newest-first order (the keyset cursor)."""
        return self.order.created_at, self.order.id


_SHIPMENT_COLUMNS = (
    shipments.c.id, shipments.c.status, shipments.c.quantity, shipments.c.address,
    shipments.c.recipient_name, shipments.c.created_at, shipments.c.shipped_at,
    shipments.c.tracking_number, shipments.c.carrier,
)


def _order_row(row: Any) -> OrderRow:
    values = tuple(row)
    base = len(ORDER_COLUMNS)
    order = order_record(values[:base])
    cancelled_at, attention = values[base], values[base + 1]
    ship = values[base + 2:]
    shipment = None
    if ship[0] is not None:
        shipment = ShipmentInfo(int(ship[0]), ShipmentStatus(ship[1]), *ship[2:])
    return OrderRow(order, cancelled_at, OrderAttention(attention) if attention else None,
                    shipment)


def _select_orders() -> Any:
    return (select(*ORDER_COLUMNS, orders.c.cancelled_at, orders.c.attention, *_SHIPMENT_COLUMNS)
            .select_from(orders.outerjoin(shipments, shipments.c.order_id == orders.c.id)))


def _matches(q: str) -> ColumnElement[bool]:
    needle = q.lower()
    conditions: list[ColumnElement[bool]] = [orders.c.id == q]
    if is_payment_hash(q):
        conditions.append(orders.c.payment_hash == needle)
    for text in (orders.c.customer["email"].as_string(), orders.c.customer["name"].as_string(),
                 shipments.c.tracking_number):
        conditions.append(func.lower(text).contains(needle, autoescape=True))
    return or_(*conditions)


def _filtered(statement: Any, query: OrderQuery) -> Any:
    o = orders.c
    if query.q:
        statement = statement.where(_matches(query.q))
    if query.status is not None:
        statement = statement.where(o.status == query.status.value)
    if query.product is not None:
        statement = statement.where(o.product == query.product.value)
    if query.created_from is not None:
        statement = statement.where(o.created_at >= query.created_from)
    if query.created_to is not None:
        statement = statement.where(o.created_at < query.created_to)
    if query.attention:
        statement = statement.where(o.attention.is_not(None))
    return statement


async def search_orders(
    conn: AsyncConnection, query: OrderQuery, *, after: tuple[datetime, str] | None, limit: int
) -> list[OrderRow]:
    """Up to ``limit`` orders matching ``query``, newest first, strictly after ``after``."""
    o = orders.c
    statement = _filtered(_select_orders(), query)
    if after is not None:
        at, order_id = after
        statement = statement.where(or_(o.created_at < at, and_(o.created_at == at,
                                                                  o.id < order_id)))
    rows = await conn.execute(statement.order_by(o.created_at.desc(), o.id.desc()).limit(limit))
    return [_order_row(row) for row in rows]


async def get_order_row(conn: AsyncConnection, order_id: str) -> OrderRow | None:
    """The order with this id, as the back office sees it, or ``None``."""
    row = (await conn.execute(_select_orders().where(orders.c.id == order_id))).first()
    return None if row is None else _order_row(row)


# ----------------------------------------------------------------------------- shipping


async def mark_shipped(
    conn: AsyncConnection, order_id: str, *, tracking_number: str, carrier: str | None,
    now: datetime,
) -> bool:
    """``to_ship`` -> ``shipped`` with its tracking number; ``False`` when it was not to ship.

    The conditional ``UPDATE`` is what decides, across processes, which of two concurrent
    requests ships the order (and queues its one email).
    """
    s = shipments.c
    result = await conn.execute(
        update(shipments)
        .where(s.order_id == order_id, s.status == ShipmentStatus.TO_SHIP.value)
        .values(status=ShipmentStatus.SHIPPED.value, shipped_at=now,
                tracking_number=tracking_number, carrier=carrier))
    return result.rowcount == 1


async def set_fulfilment(conn: AsyncConnection, order_id: str,
                         fulfilment: dict[str, Any]) -> None:
    """Replace an order's fulfilment summary (``orders.fulfilment``)."""
    await conn.execute(update(orders).where(orders.c.id == order_id)
                       .values(fulfilment=fulfilment))


# ----------------------------------------------------------------------------- cancelling


async def lock_invoice_state(conn: AsyncConnection, payment_hash: str) -> InvoiceState | None:
    """The invoice's state, its row locked until the transaction ends (``FOR UPDATE`` on
    PostgreSQL; SQLite has one writer).

    Settlement's conditional ``UPDATE`` of the invoice takes the same lock, so a cancel and a
    settlement of one order run one after the other, whichever comes first.
    """
    state = (await conn.execute(
        select(invoices.c.state).where(invoices.c.payment_hash == payment_hash).with_for_update()
    )).scalar()
    return None if state is None else InvoiceState(state)


async def mark_cancelled(conn: AsyncConnection, order_id: str, now: datetime) -> bool:
    """Pending or expired -> cancelled; ``False`` when the order was in neither status."""
    result = await conn.execute(
        update(orders)
        .where(orders.c.id == order_id, orders.c.status.in_(_UNPAID))
        .values(status=OrderStatus.CANCELLED.value, cancelled_at=now))
    return result.rowcount == 1


async def flag_cancelled_order_paid(
    conn: AsyncConnection, order_id: str, *, paid_at: datetime, paid_late: bool,
) -> bool:
    """A cancelled order's invoice was paid: record when, and flag it ``refund_due``.

    The order stays cancelled (nothing is shipped or activated); ``False`` when it is not
    cancelled.
    """
    result = await conn.execute(
        update(orders)
        .where(orders.c.id == order_id, orders.c.status == OrderStatus.CANCELLED.value)
        .values(attention=OrderAttention.REFUND_DUE.value, paid_at=paid_at, paid_late=paid_late))
    return result.rowcount == 1


# ----------------------------------------------------------------------------- subscriptions


@dataclass(frozen=True, slots=True)
class SubscriptionRow:
    """One DazNode subscription."""

    id: int
    subscriber_key: str
    pubkey: str | None
    email: str
    plan: str
    period_start: datetime
    period_end: datetime
    last_order_id: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def key(self) -> tuple[datetime, int]:
        """Its place in the list (latest end first): the keyset cursor."""
        return self.period_end, self.id


_SUBSCRIPTION_COLUMNS = (
    subscriptions.c.id, subscriptions.c.subscriber_key, subscriptions.c.pubkey,
    subscriptions.c.email, subscriptions.c.plan, subscriptions.c.period_start,
    subscriptions.c.period_end, subscriptions.c.last_order_id, subscriptions.c.created_at,
    subscriptions.c.updated_at,
)


async def list_subscriptions(
    conn: AsyncConnection, *, now: datetime, active: bool | None, q: str | None,
    after: tuple[datetime, int] | None, limit: int,
) -> list[SubscriptionRow]:
    """Subscriptions, latest end first: all, only running (``active``), or only ended; ``q``
    matches a part of the email or node key."""
    s = subscriptions.c
    statement = select(*_SUBSCRIPTION_COLUMNS)
    if active is True:
        statement = statement.where(s.period_end > now)
    elif active is False:
        statement = statement.where(s.period_end <= now)
    if q:
        needle = q.lower()
        statement = statement.where(or_(func.lower(s.email).contains(needle, autoescape=True),
                                        func.lower(s.pubkey).contains(needle, autoescape=True)))
    if after is not None:
        end, sub_id = after
        statement = statement.where(or_(s.period_end < end, and_(s.period_end == end,
                                                                  s.id < sub_id)))
    rows: Any = await conn.execute(statement.order_by(s.period_end.desc(), s.id.desc())
                                   .limit(limit))
    return [SubscriptionRow(*row) for row in rows]


async def get_subscription(conn: AsyncConnection, subscription_id: int) -> SubscriptionRow | None:
    """The subscription with this id, or ``None``."""
    row: Any = (await conn.execute(select(*_SUBSCRIPTION_COLUMNS)
                              .where(subscriptions.c.id == subscription_id))).first()
    return None if row is None else SubscriptionRow(*row)
