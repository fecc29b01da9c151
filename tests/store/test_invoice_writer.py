"""Group commit: concurrent inserts share transactions, and each caller gets its own outcome."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from lngate.store import Database
from lngate.store.invoice_writer import InvoiceWriter
from lngate.store.invoices import DuplicateInvoice, get_invoice
from tests.store.test_invoices import record


async def test_concurrent_inserts_are_all_committed(db: Database) -> None:
    """Fifty concurrent inserts are all stored once each caller has returned."""
    writer = InvoiceWriter(db, max_batch=16)
    records = [record(f"{i:064x}") for i in range(50)]
    await asyncio.gather(*(writer.insert(r) for r in records))
    async with db.connect() as conn:
        for r in records:
            assert await get_invoice(conn, r.payment_hash) == r


async def test_a_duplicate_fails_alone_and_the_rest_of_its_batch_is_stored(db: Database) -> None:
    """One conflicting invoice in a batch raises for its caller only; the others are stored."""
    writer = InvoiceWriter(db)
    await writer.insert(record("aa" * 32, idempotency_key="taken"))
    batch = [record(f"{i:064x}") for i in range(5)]
    clash = record("bb" * 32, idempotency_key="taken")
    results = await asyncio.gather(*(writer.insert(r) for r in [*batch, clash]),
                                   return_exceptions=True)
    assert results[:5] == [None] * 5
    assert isinstance(results[5], DuplicateInvoice)
    async with db.connect() as conn:
        assert all([await get_invoice(conn, r.payment_hash) for r in batch])
        assert await get_invoice(conn, clash.payment_hash) is None


async def test_a_cancelled_caller_does_not_cancel_the_write(db: Database) -> None:
    """Cancelling one waiting request still stores its invoice and the batch's others."""
    writer = InvoiceWriter(db)
    first, second = record("cc" * 32), replace(record("dd" * 32))
    task = asyncio.create_task(writer.insert(first))
    other = asyncio.create_task(writer.insert(second))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await other
    await asyncio.sleep(0.2)
    async with db.connect() as conn:
        assert await get_invoice(conn, first.payment_hash) is not None
        assert await get_invoice(conn, second.payment_hash) is not None
