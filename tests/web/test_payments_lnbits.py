"""Orders paid through a real LNbits 1.6.2: its webhook (sent twice) settles the order once and
the emails reach a real SMTP server; with the webhook lost, the reconciler settles instead."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.peers.lnbits_peer import LNbitsPeer, fake_wallet_payee_pubkey, free_port
from tests.peers.smtp_peer import SMTPPeer
from tests.web.conftest import make_settings
from tests.web.live import LiveGateway, live_gateway, wait_until
from tests.web.payments import WEBHOOK_SECRET, dump, events, order_body

pytestmark = pytest.mark.lnbits

SHOP = "shop@daznode.test"


def settings_for(tmp_path, peer: LNbitsPeer, smtp: SMTPPeer, *, public_port: int,  # type: ignore[no-untyped-def]
                 **overrides: Any):
    values: dict[str, Any] = {
        "lnbits_endpoint": peer.url, "lnbits_invoice_key": peer.merchant_inkey,
        "lnbits_node_pubkey": fake_wallet_payee_pubkey(), "lightning_test_mode": False,
        "lnbits_webhook_secret": WEBHOOK_SECRET, "public_url": f"http://127.0.0.1:{public_port}",
        "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_tls": "none",
        "email_from": f"DazNode <{SHOP}>", "shop_email": SHOP,
        "reconcile_interval_seconds": 3600, "outbox_poll_interval_seconds": 0.5,
    }
    values.update(overrides)
    return make_settings(tmp_path, **values)


def fund_payer(peer: LNbitsPeer, sats: int) -> None:
    """Credit the payer wallet (FakeWallet money, as the super user), so a session's payments
    never run it dry."""
    status, body = peer.request("PUT", "/users/api/v1/balance", token=peer.super_user_token,
                                json_body={"id": peer.payer_wallet_id, "amount": sats})
    assert status in (200, 201), body


async def order_status(live: LiveGateway, order_id: str) -> str:
    return (await live.http.get(f"/api/orders/{order_id}")).json()["order"]["status"]


async def test_lnbits_webhook_settles_once_and_emails_arrive(
    tmp_path, lnbits_peer: LNbitsPeer, smtp: SMTPPeer  # type: ignore[no-untyped-def]
) -> None:
    """Pay a DazBox order from LNbits' payer wallet: LNbits' two webhook calls settle it once,
    a waiting SSE stream sees it, and the customer and the shop each get one email."""
    port = free_port()
    async with live_gateway(settings_for(tmp_path, lnbits_peer, smtp, public_port=port),
                            port) as live:
        created = await live.http.post("/api/orders", json=order_body("dazbox"))
        assert created.status_code == 201, created.text
        order_id = created.json()["order"]["id"]
        invoice = created.json()["invoice"]
        stream = asyncio.create_task(
            live.http.get(f"/api/invoices/{invoice['payment_hash']}/events", timeout=30))
        await asyncio.sleep(0.2)

        fund_payer(lnbits_peer, 400_000)
        await lnbits_peer.apay(invoice["payment_request"])

        async def paid() -> bool:
            return await order_status(live, order_id) == "paid"

        await wait_until(paid, timeout=10)
        sse = await asyncio.wait_for(stream, 10)
        assert '"status":"settled"' in sse.text

        async def both_calls() -> list[dict]:
            found = [e for e in await events(live.gateway.db) if e["outcome"] != "received"]
            return found if len(found) >= 2 else []

        calls = await wait_until(both_calls, timeout=15)
        assert len(calls) == 2, "LNbits delivers internal payments' webhooks twice"
        assert sorted(c["outcome"] for c in calls) == ["already_settled", "settled"]
        assert {c["auth"] for c in calls} == {"token"}
        assert {c["headers"]["user-agent"] for c in calls} == {"LNbits/1.6.2"}
        body = json.loads(json.loads(calls[0]["body"]))  # LNbits' double-encoded body
        assert body["payment_hash"] == invoice["payment_hash"]

        customer = await smtp.wait_for(1, address="alice@example.com")
        shop = await smtp.wait_for(1, address=SHOP)
        await asyncio.sleep(1.0)  # a second set would have been sent by now
        assert len(smtp.to("alice@example.com")) == len(customer) == 1
        assert len(smtp.to(SHOP)) == len(shop) == 1
        assert order_id in customer[0].subject and "12 rue des Lilas" in customer[0].body()
        assert "69001 Lyon" in shop[0].body()
        tables = await dump(live.gateway.db)
        assert len(tables["shipments"]) == 1 and len(tables["outbox"]) == 2


async def test_lost_webhook_is_caught_by_the_reconciler(
    tmp_path, lnbits_peer: LNbitsPeer, smtp: SMTPPeer  # type: ignore[no-untyped-def]
) -> None:
    """With the webhook URL pointing at a dead port, the reconciler settles the order."""
    dead_port, port = free_port(), free_port()
    settings = settings_for(tmp_path, lnbits_peer, smtp, public_port=dead_port,
                            reconcile_interval_seconds=1, reconcile_first_check_seconds=1)
    async with live_gateway(settings, port) as live:
        created = await live.http.post("/api/orders", json=order_body("daznode", plan="yearly"))
        assert created.status_code == 201, created.text
        order_id = created.json()["order"]["id"]
        fund_payer(lnbits_peer, 960_000)
        await lnbits_peer.apay(created.json()["invoice"]["payment_request"])

        async def paid() -> bool:
            return await order_status(live, order_id) == "paid"

        await wait_until(paid, timeout=10)
        assert await events(live.gateway.db) == []  # no webhook ever reached us
        [email] = await smtp.wait_for(1, address="alice@example.com")
        assert "abonnement DazNode est activé" in email.subject
        order = (await live.http.get(f"/api/orders/{order_id}")).json()["order"]
        assert order["fulfilment"]["subscription"]["renewed"] is False
