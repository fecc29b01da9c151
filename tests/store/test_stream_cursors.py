"""stream_cursors: one cursor per provider, that only grows, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from lngate.providers.cursors import CursorStore
from lngate.store import Database
from lngate.store.stream_cursors import StreamCursorStore, load_cursor, save_cursor
from lngate.store.tables import stream_cursors

T0 = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


async def test_nothing_saved_reads_as_none(db: Database) -> None:
    """A provider whose stream never saved has no cursor (its stream starts from the node's
    beginning)."""
    assert await StreamCursorStore(db, "node", clock=lambda: T0).load() is None


async def test_a_saved_cursor_is_read_back_per_provider(db: Database) -> None:
    """Each provider name has its own cursor, read back as saved, with the time of the save."""
    times = iter([T0, T0 + timedelta(seconds=5)])
    node = StreamCursorStore(db, "node", clock=lambda: next(times))
    lnd = StreamCursorStore(db, "lnd", clock=lambda: T0)
    assert isinstance(node, CursorStore)
    await node.save(7)
    await lnd.save(3)
    await node.save(9)
    assert (await node.load(), await lnd.load()) == (9, 3)
    async with db.connect() as conn:
        rows = (await conn.execute(select(stream_cursors).order_by(stream_cursors.c.provider)))
        assert [tuple(r) for r in rows] == [("lnd", 3, T0), ("node", 9, T0 + timedelta(seconds=5))]


async def test_a_cursor_never_goes_back(db: Database) -> None:
    """A save below the stored cursor changes nothing (another process went further)."""
    async with db.transaction() as conn:
        await save_cursor(conn, "node", 12, now=T0)
        await save_cursor(conn, "node", 5, now=T0 + timedelta(seconds=1))
        await save_cursor(conn, "node", 12, now=T0 + timedelta(seconds=2))
    async with db.connect() as conn:
        assert await load_cursor(conn, "node") == 12
        updated = (await conn.execute(select(stream_cursors.c.updated_at))).scalar_one()
    assert updated == T0


async def test_concurrent_saves_keep_the_furthest(db: Database) -> None:
    """Saves racing from several stores of one provider leave the largest cursor; a cursor
    beyond 32 bits fits."""
    stores = [StreamCursorStore(db, "node", clock=lambda: T0) for _ in range(4)]
    await asyncio.gather(*(store.save(cursor) for store in stores
                           for cursor in (3, 40, 17, 25)))
    assert await stores[0].load() == 40
    await stores[0].save(2**40)
    assert await stores[1].load() == 2**40
