"""POST /api/webhook/lnbits-payment against the LNbits double: authentic calls settle once,
forgeries and malformed bodies change nothing, duplicates are harmless (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from lngate.services.webhooks import WebhookAuth
from tests.doubles.lnbits_double import FAKE_NODE_PUBKEY, LNbitsDouble
from tests.web.payments import (
    WEBHOOK_SECRET,
    dump,
    events,
    lnbits_body,
    order_body,
    post_webhook,
    webhook_target,
)

PUBLIC_URL = "https://pay.example.com"


@pytest.fixture
async def double() -> AsyncIterator[LNbitsDouble]:
    async with LNbitsDouble() as d:
        yield d


def lnbits_gateway(gateway_factory: Callable[..., Any], double: LNbitsDouble, **overrides: Any):  # type: ignore[no-untyped-def]
    """A gateway whose only provider is the double, with webhooks on and the reconciler idle."""
    values: dict[str, Any] = {
        "lnbits_endpoint": double.url, "lnbits_invoice_key": double.invoice_key,
        "lnbits_node_pubkey": FAKE_NODE_PUBKEY, "lightning_test_mode": False,
        "lnbits_webhook_secret": WEBHOOK_SECRET, "public_url": PUBLIC_URL,
        "reconcile_interval_seconds": 3600, "outbox_poll_interval_seconds": 3600,
    }
    values.update(overrides)
    return gateway_factory(**values)


@asynccontextmanager
async def gateway(gateway_factory, double, **overrides):  # type: ignore[no-untyped-def]
    async with lnbits_gateway(gateway_factory, double, **overrides) as http:
        yield http


async def new_order(http: httpx.AsyncClient, double: LNbitsDouble,
                    product: str = "dazbox") -> tuple[dict[str, Any], dict[str, str]]:
    """Create an order; returns its answer and the webhook query LNbits was given."""
    response = await http.post("/api/orders", json=order_body(product))
    assert response.status_code == 201, response.text
    webhook = double.requests_to("create")[-1].json["webhook"]
    path, params = webhook_target(webhook)
    assert webhook.startswith(PUBLIC_URL) and path == "/api/webhook/lnbits-payment"
    return response.json(), params


def db_of(http: httpx.AsyncClient):  # type: ignore[no-untyped-def]
    return http.app.state.gateway.db  # type: ignore[attr-defined]


async def test_authentic_webhook_settles_the_order(gateway_factory, double) -> None:  # type: ignore[no-untyped-def]
    """LNbits' double-encoded call with the invoice's token settles the order and is stored."""
    async with gateway(gateway_factory, double) as http:
        created, params = await new_order(http, double)
        payment_hash = created["invoice"]["payment_hash"]
        double.mark_paid(payment_hash)
        response = await post_webhook(http, lnbits_body(double.invoices[payment_hash]),
                                      params=params)
        assert response.status_code == 200, response.text
        assert response.json() == {"message": "Payment processed successfully",
                                   "order_id": created["order"]["id"], "amount": 400_000}
        assert "total;dur=" in response.headers["server-timing"]
        order = (await http.get(f"/api/orders/{created['order']['id']}")).json()["order"]
        assert order["status"] == "paid" and order["fulfilment"]["shipment"]["status"] == "to_ship"
        [event] = await events(db_of(http))
        assert event["payment_hash"] == payment_hash and event["auth"] == "token"
        assert event["outcome"] == "settled" and event["headers"]["user-agent"] == "LNbits/1.6.2"
        assert json.loads(json.loads(event["body"]))["payment_hash"] == payment_hash


async def test_plain_json_object_body_and_api_key_header_are_accepted(gateway_factory, double) -> None:  # type: ignore[no-untyped-def]
    """A body that is a JSON object, authenticated by X-Api-Key instead of a token, settles too."""
    async with gateway(gateway_factory, double) as http:
        created, _ = await new_order(http, double, "dazpay")
        payment_hash = created["invoice"]["payment_hash"]
        double.mark_paid(payment_hash)
        response = await post_webhook(http, json.dumps(double.invoices[payment_hash]).encode(),
                                      headers={"X-Api-Key": WEBHOOK_SECRET})
        assert response.status_code == 200
        assert response.json()["order_id"] == created["order"]["id"]
        assert response.json()["amount"] == 2100


async def test_forged_credentials_are_refused_and_change_nothing(gateway_factory, double) -> None:  # type: ignore[no-untyped-def]
    """Missing, wrong or borrowed tokens and wrong API keys get 401 and change nothing."""
    async with gateway(gateway_factory, double) as http:
        created, params = await new_order(http, double)
        other, other_params = await new_order(http, double, "dazpay")
        payment_hash = created["invoice"]["payment_hash"]
        double.mark_paid(payment_hash)
        body = lnbits_body(double.invoices[payment_hash])
        before = await dump(db_of(http))
        forged_token = WebhookAuth("another-secret-0123456789", PUBLIC_URL).token(params["nonce"])
        attempts = [
            {},
            {"params": {"nonce": params["nonce"]}},
            {"params": {"token": params["token"]}},
            {"params": {**params, "token": params["token"][:-2] + "AA"}},
            {"params": {**params, "token": forged_token}},
            {"params": other_params},  # a genuine token, but for another invoice
            {"headers": {"X-Api-Key": WEBHOOK_SECRET[:-1]}},
            {"headers": {"X-Api-Key": ""}},
            {"params": {"nonce": "x" * 5000, "token": params["token"]}},
        ]
        for attempt in attempts:
            response = await post_webhook(http, body, **attempt)
            assert response.status_code == 401, attempt
            assert response.json()["error"] == "Unauthorized"
        assert await dump(db_of(http)) == before
        assert await events(db_of(http)) == []
        assert other["order"]["status"] == "pending"


async def test_unknown_hash_answers_no_matching_order(gateway_factory, double) -> None:  # type: ignore[no-untyped-def]
    """An authentic call about a hash the gateway never issued changes nothing."""
    async with gateway(gateway_factory, double) as http:
        _, params = await new_order(http, double)
        before = await dump(db_of(http))
        payment = {"payment_hash": "ab" * 32, "amount": 400_000_000, "status": "success"}
        response = await post_webhook(http, lnbits_body(payment), params=params)
        assert response.status_code == 200
        assert response.json() == {"message": "No matching order found"}
        assert await dump(db_of(http)) == before


async def test_hash_of_an_unpaid_invoice_settles_nothing(gateway_factory, double) -> None:  # type: ignore[no-untyped-def]
    """A call claiming payment of an invoice LNbits reports unpaid changes nothing (409)."""
    async with gateway(gateway_factory, double) as http:
        created, params = await new_order(http, double)
        payment = dict(double.invoices[created["invoice"]["payment_hash"]], status="success")
        before = await dump(db_of(http))
        response = await post_webhook(http, lnbits_body(payment), params=params)
        assert response.status_code == 409 and response.json()["code"] == "not_paid"
        assert await dump(db_of(http)) == before
        [event] = await events(db_of(http))
        assert event["outcome"] == "not_paid"


async def test_amount_mismatch_settles_nothing(gateway_factory, double) -> None:  # type: ignore[no-untyped-def]
    """When LNbits reports the invoice paid for another amount, nothing changes (409)."""
    async with gateway(gateway_factory, double) as http:
        created, params = await new_order(http, double)
        payment_hash = created["invoice"]["payment_hash"]
        double.mark_paid(payment_hash)
        double.invoices[payment_hash]["amount"] = 1_000
        before = await dump(db_of(http))
        response = await post_webhook(http, lnbits_body(double.invoices[payment_hash]),
                                      params=params)
        assert response.status_code == 409 and response.json()["code"] == "mismatch"
        assert await dump(db_of(http)) == before


@pytest.mark.parametrize("body", [
    b"", b"not json", b"[]", b"42", b'"just a string"', b'"[1, 2]"', b"{}",
    b'{"payment_hash": 12}', b'{"payment_hash": "zz"}', b'{"payment_hash": "' + b"a" * 63 + b'"}',
    json.dumps(json.dumps(json.dumps({"payment_hash": "ab" * 32}))).encode(),  # thrice encoded
    b'{"payment_hash": "' + b"ab" * 32 + b'", "pad": "' + b"x" * 70_000 + b'"}',
    b"\xff\xfe\x00",
])
async def test_malformed_bodies_get_400(gateway_factory, double, body: bytes) -> None:  # type: ignore[no-untyped-def]
    """Bodies that are not LNbits' payment JSON get 400 Invalid payload and change nothing."""
    async with gateway(gateway_factory, double) as http:
        _, params = await new_order(http, double)
        before = await dump(db_of(http))
        response = await post_webhook(http, body, params=params)
        assert response.status_code == 400
        assert response.json()["error"] == "Invalid payload"
        assert await dump(db_of(http)) == before


