"""POST /api/orders and GET /api/orders/{id}: catalog prices, hostile inputs, paid status."""

from __future__ import annotations

import json
from typing import Any

import bolt11
import httpx
import pytest

from lngate.services.orders import find_order
from tests.web.payments import ADDRESS, dump, order_body

CUSTOMER = {"email": "alice@example.com"}


@pytest.mark.parametrize(("body", "sats", "memo"), [
    (order_body("dazbox"), 400_000, "DazBox x1"),
    (order_body("dazbox", quantity=2), 800_000, "DazBox x2"),
    (order_body("daznode"), 80_000, "DazNode mensuel"),
    (order_body("daznode", plan="yearly"), 960_000, "DazNode annuel"),
    (order_body("dazpay", amount=21), 21, "DazPay"),
])
async def test_orders_are_priced_by_the_catalog(client: httpx.AsyncClient, body: dict[str, Any],
                                                sats: int, memo: str) -> None:
    """Each product gets its catalog price, on the order and on its invoice."""
    response = await client.post("/api/orders", json=body)
    assert response.status_code == 201, response.text
    data = response.json()
    order, invoice = data["order"], data["invoice"]
    assert order["status"] == "pending" and order["product"] == body["product"]
    assert order["amount"] == invoice["amount"] == sats
    assert order["paymentHash"] == invoice["payment_hash"] == invoice["id"]
    assert data["paymentUrl"] == f"lightning:{invoice['payment_request']}"
    assert data["provider"] == "test" and invoice["isTest"] is True
    decoded = bolt11.decode(invoice["payment_request"])
    assert decoded.amount_msat == sats * 1000
    assert decoded.description == f"{memo} — commande {order['id']}"
    fetched = await client.get(f"/api/orders/{order['id']}")
    assert fetched.status_code == 200
    assert fetched.json()["order"]["status"] == "pending"
    assert "customer" not in fetched.json()["order"]  # the id alone does not reveal the address


async def test_catalog_prices_come_from_settings(gateway_factory) -> None:  # type: ignore[no-untyped-def]
    """Catalog overrides in settings change the prices charged and shown."""
    async with gateway_factory(dazbox_price_sats=1_000, daznode_monthly_sats=100,
                               daznode_yearly_discount_percent=25, max_invoice_sats=5_000) as http:
        box = await http.post("/api/orders", json=order_body("dazbox", quantity=3))
        node = await http.post("/api/orders", json=order_body("daznode", plan="yearly"))
        pay = await http.post("/api/orders", json=order_body("dazpay", amount=5_001))
        catalog = (await http.get("/api/catalog")).json()["catalog"]
    assert box.json()["order"]["amount"] == 3_000
    assert node.json()["order"]["amount"] == 900
    assert pay.status_code == 400 and pay.json()["code"] == "amount_too_large"
    assert catalog["dazpay"]["maxAmount"] == 5_000 and catalog["daznode"]["yearly"] == 900


async def test_paid_order_reads_paid_with_its_fulfilment(client: httpx.AsyncClient) -> None:
    """Once its invoice is settled (here by check-invoice) the order reads paid, shipment made."""
    created = (await client.post("/api/orders", json=order_body("dazbox"))).json()
    payment_hash = created["invoice"]["payment_hash"]
    assert (await client.post(f"/api/demo/pay/{payment_hash}")).status_code == 200
    assert (await client.get("/api/check-invoice", params={"id": payment_hash})).json() == \
        {"status": "settled"}
    order = (await client.get(f"/api/orders/{created['order']['id']}")).json()["order"]
    assert order["status"] == "paid" and order["paidAt"] and order["paidLate"] is False
    assert order["fulfilment"]["shipment"]["status"] == "to_ship"


