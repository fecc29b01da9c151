"""Orders: the server-side catalog, creating an order with its invoice, reading one back.

The client names a product and who the customer is; the price always comes from the
:class:`Catalog`, except the free amount of a DazPay payment, which must lie within limits.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from lngate.domain import OrderStatus, Plan, Product, sat_to_msat
from lngate.services.invoices import InvoiceContext, InvoiceRequest, create_invoice
from lngate.store import Database
from lngate.store.invoices import InvoiceRecord, get_invoice
from lngate.store.orders import OrderRecord, get_order, get_shipment, insert_order

PRODUCT_LABELS = {Product.DAZBOX: "DazBox", Product.DAZNODE: "DazNode", Product.DAZPAY: "DazPay"}
PLAN_LABELS = {Plan.MONTHLY: "mensuel", Plan.YEARLY: "annuel"}
MONTHS = {Plan.MONTHLY: 1, Plan.YEARLY: 12}


class PriceError(ValueError):
    """The request cannot be priced (for example a DazPay amount outside the limits)."""

    def __init__(self, message: str, code: str, **extra: Any) -> None:
        super().__init__(message)
        self.message, self.code, self.extra = message, code, extra


@dataclass(frozen=True, slots=True)
class Catalog:
    """Prices in sats (defaults from the original shop), overridable in settings.

    ``max_total_sat`` is the one maximum of every invoice the gateway issues
    (``MAX_INVOICE_SATS``): an order whose total exceeds it is refused, whatever the product.
    """

    dazbox_price_sat: int = 400_000
    dazbox_max_quantity: int = 10
    daznode_monthly_sat: int = 80_000
    daznode_yearly_discount_percent: int = 0
    dazpay_min_sat: int = 1
    dazpay_max_sat: int = 1_000_000
    max_total_sat: int = 1_000_000

    @property
    def dazbox_quantity_limit(self) -> int:
        """The most DazBoxes one order can hold: the configured maximum, or fewer when more
        would cost over ``max_total_sat`` (0 when even one would)."""
        return min(self.dazbox_max_quantity, self.max_total_sat // self.dazbox_price_sat)

    @property
    def dazpay_amount_limit(self) -> int:
        """The largest DazPay amount: the DazPay maximum, at most ``max_total_sat``."""
        return min(self.dazpay_max_sat, self.max_total_sat)

    def daznode_price_sat(self, plan: Plan) -> int:
        """Monthly price, or twelve months less the yearly discount (rounded down to a sat)."""
        if plan is Plan.MONTHLY:
            return self.daznode_monthly_sat
        return self.daznode_monthly_sat * 12 * (100 - self.daznode_yearly_discount_percent) // 100

    def price_sat(self, request: OrderRequest) -> int:
        """The order's total in sats; raises :class:`PriceError` when it cannot be sold so,
        ``amount_too_large`` when the total exceeds the maximum of an invoice."""
        total = self._total_sat(request)
        if total > self.max_total_sat:
            raise PriceError(f"Montant maximum: {self.max_total_sat:,} sats", "amount_too_large",
                             maxAmount=self.max_total_sat)
        return total

    def _total_sat(self, request: OrderRequest) -> int:
        if request.product is Product.DAZBOX:
            if not 1 <= request.quantity <= self.dazbox_max_quantity:
                raise PriceError(f"Quantité entre 1 et {self.dazbox_max_quantity}",
                                 "invalid_quantity", maxQuantity=self.dazbox_max_quantity)
            return self.dazbox_price_sat * request.quantity
        if request.product is Product.DAZNODE:
            return self.daznode_price_sat(request.plan or Plan.MONTHLY)
        amount = request.amount_sat
        if amount is None:
            raise PriceError("Le montant est requis pour DazPay", "missing_amount")
        if amount < self.dazpay_min_sat:
            raise PriceError(f"Montant minimum: {self.dazpay_min_sat:,} sats", "amount_too_small",
                             minAmount=self.dazpay_min_sat)
        if amount > self.dazpay_amount_limit:
            raise PriceError(f"Montant maximum: {self.dazpay_amount_limit:,} sats",
                             "amount_too_large", maxAmount=self.dazpay_amount_limit)
        return amount

    def public(self) -> dict[str, Any]:
        """The catalog as the shop's front end may show it."""
        return {
            "dazbox": {"price": self.dazbox_price_sat,
                       "maxQuantity": self.dazbox_quantity_limit},
            "daznode": {"monthly": self.daznode_price_sat(Plan.MONTHLY),
                        "yearly": self.daznode_price_sat(Plan.YEARLY),
                        "yearlyDiscountPercent": self.daznode_yearly_discount_percent},
            "dazpay": {"minAmount": self.dazpay_min_sat, "maxAmount": self.dazpay_amount_limit},
        }


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address (DazBox shipping)."""

    line1: str
    city: str
    postal_code: str
    country: str
    line2: str | None = None

    def as_dict(self) -> dict[str, str]:
        values = {"line1": self.line1, "line2": self.line2, "city": self.city,
                  "postal_code": self.postal_code, "country": self.country}
        return {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True, slots=True)
class Customer:
    """Who pays; ``address`` for a DazBox, ``pubkey`` (a node key) optionally for a DazNode."""

    email: str
    name: str | None = None
    address: Address | None = None
    pubkey: str | None = None

    def as_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = {"email": self.email}
        if self.name:
            values["name"] = self.name
        if self.address:
            values["address"] = self.address.as_dict()
        if self.pubkey:
            values["pubkey"] = self.pubkey
        return values


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A validated order request (web/order_input.py builds it)."""

    product: Product
    customer: Customer
    plan: Plan | None = None
    quantity: int = 1
    amount_sat: int | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class OrderContext:
    """What creating an order needs besides the request."""

    invoices: InvoiceContext
    catalog: Catalog = field(default_factory=Catalog)
    expiry: int = 3600


