"""PostgreSQL's coordination primitives: a session advisory lock and ``LISTEN``/``NOTIFY``.

Both live on a *dedicated* connection (:meth:`Database.dedicated_connection`), never a pooled
one: a session lock returned to the pool would stay held by whoever borrows the connection
next, and a pooled ``LISTEN`` would hear nothing once the connection is handed back. Neither
works through a pooler in transaction mode (PgBouncer's ``pool_mode=transaction``): point the
gateway at PostgreSQL itself, or at a pooler in session mode.

A connection that dies is noticed two ways: asyncpg's termination listener (the server closed
the session, e.g. ``pg_terminate_backend`` or a restart: immediate) and a ``SELECT 1`` every
``ping_interval`` seconds that must answer within ``ping_timeout`` (a silent network loss).
The server side is told to probe the client too (TCP keepalives after 5 s idle, every 2 s, 3
probes), so a lock held by a vanished client is released within about 11 s instead of the
operating system's two hours.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from lngate.store.database import Database

LEADER_LOCK_KEY = 0x6C6E6761746501
"""The advisory lock key of the gateway's leader ("lngate" + 1; migrations use "lngate")."""
INVOICE_CHANNEL = "lngate_invoices"
"""The ``NOTIFY`` channel on which settlement announces an invoice's change (its hash)."""

SERVER_KEEPALIVES = {"tcp_keepalives_idle": "5", "tcp_keepalives_interval": "2",
                     "tcp_keepalives_count": "3"}


async def notify(conn: AsyncConnection, channel: str, payload: str) -> None:
    """``NOTIFY channel, payload`` in ``conn``'s transaction: delivered when it commits, never
    if it rolls back (PostgreSQL only)."""
    await conn.execute(text("SELECT pg_notify(:channel, :payload)"),
                       {"channel": channel, "payload": payload})


class DedicatedSession:
    """One dedicated PostgreSQL connection and the means to tell that it is gone."""

    def __init__(self, db: Database, *, application_name: str, ping_interval: float = 1.0,
                 ping_timeout: float = 3.0) -> None:
        """Opens nothing: :meth:`open` connects."""
        self._db = db
        self._application_name = application_name
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self._conn: Any = None
        self._lost = asyncio.Event()

    @property
    def connection(self) -> Any:
        """The open ``asyncpg.Connection`` (after :meth:`open`)."""
        if self._conn is None:
            raise RuntimeError("the session is not open")
        return self._conn

    @property
    def is_open(self) -> bool:
        """Whether the connection is open and not known to be lost."""
        return self._conn is not None and not self._lost.is_set()

    async def open(self) -> None:
        """Connect (closing a previous, lost connection first)."""
        await self.close()
        self._lost = asyncio.Event()
        lost = self._lost
        self._conn = await self._db.dedicated_connection(
            application_name=self._application_name, server_settings=SERVER_KEEPALIVES)
        self._conn.add_termination_listener(lambda _conn: lost.set())

    async def fetchval(self, query: str, *args: Any) -> Any:
        """Run ``query`` within ``ping_timeout``; a failure marks the session lost."""
        try:
            return await asyncio.wait_for(self.connection.fetchval(query, *args),
                                          self.ping_timeout)
        except BaseException:
            self._lost.set()
            raise

    async def wait_lost(self) -> None:
        """Return once the connection is lost: closed by the server, or silent for longer than
        ``ping_interval + ping_timeout``."""
        while not self._lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), self.ping_interval)
                return
            try:
                await self.fetchval("SELECT 1")
            except Exception:  # any failure of the ping: the session can no longer be trusted
                return

    async def close(self) -> None:
        """Close the connection (at once: a lost one cannot say goodbye)."""
        conn, self._conn = self._conn, None
        self._lost.set()
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), self.ping_timeout)
            except Exception:  # already broken: drop the socket
                conn.terminate()


class AdvisoryLock:
    """A session-level advisory lock held on a :class:`DedicatedSession` for as long as the
    session lives: closing it, or the server noticing the client is gone, releases it."""

    def __init__(self, db: Database, key: int = LEADER_LOCK_KEY, *,
                 application_name: str = "lngate-leadership", ping_interval: float = 1.0,
                 ping_timeout: float = 3.0) -> None:
        self.key = key
        self.session = DedicatedSession(db, application_name=application_name,
                                        ping_interval=ping_interval, ping_timeout=ping_timeout)

    async def try_acquire(self) -> bool:
        """One non-blocking attempt (``pg_try_advisory_lock``), connecting first if needed."""
        if not self.session.is_open:
            await self.session.open()
        return bool(await self.session.fetchval("SELECT pg_try_advisory_lock($1)", self.key))

    async def wait_lost(self) -> None:
        """Return once the lock can no longer be trusted to be held (the session is lost)."""
        await self.session.wait_lost()
        await self.session.close()

    async def release(self) -> None:
        """Give the lock up by closing the session."""
        await self.session.close()


async def listen(session: DedicatedSession, channel: str, on_payload: Callable[[str], None],
                 *, on_listening: Callable[[], None] | None = None) -> None:
    """Open ``session``, ``LISTEN`` on ``channel`` and call ``on_payload`` for each notification
    until the session is lost; then close it and return (the caller reconnects)."""
    await session.open()
    try:
        await session.connection.add_listener(
            channel, lambda _conn, _pid, _channel, payload: on_payload(payload))
        if on_listening is not None:
            on_listening()
        await session.wait_lost()
    finally:
        await session.close()
