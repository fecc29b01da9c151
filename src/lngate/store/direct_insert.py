"""Inserting rows in a transaction of their own through the driver itself (the create path's).

Through SQLAlchemy's async engine one small transaction costs, on SQLite, four hand-offs to
aiosqlite's thread (cursor, execute, close, commit) and, on PostgreSQL, a pool checkout with its
pre-ping round trip; with SQLAlchemy's own statement handling that was the largest share of a
created invoice's CPU. The group commit of new invoices (:mod:`lngate.store.invoice_writer`)
writes one batch at a time, so it gets a lane of its own:

- SQLite: a ``sqlite3`` connection of its own to the same file, with the engine's PRAGMAs (WAL,
  ``synchronous=NORMAL``). A batch (``BEGIN IMMEDIATE``, one ``executemany``, ``COMMIT``) is
  written on the event loop's thread: in WAL mode with ``synchronous=NORMAL`` a commit appends
  to the log without an fsync, tens of microseconds, less than handing the batch to a thread
  (a hand-off cost about as much as the write itself). The loop never waits for a lock: this
  connection's busy timeout is 0, and when another connection is writing (SQLite has one
  writer at a time) the batch is tried again every 2 ms, the loop free meanwhile, for up to
  5 s (the engine's timeout). SQLite's own busy handler, waiting in a thread, slept 1, 2, 5,
  10 ... up to 100 ms between its tries: a lock held 60 ms kept the batch 78 ms, one held
  110 ms, 128 ms. Nor does it checkpoint: its automatic checkpoints are off, and the log is
  copied back and restarted every few seconds, in a thread (:mod:`lngate.store.wal_bound`).
- PostgreSQL: a small asyncpg pool of its own (at most :data:`PG_POOL_SIZE` connections, no
  pre-ping), one statement run with ``executemany``, atomic by itself (one implicit
  transaction, one round trip); a lost connection fails its batch and the pool replaces it. The PostgreSQL rate limit's statements
  (:mod:`lngate.store.rate_limits`, :mod:`lngate.store.rate_limit_batch`) run on it too, in
  autocommit.
- anything else (an in-memory SQLite database, which a second connection cannot see): the
  engine, in one transaction.

Values go through the columns' own SQLAlchemy bind processors for the engine's dialect, so a
row is stored exactly as the engine would store it. Durability is the engine's: :meth:`insert`
returns once ``COMMIT`` has returned (on SQLite in WAL mode with ``synchronous=NORMAL``, the
commit is in the write-ahead log and survives the process crashing; PostgreSQL's commit is
durable per its ``synchronous_commit``).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from lngate.store.sqlite_driver import CACHE_KIB

Row = dict[str, Any]
SQLITE_BUSY_TIMEOUT_MS = 5000
"""How long a batch waits for SQLite's write lock (the engine's timeout)."""
SQLITE_BUSY_RETRY_SECONDS = 0.002
"""Between two tries of a batch meeting SQLite's write lock held by another connection."""
PG_POOL_SIZE = 4
"""Connections of the PostgreSQL lane's pool, beyond the engine's."""