async def test_unknown_or_malformed_order_ids_are_404(client: httpx.AsyncClient) -> None:
    """An order id that does not exist, or cannot, is 404 with a French message."""
    for order_id in ("A" * 22, "short", "x" * 40, "bad!chars%20here__"):
        response = await client.get(f"/api/orders/{order_id}")
        assert response.status_code == 404, order_id
        assert response.json()["error"] == "Commande non trouvée"
    assert (await client.get("/api/orders/..%2F..%2Fetc")).status_code == 404


def with_customer(product: str, **customer: Any) -> dict[str, Any]:
    body = order_body(product)
    body["customer"] = {**body["customer"], **customer}
    return body


HOSTILE: list[tuple[str, Any, str]] = [
    ("array body", [order_body()], "invalid_body"),
    ("string body", "dazbox", "invalid_body"),
    ("no product", {"customer": CUSTOMER}, "missing_product"),
    ("unknown product", {"product": "dazcar", "customer": CUSTOMER}, "invalid_product"),
    ("product not a string", {"product": ["dazbox"], "customer": CUSTOMER}, "invalid_product"),
    ("client-set price", order_body("dazbox", price=1), "price_not_allowed"),
    ("client-set msat", order_body("daznode", amount_msat=1), "price_not_allowed"),
    ("amount on dazbox", order_body("dazbox", amount=1), "price_not_allowed"),
    ("amount on daznode", order_body("daznode", amount=1), "price_not_allowed"),
    ("unknown field", order_body("dazbox", coupon="FREE"), "unknown_field"),
    ("no customer", {"product": "dazpay", "amount": 5}, "missing_customer"),
    ("customer not an object", {"product": "dazpay", "amount": 5, "customer": "a@b.c"},
     "invalid_customer"),
    ("no email", {"product": "dazpay", "amount": 5, "customer": {"name": "A"}}, "missing_email"),
    ("blank email", with_customer("dazpay", email="  "), "missing_email"),
    ("email not a string", with_customer("dazpay", email=["a@b.c"]), "invalid_email"),
    ("email without at", with_customer("dazpay", email="alice.example.com"), "invalid_email"),
    ("email header injection", with_customer("dazpay", email="a@b.c\r\nBcc: e@evil.test"),
     "invalid_email"),
    ("two recipients", with_customer("dazpay", email="a@b.c,e@evil.test"), "invalid_email"),
    ("email too long", with_customer("dazpay", email="a" * 250 + "@b.co"), "invalid_email"),
    ("email encoded word (second recipient)",
     with_customer("dazpay", email="=?utf-8?q?attacker=40evil=2Ecom=2C?=@example.com"),
     "invalid_email"),
    ("email encoded word hiding a line break",
     with_customer("dazpay", email="=?utf-8?q?a=0D=0ABcc:x@evil.com?=@example.com"),
     "invalid_email"),
    ("email with NUL", with_customer("dazpay", email="ali\x00ce@example.com"), "invalid_email"),
    ("email with DEL", with_customer("dazpay", email="ali\x7fce@example.com"), "invalid_email"),
    ("email on localhost", with_customer("dazpay", email="alice@localhost"), "invalid_email"),
    ("email on a .test domain", with_customer("dazpay", email="alice@shop.test"),
     "invalid_email"),
    ("email with a display name", with_customer("dazpay", email="Alice <alice@example.com>"),
     "invalid_email"),
    ("email quoted local part", with_customer("dazpay", email='"a b"@example.com'),
     "invalid_email"),
    ("name encoded word", with_customer("dazpay", name="=?utf-8?q?a=0D=0ABcc:x@evil.com?="),
     "invalid_field"),
    ("address encoded word",
     with_customer("dazbox", address={**ADDRESS, "line1": "=?UTF-8?B?QmNjOiB4QGV2aWwuY29t?="}),
     "invalid_field"),
    ("unknown customer field", with_customer("dazpay", role="admin"), "unknown_field"),
    ("name too long", with_customer("dazpay", name="A" * 101), "field_too_long"),
    ("name not text", with_customer("dazpay", name={"first": "A"}), "invalid_field"),
    ("dazbox without address", with_customer("dazbox", address=None), "missing_address"),
    ("address not an object", with_customer("dazbox", address="12 rue"), "invalid_address"),
    ("address without city", with_customer("dazbox", address={**ADDRESS, "city": ""}),
     "missing_field"),
    ("address unknown field", with_customer("dazbox", address={**ADDRESS, "floor": 3}),
     "unknown_field"),
    ("address line too long", with_customer("dazbox", address={**ADDRESS, "line1": "x" * 201}),
     "field_too_long"),
    ("address on daznode", with_customer("daznode", address=ADDRESS), "unexpected_field"),
    ("pubkey on dazbox", with_customer("dazbox", pubkey="02" + "11" * 32), "unexpected_field"),
    ("pubkey not hex", with_customer("daznode", pubkey="02" + "zz" * 32), "invalid_pubkey"),
    ("pubkey wrong prefix", with_customer("daznode", pubkey="04" + "11" * 32), "invalid_pubkey"),
    ("plan on dazbox", order_body("dazbox", plan="yearly"), "unexpected_field"),
    ("unknown plan", order_body("daznode", plan="lifetime"), "invalid_plan"),
    ("plan not a string", order_body("daznode", plan=12), "invalid_plan"),
    ("quantity zero", order_body("dazbox", quantity=0), "invalid_quantity"),
    ("quantity negative", order_body("dazbox", quantity=-1), "invalid_quantity"),
    ("quantity string", order_body("dazbox", quantity="2"), "invalid_quantity"),
    ("quantity bool", order_body("dazbox", quantity=True), "invalid_quantity"),
    ("quantity float", order_body("dazbox", quantity=1.5), "invalid_quantity"),
    ("quantity over max", order_body("dazbox", quantity=11), "invalid_quantity"),
    ("dazbox total over the invoice maximum", order_body("dazbox", quantity=3),
     "amount_too_large"),
    ("quantity on dazpay", order_body("dazpay", quantity=2), "unexpected_field"),
    ("dazpay without amount", {"product": "dazpay", "customer": CUSTOMER}, "missing_amount"),
    ("dazpay amount zero", order_body("dazpay", amount=0), "invalid_amount"),
    ("dazpay amount negative", order_body("dazpay", amount=-5), "invalid_amount"),
    ("dazpay amount float", order_body("dazpay", amount=2.5), "invalid_amount"),
    ("dazpay amount string", order_body("dazpay", amount="100"), "invalid_amount"),
    ("dazpay amount bool", order_body("dazpay", amount=True), "invalid_amount"),
    ("dazpay amount over max", order_body("dazpay", amount=1_000_001), "amount_too_large"),
    ("metadata not an object", order_body("dazpay", metadata=[1]), "invalid_metadata"),
    ("metadata too large", order_body("dazpay", metadata={"x": "y" * 5000}),
     "metadata_too_large"),
]


