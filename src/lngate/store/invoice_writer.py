"""Group commit for new invoices: concurrent creates share one transaction.

Each insert on its own costs a transaction, which dominated the create path's CPU. Requests
that arrive while a write is under way are queued and written together in one statement and one
commit, through the database's direct lane (:mod:`lngate.store.direct_insert`: the driver
itself, one thread hand-off per batch on SQLite). Every caller still returns only after its
invoice is committed: durability is the same as one transaction per invoice.
"""

from __future__ import annotations

import asyncio

from lngate.store.database import Database
from lngate.store.invoices import DuplicateInvoice, InvoiceRecord, store_invoices


class InvoiceWriter:
    """Stores invoices, batching the ones that arrive together."""

    def __init__(self, db: Database, *, max_batch: int = 200) -> None:
        self._db = db
        self._max_batch = max_batch
        self._queue: list[tuple[InvoiceRecord, asyncio.Future[None]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def insert(self, record: InvoiceRecord) -> None:
        """Store ``record`` (committed on return); :class:`DuplicateInvoice` on a known hash/key."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((record, done))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name="invoice-writer")
        await asyncio.shield(done)  # a cancelled request must not cancel the others' write

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            try:
                await store_invoices(self._db, [record for record, _ in batch])
            except DuplicateInvoice:
                await self._one_by_one(batch)  # find which one conflicts; store the others
                continue
            except Exception as exc:
                _settle_all(batch, exc)
                continue
            _settle_all(batch, None)

    async def _one_by_one(self, batch: list[tuple[InvoiceRecord, asyncio.Future[None]]]) -> None:
        for record, done in batch:
            try:
                await store_invoices(self._db, [record])
            except Exception as exc:
                _settle_all([(record, done)], exc)
            else:
                _settle_all([(record, done)], None)


def _settle_all(
    batch: list[tuple[InvoiceRecord, asyncio.Future[None]]], error: BaseException | None
) -> None:
    for _, done in batch:
        if done.done():
            continue
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)
