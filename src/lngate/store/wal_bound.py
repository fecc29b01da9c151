"""A bound on an SQLite file's write-ahead log, which constant writes otherwise let grow.

In WAL mode a commit appends the pages it changed to the log (``<file>-wal``) and checkpoints
copy them back into the file. Writers only start the log again from its beginning when they
begin while every page of it has been copied back and no reader still reads from it; until
then it grows, and its index (``<file>-shm``, 32 KiB per 4,096 pages of log, mapped into every
process using the file) grows with it. The engine's automatic checkpoints are passive: they
copy what no reader still needs and never wait. Under a steady load (the create path's lane
commits a batch every few milliseconds, readers come and go all the time) the log is almost
never entirely copied back when a writer begins, so it restarted only by chance: in
``bench_memory.py`` (about 570 requests a second) the log reached 500 MB for a 34 MB file within
70 s, and the index's mapped pages (1.6 MiB at 100,000 requests) were the largest part of a
worker's memory growth that kept going (docs/benchmarks.md). Nothing else copies the log back:
the create path's lane never checkpoints, and the engine's connections commit rarely.

Every :data:`CHECK_INTERVAL` seconds, if the log was written since the last restart (one
``stat``), :meth:`WalBound.check` copies it back and restarts it on a connection of its own, in
a thread of its own (both kept: opening a connection at each check churned the allocator's
thread arenas). First a ``PASSIVE`` checkpoint copies the log without holding writers or waiting
for readers; then a ``RESTART`` checkpoint copies what was written meanwhile and, once no
reader reads the log, has the next writer write from its start. The second step holds new
writers for its copy only: it is tried without waiting (busy timeout 0), and while a reader
still reads the log it is tried again every :data:`RETRY_SECONDS`, writers free in between,
for at most :data:`RESTART_WAIT_SECONDS` (a read holding an old snapshot for seconds, an
operator's report at a million rows, must not hold creates); a check that gives up leaves the
log as it was and the next one tries again. The log thus holds what is written in about one
interval, and its index with it.

The file keeps its size: writers write over it from its start. Shortening it (a ``TRUNCATE``
checkpoint) holds the writers while the file system frees its blocks, 60-150 ms for 80 MiB
here (ext4 mounted with ``discard``): long enough at half capacity to fill
``MAX_CREATES_IN_FLIGHT``, and it was the largest storage stall after an overload. So the log
is only shortened once its file is past :data:`WAL_LIMIT` (a reader kept it from restarting
for a long time), to give the disk back.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import structlog

log = structlog.get_logger("lngate.store")

WAL_LIMIT = 256 * 1024 * 1024
"""Bytes of log file past which :meth:`WalBound.check` shortens the file itself (rare: the log
restarts every interval, so its file holds about one interval's writes)."""
CHECK_INTERVAL = 2.0
"""Seconds between two looks at the log (a serving process's background loop)."""
RESTART_WAIT_SECONDS = 0.1
"""How long a check keeps trying to restart the log while readers still read it."""
RETRY_SECONDS = 0.002
"""Between two tries of the restarting checkpoint (writers are free in between)."""


class WalBound:
    """Keeps the write-ahead log of the SQLite file at ``path`` to about one interval's writes,
    and its file under ``limit`` bytes."""

    def __init__(self, path: str, *, limit: int = WAL_LIMIT) -> None:
        self.path = path
        self.wal_path = f"{path}-wal"
        self.limit = limit
        self._restarted_after: int | None = None
        """The log's modification time (ns) before the last restart: unchanged, nothing was
        written since."""
        self._thread: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        """Opened and used in ``_thread`` only."""

    async def check(self) -> bool:
        """If the log was written since the last restart, copy it back into the file and
        restart it; True if restarted.

        False when nothing was written since, or when a reader kept reading it past
        :data:`RESTART_WAIT_SECONDS` (logged; the next check tries again).
        """
        try:
            status = os.stat(self.wal_path)
        except FileNotFoundError:
            return False
        if not status.st_size or status.st_mtime_ns == self._restarted_after:
            return False
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-wal-bound")
        restarted = await asyncio.get_running_loop().run_in_executor(
            self._thread, self._checkpoint, status.st_size)
        if restarted:
            self._restarted_after = status.st_mtime_ns
        return restarted

    async def aclose(self) -> None:
        """Close the connection and its thread (a later :meth:`check` opens them again)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            await asyncio.get_running_loop().run_in_executor(thread, self._close)
            thread.shutdown()

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _checkpoint(self, size: int) -> bool:
        if self._conn is None:
            self._conn = sqlite3.connect(self.path, isolation_level=None, timeout=0)
        mode = "TRUNCATE" if size > self.limit else "RESTART"
        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        deadline = time.monotonic() + RESTART_WAIT_SECONDS
        while True:
            # (busy, pages in the log, pages copied back)
            busy, pages, copied = self._conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
            if not busy:
                return True
            if time.monotonic() >= deadline:
                log.warning("sqlite_wal_not_restarted", wal_bytes=size, wal_pages=pages,
                            copied_pages=copied)
                return False
            time.sleep(RETRY_SECONDS)
