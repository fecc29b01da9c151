"""The test provider in the database, shared by every instance: its invoices
(``test_invoices``) and its key (``test_node_keys``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update

from lngate.providers.testprovider import IssuedTestInvoice
from lngate.store.database import Database
from lngate.store.tables import test_invoices, test_node_keys
from lngate.store.upsert import insert_ignore


class DatabaseInvoiceStore:
    """An ``IssuedInvoiceStore`` (providers/testprovider.py) on the gateway's database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, invoice: IssuedTestInvoice) -> None:
        """Store a newly issued invoice."""
        async with self._db.transaction() as conn:
            await conn.execute(insert(test_invoices).values(
                payment_hash=invoice.payment_hash, amount_msat=invoice.amount_msat,
                preimage=invoice.preimage, expires_at=invoice.expires_at,
                paid_at=invoice.paid_at))

    async def get(self, payment_hash: str) -> IssuedTestInvoice | None:
        """The stored invoice with this hash, or ``None``."""
        t = test_invoices.c
        async with self._db.connect() as conn:
            row = (await conn.execute(
                select(t.payment_hash, t.amount_msat, t.preimage, t.expires_at, t.paid_at)
                .where(t.payment_hash == payment_hash))).first()
        return IssuedTestInvoice(**row._asdict()) if row is not None else None

    async def mark_paid(self, payment_hash: str, paid_at: datetime) -> bool:
        """Set ``paid_at`` unless already set; ``False`` when the invoice is unknown."""
        t = test_invoices.c
        async with self._db.transaction() as conn:
            await conn.execute(update(test_invoices)
                               .where(t.payment_hash == payment_hash, t.paid_at.is_(None))
                               .values(paid_at=paid_at))
            found = (await conn.execute(
                select(t.payment_hash).where(t.payment_hash == payment_hash))).first()
        return found is not None


async def shared_test_key(db: Database, provider: str, candidate: str, *,
                          created_at: datetime) -> str:
    """The test provider's private key (hex) on this database: ``candidate`` stored unless an
    instance stored one first, which wins; the stored key."""
    k = test_node_keys.c
    async with db.transaction() as conn:
        await conn.execute(insert_ignore(conn, test_node_keys, ["provider"]).values(
            provider=provider, private_key=candidate, created_at=created_at))
        stored: str = (await conn.execute(
            select(k.private_key).where(k.provider == provider))).scalar_one()
    return stored
