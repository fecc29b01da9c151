"""What the webhook stores: LNbits' body as received, minus our webhook credentials."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import pytest

from tests.doubles.lnbits_double import FAKE_NODE_PUBKEY, LNbitsDouble
from tests.web.payments import (
    WEBHOOK_SECRET,
    events,
    lnbits_body,
    order_body,
    post_webhook,
    webhook_target,
)


@pytest.fixture
async def double() -> AsyncIterator[LNbitsDouble]:
    async with LNbitsDouble() as d:
        yield d


async def test_stored_body_keeps_everything_but_the_webhook_credentials(
    gateway_factory: Callable[..., Any], double: LNbitsDouble
) -> None:
    """The stored body is LNbits' body with every nonce and token value replaced by [redacted]."""
    async with gateway_factory(
        lnbits_endpoint=double.url, lnbits_invoice_key=double.invoice_key,
        lnbits_node_pubkey=FAKE_NODE_PUBKEY, lightning_test_mode=False,
        lnbits_webhook_secret=WEBHOOK_SECRET, public_url="https://pay.example.com",
        reconcile_interval_seconds=3600, outbox_poll_interval_seconds=3600,
    ) as http:
        created = await http.post("/api/orders", json=order_body("dazpay"))
        payment_hash = created.json()["invoice"]["payment_hash"]
        webhook_url = double.requests_to("create")[-1].json["webhook"]
        _, params = webhook_target(webhook_url)
        double.mark_paid(payment_hash)
        payment = dict(double.invoices[payment_hash], webhook=webhook_url,
                       extra={"callback": quote(webhook_url, safe=""), "note": params["nonce"]})
        response = await post_webhook(http, lnbits_body(payment), params=params)
        assert response.status_code == 200, response.text
        [event] = await events(http.app.state.gateway.db)  # type: ignore[attr-defined]
    stored = event["body"]
    assert params["token"] not in stored and params["nonce"] not in stored
    inner = json.loads(json.loads(stored))
    assert inner["webhook"] == ("https://pay.example.com/api/webhook/lnbits-payment"
                                "?nonce=[redacted]&token=[redacted]")
    assert inner["extra"]["note"] == "[redacted]"
    assert "token%3D[redacted]" in inner["extra"]["callback"]
    unchanged = {k: v for k, v in payment.items() if k not in ("webhook", "extra")}
    assert {k: inner[k] for k in unchanged} == unchanged
