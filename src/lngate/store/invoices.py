"""Reading and writing the ``invoices`` table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from lngate.domain import InvoiceState
from lngate.store.database import Database
from lngate.store.tables import invoices, orders


@dataclass(frozen=True, slots=True)
class InvoiceRecord:
    """One stored invoice."""

    payment_hash: str
    provider: str
    provider_ref: str
    bolt11: str
    amount_msat: int
    description: str
    metadata: dict[str, Any] | None
    state: InvoiceState
    is_test: bool
    created_at: datetime
    expires_at: datetime
    paid_at: datetime | None = None
    idempotency_key: str | None = None
    request_fingerprint: str | None = None
    paid_late: bool = False
    """Paid after its expiry (the money arrived; it was settled all the same)."""
    webhook_nonce: str | None = None
    """The nonce in the webhook URL given to the provider (see services.webhooks)."""


class DuplicateInvoice(Exception):
    """The payment hash or idempotency key is already stored."""


_COLUMNS = (
    invoices.c.payment_hash,
    invoices.c.provider,
    invoices.c.provider_ref,
    invoices.c.bolt11,
    invoices.c.amount_msat,
    invoices.c.description,
    invoices.c.metadata_,
    invoices.c.state,
    invoices.c.is_test,
    invoices.c.created_at,
    invoices.c.expires_at,
    invoices.c.paid_at,
    invoices.c.idempotency_key,
    invoices.c.request_fingerprint,
    invoices.c.paid_late,
    invoices.c.webhook_nonce,
)


def _record(row: Row[Any]) -> InvoiceRecord:
    """The record of a row of :data:`_COLUMNS`, whose result names are its field names."""
    fields = row._asdict()
    fields["state"] = InvoiceState(fields["state"])
    return InvoiceRecord(**fields)


async def insert_invoice(conn: AsyncConnection, record: InvoiceRecord) -> None:
    """Store a new invoice; raises :class:`DuplicateInvoice` on a known hash or key."""
    await insert_invoices(conn, [record])


async def insert_invoices(conn: AsyncConnection, records: list[InvoiceRecord]) -> None:
    """Store new invoices in one statement; :class:`DuplicateInvoice` if any is known."""
    try:
        await conn.execute(insert(invoices), [_row(record) for record in records])
    except IntegrityError as exc:
        raise DuplicateInvoice(str(exc.orig)) from exc


async def store_invoices(db: Database, records: list[InvoiceRecord]) -> None:
    """Store new invoices in one transaction of their own, committed on return, through the
    database's direct lane (:mod:`lngate.store.direct_insert`); :class:`DuplicateInvoice` if
    any is known (then none is stored)."""
    try:
        await db.direct.insert(invoices, [_row(record) for record in records])
    except IntegrityError as exc:
        raise DuplicateInvoice(str(exc.orig)) from exc


def _row(record: InvoiceRecord) -> dict[str, Any]:
    return {
        "payment_hash": record.payment_hash,
        "provider": record.provider,
        "provider_ref": record.provider_ref,
        "bolt11": record.bolt11,
        "amount_msat": record.amount_msat,
        "description": record.description,
        "metadata_": record.metadata,
        "state": record.state.value,
        "is_test": record.is_test,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "paid_at": record.paid_at,
        "idempotency_key": record.idempotency_key,
        "request_fingerprint": record.request_fingerprint,
        "paid_late": record.paid_late,
        "webhook_nonce": record.webhook_nonce,
    }


async def get_invoice(conn: AsyncConnection, payment_hash: str) -> InvoiceRecord | None:
    """The invoice with this payment hash, or ``None``."""
    result = await conn.execute(select(*_COLUMNS).where(invoices.c.payment_hash == payment_hash))
    row = result.first()
    return None if row is None else _record(row)


async def invoice_states(conn: AsyncConnection,
                         payment_hashes: Sequence[str]) -> dict[str, InvoiceState]:
    """The state of each stored invoice among ``payment_hashes`` (unknown ones are absent), in
    one statement (callers keep the list to a few hundred)."""
    result = await conn.execute(select(invoices.c.payment_hash, invoices.c.state)
                                .where(invoices.c.payment_hash.in_(payment_hashes)))
    return {row.payment_hash: InvoiceState(row.state) for row in result}


async def get_by_idempotency_key(conn: AsyncConnection, key: str) -> InvoiceRecord | None:
    """The invoice created with this ``Idempotency-Key``, or ``None``."""
    result = await conn.execute(select(*_COLUMNS).where(invoices.c.idempotency_key == key))
    row = result.first()
    return None if row is None else _record(row)



_WITH_ORDER_ID = (
    select(*_COLUMNS, orders.c.id.label("order_id"))
    .select_from(invoices.outerjoin(orders, orders.c.payment_hash == invoices.c.payment_hash))
    .where(invoices.c.payment_hash == bindparam("hash"))
)
"""Built once (every webhook call reads it)."""


async def get_invoice_and_order_id(
    conn: AsyncConnection, payment_hash: str
) -> tuple[InvoiceRecord, str | None] | None:
    """The invoice with this payment hash and the id of the order it pays (``None`` for a bare
    invoice), in one statement; ``None`` for an unknown hash."""
    row = (await conn.execute(_WITH_ORDER_ID, {"hash": payment_hash})).first()
    if row is None:
        return None
    fields = row._asdict()
    order_id = fields.pop("order_id")
    fields["state"] = InvoiceState(fields["state"])
    return InvoiceRecord(**fields), order_id
