"""Recording every provider call in ``provider_calls`` (read by monitoring)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from lngate.store.database import Database
from lngate.store.tables import provider_calls

MAX_ERROR_MESSAGE = 500


@dataclass(frozen=True, slots=True)
class ProviderCall:
    """One call to a provider and how it ended."""

    provider: str
    operation: str
    started_at: datetime
    duration_ms: float
    outcome: str
    error_type: str | None = None
    error_message: str | None = None


def _rows(calls: Sequence[ProviderCall]) -> list[dict[str, Any]]:
    return [
        {
            "provider": call.provider,
            "operation": call.operation,
            "started_at": call.started_at,
            "duration_ms": call.duration_ms,
            "outcome": call.outcome,
            "error_type": call.error_type,
            "error_message": (call.error_message or None)
            and call.error_message[:MAX_ERROR_MESSAGE],
        }
        for call in calls
    ]


async def insert_calls(conn: AsyncConnection, calls: Sequence[ProviderCall]) -> None:
    """Store provider calls (one multi-row insert) in ``conn``'s transaction."""
    if calls:
        await conn.execute(insert(provider_calls), _rows(calls))


async def store_calls(db: Database, calls: Sequence[ProviderCall]) -> None:
    """Store provider calls in a transaction of their own, through the database's direct lane:
    the connection the create path writes its invoices on, so that on SQLite the two never
    wait for each other's write lock (through the engine, a flush of a few hundred calls held
    the lock across several hand-offs to its thread, and the creates meanwhile waited in
    SQLite's busy handler, whose sleeps grow to 50-100 ms)."""
    await db.direct.insert(provider_calls, _rows(calls))


@dataclass(frozen=True, slots=True)
class StoredCall:
    """A stored provider call, as the alert rules read it."""

    id: int
    provider: str
    outcome: str
    duration_ms: float
    error_type: str | None


def _stored(rows: Any) -> list[StoredCall]:
    return [StoredCall(int(i), str(p), str(o), float(d), e) for i, p, o, d, e in rows]


_COLUMNS = (provider_calls.c.id, provider_calls.c.provider, provider_calls.c.outcome,
            provider_calls.c.duration_ms, provider_calls.c.error_type)


async def calls_after(conn: AsyncConnection, after_id: int, limit: int) -> list[StoredCall]:
    """Stored calls with an id above ``after_id``, by id, at most ``limit``."""
    rows = await conn.execute(select(*_COLUMNS).where(provider_calls.c.id > after_id)
                              .order_by(provider_calls.c.id).limit(limit))
    return _stored(rows)


async def last_call_id(conn: AsyncConnection) -> int:
    """The highest stored call id (0 when none)."""
    return int((await conn.execute(select(func.max(provider_calls.c.id)))).scalar() or 0)


async def latest_calls(conn: AsyncConnection, provider: str, limit: int) -> list[StoredCall]:
    """The last ``limit`` calls made to ``provider`` (skipped ones excluded), oldest first."""
    c = provider_calls.c
    rows = await conn.execute(select(*_COLUMNS).where(c.provider == provider,
                                                      c.outcome != "skipped")
                              .order_by(c.started_at.desc(), c.id.desc()).limit(limit))
    return list(reversed(_stored(rows)))
