"""The invoice writes of settlement and reconciliation.

``mark_paid`` is the conditional ``UPDATE`` that decides which caller settles an invoice;
``claim_for_reconcile`` hands each invoice due for a check to one reconciler at a time, across
processes (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has a single writer anyway), and
``schedule_checks`` / ``finish_final_checks`` record when it is due next (``next_check_at``:
the schedule itself is the reconciler's, in services/reconciler.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, bindparam, case, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from lngate.domain import InvoiceState
from lngate.store.tables import invoices

_UNPAID = (InvoiceState.PENDING.value, InvoiceState.EXPIRED.value)
# Built once: a statement built per call cost twice its execution's CPU (SQLAlchemy coerces
# every clause again), and settlement runs it for every payment.
_MARK_PAID = (
    update(invoices)
    .where(invoices.c.payment_hash == bindparam("hash"), invoices.c.state.in_(_UNPAID))
    .values(state=InvoiceState.PAID.value, paid_at=bindparam("at"), paid_late=bindparam("late"),
            next_check_at=None)
)


async def mark_paid(
    conn: AsyncConnection, payment_hash: str, *, paid_at: datetime, late: bool
) -> bool:
    """Pending or expired -> paid; ``False`` when it was already paid (or is unknown).

    Expired is accepted: a payment the provider confirms after expiry is real money and
    settles, flagged ``paid_late``. A paid invoice is never checked again (``next_check_at``
    cleared: it leaves the reconciler's queue).
    """
    result = await conn.execute(_MARK_PAID, {"hash": payment_hash, "at": paid_at, "late": late})
    return result.rowcount == 1


async def mark_expired(conn: AsyncConnection, payment_hash: str) -> bool:
    """Pending -> expired; ``False`` when it was not pending.

    An invoice the reconciler never checked (expired by a customer's poll) becomes due at once,
    so its late-payment checks still happen.
    """
    result = await conn.execute(
        update(invoices)
        .where(invoices.c.payment_hash == payment_hash,
               invoices.c.state == InvoiceState.PENDING.value)
        .values(state=InvoiceState.EXPIRED.value,
                next_check_at=func.coalesce(invoices.c.next_check_at, invoices.c.expires_at))
    )
    return result.rowcount == 1


async def expire_test_invoices(conn: AsyncConnection, *, created_before: datetime) -> list[str]:
    """Pending test-provider invoices created before ``created_before`` -> expired; their
    payment hashes."""
    result = await conn.execute(
        update(invoices)
        .where(invoices.c.is_test.is_(True), invoices.c.state == _PENDING,
               invoices.c.created_at < created_before)
        .values(state=InvoiceState.EXPIRED.value)
        .returning(invoices.c.payment_hash)
    )
    return [row[0] for row in result.all()]


@dataclass(frozen=True, slots=True)
class DueInvoice:
    """An invoice claimed for a check: what the reconciler needs to check and reschedule it."""

    id: int
    payment_hash: str
    provider: str
    state: InvoiceState
    created_at: datetime
    expires_at: datetime


# 'pending' rendered into the SQL text: a partial index is used only when the query repeats
# its predicate with the same constant (SQLite; PostgreSQL's generic plans).
_PENDING = literal(InvoiceState.PENDING.value, literal_execute=True)
_DUE_COLUMNS = (invoices.c.id, invoices.c.payment_hash, invoices.c.provider, invoices.c.state,
                invoices.c.created_at, invoices.c.expires_at)


async def claim_for_reconcile(
    conn: AsyncConnection,
    *,
    now: datetime,
    unchecked_due_before: datetime,
    lease_until: datetime,
    limit: int,
) -> list[DueInvoice]:
    """Claim up to ``limit`` invoices due for a check; their ``next_check_at`` becomes
    ``lease_until``, so nobody claims them again before then.

    Due: pending invoices never checked (``next_check_at`` NULL) created before
    ``unchecked_due_before``, oldest first; then invoices whose ``next_check_at`` has come,
    earliest first (settling clears it, so these are pending or expired; a row found paid is
    the caller's to finish). Both come from partial indexes, so a claim costs what the due
    invoices cost, not what all pending ones do. The caller reschedules them in the same
    transaction (:func:`schedule_checks`).
    """
    unchecked = (
        select(invoices.c.id)
        .where(invoices.c.next_check_at.is_(None),
               invoices.c.state == _PENDING,
               invoices.c.created_at <= unchecked_due_before)
        .order_by(invoices.c.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = await _claim(conn, unchecked, lease_until)
    if len(claimed) < limit:
        scheduled = (
            select(invoices.c.id)
            .where(invoices.c.next_check_at <= now)
            .order_by(invoices.c.next_check_at)
            .limit(limit - len(claimed))
            .with_for_update(skip_locked=True)
        )
        claimed += await _claim(conn, scheduled, lease_until)
    return claimed


async def _claim(conn: AsyncConnection, candidates: Select[tuple[int]],
                 lease_until: datetime) -> list[DueInvoice]:
    result = await conn.execute(
        update(invoices)
        .where(invoices.c.id.in_(candidates.scalar_subquery()))
        .values(next_check_at=lease_until)
        .returning(*_DUE_COLUMNS)
    )
    return [DueInvoice(id=row.id, payment_hash=row.payment_hash, provider=row.provider,
                       state=InvoiceState(row.state), created_at=row.created_at,
                       expires_at=row.expires_at)
            for row in result.all()]


_SET_NEXT_CHECK = (
    update(invoices)
    .where(invoices.c.id == bindparam("invoice_id"))
    .values(next_check_at=bindparam("next_check"))
)


async def schedule_checks(conn: AsyncConnection, due: Sequence[tuple[int, datetime]]) -> None:
    """Set each invoice's next check: ``(invoice id, when)`` pairs, one statement."""
    if due:
        await conn.execute(_SET_NEXT_CHECK, [{"invoice_id": invoice_id, "next_check": when}
                                             for invoice_id, when in due])


async def finish_final_checks(conn: AsyncConnection, ids: Sequence[int], *,
                              retry_at: datetime) -> None:
    """After an invoice's last scheduled check: no further check (``next_check_at`` NULL)
    once it is paid or expired; one still pending (an answer we could not read, a mismatch) is
    checked again at ``retry_at``, never dropped."""
    if ids:
        await conn.execute(
            update(invoices)
            .where(invoices.c.id.in_(ids))
            .values(next_check_at=case(
                (invoices.c.state == InvoiceState.PENDING.value,
                 bindparam("retry_at", retry_at, type_=invoices.c.next_check_at.type)),
                else_=None))
        )
