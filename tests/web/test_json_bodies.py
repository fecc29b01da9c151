"""Hostile JSON bodies through the real app: lone surrogates and deep nesting get a clear 400
from every JSON route (create-invoice, orders, the admin POST), never a 500."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.web.payments import order_body

TOKEN = "admin-token-for-tests-0123456789"
JSON = {"Content-Type": "application/json"}
SURROGATE = "\ud800"


def raw(body: Any) -> bytes:
    """The body as a client would send it: JSON escapes for what UTF-8 cannot carry."""
    return json.dumps(body).encode()


def invoice(**changes: Any) -> dict[str, Any]:
    return {"amount": 1000, "description": "Café", **changes}


def with_customer(product: str, **customer: Any) -> dict[str, Any]:
    body = order_body(product)
    body["customer"] = {**body["customer"], **customer}
    return body


def with_address(**address: Any) -> dict[str, Any]:
    body = order_body("dazbox")
    body["customer"]["address"] = {**body["customer"]["address"], **address}
    return body


SURROGATES: list[tuple[str, str, dict[str, Any], str]] = [
    ("description", "/api/create-invoice", invoice(description=f"Café {SURROGATE}"),
     "description"),
    ("metadata value", "/api/create-invoice", invoice(metadata={"ref": f"a{SURROGATE}"}),
     "metadata.ref"),
    ("metadata key", "/api/create-invoice", invoice(metadata={f"k{SURROGATE}": "v"}),
     "metadata (une clé)"),
    ("nested metadata value", "/api/create-invoice",
     invoice(metadata={"tags": ["ok", {"x": SURROGATE}]}), "metadata.tags[1].x"),
    ("customer name", "/api/orders", with_customer("dazpay", name=f"Alice {SURROGATE}"),
     "customer.name"),
    ("customer email", "/api/orders",
     with_customer("dazpay", email=f"alice{SURROGATE}@example.com"), "customer.email"),
    ("address line", "/api/orders", with_address(line1=f"12 rue {SURROGATE}"),
     "customer.address.line1"),
    ("order metadata key", "/api/orders", order_body("dazpay", metadata={SURROGATE: 1}),
     "metadata (une clé)"),
    ("product", "/api/orders", order_body(product=SURROGATE), "product"),
    ("top-level key", "/api/orders", {**order_body("dazpay"), SURROGATE: 1}, "le corps (une clé)"),
]


@pytest.mark.parametrize(("case", "path", "body", "field"), SURROGATES,
                         ids=[c[0] for c in SURROGATES])
async def test_lone_surrogates_are_a_clear_400(client: httpx.AsyncClient, case: str, path: str,
                                               body: dict[str, Any], field: str) -> None:
    """A lone surrogate anywhere in a body is a 400 in French naming the place, not a 500."""
    response = await client.post(path, content=raw(body), headers=JSON)
    assert response.status_code == 400, (case, response.text[:300])
    data = response.json()
    assert data["code"] == "invalid_unicode" and data["field"] == field
    assert data["error"].startswith(f"Texte invalide dans {field} : caractère Unicode isolé")


@pytest.mark.parametrize("body", [
    {"action": f"force_health_check{SURROGATE}"},
    {"action": SURROGATE},
    {"action": "reset_metrics", "provider": SURROGATE},
    {"action": "simulate_payment", "data": {"amount": 10, "note": SURROGATE}},
], ids=["action", "bare action", "provider", "data"])
async def test_admin_post_with_a_lone_surrogate_is_a_clear_400(
    gateway_factory: Callable[..., Any], body: dict[str, Any]
) -> None:
    """The admin POST refuses a lone surrogate in its action, provider or data with a 400."""
    async with gateway_factory(admin_token=TOKEN) as http:
        response = await http.post("/api/admin/lightning-monitor", content=raw(body),
                                   headers={**JSON, "Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 400, response.text[:300]
    assert response.json()["code"] == "invalid_unicode"


async def test_a_surrogate_pair_is_a_character_and_is_accepted(client: httpx.AsyncClient) -> None:
    """An escaped surrogate pair is one real character (an emoji) and is accepted as such."""
    response = await client.post("/api/create-invoice", headers=JSON,
                                 content=b'{"amount": 1000, "description": "Merci \\ud83d\\ude00"}')
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(("path", "make"), [
    ("/api/create-invoice", lambda nested: invoice(metadata={"a": nested})),
    ("/api/orders", lambda nested: order_body("dazpay", metadata={"a": nested})),
], ids=["create-invoice", "orders"])
@pytest.mark.parametrize("depth", [33, 500, 920])
async def test_deeply_nested_bodies_are_a_clear_400(client: httpx.AsyncClient, path: str,
                                                    make: Callable[[Any], Any],
                                                    depth: int) -> None:
    """A body nested deeper than 32 levels is a 400; one nested almost as deep as the parser
    allows used to pass it and then break the code storing it (a 500)."""
    nested: Any = []
    for _ in range(depth - 3):
        nested = [nested]
    response = await client.post(path, content=raw(make(nested)), headers=JSON)
    assert response.status_code == 400, response.text[:300]
    assert response.json()["code"] == "json_too_deep"


async def test_metadata_nested_32_levels_is_accepted(client: httpx.AsyncClient) -> None:
    """Exactly 32 levels, the body itself included, is still accepted."""
    nested: Any = []
    for _ in range(29):
        nested = [nested]
    response = await client.post("/api/create-invoice", content=raw(invoice(metadata={"a": nested})),
                                 headers=JSON)
    assert response.status_code == 200, response.text[:300]


@pytest.mark.parametrize(("path", "content"), [
    ("/api/create-invoice", b'{"amount": 1000, "description": "x", "metadata": {"a": 1e400}}'),
    ("/api/orders", b'{"product": "dazpay", "amount": 21, "customer": {"email": '
                    b'"alice@example.com"}, "metadata": {"a": [-1e999]}}'),
], ids=["create-invoice", "orders"])
async def test_numbers_too_large_for_a_float_are_a_clear_400(
    gateway_factory: Callable[..., Any], database_url: str, path: str, content: bytes
) -> None:
    """A number that parses to infinity (1e400) is invalid JSON, on SQLite and PostgreSQL
    (where storing the "Infinity" it became was a 500)."""
    async with gateway_factory(database_url=database_url) as http:
        response = await http.post(path, content=content, headers=JSON)
    assert response.status_code == 400, response.text[:300]
    assert response.json() == {"error": "JSON invalide", "code": "invalid_json"}
