"""What the back office reads: orders (searched, filtered, paginated), one order in full
(invoice, payment, fulfilment, emails, audit trail), subscriptions, the audit log.

Every list is newest first and paginated by keyset: a :class:`Page` carries the key of its last
row when more follow, and the next call passes it back as ``after``. ``limit`` is capped at
:data:`MAX_PAGE`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from lngate.domain import Product
from lngate.services.clock import WallClock
from lngate.store import Database, audit
from lngate.store.audit import AuditEntry
from lngate.store.backoffice import (
    OrderQuery,
    OrderRow,
    SubscriptionRow,
    get_order_row,
    get_subscription,
    list_subscriptions,
    search_orders,
)
from lngate.store.invoices import InvoiceRecord, get_invoice
from lngate.store.outbox import rows_for_order

MAX_PAGE = 200
DEFAULT_PAGE = 50
T = TypeVar("T")
K = TypeVar("K")

__all__ = ["MAX_PAGE", "OrderDetail", "OrderQuery", "OrderRow", "Page", "audit_log",
           "find_orders", "order_detail", "record_action", "subscriptions"]


@dataclass(frozen=True, slots=True)
class Page(Generic[T, K]):
    """One page of a list and, when more rows follow, the key to pass for the next page."""

    items: list[T]
    next_after: K | None


def _page(rows: list[Any], limit: int, key: Any) -> Page[Any, Any]:
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, key(rows[-1]) if more and rows else None)


def _capped(limit: int) -> int:
    return max(1, min(limit, MAX_PAGE))


async def find_orders(
    db: Database, query: OrderQuery, *, after: tuple[datetime, str] | None = None,
    limit: int = DEFAULT_PAGE,
) -> Page[OrderRow, tuple[datetime, str]]:
    """Orders matching ``query``, newest first."""
    limit = _capped(limit)
    async with db.connect() as conn:
        rows = await search_orders(conn, query, after=after, limit=limit + 1)
    return _page(rows, limit, lambda row: row.key)


@dataclass(frozen=True, slots=True)
class OrderDetail:
    """An order with everything the back office shows about it."""

    row: OrderRow
    invoice: InvoiceRecord | None
    subscription: SubscriptionRow | None
    emails: list[dict[str, Any]]
    """Its outbox rows, oldest first (kind, recipient, status, attempts, last_error...)."""
    audit: list[AuditEntry]
    """What was done to it, newest first."""


async def order_detail(db: Database, order_id: str, *, audit_limit: int = 100) -> OrderDetail | None:
    """The order with this id in full, or ``None``."""
    async with db.connect() as conn:
        row = await get_order_row(conn, order_id)
        if row is None:
            return None
        invoice = await get_invoice(conn, row.order.payment_hash)
        subscription = None
        fulfilment = row.order.fulfilment or {}
        subscription_id = (fulfilment.get("subscription") or {}).get("id")
        if row.order.product is Product.DAZNODE and isinstance(subscription_id, int):
            subscription = await get_subscription(conn, subscription_id)
        emails = await rows_for_order(conn, order_id)
        trail = await audit.entries(conn, target=order_id, limit=audit_limit)
    return OrderDetail(row, invoice, subscription, emails, trail)


async def subscriptions(
    db: Database, *, now: datetime, active: bool | None = None, q: str | None = None,
    after: tuple[datetime, int] | None = None, limit: int = DEFAULT_PAGE,
) -> Page[SubscriptionRow, tuple[datetime, int]]:
    """DazNode subscriptions, latest end first; ``active`` True: still running at ``now``,
    False: ended, None: both."""
    limit = _capped(limit)
    async with db.connect() as conn:
        rows = await list_subscriptions(conn, now=now, active=active, q=q, after=after,
                                        limit=limit + 1)
    return _page(rows, limit, lambda row: row.key)


async def audit_log(
    db: Database, *, target: str | None = None, action: str | None = None,
    before_id: int | None = None, limit: int = DEFAULT_PAGE,
) -> Page[AuditEntry, int]:
    """Audit entries, newest first, optionally of one target (an order id) or action."""
    limit = _capped(limit)
    async with db.connect() as conn:
        rows = await audit.entries(conn, target=target, action=action, before_id=before_id,
                                   limit=limit + 1)
    return _page(rows, limit, lambda entry: entry.id)


async def record_action(
    db: Database, *, actor: str, action: str, target: str | None,
    details: dict[str, Any] | None = None, clock: WallClock,
) -> None:
    """Audit an action that changes no order (an export, a sign-in, a sign-out)."""
    async with db.transaction() as conn:
        await audit.record(conn, at=clock(), actor=actor, action=action, target=target,
                           details=details)