class DirectInsert:
    """Inserts rows of one table, each call in one transaction committed before it returns.

    Raises SQLAlchemy's ``IntegrityError`` when a row breaks a unique constraint (nothing of the
    call is stored then), the driver's own error otherwise.
    """

    def __init__(self, engine: AsyncEngine, *, sqlite_path: str | None,
                 postgres_pool: Callable[[], Awaitable[Any]] | None) -> None:
        """``sqlite_path``: the SQLite file (``None``: not a file, use the engine);
        ``postgres_pool``: opens the lane's asyncpg pool on PostgreSQL."""
        self._engine = engine
        self._dialect: Dialect = engine.dialect
        self._sqlite_path = sqlite_path
        self._postgres_pool = postgres_pool
        self._statements: dict[tuple[str, tuple[str, ...]], _Statement] = {}
        self._sqlite: sqlite3.Connection | None = None
        self._sqlite_lock = asyncio.Lock()
        self._pg: Any = None
        self._pg_opening = asyncio.Lock()

    async def insert(self, table: Table, rows: Sequence[Row]) -> None:
        """Store ``rows`` (keyed by column key) in one committed transaction."""
        if not rows:
            return
        statement = self._statement(table, tuple(rows[0]))
        values = [statement.values(row) for row in rows]
        if self._dialect.name == "sqlite" and self._sqlite_path is not None:
            await self._sqlite_insert(statement.sql, values)
        elif self._postgres_pool is not None:
            await self._postgres_write(statement.sql, values)
        else:
            async with self._engine.begin() as conn:
                await conn.execute(insert(table), list(rows))

    async def fetch_row(self, sql: str, *args: Any) -> Any:
        """One statement with ``$n`` parameters, in autocommit, on the PostgreSQL lane; its
        first row (an ``asyncpg.Record``) or ``None``."""
        pool = await self._pool()
        return await pool.fetchrow(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        """One statement with ``$n`` parameters, in autocommit, on the PostgreSQL lane; its
        rows (``asyncpg.Record``)."""
        pool = await self._pool()
        return await pool.fetch(sql, *args)

    async def aclose(self) -> None:
        """Close the lane's own connections; the next :meth:`insert` reopens them."""
        async with self._sqlite_lock:
            if self._sqlite is not None:
                conn, self._sqlite = self._sqlite, None
                conn.close()
        if self._pg is not None:
            pool, self._pg = self._pg, None
            try:
                await asyncio.wait_for(pool.close(), 5.0)
            except Exception:  # connections already gone: nothing left but the objects
                pool.terminate()

    # --- statements ------------------------------------------------------------------------
    def _statement(self, table: Table, keys: tuple[str, ...]) -> _Statement:
        cached = self._statements.get((table.name, keys))
        if cached is None:
            cached = self._statements[(table.name, keys)] = _Statement(table, keys, self._dialect)
        return cached

    # --- SQLite ------------------------------------------------------------------------------
    async def _sqlite_insert(self, sql: str, values: list[tuple[Any, ...]]) -> None:
        async with self._sqlite_lock:  # one connection: one transaction at a time
            conn = self._sqlite_connection()
            deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
            while True:
                try:
                    _sqlite_write(conn, sql, values)
                    return
                except sqlite3.OperationalError as exc:
                    if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:  # or a BUSY_* one
                        raise
                    if time.monotonic() >= deadline:
                        raise
                # another connection is writing: try again shortly, the loop free meanwhile
                await asyncio.sleep(SQLITE_BUSY_RETRY_SECONDS)

    def _sqlite_connection(self) -> sqlite3.Connection:
        if self._sqlite is None:
            assert self._sqlite_path is not None
            # autocommit mode: the transaction is the explicit BEGIN ... COMMIT; timeout=0: a
            # locked database is answered at once (see the module docstring); used by one
            # event loop at a time, whichever thread runs it
            conn = sqlite3.connect(self._sqlite_path, isolation_level=None, timeout=0,
                                   check_same_thread=False)
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "wal_autocheckpoint=0",
                           "foreign_keys=ON", f"cache_size=-{CACHE_KIB}"):
                conn.execute(f"PRAGMA {pragma}")
            self._sqlite = conn
        return self._sqlite

    # --- PostgreSQL --------------------------------------------------------------------------
    async def _pool(self) -> Any:
        if self._pg is None:
            async with self._pg_opening:
                if self._pg is None:
                    if self._postgres_pool is None:
                        raise RuntimeError("the direct lane's statements are for PostgreSQL")
                    self._pg = await self._postgres_pool()
        return self._pg

    async def _postgres_write(self, sql: str, values: list[tuple[Any, ...]]) -> None:
        # imported here, as the pool: a gateway on SQLite never loads asyncpg
        import asyncpg  # type: ignore[import-untyped]

        pool = await self._pool()
        try:
            # asyncpg runs an executemany outside a transaction as one pipeline ending in a
            # single Sync, which PostgreSQL executes as one implicit transaction: all rows or
            # none, in one round trip where BEGIN and COMMIT of our own took three
            await pool.executemany(sql, values)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise IntegrityError(sql, None, exc) from exc


def _sqlite_write(conn: sqlite3.Connection, sql: str, values: list[tuple[Any, ...]]) -> None:
    """``BEGIN IMMEDIATE``, the rows, ``COMMIT``; rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")  # SQLITE_BUSY here, before anything is written
    try:
        conn.executemany(sql, values)
        conn.execute("COMMIT")
    except BaseException as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.IntegrityError):
            raise IntegrityError(sql, None, exc) from exc
        raise


class _Statement:
    """The INSERT for one table and set of columns, and the columns' bind processors."""

    def __init__(self, table: Table, keys: tuple[str, ...], dialect: Dialect) -> None:
        self.keys = keys
        columns = [table.c[key] for key in keys]
        names = ", ".join(dialect.identifier_preparer.quote(column.name) for column in columns)
        if dialect.name == "postgresql":
            marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
        else:
            marks = ", ".join("?" for _ in columns)
        self.sql = f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({names}) " \
                   f"VALUES ({marks})"
        self.processors = [column.type.dialect_impl(dialect).bind_processor(dialect)
                           for column in columns]

    def values(self, row: Row) -> tuple[Any, ...]:
        """The row's values in statement order, as the driver takes them."""
        return tuple(value if process is None else process(value)
                     for process, value in zip(self.processors, (row[k] for k in self.keys),
                                               strict=True))
