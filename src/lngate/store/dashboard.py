"""What the operator dashboard reads that no other module does: the latest invoices, and the
alert incidents still open (fired, not yet resolved) according to the alert history."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from lngate.store.invoices import _COLUMNS as INVOICE_COLUMNS
from lngate.store.invoices import InvoiceRecord
from lngate.store.invoices import _record as invoice_record
from lngate.store.monitoring import AlertRow
from lngate.store.tables import alert_history, invoices

FIRED = "fired"


async def latest_invoices(conn: AsyncConnection, *, limit: int) -> list[InvoiceRecord]:
    """The ``limit`` most recently created invoices, newest first (index on ``created_at``)."""
    rows = await conn.execute(select(*INVOICE_COLUMNS)
                              .order_by(invoices.c.created_at.desc(), invoices.c.id.desc())
                              .limit(limit))
    return [invoice_record(row) for row in rows]


async def open_incidents(conn: AsyncConnection) -> list[AlertRow]:
    """Per (rule, provider), its latest alert when that one fired (no "resolved" since), newest
    first. The history is written by whichever instance delivers alerts, so every instance
    sees the same incidents."""
    a = alert_history.c
    latest = select(func.max(a.id)).group_by(a.rule, a.provider).scalar_subquery()
    rows = await conn.execute(
        select(a.id, a.rule, a.provider, a.kind, a.message, a.created_at, a.details,
               a.deliveries)
        .where(a.id.in_(latest), a.kind == FIRED)
        .order_by(a.created_at.desc(), a.id.desc()))
    return [AlertRow(**row._asdict()) for row in rows]
