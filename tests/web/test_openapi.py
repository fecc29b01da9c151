"""The OpenAPI document describes every public and admin endpoint usefully: request bodies,
the error model, and examples the live app accepts."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from lngate.web.schemas import CreateInvoiceRequest, CreateOrderRequest

ERROR_REF = "#/components/schemas/Error"
OPERATIONS = {
    ("post", "/api/create-invoice"): "CreateInvoiceRequest",
    ("get", "/api/check-invoice"): None,
    ("get", "/api/invoices/{payment_hash}/events"): None,
    ("post", "/api/orders"): "CreateOrderRequest",
    ("get", "/api/orders/{order_id}"): None,
    ("get", "/api/catalog"): None,
    ("post", "/api/webhook/lnbits-payment"): "LnbitsPayment",
    ("get", "/api/admin/lightning-monitor"): None,
    ("post", "/api/admin/lightning-monitor"): "MonitorActionRequest",
    ("post", "/api/demo/pay/{payment_hash}"): None,
}
"""Every public and admin operation (demo mode), with the model of its JSON body if any."""


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    """The demo gateway's /openapi.json."""
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Every operation of the document by (method, path)."""
    return {(method, path): op for path, item in document["paths"].items()
            for method, op in item.items()}


def resolve(document: dict[str, Any], node: Any) -> Any:
    """``node`` with a top-level ``$ref`` followed into the document."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def refs(node: Any) -> list[str]:
    """Every ``$ref`` inside ``node``."""
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values()
                                                              for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


async def test_every_endpoint_is_listed_with_its_request_body(document: dict[str, Any]) -> None:
    """Every public and admin operation is documented, with a JSON request body schema
    exactly where the route reads a body."""
    found = operations(document)
    assert set(OPERATIONS) <= set(found), set(OPERATIONS) - set(found)
    for key, model in OPERATIONS.items():
        body = found[key].get("requestBody")
        if model is None:
            assert body is None, key
        else:
            schema = body["content"]["application/json"]["schema"]
            assert schema == {"$ref": f"#/components/schemas/{model}"}, key
            assert resolve(document, schema).get("title") == model


async def test_every_reference_resolves(document: dict[str, Any]) -> None:
    """Every ``$ref`` in the document (nested request models included) names a component."""
    schemas = document["components"]["schemas"]
    for ref in refs(document):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    assert {"ShippingAddress", "DazBoxOrder", "SimulationData", "InvoiceEvent"} <= set(schemas)
    assert "HTTPValidationError" not in schemas


async def test_every_error_answer_references_the_error_model(document: dict[str, Any]) -> None:
    """Each documented 4xx/5xx answer is an Error body, and each operation documents its
    failures."""
    for key in OPERATIONS:
        answers = operations(document)[key]["responses"]
        errors = {status: answer for status, answer in answers.items() if int(status) >= 400}
        assert errors or key == ("get", "/api/catalog"), key
        for status, answer in errors.items():
            assert answer["content"]["application/json"]["schema"] == {"$ref": ERROR_REF}, (
                key, status)
    assert "422" not in operations(document)[("get", "/api/orders/{order_id}")]["responses"]


async def test_success_answers_have_their_models(document: dict[str, Any]) -> None:
    """Each operation's success answer names a model (an event stream for the SSE route)."""
    for (method, path), op in operations(document).items():
        if (method, path) not in OPERATIONS:
            continue
        status = "201" if path == "/api/orders" else "200"
        content = op["responses"][status]["content"]
        if path.endswith("/events"):
            assert "itemSchema" in content["text/event-stream"]
        else:
            assert content["application/json"]["schema"]["$ref"].startswith(
                "#/components/schemas/"), path


async def test_admin_operations_declare_the_bearer_scheme(document: dict[str, Any]) -> None:
    """The admin operations require the bearer scheme that /docs "Authorize" fills in."""
    scheme = document["components"]["securitySchemes"]["adminBearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for method in ("get", "post"):
        op = operations(document)[(method, "/api/admin/lightning-monitor")]
        assert op["security"] == [{"adminBearer": []}]


def build_instance(document: dict[str, Any], schema: Any) -> Any:
    """A minimal instance of ``schema``: required properties only, first choices, smallest
    values (``oneOf`` gives the first variant; see :func:`variants`)."""
    schema = resolve(document, schema)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for choice in ("oneOf", "anyOf"):
        if choice in schema:
            options = [o for o in schema[choice] if o.get("type") != "null"]
            return build_instance(document, options[0])
    kind = schema.get("type")
    if kind == "object":
        return {name: build_instance(document, schema["properties"][name])
                for name in schema.get("required", [])}
    if kind == "integer":
        return schema.get("minimum", 1)
    if kind == "string":
        if schema.get("format") == "email":
            return "alice@example.com"
        return "x" * max(1, schema.get("minLength", 1))
    raise AssertionError(f"no instance for {schema}")


def variants(document: dict[str, Any], name: str) -> list[Any]:
    """An instance of each ``oneOf`` variant of a component (or of the component itself)."""
    schema = document["components"]["schemas"][name]
    return [build_instance(document, s) for s in schema.get("oneOf", [schema])]


async def test_requests_built_from_the_schema_are_accepted(
    client: httpx.AsyncClient, document: dict[str, Any]
) -> None:
    """A minimal create-invoice body and a minimal order of each product, built from the
    document alone, are accepted by the live app."""
    invoice = build_instance(document, {"$ref": "#/components/schemas/CreateInvoiceRequest"})
    assert invoice == {"amount": 1, "description": "x"}
    response = await client.post("/api/create-invoice", json=invoice)
    assert response.status_code == 200, response.text
    orders = variants(document, "CreateOrderRequest")
    assert [order["product"] for order in orders] == ["dazbox", "daznode", "dazpay"]
    for order in orders:
        response = await client.post("/api/orders", json=order)
        assert response.status_code == 201, (order, response.text)


@pytest.mark.parametrize(("path", "model"), [("/api/create-invoice", CreateInvoiceRequest),
                                             ("/api/orders", CreateOrderRequest)])
async def test_the_try_it_out_examples_are_valid_and_accepted(
    client: httpx.AsyncClient, document: dict[str, Any], path: str, model: Any
) -> None:
    """The example /docs pre-fills for "Try it out" fits the model and is accepted."""
    example = operations(document)[("post", path)]["requestBody"]["content"][
        "application/json"]["example"]
    model.model_validate(example)
    response = await client.post(path, json=example)
    assert response.status_code in (200, 201), response.text
