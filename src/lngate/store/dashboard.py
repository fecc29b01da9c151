"""What the operator dashboard reads that no other module does: the latest invoices, and the
"fired" alert of each incident still open."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from lngate.store.invoices import _COLUMNS as INVOICE_COLUMNS
from lngate.store.invoices import InvoiceRecord
from lngate.store.invoices import _record as invoice_record
from lngate.store.monitoring import AlertRow
from lngate.store.tables import alert_history, invoices, open_incidents


async def latest_invoices(conn: AsyncConnection, *, limit: int) -> list[InvoiceRecord]:
    """The ``limit`` most recently created invoices, newest first (index on ``created_at``)."""
    rows = await conn.execute(select(*INVOICE_COLUMNS)
                              .order_by(invoices.c.created_at.desc(), invoices.c.id.desc())
                              .limit(limit))
    return [invoice_record(row) for row in rows]


async def open_incident_alerts(conn: AsyncConnection) -> list[AlertRow]:
    """The "fired" alert of every incident still open (table ``open_incidents``, shared by
    every instance), newest first."""
    a, o = alert_history.c, open_incidents.c
    rows = await conn.execute(
        select(a.id, a.rule, a.provider, a.kind, a.message, a.created_at, a.details,
               a.deliveries)
        .select_from(alert_history.join(open_incidents, o.alert_id == a.id))
        .order_by(o.fired_at.desc(), a.id.desc()))
    return [AlertRow(**row._asdict()) for row in rows]
