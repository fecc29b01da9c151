"""One database re-read per interval for every invoice this process's event streams wait on.

An event stream (``GET /api/invoices/{hash}/events``) learns of a settlement through
:class:`~lngate.services.events.InvoiceEvents`: at once for this process's own, through the
transport for another instance's. The re-read covers what a notification cannot: a change made
where no transport carries it (another process on SQLite, a lost listening connection). Each
stream used to re-read its own invoice every interval, so 500 open streams were ~170 look-ups a
second on the database; :class:`StreamWatch` reads the state of every watched invoice in one
statement per interval (in chunks of :data:`CHUNK`) and wakes the streams whose invoice is no
longer pending, each of which then re-reads its own invoice as on any wake-up.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from lngate.domain import InvoiceState
from lngate.services.events import InvoiceEvents
from lngate.store import Database
from lngate.store.invoices import invoice_states

CHUNK = 500
"""Payment hashes per statement (SQLite allows 32,766 parameters; PostgreSQL 65,535)."""


class StreamWatch:
    """The invoices watched by open event streams, and their shared re-read."""

    def __init__(self, db: Database, events: InvoiceEvents) -> None:
        self._db = db
        self._events = events
        self._watched: dict[str, int] = {}
        """Payment hash -> how many open streams wait on it (dropped at zero)."""

    @contextmanager
    def watch(self, payment_hash: str) -> Iterator[None]:
        """Include ``payment_hash`` in every re-read while the block runs."""
        self._watched[payment_hash] = self._watched.get(payment_hash, 0) + 1
        try:
            yield
        finally:
            left = self._watched.pop(payment_hash, 1) - 1
            if left > 0:
                self._watched[payment_hash] = left

    @property
    def watched(self) -> int:
        """How many distinct invoices are watched."""
        return len(self._watched)

    async def recheck(self) -> int:
        """Read the watched invoices' states; wake the streams of those no longer pending (a
        loop's pass, run every ``SSE_RECHECK_SECONDS``). Returns how many were woken."""
        hashes = list(self._watched)
        woken = 0
        for start in range(0, len(hashes), CHUNK):
            async with self._db.connect() as conn:
                states = await invoice_states(conn, hashes[start:start + CHUNK])
            for payment_hash, state in states.items():
                if state is not InvoiceState.PENDING:
                    self._events.wake(payment_hash)
                    woken += 1
        return woken
