"""Notifications that an invoice changed state, for Server-Sent Events, on every instance.

Settlement announces the payment hash inside its transaction (:meth:`InvoiceEvents.announce`)
and again once it committed (:meth:`InvoiceEvents.committed`); a listener wakes and re-reads the
database. Nothing is carried in the notification itself, so a missed or spurious wake-up is
harmless, and listeners also re-read on a timer (the safety net).

Between instances the announcement travels by an :class:`EventTransport`:

- :class:`PostgresTransport`: ``NOTIFY`` in the settlement's transaction, so it is delivered
  exactly when the change commits (never for a rolled-back one), heard by every instance's
  ``LISTEN`` on a dedicated connection that reconnects when lost;
- :class:`RedisTransport` (``REDIS_URL`` set): ``PUBLISH`` after the commit, heard by every
  instance's subscription;
- none (SQLite: one process): the in-process wake-up is all there is.

While an instance's listening connection is down it misses announcements; when it is back it
wakes every local listener once, so each re-reads what it may have missed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from lngate.store import Database
from lngate.store.coordination import INVOICE_CHANNEL, DedicatedSession, listen, notify
from lngate.store.database import is_transient

log = structlog.get_logger("lngate.events")
RECONNECT_DELAY = 1.0
"""Seconds between attempts to re-open a lost listening connection."""
REDIS_CHANNEL = "lngate:invoices"


class EventTransport(Protocol):
    """How invoice changes travel between instances."""

    async def announce(self, conn: AsyncConnection, payment_hash: str) -> None:
        """Called inside the transaction that changes the invoice."""

    async def committed(self, payment_hash: str) -> None:
        """Called once that transaction committed."""

    async def receive(self, deliver: Callable[[str], None], resync: Callable[[], None]) -> None:
        """Call ``deliver(payment_hash)`` for every change announced by any instance, forever;
        ``resync()`` each time listening (re)starts."""


class InvoiceEvents:
    """Wake-ups per payment hash (one :class:`asyncio.Event` per listener), and their transport
    to the other instances."""

    def __init__(self, transport: EventTransport | None = None) -> None:
        self.transport = transport
        self._listeners: dict[str, set[asyncio.Event]] = {}
        self._observers: list[Callable[[str | None], object]] = []

    async def announce(self, conn: AsyncConnection, payment_hash: str) -> None:
        """Inside the transaction changing ``payment_hash``: tell the other instances (on
        PostgreSQL, delivered when it commits)."""
        if self.transport is not None:
            await self.transport.announce(conn, payment_hash)

    async def committed(self, payment_hash: str) -> None:
        """After the change of ``payment_hash`` committed: wake this process's listeners and
        tell the other instances where the transport needs it."""
        self.wake(payment_hash)
        if self.transport is not None:
            await self.transport.committed(payment_hash)

    def wake(self, payment_hash: str) -> None:
        """Wake every listener of ``payment_hash`` in this process."""
        for event in self._listeners.get(payment_hash, ()):
            event.set()
        for observer in self._observers:
            observer(payment_hash)

    def observe(self, observer: Callable[[str | None], object]) -> None:
        """Also call ``observer(payment_hash)`` on every change of any invoice seen here (this
        instance's or, through the transport, another's), and ``observer(None)`` when changes
        may have been missed (the operator dashboard); it must neither block nor raise."""
        self._observers.append(observer)

    def wake_all(self) -> None:
        """Wake every listener in this process (after announcements may have been missed)."""
        for events in self._listeners.values():
            for event in events:
                event.set()
        for observer in self._observers:
            observer(None)

    async def receive(self) -> None:
        """Wake local listeners for changes made by every instance, forever (a supervised
        task); returns at once without a transport."""
        if self.transport is not None:
            await self.transport.receive(self.wake, self.wake_all)

    @contextmanager
    def listen(self, payment_hash: str) -> Iterator[asyncio.Event]:
        """An event set on each change of ``payment_hash`` while the block runs (clear it)."""
        event = asyncio.Event()
        self._listeners.setdefault(payment_hash, set()).add(event)
        try:
            yield event
        finally:
            listeners = self._listeners.get(payment_hash)
            if listeners is not None:
                listeners.discard(event)
                if not listeners:
                    del self._listeners[payment_hash]

    @property
    def listening(self) -> int:
        """How many listeners are registered (all hashes)."""
        return sum(len(s) for s in self._listeners.values())


class PostgresTransport:
    """``NOTIFY`` in the transaction, ``LISTEN`` on a dedicated connection."""

    def __init__(self, db: Database, *, reconnect_delay: float = RECONNECT_DELAY) -> None:
        self._db = db
        self._reconnect_delay = reconnect_delay

    async def announce(self, conn: AsyncConnection, payment_hash: str) -> None:
        """``NOTIFY`` the hash in the caller's transaction."""
        await notify(conn, INVOICE_CHANNEL, payment_hash)

    async def committed(self, payment_hash: str) -> None:
        """Nothing: the ``NOTIFY`` is delivered by the commit."""

    async def receive(self, deliver: Callable[[str], None], resync: Callable[[], None]) -> None:
        """Listen, and listen again after each lost connection."""
        session = DedicatedSession(self._db, application_name="lngate-events")
        while True:
            try:
                await listen(session, INVOICE_CHANNEL, deliver, on_listening=resync)
                log.warning("invoice_events_connection_lost", retry_in_s=self._reconnect_delay)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                # the database is unreachable for now: the SSE re-reads cover the gap
                log.warning("invoice_events_unavailable", error=type(exc).__name__,
                            retry_in_s=self._reconnect_delay)
            await asyncio.sleep(self._reconnect_delay)


