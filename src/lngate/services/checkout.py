"""What the hosted checkout page needs: an invoice with its order and state, and a new invoice
for an order whose invoice expired unpaid ("new invoice").

:func:`find_checkout` reads an invoice (or an order's current invoice) with the order it pays.
A pending invoice past its expiry is first checked at its provider (the ``check-invoice``
doorbell), so the page never offers a new invoice for one that was paid, nor shows "pending"
for one that can no longer be paid.

:func:`renew_order_invoice` keeps the order's id, product and price and issues a fresh invoice
through the normal create path (failover, validation, storage) with the same description; in
the transaction that stores it, the order moves from expired back to pending, paid by the new
invoice. The move is conditional, so two clicks at once give one renewal; the loser's invoice
is never stored.

A payment of the replaced invoice that its provider would still accept after its expiry
settles that invoice (the money is recorded, flagged late) but no longer fulfils the order,
which is then paid by the new invoice only: renewal waits for the provider to confirm the old
invoice unpaid past its expiry, which makes this rare.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from lngate.domain import InvoiceState, OrderStatus, msat_to_sat
from lngate.services.invoices import InvoiceRequest, create_invoice
from lngate.services.orders import OrderContext
from lngate.services.settlement import Settler
from lngate.store import Database
from lngate.store.invoices import InvoiceRecord, get_invoice
from lngate.store.orders import (
    OrderRecord,
    get_order,
    get_order_by_payment_hash,
    replace_order_invoice,
)


@dataclass(frozen=True, slots=True)
class Checkout:
    """An invoice as its checkout page shows it."""

    invoice: InvoiceRecord
    order: OrderRecord | None
    """The order this invoice pays; ``None`` for a bare invoice (or one an order replaced)."""
    state: InvoiceState


async def find_checkout(
    db: Database, settler: Settler, *, payment_hash: str | None = None,
    order_id: str | None = None,
) -> Checkout | None:
    """The invoice with ``payment_hash``, or the current invoice of the order ``order_id``,
    with its order and state; ``None`` when there is none."""
    async with db.connect() as conn:
        if order_id is not None:
            order = await get_order(conn, order_id)
            invoice = await get_invoice(conn, order.payment_hash) if order else None
        else:
            invoice = await get_invoice(conn, (payment_hash or "").lower())
            order = (await get_order_by_payment_hash(conn, invoice.payment_hash)
                     if invoice else None)
    if invoice is None:
        return None
    state = invoice.state
    if state is InvoiceState.PENDING and settler.clock() >= invoice.expires_at:
        state = await settler.check(invoice.payment_hash) or state
    return Checkout(invoice, order, state)


class RenewalRefusal(enum.StrEnum):
    """Why an order's invoice was not renewed."""

    NOT_AN_ORDER = "not_an_order"
    """No order is paid by this invoice (unknown, a bare invoice, or already replaced)."""
    PAID = "paid"
    STILL_PENDING = "still_pending"
    """Not expired yet, or its provider could not confirm it unpaid."""
    CHANGED = "changed"
    """A concurrent renewal won."""


class RenewalRefused(Exception):
    """The order's invoice cannot be renewed; ``reason`` says why."""

    def __init__(self, reason: RenewalRefusal) -> None:
        super().__init__(reason.value)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RenewedInvoice:
    """The order's new invoice."""

    order_id: str
    invoice: InvoiceRecord


class _OrderChanged(Exception):
    """Raised inside the storing transaction to roll the new invoice back."""


async def renew_order_invoice(
    payment_hash: str, *, ctx: OrderContext, settler: Settler
) -> RenewedInvoice:
    """Issue a new invoice for the order paid by the expired invoice ``payment_hash``.

    Raises :class:`RenewalRefused` when there is no such order or it cannot be renewed, and
    whatever :func:`~lngate.services.invoices.create_invoice` raises (``NoProviderAvailable``).
    """
    payment_hash = payment_hash.lower()
    async with ctx.invoices.db.connect() as conn:
        order = await get_order_by_payment_hash(conn, payment_hash)
        old = await get_invoice(conn, payment_hash)
    if order is None or old is None:
        raise RenewalRefused(RenewalRefusal.NOT_AN_ORDER)
    if order.status is OrderStatus.PENDING:
        state = await settler.check(payment_hash)
        if state is InvoiceState.PAID:
            raise RenewalRefused(RenewalRefusal.PAID)
        if state is not InvoiceState.EXPIRED:
            raise RenewalRefused(RenewalRefusal.STILL_PENDING)
    elif order.status is OrderStatus.PAID:
        raise RenewalRefused(RenewalRefusal.PAID)

    async def reattach_order(conn: AsyncConnection, new: InvoiceRecord) -> None:
        if not await replace_order_invoice(conn, order.id, old_payment_hash=payment_hash,
                                           new_payment_hash=new.payment_hash):
            raise _OrderChanged

    request = InvoiceRequest(
        amount_sat=msat_to_sat(order.amount_msat), description=old.description,
        expiry=ctx.expiry, metadata={"order_id": order.id, "replaces": payment_hash},
    )
    try:
        issued = await create_invoice(request, ctx.invoices, also_store=reattach_order)
    except _OrderChanged:
        raise RenewalRefused(RenewalRefusal.CHANGED) from None
    return RenewedInvoice(order.id, issued.invoice)
