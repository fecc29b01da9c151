"""The test provider in the database: its invoices read back whole, paid once, shared by two
providers (two instances), and its key, the first stored, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import coincurve

from lngate.domain import Network, PaymentState
from lngate.providers.testprovider import TestProvider
from lngate.store import Database
from lngate.store.test_invoices import DatabaseInvoiceStore, shared_test_key

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


async def test_an_invoice_issued_by_one_provider_is_paid_through_another(db: Database) -> None:
    """What one instance's test provider issued, another's knows, pays and reports paid with
    the amount, the preimage and the first payment time."""
    key = coincurve.PrivateKey()
    clock = [NOW]
    one, two = (TestProvider(network=Network.BITCOIN, clock=lambda: clock[0], private_key=key,
                             invoices=DatabaseInvoiceStore(db)) for _ in range(2))
    issued = await one.create_invoice(amount_msat=21_000, memo="shared", expiry=600)
    pending = await two.invoice_status(issued.payment_hash)
    assert pending is not None and pending.state is PaymentState.PENDING
    assert await two.mark_paid(issued.payment_hash)
    clock[0] = NOW + timedelta(seconds=5)
    assert await one.mark_paid(issued.payment_hash)  # paid already: the first time stays
    paid = await one.invoice_status(issued.payment_hash)
    assert paid is not None and paid.state is PaymentState.PAID
    assert paid.amount_msat == 21_000 and paid.paid_at == NOW
    assert paid.preimage is not None and len(paid.preimage) == 64
    assert not await two.mark_paid("ab" * 32)
    assert await two.invoice_status("ab" * 32) is None
    clock[0] = NOW + timedelta(seconds=700)
    unpaid = await one.create_invoice(amount_msat=1000, memo="late", expiry=60)
    clock[0] += timedelta(seconds=61)
    expired = await two.invoice_status(unpaid.payment_hash)
    assert expired is not None and expired.state is PaymentState.EXPIRED


async def test_the_first_key_stored_is_every_instances_key(db: Database) -> None:
    """The key the first instance offers is stored; the next, offering its own, is given
    that one; a provider of another name has its own."""
    first, second = (coincurve.PrivateKey().secret.hex() for _ in range(2))
    assert await shared_test_key(db, "test", first, created_at=NOW) == first
    assert await shared_test_key(db, "test", second, created_at=NOW) == first
    assert await shared_test_key(db, "other", second, created_at=NOW) == second