class RedisTransport:
    """``PUBLISH`` after the commit, one subscription per instance (``REDIS_URL``)."""

    def __init__(self, url: str, *, reconnect_delay: float = RECONNECT_DELAY) -> None:
        """Opens nothing: the client connects on first use."""
        self._url = url
        self._reconnect_delay = reconnect_delay
        self._client: Any = None

    def _redis(self) -> Any:
        import coredis

        if self._client is None:
            self._client = coredis.Redis.from_url(self._url)
        return self._client

    async def announce(self, conn: AsyncConnection, payment_hash: str) -> None:
        """Nothing: Redis is told after the commit."""

    async def committed(self, payment_hash: str) -> None:
        """Publish the hash; a failure is logged, the SSE re-reads cover it."""
        from coredis.exceptions import RedisError

        try:
            await self._redis().publish(REDIS_CHANNEL, payment_hash)
        except (RedisError, OSError, TimeoutError) as exc:  # the change is committed already
            log.warning("invoice_event_not_published", error=type(exc).__name__)

    async def receive(self, deliver: Callable[[str], None], resync: Callable[[], None]) -> None:
        """Subscribe, and subscribe again after each lost connection."""
        from coredis.exceptions import ConnectionError as RedisConnectionError

        while True:
            try:
                async with self._redis().pubsub(channels=[REDIS_CHANNEL],
                                                ignore_subscribe_messages=True) as pubsub:
                    resync()
                    async for message in pubsub:
                        if message["type"] == "message":
                            data = message["data"]
                            deliver(data.decode() if isinstance(data, bytes) else str(data))
                log.warning("invoice_events_connection_lost", retry_in_s=self._reconnect_delay)
            except (RedisConnectionError, OSError, TimeoutError) as exc:
                # Redis is unreachable for now: the SSE re-reads cover the gap
                log.warning("invoice_events_unavailable", error=type(exc).__name__,
                            retry_in_s=self._reconnect_delay)
            await asyncio.sleep(self._reconnect_delay)

    async def aclose(self) -> None:
        """Drop the client's connections."""
        if self._client is not None:
            client, self._client = self._client, None
            pool = getattr(client, "connection_pool", None)
            if pool is not None:
                pool.disconnect()
