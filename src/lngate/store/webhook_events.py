"""The ``webhook_events`` table: every authenticated webhook as received, and what came of it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from lngate.store.tables import webhook_events


async def insert_event(
    conn: AsyncConnection, *, source: str, received_at: datetime, payment_hash: str | None,
    auth: str, headers: dict[str, str], body: str, outcome: str,
) -> int:
    """Store one received webhook; returns its id."""
    result = await conn.execute(
        insert(webhook_events).returning(webhook_events.c.id),
        {"source": source, "received_at": received_at, "payment_hash": payment_hash,
         "auth": auth, "headers": headers, "body": body, "outcome": outcome},
    )
    return int(result.scalar_one())


async def set_outcome(conn: AsyncConnection, event_id: int, outcome: str) -> None:
    """Record what handling the event did (``settled``, ``already_settled``, ``not_paid``...)."""
    await conn.execute(update(webhook_events).where(webhook_events.c.id == event_id)
                       .values(outcome=outcome))


async def events_for(conn: AsyncConnection, payment_hash: str) -> list[dict[str, Any]]:
    """The stored events about one payment hash, oldest first."""
    result = await conn.execute(select(webhook_events)
                                .where(webhook_events.c.payment_hash == payment_hash)
                                .order_by(webhook_events.c.id))
    return [dict(row._mapping) for row in result]
