"""SQLAlchemy's aiosqlite adapter with one thread hand-off per statement instead of three or four.

aiosqlite runs every ``sqlite3`` call in its own thread, and SQLAlchemy's adapter makes one call
per step of a statement: open a cursor, execute, fetch the rows, close the cursor. Each step is
a hand-off to that thread and back (a queue, a future, a wake-up of the event loop), and with
SQLAlchemy's own work around them they were most of the gateway's CPU on a settled webhook
(about a dozen statements). The cursor here does all four steps in one call in aiosqlite's
thread and keeps the rows, the description, ``rowcount`` and ``lastrowid`` it read there.

Nothing else changes: the same ``sqlite3`` connection in the same thread, the same implicit
transactions (``sqlite3`` begins one before a write, as before), commit and rollback through
the unchanged connection adapter, the same errors (SQLAlchemy wraps them as before). Server-side
cursors (streamed results) keep the stock step-by-step cursor.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT

CACHE_KIB = 512
"""SQLite's own page cache per connection (``PRAGMA cache_size``), in KiB; SQLite's default is
2,000 KiB. A worker holds four connections to the file (the writer, two readers, the direct
insert lane), and as the file grows past their caches each fills to its bound: up to 8 MiB of
resident memory, growing through the first tens of thousands of invoices (docs/benchmarks.md).
A page past this bound is read again from the operating system's file cache, where the
database file stays (microseconds, no disk read); the B-tree pages every look-up goes through
stay cached."""

_Outcome = tuple[Any, list[Any], int, int | None]


def _run(conn: sqlite3.Connection, operation: str, parameters: Any) -> _Outcome:
    """In aiosqlite's thread: the whole statement, results included."""
    cursor = conn.cursor()
    try:
        if parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        # read after the rows: for INSERT/UPDATE ... RETURNING sqlite3 counts them as they come
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


def _run_many(conn: sqlite3.Connection, operation: str, parameters: Sequence[Any]) -> _Outcome:
    cursor = conn.cursor()
    try:
        cursor.executemany(operation, parameters)
        return cursor.description, [], cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor whose statements each take one hand-off to aiosqlite's thread."""

    __slots__ = ("_description", "_rowcount", "_lastrowid", "_arraysize")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # no aiosqlite cursor is opened here (that was a hand-off of its own)
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        await self._call(_run, operation, parameters)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        await self._call(_run_many, operation, seq_of_parameters)

    async def _call(self, fn: Any, operation: Any, parameters: Any) -> None:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            outcome: _Outcome = await connection._execute(
                fn, connection._conn, operation, parameters)
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows)

    async def _async_soft_close(self) -> None:
        """Nothing to close: the ``sqlite3`` cursor was closed in the statement's hand-off."""

    def close(self) -> None:
        self._rows.clear()


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    """The stock connection adapter, handing out :class:`OneHopCursor` cursors."""

    __slots__ = ()
    _cursor_cls = OneHopCursor  # type: ignore[assignment]


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The aiosqlite "DBAPI module" whose connections are :class:`OneHopConnection`."""

    def connect(self, *arg: Any, **kw: Any) -> OneHopConnection:
        stock = super().connect(*arg, **kw)
        return OneHopConnection(self, stock._connection)


def one_hop_dbapi() -> OneHopDBAPI:
    """The module to give ``create_async_engine(..., module=...)`` for a ``sqlite+aiosqlite``
    URL."""
    return OneHopDBAPI(aiosqlite, sqlite3)
