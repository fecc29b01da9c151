"""The ``admin_sessions`` table: operator sessions of the browser back office.

A session is found by the SHA-256 of its cookie's token; it is valid while it is neither
expired nor revoked. Revocation is an ``UPDATE`` (the row stays, for the record); expired rows
are deleted from time to time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from lngate.store.tables import admin_sessions


@dataclass(frozen=True, slots=True)
class SessionRow:
    """One stored session."""

    token_hash: str
    admin_key: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    client_ip: str | None = None
    user_agent: str | None = None


async def insert_session(conn: AsyncConnection, row: SessionRow) -> None:
    """Store a new session."""
    await conn.execute(insert(admin_sessions).values(
        token_hash=row.token_hash, admin_key=row.admin_key, created_at=row.created_at,
        expires_at=row.expires_at, revoked_at=row.revoked_at,
        client_ip=row.client_ip and row.client_ip[:64],
        user_agent=row.user_agent and row.user_agent[:200],
    ))


async def live_session(conn: AsyncConnection, token_hash: str, now: datetime) -> SessionRow | None:
    """The session with this token hash if it is neither expired nor revoked, else ``None``."""
    s = admin_sessions.c
    row: Any = (await conn.execute(
        select(s.token_hash, s.admin_key, s.created_at, s.expires_at, s.revoked_at, s.client_ip,
               s.user_agent)
        .where(s.token_hash == token_hash, s.revoked_at.is_(None), s.expires_at > now)
    )).first()
    return None if row is None else SessionRow(*row)


async def revoke_session(conn: AsyncConnection, token_hash: str, now: datetime) -> bool:
    """Revoke a live session; ``False`` when it was already revoked, expired or unknown."""
    s = admin_sessions.c
    result = await conn.execute(
        update(admin_sessions)
        .where(s.token_hash == token_hash, s.revoked_at.is_(None), s.expires_at > now)
        .values(revoked_at=now))
    return result.rowcount == 1


async def delete_expired(conn: AsyncConnection, before: datetime) -> int:
    """Delete sessions that expired before ``before``; how many."""
    result = await conn.execute(delete(admin_sessions)
                                .where(admin_sessions.c.expires_at < before))
    return max(result.rowcount or 0, 0)
