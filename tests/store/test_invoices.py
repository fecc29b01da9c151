"""The invoices table on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from lngate.domain import InvoiceState
from lngate.store import Database
from lngate.store.settlement import mark_paid
from lngate.store.invoices import (
    DuplicateInvoice,
    InvoiceRecord,
    get_by_idempotency_key,
    get_invoice,
    insert_invoice,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def record(payment_hash: str = "ab" * 32, **changes: object) -> InvoiceRecord:
    values: dict[str, object] = dict(
        payment_hash=payment_hash, provider="lnbits", provider_ref="ref-1", bolt11="lnbc1...",
        amount_msat=21_000, description="DazBox", metadata={"order": "42", "é": [1, 2]},
        state=InvoiceState.PENDING, is_test=False, created_at=NOW,
        expires_at=NOW + timedelta(hours=1), idempotency_key=None, request_fingerprint="f" * 64,
    )
    values.update(changes)
    return InvoiceRecord(**values)  # type: ignore[arg-type]


async def test_round_trip_keeps_every_field(db: Database) -> None:
    """A stored invoice reads back identical, with aware UTC datetimes and JSON metadata."""
    original = record(idempotency_key="key-1")
    async with db.transaction() as conn:
        await insert_invoice(conn, original)
    async with db.connect() as conn:
        assert await get_invoice(conn, original.payment_hash) == original
        assert await get_by_idempotency_key(conn, "key-1") == original
        assert await get_invoice(conn, "cd" * 32) is None


async def test_payment_hash_and_idempotency_key_are_unique(db: Database) -> None:
    """A second invoice with the same payment hash or idempotency key is refused."""
    async with db.transaction() as conn:
        await insert_invoice(conn, record(idempotency_key="k"))
    with pytest.raises(DuplicateInvoice):
        async with db.transaction() as conn:
            await insert_invoice(conn, record())
    with pytest.raises(DuplicateInvoice):
        async with db.transaction() as conn:
            await insert_invoice(conn, record("cd" * 32, idempotency_key="k"))


async def test_mark_paid_happens_once_under_concurrency(db: Database) -> None:
    """Of 20 concurrent pending-to-paid updates exactly one changes the row."""
    async with db.transaction() as conn:
        await insert_invoice(conn, record())

    async def settle_once() -> bool:
        async with db.transaction() as conn:
            return await mark_paid(conn, "ab" * 32, paid_at=NOW, late=False)

    results = await asyncio.gather(*(settle_once() for _ in range(20)))
    assert results.count(True) == 1
    async with db.connect() as conn:
        stored = await get_invoice(conn, "ab" * 32)
    assert stored is not None and stored.state is InvoiceState.PAID and stored.paid_at == NOW


async def test_migrations_are_idempotent(db: Database) -> None:
    """Running the migrations again on an up-to-date database changes nothing."""
    await db.migrate()
    await db.migrate()
