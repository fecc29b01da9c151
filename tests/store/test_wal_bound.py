"""An SQLite file's write-ahead log is emptied once past its bound, and a gateway checks it."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from lngate.bootstrap import build_gateway
from lngate.store import Database
from lngate.store.invoices import _row
from lngate.store.tables import invoices
from lngate.store.wal_bound import WalBound
from tests.instances import instance_settings
from tests.store.test_invoices import record


async def _write(db: Database, count: int, start: int = 0) -> None:
    """``count`` invoices, one batch each, through the create path's lane (as under load)."""
    for i in range(start, start + count):
        await db.direct.insert(invoices, [_row(record(f"{i:064x}"))])


async def _count(db: Database) -> int:
    async with db.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(invoices))).scalar_one()


async def test_a_log_past_the_limit_is_emptied_and_nothing_is_lost(sqlite_db: Database) -> None:
    """Past the limit, a check copies the log back and empties it; every row stays readable."""
    assert sqlite_db.wal_bound is not None
    bound = WalBound(sqlite_db.engine, sqlite_db.wal_bound.wal_path.removesuffix("-wal"),
                     limit=64 * 1024)
    async with sqlite_db.connect() as reader:  # a reader that has read the log, as in service
        await reader.execute(select(func.count()).select_from(invoices))
        await _write(sqlite_db, 100)
        assert bound.log_size() > bound.limit
    assert await bound.check() is True
    assert bound.log_size() == 0
    assert await _count(sqlite_db) == 100
    await _write(sqlite_db, 5, start=100)  # the log starts again, the file still takes writes
    assert await _count(sqlite_db) == 105


async def test_a_reader_on_an_old_snapshot_holds_creates_back_a_moment_not_seconds(
        sqlite_db: Database) -> None:
    """The truncating checkpoint holds new writers back while it waits for readers: it gives up
    after TRUNCATE_WAIT_MS (the next check tries again) rather than the connection's 5 s, which
    kept a create's batch waiting up to its own 5 s timeout behind a long read."""
    assert sqlite_db.wal_bound is not None
    bound = WalBound(sqlite_db.engine, sqlite_db.wal_bound.wal_path.removesuffix("-wal"),
                     limit=64 * 1024)
    await _write(sqlite_db, 100)
    reader = sqlite3.connect(bound.wal_path.removesuffix("-wal"))
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM invoices").fetchone()  # holds this snapshot
        await _write(sqlite_db, 100, start=100)  # the log now has frames the reader does not see
        assert bound.log_size() > bound.limit

        async def timed_write() -> float:
            await asyncio.sleep(0.02)  # once the checkpoint waits
            started = time.monotonic()
            await _write(sqlite_db, 1, start=200)
            return time.monotonic() - started

        started = time.monotonic()
        truncated, write_seconds = await asyncio.gather(bound.check(), timed_write())
        assert truncated is False
        assert time.monotonic() - started < 1.0
        assert write_seconds < 1.0
    finally:
        reader.close()
    assert await bound.check() is True  # the reader gone, the next check empties the log
    assert await _count(sqlite_db) == 201


async def test_a_log_under_the_limit_is_left_alone(sqlite_db: Database) -> None:
    """Under the limit, a check does nothing (no checkpoint taking the writer)."""
    assert sqlite_db.wal_bound is not None
    await _write(sqlite_db, 3)
    size = sqlite_db.wal_bound.log_size()
    assert 0 < size <= sqlite_db.wal_bound.limit
    assert await sqlite_db.wal_bound.check() is False
    assert sqlite_db.wal_bound.log_size() == size


async def test_only_an_sqlite_file_has_a_log_to_bound() -> None:
    """In-memory SQLite has no log file (PostgreSQL none of SQLite's): no bound."""
    db = Database(create_async_engine("sqlite+aiosqlite:///:memory:"))
    assert db.wal_bound is None
    await db.aclose()


async def test_a_gateway_on_an_sqlite_file_checks_its_log(tmp_path: Path) -> None:
    """The bound is one of the loops every instance runs."""
    gateway = await build_gateway(instance_settings(f"sqlite:///{tmp_path / 'g.sqlite3'}",
                                                    tmp_path))
    try:
        assert "sqlite-wal-bound" in gateway.instance_loops
    finally:
        await gateway.aclose()
