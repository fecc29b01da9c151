"""Invoice events between instances on PostgreSQL: a NOTIFY is heard on commit only, and a lost
listening connection is re-opened, waking every local listener to re-read what it missed."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from lngate.services.events import InvoiceEvents, PostgresTransport
from lngate.store import Database
from tests.instances import eventually

pytestmark = pytest.mark.postgres

HASH = "ab" * 32


async def terminate_listeners(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'lngate-events' AND datname = current_database()"))
    finally:
        await conn.close()


async def test_announcements_arrive_on_commit_and_survive_a_lost_connection(
    shared_postgres_url: str,
) -> None:
    """Another instance's announcement wakes this one's listener when its transaction commits
    (never for a rollback); after the listening connection is killed, listeners are woken once
    and the next announcement arrives again."""
    db = Database.from_url(shared_postgres_url)
    here = InvoiceEvents(PostgresTransport(db, reconnect_delay=0.1))
    there = InvoiceEvents(PostgresTransport(db))
    receiving = asyncio.create_task(here.receive())
    try:
        with here.listen(HASH) as changed:
            await eventually(lambda: changed.is_set())  # woken once when listening starts
            changed.clear()
            with pytest.raises(RuntimeError):
                async with db.transaction() as conn:
                    await there.announce(conn, HASH)
                    raise RuntimeError("rolled back")
            async with db.transaction() as conn:
                await there.announce(conn, HASH)
                await asyncio.sleep(0.3)
                assert not changed.is_set()  # not before the commit
            await eventually(lambda: changed.is_set(), timeout=2)
            changed.clear()

            assert await terminate_listeners(shared_postgres_url) == 1
            await eventually(lambda: changed.is_set(), timeout=5)  # the resync after reconnecting
            changed.clear()
            async with db.transaction() as conn:
                await there.announce(conn, HASH)
            await eventually(lambda: changed.is_set(), timeout=2)
    finally:
        receiving.cancel()
        await asyncio.gather(receiving, return_exceptions=True)
        await db.aclose()
