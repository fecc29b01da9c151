"""Helpers for the checkout page's tests: invoices and orders that expire within seconds, and
reading the page's QR code back."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from datetime import UTC, datetime

from lngate.bootstrap import Gateway
from lngate.domain import Product
from lngate.services.invoices import InvoiceRequest, create_invoice
from lngate.services.orders import CreatedOrder, Customer, OrderRequest, create_order
from lngate.store.invoices import InvoiceRecord

SHORT_EXPIRY = 3
"""Seconds: long enough to open the page while it is payable, short enough to wait for."""


async def short_lived_order(gateway: Gateway, *, expiry: int = SHORT_EXPIRY) -> CreatedOrder:
    """A DazPay order of 2,100 sats created through the normal path, expiring in ``expiry`` s
    (the public API refuses expiries under a minute)."""
    request = OrderRequest(product=Product.DAZPAY, customer=Customer(email="alice@example.com"),
                           amount_sat=2100)
    return await create_order(request, dataclasses.replace(gateway.orders, expiry=expiry))


async def short_lived_invoice(gateway: Gateway, *, expiry: int = SHORT_EXPIRY) -> InvoiceRecord:
    """A bare invoice of 21 sats expiring in ``expiry`` s."""
    issued = await create_invoice(
        InvoiceRequest(amount_sat=21, description="Café", expiry=expiry), gateway.invoices)
    return issued.invoice


async def until_expired(invoice: InvoiceRecord) -> None:
    """Sleep until the invoice's expiry time has passed."""
    left = (invoice.expires_at - datetime.now(UTC)).total_seconds()
    await asyncio.sleep(max(left, 0) + 0.1)


def qr_modules(svg: str, border: int = 4) -> set[tuple[int, int]]:
    """The dark modules ``(row, column)`` of a QR code drawn as segno draws it: one path of
    horizontal runs (``M x y.5`` absolute, ``m dx dy`` relative, ``h n`` a run of n modules)."""
    path = re.search(r'<path stroke="[^"]+" d="([^"]+)"', svg)
    assert path is not None, "no QR path in the SVG"
    x = y = 0.0
    dark: set[tuple[int, int]] = set()
    for command, first, second in re.findall(r"([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?",
                                             path.group(1)):
        if command == "M":
            x, y = float(first), float(second)
        elif command == "m":
            x, y = x + float(first), y + float(second)
        else:
            run = int(float(first))
            dark |= {(int(y) - border, int(x) + i - border) for i in range(run)}
            x += run
    return dark