async def test_twenty_concurrent_duplicates_settle_once(gateway_factory, double, database_url) -> None:  # type: ignore[no-untyped-def]
    """The same webhook 20 times at once, then LNbits' late second copy: one settlement, one
    shipment, one set of emails, every call answered 200 (SQLite and PostgreSQL)."""
    async with gateway(gateway_factory, double, database_url=database_url) as http:
        created, params = await new_order(http, double)
        payment_hash = created["invoice"]["payment_hash"]
        double.mark_paid(payment_hash)
        body = lnbits_body(double.invoices[payment_hash])
        responses = await asyncio.gather(*(post_webhook(http, body, params=params)
                                           for _ in range(20)))
        assert [r.status_code for r in responses] == [200] * 20
        assert {r.json()["order_id"] for r in responses} == {created["order"]["id"]}
        settled = await dump(db_of(http))
        late_copy = await post_webhook(http, body, params=params)
        assert late_copy.status_code == 200
        assert await dump(db_of(http)) == settled
        assert len(settled["shipments"]) == 1
        assert sorted(r["kind"] for r in settled["outbox"]) == ["dazbox_confirmation",
                                                                "dazbox_shop_notification"]
        outcomes = [e["outcome"] for e in await events(db_of(http))]
        assert len(outcomes) == 21 and outcomes.count("settled") == 1
        assert set(outcomes) == {"settled", "already_settled"}


async def test_without_a_secret_no_webhook_is_requested_or_accepted(gateway_factory, double) -> None:  # type: ignore[no-untyped-def]
    """Without LNBITS_WEBHOOK_SECRET, LNbits gets no webhook URL and every call is refused."""
    async with gateway(gateway_factory, double, lnbits_webhook_secret=None) as http:
        response = await http.post("/api/orders", json=order_body("dazpay"))
        assert response.status_code == 201
        assert "webhook" not in double.requests_to("create")[-1].json
        payment_hash = response.json()["invoice"]["payment_hash"]
        double.mark_paid(payment_hash)
        hook = await post_webhook(http, lnbits_body(double.invoices[payment_hash]),
                                  headers={"X-Api-Key": WEBHOOK_SECRET})
        assert hook.status_code == 401
