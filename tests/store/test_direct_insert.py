"""The direct-insert lane stores rows exactly as the engine does, committed, on both databases."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from lngate.store import Database
from lngate.store.invoices import _row, insert_invoice
from lngate.store.tables import invoices
from tests.store.test_invoices import record


async def _stored(db: Database, payment_hash: str) -> dict[str, Any]:
    """The raw stored row, without the id (what the database holds, before any conversion)."""
    async with db.connect() as conn:
        row = (await conn.exec_driver_sql(
            "SELECT * FROM invoices WHERE payment_hash = "
            + ("$1" if db.dialect == "postgresql" else "?"), (payment_hash,))).mappings().one()
    return {key: value for key, value in row.items() if key != "id"}


@pytest.mark.parametrize("metadata", [{"order": "42", "é": [1, 2]}, None])
async def test_a_row_is_stored_as_the_engine_stores_it(db: Database,
                                                      metadata: object) -> None:
    """The same invoice written through the lane and through the engine is the same raw row."""
    direct, engine = (record("aa" * 32, metadata=metadata, idempotency_key="k1"),
                      record("bb" * 32, metadata=metadata, idempotency_key="k2"))
    await db.direct.insert(invoices, [_row(direct)])
    async with db.transaction() as conn:
        await insert_invoice(conn, engine)
    mine, theirs = await _stored(db, direct.payment_hash), await _stored(db, engine.payment_hash)
    for differing in ("payment_hash", "idempotency_key"):
        mine.pop(differing), theirs.pop(differing)
    assert mine == theirs


async def test_rows_are_visible_to_the_engine_once_insert_returns(db: Database) -> None:
    """Every row of a batch can be read through the engine as soon as the call returns."""
    batch = [record(f"{i:064x}") for i in range(20)]
    await db.direct.insert(invoices, [_row(r) for r in batch])
    async with db.connect() as conn:
        count = len((await conn.execute(select(invoices.c.id))).all())
    assert count == 20


async def test_a_conflict_stores_nothing_of_the_batch(db: Database) -> None:
    """A known payment hash raises IntegrityError and none of the batch's rows is stored."""
    await db.direct.insert(invoices, [_row(record("cc" * 32))])
    with pytest.raises(IntegrityError):
        await db.direct.insert(invoices, [_row(record("dd" * 32)), _row(record("cc" * 32))])
    async with db.connect() as conn:
        hashes = (await conn.execute(select(invoices.c.payment_hash))).scalars().all()
    assert hashes == ["cc" * 32]


async def test_the_lane_reopens_after_being_closed(db: Database) -> None:
    """Closing the lane (as a lost connection does) only means the next insert reconnects."""
    await db.direct.insert(invoices, [_row(record("ee" * 32))])
    await db.direct.aclose()
    await db.direct.insert(invoices, [_row(record("ff" * 32))])
    async with db.connect() as conn:
        count = len((await conn.execute(select(invoices.c.id))).all())
    assert count == 2


async def test_on_sqlite_a_locked_database_is_waited_for_off_the_event_loop(
        sqlite_db: Database) -> None:
    """While the engine's connection holds SQLite's write lock, an insert waits without blocking
    the event loop and is committed once the lock is released."""
    async with sqlite_db.transaction() as conn:
        await insert_invoice(conn, record("11" * 32))  # the engine now holds the write lock
        waiting = asyncio.create_task(sqlite_db.direct.insert(invoices, [_row(record("22" * 32))]))
        started = time.monotonic()
        for _ in range(5):  # the loop keeps running while the insert waits (up to 5 s)
            await asyncio.sleep(0.01)
        assert time.monotonic() - started < 1.0
        assert not waiting.done()
    await asyncio.wait_for(waiting, 5)
    assert (await _stored(sqlite_db, "22" * 32))["payment_hash"] == "22" * 32


@pytest.mark.postgres
async def test_on_postgresql_a_released_lane_connection_is_not_reset(
        shared_postgres_url: str) -> None:
    """The lane's connection sends its statement and nothing after it: no reset round trip on
    release (the last query PostgreSQL saw from the lane is the insert itself)."""
    db = Database.from_url(shared_postgres_url)
    try:
        await db.direct.insert(invoices, [_row(record("ab" * 32))])
        async with db.connect() as conn:
            last = (await conn.exec_driver_sql(
                "SELECT query FROM pg_stat_activity WHERE application_name = 'lngate-direct'"
                " AND pid <> pg_backend_pid()")).scalars().all()
    finally:
        await db.aclose()
    assert last and all(query.lstrip().upper().startswith(("INSERT", "COMMIT"))
                        for query in last), last
