"""A bound on an SQLite file's write-ahead log, which constant writes otherwise let grow.

In WAL mode a commit appends the pages it changed to the log (``<file>-wal``) and checkpoints
copy them back into the file. The log only starts again from its beginning when a writer
begins while every page of it has been copied back and no reader still reads from it; until
then it grows, and its index (``<file>-shm``, 32 KiB per 4,096 pages of log, mapped into every
process using the file) grows with it. The engine's automatic checkpoints are passive: they
copy what no reader still needs and never wait. Under a steady load (the create path's lane
commits a batch every few milliseconds, readers come and go all the time) the log is almost
never entirely copied back when a writer begins, so it restarted only by chance: in
``bench_memory.py`` (about 570 requests a second) the log reached 500 MB for a 34 MB file within
70 s, and the index's mapped pages (1.6 MiB at 100,000 requests) were the largest part of a
worker's memory growth that kept going (docs/benchmarks.md).

:meth:`WalBound.check` looks at the log's size (one ``stat``) and, past :data:`WAL_LIMIT`,
empties it in two steps on the engine's writing connection (in its thread). First a ``PASSIVE``
checkpoint copies the log back into the file without holding writers or waiting for readers:
nothing else copies it back as it grows (the create path's lane never checkpoints, and the
engine's connection, whose commits checkpoint automatically, commits rarely). Then a
``TRUNCATE`` checkpoint copies what was written meanwhile, waits for the readers still reading
the log, and empties it. New writers wait for that second step, which the first keeps short: a
truncation copying 64 MiB of log itself held creates back 105-155 ms, long enough at half
capacity to fill ``MAX_CREATES_IN_FLIGHT``. (A passive copy at every check instead, with the
file sync each one makes, stalled creates more often.) The truncation waits for readers
at most :data:`TRUNCATE_WAIT_MS` (not the connection's 5 s
busy timeout: a read holding an old snapshot for seconds, an operator's report at a million
rows, kept every create waiting behind the checkpoint up to the writers' own 5 s timeout,
after which their batch failed); a checkpoint that gives up leaves the log as it was and the
next check tries again. The log thus stays under :data:`WAL_LIMIT` plus what the checks
between two quiet moments write, and so does its index.
"""

from __future__ import annotations

import os

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from lngate.store.direct_insert import SQLITE_BUSY_TIMEOUT_MS

log = structlog.get_logger("lngate.store")

WAL_LIMIT = 64 * 1024 * 1024
"""Bytes of write-ahead log past which :meth:`WalBound.check` empties it."""
CHECK_INTERVAL = 2.0
"""Seconds between two looks at the log's size (a serving process's background loop)."""
TRUNCATE_WAIT_MS = 100
"""How long the truncating checkpoint waits for readers (and holds new writers back)."""


class WalBound:
    """Keeps the write-ahead log of the SQLite file at ``path`` under ``limit`` bytes, through
    ``engine``, the file's writing engine."""

    def __init__(self, engine: AsyncEngine, path: str, *, limit: int = WAL_LIMIT) -> None:
        self.engine = engine
        self.wal_path = f"{path}-wal"
        self.limit = limit

    def log_size(self) -> int:
        """The log file's size in bytes (0 when there is none)."""
        try:
            return os.stat(self.wal_path).st_size
        except FileNotFoundError:
            return 0

    async def check(self) -> bool:
        """Past the limit, copy the log back into the file and empty it; True if it was
        emptied.

        False when it was under the limit, or when a reader kept reading it past
        :data:`TRUNCATE_WAIT_MS` (logged; the next check tries again).
        """
        size = self.log_size()
        if size <= self.limit:
            return False
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            await conn.exec_driver_sql(f"PRAGMA busy_timeout={TRUNCATE_WAIT_MS}")
            try:
                result = await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                row = tuple(result.one())  # (busy, pages in the log, pages copied back)
            finally:
                await conn.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        busy, pages, copied = row
        if busy:
            log.warning("sqlite_wal_not_truncated", wal_bytes=size, wal_pages=pages,
                        copied_pages=copied)
            return False
        return True
