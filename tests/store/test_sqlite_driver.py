"""The one-hand-off SQLite cursor: what SQLAlchemy reads from a statement is what it read before."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from lngate.store.database import Database
from lngate.store.sqlite_driver import OneHopCursor


@pytest.fixture
async def db(tmp_path: Path):  # type: ignore[no-untyped-def]
    database = Database.from_url(f"sqlite:///{tmp_path / 'driver.sqlite3'}")
    async with database.transaction() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"))
    yield database
    await database.aclose()


async def test_the_engine_uses_the_one_hop_cursor(db: Database) -> None:
    """A file database gets the cursor that runs each statement in one hand-off."""
    async with db.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.dbapi_connection.cursor(), OneHopCursor)  # type: ignore[union-attr]


async def test_rows_rowcount_lastrowid_and_returning(db: Database) -> None:
    """Selected rows, RETURNING rows, row counts of writes and the last row id are reported."""
    async with db.transaction() as conn:
        returned = await conn.execute(text("INSERT INTO t (v) VALUES ('a') RETURNING id, v"))
        assert returned.all() == [(1, "a")]
        inserted = await conn.execute(text("INSERT INTO t (v) VALUES ('b'), ('c')"))
        assert inserted.rowcount == 2
        assert inserted.lastrowid == 3
        many = await conn.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": "d"}, {"v": "e"}])
        assert many.rowcount == 2
        updated = await conn.execute(text("UPDATE t SET v = v || '!' WHERE id > 3"))
        assert updated.rowcount == 2
        none = await conn.execute(text("UPDATE t SET v = 'x' WHERE id = 99"))
        assert none.rowcount == 0
    async with db.connect() as conn:
        rows = (await conn.execute(text("SELECT id, v FROM t ORDER BY id"))).all()
        assert rows == [(1, "a"), (2, "b"), (3, "c"), (4, "d!"), (5, "e!")]
        assert (await conn.execute(text("SELECT v FROM t WHERE id = 99"))).first() is None
        partial = await conn.execute(text("SELECT id FROM t ORDER BY id"))
        assert partial.fetchmany(2) == [(1,), (2,)]
        assert partial.fetchone() == (3,)


async def test_a_failed_transaction_is_rolled_back_whole(db: Database) -> None:
    """A constraint error is SQLAlchemy's IntegrityError, and the transaction's earlier writes
    are undone with it."""
    with pytest.raises(IntegrityError):
        async with db.transaction() as conn:
            await conn.execute(text("INSERT INTO t (v) VALUES ('kept?')"))
            await conn.execute(text("INSERT INTO t (v) VALUES ('dup')"))
            await conn.execute(text("INSERT INTO t (v) VALUES ('dup')"))
    async with db.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0