@dataclass(frozen=True, slots=True)
class CreatedOrder:
    """A new order and the invoice that pays it."""

    order: OrderRecord
    invoice: InvoiceRecord


def new_order_id() -> str:
    """An unguessable order id (128 random bits, URL-safe)."""
    return secrets.token_urlsafe(16)


def memo_for(request: OrderRequest, order_id: str) -> str:
    """The invoice description the payer's wallet shows."""
    label = PRODUCT_LABELS[request.product]
    if request.product is Product.DAZBOX:
        label = f"{label} x{request.quantity}"
    elif request.product is Product.DAZNODE:
        label = f"{label} {PLAN_LABELS[request.plan or Plan.MONTHLY]}"
    return f"{label} — commande {order_id}"


async def create_order(request: OrderRequest, ctx: OrderContext) -> CreatedOrder:
    """Price the order, issue its invoice and store both in one transaction.

    Raises :class:`PriceError` for a request that cannot be priced, and whatever
    :func:`create_invoice` raises (``NoProviderAvailable``).
    """
    amount_sat = ctx.catalog.price_sat(request)
    order_id = new_order_id()
    plan = (request.plan or Plan.MONTHLY) if request.product is Product.DAZNODE else None
    stored: list[OrderRecord] = []

    async def store_order(conn: AsyncConnection, invoice: InvoiceRecord) -> None:
        order = OrderRecord(
            id=order_id, product=request.product, customer=request.customer.as_dict(),
            plan=plan, quantity=request.quantity, amount_msat=sat_to_msat(amount_sat),
            status=OrderStatus.PENDING, payment_hash=invoice.payment_hash,
            metadata=request.metadata, created_at=invoice.created_at,
        )
        await insert_order(conn, order)
        stored.append(order)

    issued = await create_invoice(
        InvoiceRequest(amount_sat=amount_sat, description=memo_for(request, order_id),
                       expiry=ctx.expiry, metadata={"order_id": order_id}),
        ctx.invoices,
        also_store=store_order,
    )
    return CreatedOrder(stored[0], issued.invoice)


@dataclass(frozen=True, slots=True)
class OrderView:
    """An order with its fulfilment details, as read back."""

    order: OrderRecord
    invoice_expires_at: Any
    shipment: dict[str, Any] | None


async def find_order(db: Database, order_id: str) -> OrderView | None:
    """The order with this id and its fulfilment records, or ``None``."""
    async with db.connect() as conn:
        order = await get_order(conn, order_id)
        if order is None:
            return None
        invoice = await get_invoice(conn, order.payment_hash)
        shipment = await get_shipment(conn, order_id) if order.product is Product.DAZBOX else None
    return OrderView(order, invoice.expires_at if invoice else None, shipment)
