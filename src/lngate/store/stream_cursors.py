"""The ``stream_cursors`` table: where each provider's paid-invoice stream resumes.

One row per provider name: the index of the last payment its stream's consumer handled (Core
Lightning's ``pay_index``, LND's ``settle_index``). A cursor only grows: a save below the stored
value changes nothing, so several gateway processes streaming from the same node keep the
furthest position any of them reached. :class:`StreamCursorStore` is the
:class:`~lngate.providers.cursors.CursorStore` a provider is given.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from lngate.store.database import Database
from lngate.store.tables import stream_cursors


async def load_cursor(conn: AsyncConnection, provider: str) -> int | None:
    """The stored cursor of ``provider``'s stream, ``None`` when none was ever saved."""
    result = await conn.execute(select(stream_cursors.c.last_index)
                                .where(stream_cursors.c.provider == provider))
    value = result.scalar_one_or_none()
    return None if value is None else int(value)


async def save_cursor(conn: AsyncConnection, provider: str, cursor: int, *,
                      now: datetime) -> None:
    """Store ``cursor`` for ``provider`` unless a greater one is already stored."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(stream_cursors).values(provider=provider, last_index=cursor,
                                                   updated_at=now)
    await conn.execute(insert.on_conflict_do_update(
        index_elements=[stream_cursors.c.provider],
        set_={"last_index": insert.excluded.last_index, "updated_at": insert.excluded.updated_at},
        where=stream_cursors.c.last_index < insert.excluded.last_index,
    ))


class StreamCursorStore:
    """One provider's stream cursor in the database (a ``CursorStore``)."""

    def __init__(self, db: Database, provider: str, *, clock: Callable[[], datetime]) -> None:
        self._db = db
        self.provider = provider
        self._clock = clock

    async def load(self) -> int | None:
        """The saved cursor, ``None`` when none was ever saved."""
        async with self._db.connect() as conn:
            return await load_cursor(conn, self.provider)

    async def save(self, cursor: int) -> None:
        """Remember ``cursor`` (kept only if it is further than the stored one)."""
        async with self._db.transaction() as conn:
            await save_cursor(conn, self.provider, cursor, now=self._clock())