@pytest.mark.parametrize(("case", "body", "code"), HOSTILE, ids=[c[0] for c in HOSTILE])
async def test_bad_inputs_get_a_clear_400(client: httpx.AsyncClient, case: str, body: Any,
                                          code: str) -> None:
    """Every bad input is a 400 with a French message and a machine code; no order is made."""
    response = await client.post("/api/orders", json=body)
    assert response.status_code == 400, (case, response.text)
    data = response.json()
    assert data["code"] == code, (case, data)
    assert isinstance(data["error"], str) and data["error"]


@pytest.mark.parametrize(("content", "headers", "status"), [
    (b"{not json", {"Content-Type": "application/json"}, 400),
    (b'{"product": NaN}', {"Content-Type": "application/json"}, 400),
    (json.dumps(order_body()).encode(), {"Content-Type": "text/plain"}, 415),
    (b"{" + b" " * 70_000 + b"}", {"Content-Type": "application/json"}, 413),
])
async def test_unreadable_bodies_are_4xx(client: httpx.AsyncClient, content: bytes,
                                         headers: dict[str, str], status: int) -> None:
    """Malformed JSON, a wrong content type or an oversized body is a 4xx, never a 500."""
    response = await client.post("/api/orders", content=content, headers=headers)
    assert response.status_code == status
    assert response.json()["code"]


