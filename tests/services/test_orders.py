"""Orders: catalog prices, order creation with its invoice in one transaction, calendar months."""

from __future__ import annotations

from datetime import UTC, datetime

import bolt11
import pytest

from lngate.domain import OrderStatus, Plan, Product
from lngate.services.fulfilment import add_months
from lngate.services.orders import Catalog, PriceError
from tests.services.conftest import Kit, request_for


@pytest.mark.parametrize(("product", "overrides", "sats"), [
    (Product.DAZBOX, {}, 400_000),
    (Product.DAZBOX, {"quantity": 2}, 800_000),
    (Product.DAZNODE, {}, 80_000),
    (Product.DAZNODE, {"plan": Plan.MONTHLY}, 80_000),
    (Product.DAZNODE, {"plan": Plan.YEARLY}, 960_000),
    (Product.DAZPAY, {"amount_sat": 12_345}, 12_345),
])
def test_default_catalog_prices(product: Product, overrides: dict, sats: int) -> None:
    """Each product's price comes from the catalog (the original shop's prices by default)."""
    assert Catalog().price_sat(request_for(product, **overrides)) == sats


def test_yearly_discount_applies_to_twelve_months() -> None:
    """A yearly discount takes that percentage off twelve monthly prices, rounded down."""
    catalog = Catalog(daznode_monthly_sat=80_001, daznode_yearly_discount_percent=15)
    assert catalog.price_sat(request_for(Product.DAZNODE, plan=Plan.YEARLY)) == 816_010


@pytest.mark.parametrize(("product", "overrides", "code"), [
    (Product.DAZBOX, {"quantity": 0}, "invalid_quantity"),
    (Product.DAZBOX, {"quantity": 11}, "invalid_quantity"),
    (Product.DAZPAY, {"amount_sat": None}, "missing_amount"),
    (Product.DAZPAY, {"amount_sat": 9}, "amount_too_small"),
    (Product.DAZPAY, {"amount_sat": 1_000_001}, "amount_too_large"),
])
def test_catalog_refuses_out_of_limits(product: Product, overrides: dict, code: str) -> None:
    """Quantities and DazPay amounts outside the catalog's limits cannot be priced."""
    with pytest.raises(PriceError) as info:
        Catalog(dazpay_min_sat=10).price_sat(request_for(product, **overrides))
    assert info.value.code == code


@pytest.mark.parametrize(("catalog", "product", "overrides"), [
    (Catalog(), Product.DAZBOX, {"quantity": 3}),
    (Catalog(), Product.DAZBOX, {"quantity": 10}),
    (Catalog(daznode_monthly_sat=90_000), Product.DAZNODE, {"plan": Plan.YEARLY}),
    (Catalog(daznode_monthly_sat=1_000_001), Product.DAZNODE, {}),
    (Catalog(dazpay_max_sat=5_000_000), Product.DAZPAY, {"amount_sat": 1_000_001}),
])
def test_no_order_total_exceeds_the_invoice_maximum(catalog: Catalog, product: Product,
                                                    overrides: dict) -> None:
    """An order whose total is over max_total_sat is refused with the create-invoice message,
    whatever the product."""
    with pytest.raises(PriceError) as info:
        catalog.price_sat(request_for(product, **overrides))
    assert (info.value.code, info.value.message) == \
        ("amount_too_large", "Montant maximum: 1,000,000 sats")
    assert info.value.extra == {"maxAmount": 1_000_000}


def test_the_maximum_follows_max_total_sat() -> None:
    """A larger maximum admits larger orders; the message quotes the maximum in force."""
    catalog = Catalog(max_total_sat=4_000_000, dazpay_max_sat=4_000_000)
    assert catalog.price_sat(request_for(Product.DAZBOX, quantity=10)) == 4_000_000
    with pytest.raises(PriceError) as info:
        Catalog(max_total_sat=500_000).price_sat(request_for(Product.DAZBOX, quantity=2))
    assert info.value.message == "Montant maximum: 500,000 sats"
    assert info.value.extra == {"maxAmount": 500_000}


@pytest.mark.parametrize(("catalog", "max_quantity", "dazpay_max"), [
    (Catalog(), 2, 1_000_000),
    (Catalog(max_total_sat=10_000_000, dazpay_max_sat=10_000_000), 10, 10_000_000),
    (Catalog(dazbox_price_sat=1_000, dazbox_max_quantity=7), 7, 1_000_000),
    (Catalog(dazbox_price_sat=2_000_000), 0, 1_000_000),
    (Catalog(dazpay_max_sat=5_000_000), 2, 1_000_000),
])
def test_public_catalog_shows_the_effective_limits(catalog: Catalog, max_quantity: int,
                                                   dazpay_max: int) -> None:
    """The public catalog's maxQuantity and DazPay maxAmount are what an order can really
    get: never more than what fits under the invoice maximum."""
    public = catalog.public()
    assert public["dazbox"]["maxQuantity"] == max_quantity
    assert public["dazpay"]["maxAmount"] == dazpay_max


async def test_order_and_invoice_are_stored_together(kit: Kit) -> None:
    """A created order is pending, priced by the catalog, and paid by its own invoice."""
    created = await kit.order(Product.DAZBOX, quantity=2)
    order, invoice = created.order, created.invoice
    assert order.status is OrderStatus.PENDING and order.payment_hash == invoice.payment_hash
    assert order.amount_msat == invoice.amount_msat == 800_000_000
    decoded = bolt11.decode(invoice.bolt11)
    assert decoded.description == f"DazBox x2 — commande {order.id}"
    assert invoice.metadata == {"order_id": order.id}
    snap = await kit.snapshot(order.id)
    assert snap["order"] == order and snap["invoice"] == invoice


async def test_order_ids_are_unguessable(kit: Kit) -> None:
    """Order ids are 22 URL-safe characters (128 random bits), all different."""
    ids = {(await kit.order(Product.DAZPAY)).order.id for _ in range(5)}
    assert len(ids) == 5
    assert all(len(i) == 22 and i.replace("-", "").replace("_", "").isalnum() for i in ids)


@pytest.mark.parametrize(("start", "months", "end"), [
    ((2027, 1, 31), 1, (2027, 2, 28)),
    ((2028, 1, 31), 1, (2028, 2, 29)),
    ((2027, 12, 15), 1, (2028, 1, 15)),
    ((2027, 3, 31), 12, (2028, 3, 31)),
    ((2028, 2, 29), 12, (2029, 2, 28)),
])
def test_add_months_clamps_to_the_month_end(start: tuple, months: int, end: tuple) -> None:
    """A month later keeps the day when it exists and otherwise takes the month's last day."""
    moment = datetime(*start, 10, 30, tzinfo=UTC)
    assert add_months(moment, months) == datetime(*end, 10, 30, tzinfo=UTC)
