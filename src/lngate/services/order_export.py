"""Orders as CSV, for a spreadsheet: the back office's list filters, every matching order.

RFC 4180 quoting (the ``csv`` module: a field holding a comma, a quote or a line break is
quoted, quotes doubled), ``\\r\\n`` line ends, UTF-8 with a byte-order mark so spreadsheet
programs read accents right. Formula injection is defused: any cell that starts with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return (a customer's name, an address, a tracking
number, even an order id, which may start with ``-``) gets a leading ``'``, so a spreadsheet
shows it as text instead of running it.

The rows are read in keyset batches and streamed, so an export of any size holds one batch
in memory.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

from lngate.domain import msat_to_sat
from lngate.store import Database
from lngate.store.backoffice import OrderQuery, OrderRow, search_orders

BOM = "\ufeff"
BATCH = 500
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
COLUMNS = (
    "order_id", "created_at", "status", "attention", "product", "plan", "quantity", "amount_sat",
    "customer_email", "customer_name", "address_line1", "address_line2", "postal_code", "city",
    "country", "payment_hash", "paid_at", "paid_late", "cancelled_at", "shipment_status",
    "tracking_number", "carrier", "shipped_at",
)


def defuse(value: str) -> str:
    """``value`` made safe for a spreadsheet cell: a leading ``'`` when it could be a formula."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def _time(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else ""


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def csv_row(row: OrderRow) -> list[str]:
    """The cells of one order, in :data:`COLUMNS` order, defused."""
    order, shipment = row.order, row.shipment
    customer = order.customer
    address = (shipment.address if shipment else customer.get("address")) or {}
    cells = [
        order.id, _time(order.created_at), order.status.value,
        row.attention.value if row.attention else "", order.product.value,
        order.plan.value if order.plan else "", str(order.quantity),
        str(msat_to_sat(order.amount_msat)),
        _text(customer.get("email")), _text(customer.get("name")),
        _text(address.get("line1")), _text(address.get("line2")),
        _text(address.get("postal_code")), _text(address.get("city")),
        _text(address.get("country")),
        order.payment_hash, _time(order.paid_at), "true" if order.paid_late else "false",
        _time(row.cancelled_at), shipment.status.value if shipment else "",
        _text(shipment.tracking_number) if shipment else "",
        _text(shipment.carrier) if shipment else "",
        _time(shipment.shipped_at) if shipment else "",
    ]
    return [defuse(cell) for cell in cells]


def _lines(rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


async def export_orders(db: Database, query: OrderQuery, *,
                        batch: int = BATCH) -> AsyncIterator[str]:
    """The CSV text of every order matching ``query``, newest first, in chunks."""
    yield BOM + _lines([COLUMNS])
    after: tuple[datetime, str] | None = None
    while True:
        async with db.connect() as conn:
            rows = await search_orders(conn, query, after=after, limit=batch)
        if rows:
            yield _lines([csv_row(row) for row in rows])
        if len(rows) < batch:
            return
        after = rows[-1].key
