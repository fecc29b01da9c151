"""The ``outbox`` table: emails to send, written in the settlement's transaction.

A row is unique per ``(order_id, kind)``, so enqueueing twice is harmless. Delivery claims due
rows by pushing ``next_attempt_at`` one lease ahead (``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
so several gateway processes never claim the same row); a process that dies mid-send leaves the
row to be retried once the lease is over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from lngate.store.rows import row_values
from lngate.store.tables import outbox
from lngate.store.upsert import insert_ignore_for

PENDING, SENT, FAILED, SKIPPED = "pending", "sent", "failed", "skipped"
MAX_ERROR = 500


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One email to enqueue; ``recipient`` ``None`` means the shop's address."""

    order_id: str
    kind: str
    recipient: str | None
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A claimed outbox row."""

    id: int
    order_id: str
    kind: str
    recipient: str | None
    payload: dict[str, Any]
    attempts: int
    """Attempts including the current one."""


_ENQUEUE = {name: insert_ignore_for(name, outbox, ["order_id", "kind"])
            for name in ("sqlite", "postgresql")}
"""Built once per dialect (settlement enqueues with every paid order)."""


async def enqueue(conn: AsyncConnection, messages: Sequence[OutboxMessage], now: datetime) -> None:
    """Insert the messages not already queued for their ``(order_id, kind)`` (one statement)."""
    if not messages:
        return
    await conn.execute(_ENQUEUE[conn.dialect.name], [
        {"order_id": m.order_id, "kind": m.kind, "payload": m.payload,
         "recipient": None if m.recipient is None else storable_text(m.recipient),
         "status": PENDING, "attempts": 0, "next_attempt_at": now, "created_at": now}
        for m in messages
    ])


# Built once, with bind parameters: the outbox claims after every settlement.
_DUE = (
    select(outbox.c.id)
    .where(outbox.c.status == PENDING, outbox.c.next_attempt_at <= bindparam("now"),
           outbox.c.attempts < bindparam("max_attempts"))
    .order_by(outbox.c.next_attempt_at, outbox.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_CLAIM = (
    update(outbox)
    .where(outbox.c.id.in_(_DUE.scalar_subquery()))
    .values(attempts=outbox.c.attempts + 1, next_attempt_at=bindparam("lease_until"))
    .returning(outbox.c.id, outbox.c.order_id, outbox.c.kind, outbox.c.recipient,
               outbox.c.payload, outbox.c.attempts)
)
_ABANDON = (
    update(outbox)
    .where(outbox.c.status == PENDING, outbox.c.next_attempt_at <= bindparam("now"),
           outbox.c.attempts >= bindparam("max_attempts"))
    .values(status=FAILED, last_error=bindparam("error"))
)


async def claim_due(
    conn: AsyncConnection, *, now: datetime, lease_until: datetime, limit: int,
    max_attempts: int,
) -> list[OutboxRow]:
    """Claim up to ``limit`` due pending rows: count the attempt, hide them until the lease ends.

    Only rows with attempts left are claimed (see :func:`abandon_exhausted` for the others), so
    ``attempts`` never exceeds ``max_attempts``.
    """
    result = await conn.execute(_CLAIM, {"now": now, "max_attempts": max_attempts,
                                         "limit": limit, "lease_until": lease_until})
    rows = [OutboxRow(**row._asdict()) for row in result]
    return sorted(rows, key=lambda r: r.id)


async def abandon_exhausted(conn: AsyncConnection, *, now: datetime, max_attempts: int) -> int:
    """Fail the due pending rows whose attempts are used up; returns how many.

    Such a row's last attempt never reported back (its process died mid-send, its lease ran
    out), so without this it would be claimed again and again.
    """
    result = await conn.execute(_ABANDON, {
        "now": now, "max_attempts": max_attempts,
        "error": f"{max_attempts} attempts used up; the last one never finished"})
    return result.rowcount or 0


def storable_text(text: str) -> str:
    """``text`` with a NUL or a lone surrogate, which PostgreSQL cannot store, written out as
    an escape (``\\x00``, ``\\ud800``). An address so written no longer validates, so its email
    fails alone instead of the settlement that enqueues it (an order taken before addresses
    were validated may hold one)."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def _error_text(error: str) -> str:
    return storable_text(error[:MAX_ERROR])


_MARK_SENT = (update(outbox).where(outbox.c.id.in_(bindparam("row_ids", expanding=True)))
              .values(status=SENT, sent_at=bindparam("at"), last_error=None))
"""Built once (the emails of a delivery pass are recorded sent together)."""


async def mark_sent(conn: AsyncConnection, row_ids: Sequence[int], now: datetime) -> None:
    """The emails of these rows were accepted by the sender."""
    if row_ids:
        await conn.execute(_MARK_SENT, {"row_ids": list(row_ids), "at": now})


async def mark_retry(conn: AsyncConnection, row_id: int, *, error: str, at: datetime) -> None:
    """Sending failed; try again at ``at``."""
    await conn.execute(update(outbox).where(outbox.c.id == row_id)
                       .values(next_attempt_at=at, last_error=_error_text(error)))


async def mark_final(conn: AsyncConnection, row_id: int, *, status: str, error: str) -> None:
    """Give up on a row (``failed``: attempts used up or refused; ``skipped``: no recipient)."""
    await conn.execute(update(outbox).where(outbox.c.id == row_id)
                       .values(status=status, last_error=_error_text(error)))


async def rows_for_order(conn: AsyncConnection, order_id: str) -> list[dict[str, Any]]:
    """Every outbox row of an order, as dicts (for tests and the admin view)."""
    result = await conn.execute(select(outbox).where(outbox.c.order_id == order_id)
                                .order_by(outbox.c.id))
    return [dict(row._mapping) for row in result]


async def count_by_status(conn: AsyncConnection) -> dict[str, int]:
    """How many rows are in each status."""
    result = await conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status))
    return {str(status): int(count) for status, count in row_values(result)}