async def test_customer_text_is_cleaned(client: httpx.AsyncClient) -> None:
    """Control characters and runs of whitespace in customer text are removed before storing."""
    body = with_customer("dazbox", name="  Alice\x00\x1b[31m \n Martin ")
    created = (await client.post("/api/orders", json=body)).json()
    gateway = client.app.state.gateway  # type: ignore[attr-defined]
    view = await find_order(gateway.db, created["order"]["id"])
    assert view is not None and view.order.customer["name"] == "Alice[31m Martin"


async def test_customer_email_is_stored_normalized(client: httpx.AsyncClient) -> None:
    """The order keeps the validated, normalized address: the one its emails will go to."""
    body = with_customer("dazpay", email=" Alice@Example.COM ")
    created = (await client.post("/api/orders", json=body)).json()
    gateway = client.app.state.gateway  # type: ignore[attr-defined]
    view = await find_order(gateway.db, created["order"]["id"])
    assert view is not None and view.order.customer["email"] == "Alice@example.com"


async def test_an_order_over_the_invoice_maximum_is_refused(client: httpx.AsyncClient) -> None:
    """Ten DazBoxes (4,000,000 sats) are refused with the create-invoice message and the
    maximum; no order and no invoice are made."""
    response = await client.post("/api/orders", json=order_body("dazbox", quantity=10))
    assert response.status_code == 400
    assert response.json() == {"error": "Montant maximum: 1,000,000 sats",
                               "code": "amount_too_large", "maxAmount": 1_000_000}
    tables = await dump(client.app.state.gateway.db)  # type: ignore[attr-defined]
    assert tables["orders"] == [] and tables["invoices"] == []


async def test_the_order_maximum_follows_max_invoice_sats(gateway_factory) -> None:  # type: ignore[no-untyped-def]
    """With MAX_INVOICE_SATS=500,000 a yearly DazNode (960,000) and two DazBoxes are refused
    with that figure, one DazBox is sold, and the catalog says so."""
    async with gateway_factory(max_invoice_sats=500_000) as http:
        node = await http.post("/api/orders", json=order_body("daznode", plan="yearly"))
        boxes = await http.post("/api/orders", json=order_body("dazbox", quantity=2))
        box = await http.post("/api/orders", json=order_body("dazbox"))
        catalog = (await http.get("/api/catalog")).json()["catalog"]
    for refused in (node, boxes):
        assert refused.status_code == 400
        assert refused.json() == {"error": "Montant maximum: 500,000 sats",
                                  "code": "amount_too_large", "maxAmount": 500_000}
    assert box.status_code == 201 and box.json()["order"]["amount"] == 400_000
    assert catalog["dazbox"]["maxQuantity"] == 1 and catalog["dazpay"]["maxAmount"] == 500_000


async def test_catalog_says_the_dazbox_quantity_that_fits(gateway_factory) -> None:  # type: ignore[no-untyped-def]
    """The public maxQuantity is the configured one, or fewer when more would be over
    MAX_INVOICE_SATS; that quantity is sold, one more is refused."""
    async with gateway_factory() as http:
        default = (await http.get("/api/catalog")).json()["catalog"]["dazbox"]["maxQuantity"]
        fits = await http.post("/api/orders", json=order_body("dazbox", quantity=default))
        over = await http.post("/api/orders", json=order_body("dazbox", quantity=default + 1))
    async with gateway_factory(max_invoice_sats=10_000_000, dazbox_max_quantity=4) as http:
        configured = (await http.get("/api/catalog")).json()["catalog"]["dazbox"]["maxQuantity"]
    assert default == 2 and fits.status_code == 201 and over.status_code == 400
    assert configured == 4
