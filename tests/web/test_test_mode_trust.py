"""No test payment can ever settle a real order.

Unless the gateway runs in pure demo mode (no real provider configured), no public request can
obtain a test invoice, no public endpoint can mark anything paid, and no order is fulfilled from
a test invoice; the admin's ``simulate_payment`` still works, through the real settle path.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import update
from structlog.testing import capture_logs

from lngate.domain import InvoiceState, Network, OrderStatus, Product
from lngate.providers.testprovider import TestProvider
from lngate.services.settlement import SettleOutcome
from lngate.store import Database
from lngate.store.tables import invoices
from tests.services.conftest import SettableClock, make_kit
from tests.web.payments import dump, order_body

TOKEN = "admin-token-for-tests-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
MONITOR = "/api/admin/lightning-monitor"


def closed_port() -> int:
    """A loopback port nobody listens on (a real provider that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def failing_lnbits(**extra: Any) -> dict[str, Any]:
    """Settings of a real LNbits provider that refuses every connection."""
    return {"lnbits_endpoint": f"http://127.0.0.1:{closed_port()}",
            "lnbits_invoice_key": "a-real-looking-invoice-key", **extra}


async def test_test_mode_attack_cannot_settle_an_order(gateway_factory: Callable[..., Any]) -> None:
    """With a failing real provider and LIGHTNING_TEST_MODE on, an anonymous order gets a 503
    (never a test invoice) and the demo pay endpoint does not exist."""
    async with gateway_factory(**failing_lnbits(lightning_test_mode=True)) as http:
        order = await http.post("/api/orders", json=order_body("dazbox"))
        invoice = await http.post("/api/create-invoice", json={"amount": 21, "description": "x"})
        pay = await http.post(f"/api/demo/pay/{'ab' * 32}")
        tables = await dump(http.app.state.gateway.db)  # type: ignore[attr-defined]
    assert order.status_code == 503 and "isTest" not in order.text
    assert order.json()["providers"] == {"lnbits": "provider_unavailable"}
    assert invoice.status_code == 503 and "isTest" not in invoice.text
    assert pay.status_code == 404
    assert tables["orders"] == [] and tables["invoices"] == [] and tables["shipments"] == []


async def test_simulate_payment_settles_through_the_real_path_beside_a_real_provider(
    gateway_factory: Callable[..., Any],
) -> None:
    """The admin's simulation settles a private test invoice (no order) while customers only
    ever get the real provider."""
    async with gateway_factory(admin_token=TOKEN, **failing_lnbits()) as http:
        simulated = await http.post(MONITOR, headers=ADMIN, json={
            "action": "simulate_payment", "provider": "test", "data": {"amount": 21}})
        body = simulated.json()
        check = await http.get("/api/check-invoice", params={"id": body["invoiceId"]})
        tables = await dump(http.app.state.gateway.db)  # type: ignore[attr-defined]
    assert simulated.status_code == 200 and body["success"] is True, simulated.text
    assert check.json() == {"status": "settled"}
    [invoice] = tables["invoices"]
    assert invoice["is_test"] and invoice["state"] == "paid" and tables["orders"] == []


async def test_simulate_payment_needs_the_admin_token(gateway_factory: Callable[..., Any]) -> None:
    """Without the bearer token, simulate_payment is refused and nothing is created."""
    async with gateway_factory(admin_token=TOKEN, **failing_lnbits()) as http:
        response = await http.post(MONITOR, json={
            "action": "simulate_payment", "provider": "test", "data": {"amount": 21}})
        tables = await dump(http.app.state.gateway.db)  # type: ignore[attr-defined]
    assert response.status_code == 401 and tables["invoices"] == []


async def test_pure_demo_mode_still_pays_orders(gateway_factory: Callable[..., Any]) -> None:
    """With no real provider configured, the demo wallet pays a test order and fulfils it."""
    async with gateway_factory() as http:
        created = (await http.post("/api/orders", json=order_body("dazbox"))).json()
        pay = await http.post(f"/api/demo/pay/{created['invoice']['id']}")
        order = (await http.get(f"/api/orders/{created['order']['id']}")).json()["order"]
    assert created["isTest"] is True
    assert pay.json()["settlement"] == "settled"
    assert order["status"] == "paid"


@pytest.mark.parametrize("test_mode", [True, False])
async def test_settlement_never_fulfils_an_order_from_a_test_invoice(
    db: Database, test_mode: bool
) -> None:
    """Outside demo mode, a paid test invoice carrying an order is refused: the order expires,
    nothing ships, no email is queued."""
    clock = SettableClock()
    provider = TestProvider(network=Network.BITCOIN, clock=clock)
    kit = await make_kit(db, provider, clock, pin=provider.node_pubkey)
    kit.settler.test_orders_allowed = test_mode
    created = await kit.order(Product.DAZBOX)
    payment_hash = created.invoice.payment_hash
    # the invoice must be flagged test, as the gateway stores the test provider's invoices
    async with db.transaction() as conn:
        await conn.execute(update(invoices).where(invoices.c.payment_hash == payment_hash)
                           .values(is_test=True))
    await provider.mark_paid(payment_hash)
    outcome = await kit.settler.settle(payment_hash, source="test")
    snapshot = await kit.snapshot(created.order.id)
    if test_mode:
        assert outcome is SettleOutcome.SETTLED
        assert snapshot["order"].status is OrderStatus.PAID and snapshot["shipments"]
    else:
        assert outcome is SettleOutcome.TEST_INVOICE_REFUSED
        assert snapshot["invoice"].state is InvoiceState.EXPIRED
        assert snapshot["order"].status is OrderStatus.EXPIRED
        assert snapshot["shipments"] == [] and snapshot["outbox"] == []


async def test_demo_invoices_are_closed_once_when_real_providers_arrive(
    gateway_factory: Callable[..., Any],
) -> None:
    """Test invoices left pending by a demo are expired (with their orders) once, at the first
    start with a real provider, with one log line; later starts leave them alone."""
    async with gateway_factory() as http:
        created = (await http.post("/api/orders", json=order_body("daznode"))).json()
    with capture_logs() as logs:
        async with gateway_factory(**failing_lnbits()) as http:
            order = (await http.get(f"/api/orders/{created['order']['id']}")).json()["order"]
            check = await http.get("/api/check-invoice", params={"id": created["invoice"]["id"]})
    assert order["status"] == "expired" and check.json() == {"status": "expired"}
    closing = [e for e in logs if e["event"] == "test_invoices_closed"]
    assert len(closing) == 1 and closing[0]["count"] == 1
    with capture_logs() as logs:
        async with gateway_factory(**failing_lnbits()):
            pass
    assert not [e for e in logs if e["event"] == "test_invoices_closed"]
