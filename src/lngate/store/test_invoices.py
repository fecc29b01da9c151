"""The test provider's invoices in the database (``test_invoices``), shared by every instance."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update

from lngate.providers.testprovider import IssuedTestInvoice
from lngate.store.database import Database
from lngate.store.tables import test_invoices


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
