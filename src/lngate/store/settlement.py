"""The invoice writes of settlement and reconciliation.

``mark_paid`` is the conditional ``UPDATE`` that decides which caller settles an invoice;
``claim_for_reconcile`` hands each pending invoice to one reconciler at a time, across
processes (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has a single writer anyway).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from lngate.domain import InvoiceState
from lngate.store.tables import invoices

_UNPAID = (InvoiceState.PENDING.value, InvoiceState.EXPIRED.value)


async def mark_paid(
    conn: AsyncConnection, payment_hash: str, *, paid_at: datetime, late: bool
) -> bool:
    """Pending or expired -> paid; ``False`` when it was already paid (or is unknown).

    Expired is accepted: a payment the provider confirms after expiry is real money and
    settles, flagged ``paid_late``.
    """
    result = await conn.execute(
        update(invoices)
        .where(invoices.c.payment_hash == payment_hash, invoices.c.state.in_(_UNPAID))
        .values(state=InvoiceState.PAID.value, paid_at=paid_at, paid_late=late)
    )
    return result.rowcount == 1


async def mark_expired(conn: AsyncConnection, payment_hash: str) -> bool:
    """Pending -> expired; ``False`` when it was not pending."""
    result = await conn.execute(
        update(invoices)
        .where(invoices.c.payment_hash == payment_hash,
               invoices.c.state == InvoiceState.PENDING.value)
        .values(state=InvoiceState.EXPIRED.value)
    )
    return result.rowcount == 1


async def expire_test_invoices(conn: AsyncConnection, *, created_before: datetime) -> list[str]:
    """Pending test-provider invoices created before ``created_before`` -> expired; their
    payment hashes."""
    result = await conn.execute(
        update(invoices)
        .where(invoices.c.is_test.is_(True), invoices.c.state == InvoiceState.PENDING.value,
               invoices.c.created_at < created_before)
        .values(state=InvoiceState.EXPIRED.value)
        .returning(invoices.c.payment_hash)
    )
    return [row[0] for row in result.all()]


async def claim_for_reconcile(
    conn: AsyncConnection,
    *,
    now: datetime,
    late_margin: timedelta,
    lease_until: datetime,
    limit: int,
) -> list[str]:
    """Claim up to ``limit`` invoices to check; returns their payment hashes.

    Candidates: every pending invoice, and invoices expired less than ``late_margin`` ago (a
    payment can still surface), whose lease is over. The lease (``claimed_until``) is pushed
    to ``lease_until``, so the same invoice is not checked again before then, by anyone.
    Never-checked invoices come first, then those expiring soonest.
    """
    due = (
        select(invoices.c.id)
        .where(
            or_(
                invoices.c.state == InvoiceState.PENDING.value,
                and_(invoices.c.state == InvoiceState.EXPIRED.value,
                     invoices.c.expires_at > now - late_margin),
            ),
            or_(invoices.c.claimed_until.is_(None), invoices.c.claimed_until <= now),
        )
        .order_by(invoices.c.claimed_until.is_not(None), invoices.c.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    result = await conn.execute(
        update(invoices)
        .where(invoices.c.id.in_(due.scalar_subquery()))
        .values(claimed_until=lease_until)
        .returning(invoices.c.payment_hash)
    )
    return [row[0] for row in result.all()]
