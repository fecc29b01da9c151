"""Reads of an SQLite file on connections of their own: never behind the writer, never writing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from lngate.store.database import Database


@pytest.fixture
async def db(tmp_path: Path):  # type: ignore[no-untyped-def]
    database = Database.from_url(f"sqlite:///{tmp_path / 'readers.sqlite3'}")
    async with database.transaction() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        await conn.execute(text("INSERT INTO t (v) VALUES ('committed')"))
    yield database
    await database.aclose()


async def read_values(db: Database) -> list[str]:
    async with db.connect() as conn:
        return list((await conn.execute(text("SELECT v FROM t ORDER BY id"))).scalars())


async def test_a_read_completes_while_a_write_transaction_is_open(db: Database) -> None:
    """With the one writing connection held by an open transaction, a read still runs (it would
    otherwise wait for that connection) and sees only what was committed."""
    async with db.transaction() as conn:
        await conn.execute(text("INSERT INTO t (v) VALUES ('uncommitted')"))
        # a guard against hanging for the pool's 30 s, not a measure of speed
        assert await asyncio.wait_for(read_values(db), 10) == ["committed"]
    assert await read_values(db) == ["committed", "uncommitted"]


async def test_reading_connections_refuse_writes(db: Database) -> None:
    """A write through ``connect()`` raises instead of slipping past the writer."""
    async with db.connect() as conn:
        with pytest.raises(OperationalError, match="readonly"):
            await conn.execute(text("INSERT INTO t (v) VALUES ('sneaked')"))
    assert await read_values(db) == ["committed"]
