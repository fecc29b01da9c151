"""An SQLite file's write-ahead log is copied back and restarted, so it stays short, and a
gateway checks it."""

from __future__ import annotations

import asyncio
import os
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


def _log_size(bound: WalBound) -> int:
    """The log file's size in bytes (0 when there is none)."""
    try:
        return os.stat(bound.wal_path).st_size
    except FileNotFoundError:
        return 0


async def _count(db: Database) -> int:
    async with db.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(invoices))).scalar_one()


def _bound(db: Database, **kwargs: int) -> WalBound:
    """A bound on ``db``'s file; the database's own (closed with it) unless ``kwargs``."""
    assert db.wal_bound is not None
    if not kwargs:
        return db.wal_bound
    return WalBound(db.wal_bound.path, **kwargs)


async def test_a_written_log_is_copied_back_and_written_again_from_its_start(
        sqlite_db: Database) -> None:
    """A check copies the log back and restarts it: later writes go over the same file from its
    start instead of making it longer, and every row stays readable."""
    bound = _bound(sqlite_db)
    async with sqlite_db.connect() as reader:  # a reader that has read the log, as in service
        await reader.execute(select(func.count()).select_from(invoices))
    await _write(sqlite_db, 100)
    assert await bound.check() is True
    size = _log_size(bound)
    await _write(sqlite_db, 50, start=100)
    assert _log_size(bound) == size
    assert await bound.check() is True
    await _write(sqlite_db, 50, start=150)
    assert _log_size(bound) == size
    assert await _count(sqlite_db) == 200


async def test_a_log_not_written_since_the_last_restart_is_left_alone(
        sqlite_db: Database) -> None:
    """With nothing written since the last restart, a check does nothing (no checkpoint
    taking the writer, no thread)."""
    bound = _bound(sqlite_db)
    await _write(sqlite_db, 3)
    assert await bound.check() is True
    assert await bound.check() is False
    await _write(sqlite_db, 1, start=3)
    assert await bound.check() is True


async def test_a_reader_on_an_old_snapshot_holds_creates_back_a_moment_not_seconds(
        sqlite_db: Database) -> None:
    """While a reader reads the log, the restart is tried again for at most
    RESTART_WAIT_SECONDS, writers free between tries, then left to the next check (waiting the
    connection's 5 s for a read on an old snapshot would hold creates as long)."""
    bound = _bound(sqlite_db)
    await _write(sqlite_db, 100)
    reader = sqlite3.connect(bound.path)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM invoices").fetchone()  # holds this snapshot
        await _write(sqlite_db, 100, start=100)  # the log now has frames the reader does not see

        async def timed_write() -> float:
            await asyncio.sleep(0.02)  # once the checkpoint waits
            started = time.monotonic()
            await _write(sqlite_db, 1, start=200)
            return time.monotonic() - started

        started = time.monotonic()
        restarted, write_seconds = await asyncio.gather(bound.check(), timed_write())
        assert restarted is False
        assert time.monotonic() - started < 0.5
        assert write_seconds < 0.25
    finally:
        reader.close()
    assert await bound.check() is True  # the reader gone, the next check restarts the log
    assert await _count(sqlite_db) == 201


async def test_a_log_file_past_the_limit_is_shortened(sqlite_db: Database) -> None:
    """A log file past the limit (a reader kept it from restarting) is emptied, giving the
    disk back."""
    bound = _bound(sqlite_db, limit=64 * 1024)
    await _write(sqlite_db, 100)
    assert _log_size(bound) > bound.limit
    try:
        assert await bound.check() is True
    finally:
        await bound.aclose()
    assert _log_size(bound) == 0
    await _write(sqlite_db, 5, start=100)
    assert await _count(sqlite_db) == 105


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
