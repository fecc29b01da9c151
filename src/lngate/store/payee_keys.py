"""Learned payee node keys (``payee_keys``): the first one stored for a provider wins."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from lngate.store.tables import payee_keys
from lngate.store.upsert import insert_ignore


async def get_payee_key(conn: AsyncConnection, provider: str) -> str | None:
    """The key stored for ``provider``, if any."""
    return (await conn.execute(
        select(payee_keys.c.node_pubkey).where(payee_keys.c.provider == provider))).scalar()


async def store_payee_key(conn: AsyncConnection, provider: str, key: str, *,
                          learned_at: datetime) -> str:
    """Store ``key`` for ``provider`` unless one is stored already; the stored key."""
    await conn.execute(insert_ignore(conn, payee_keys, ["provider"]).values(
        provider=provider, node_pubkey=key, learned_at=learned_at))
    stored = await get_payee_key(conn, provider)
    assert stored is not None  # inserted above, or there before
    return stored
