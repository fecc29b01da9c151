"""The ``audit_log`` table: what operators (and settlement, for a cancelled order paid later) did.

Rows are only ever inserted, in the transaction of the change they describe, so an action and
its audit row commit or roll back together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from lngate.store.tables import audit_log


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded action."""

    id: int
    created_at: datetime
    actor: str
    action: str
    target: str | None
    details: dict[str, Any] | None


async def record(
    conn: AsyncConnection, *, at: datetime, actor: str, action: str, target: str | None,
    details: dict[str, Any] | None = None,
) -> int:
    """Store one action; returns its id."""
    result = await conn.execute(insert(audit_log).values(
        created_at=at, actor=actor[:64], action=action, target=target, details=details,
    ).returning(audit_log.c.id))
    return int(result.scalar_one())


async def entries(
    conn: AsyncConnection, *, target: str | None = None, action: str | None = None,
    before_id: int | None = None, limit: int = 50,
) -> list[AuditEntry]:
    """Entries newest first, optionally of one target or action, older than ``before_id``."""
    a = audit_log.c
    query = select(a.id, a.created_at, a.actor, a.action, a.target, a.details)
    if target is not None:
        query = query.where(a.target == target)
    if action is not None:
        query = query.where(a.action == action)
    if before_id is not None:
        query = query.where(a.id < before_id)
    rows: Any = await conn.execute(query.order_by(a.id.desc()).limit(limit))
    return [AuditEntry(int(i), at, str(actor), str(act), tgt, det)
            for i, at, actor, act, tgt, det in rows]
