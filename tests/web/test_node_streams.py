"""Core Lightning and LND configured in PROVIDERS: their paid streams settle orders through the
app, and their cursors are stored, so a restarted gateway resumes where the last one stopped."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import select

from lngate.store.tables import stream_cursors
from tests.doubles.cln_double import ClnDouble
from tests.doubles.lnd_double import LndDouble
from tests.doubles.scripting import Reply
from tests.web.payments import order_body

CLN_DOWN = Reply(500, json={"code": -1, "message": "lightningd is restarting", "data": None})


async def until(condition: Any, seconds: float = 8.0) -> None:
    """Wait until ``condition()`` (sync or async) is true, at most ``seconds``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def order_on(http: httpx.AsyncClient, cln: ClnDouble, *, lnd: bool) -> tuple[str, str]:
    """Create an order whose invoice is issued by LND (CLN refusing) or by CLN; its id and
    payment hash."""
    cln.script.always("invoice", CLN_DOWN if lnd else None)
    created = await http.post("/api/orders", json=order_body("dazpay", amount=50))
    assert created.status_code == 201, created.text
    body = created.json()
    payment_hash = body["invoice"]["payment_hash"]
    assert (payment_hash not in cln.invoices) is lnd
    return body["order"]["id"], payment_hash


async def order_paid(http: httpx.AsyncClient, order_id: str) -> bool:
    order = (await http.get(f"/api/orders/{order_id}")).json()
    return bool(order["order"]["status"] == "paid")


async def cursors(http: httpx.AsyncClient) -> dict[str, int]:
    async with http.app.state.gateway.db.connect() as conn:  # type: ignore[attr-defined]
        rows = await conn.execute(select(stream_cursors.c.provider, stream_cursors.c.last_index))
        return {provider: index for provider, index in rows}


async def test_node_streams_settle_orders_and_resume_after_a_restart(gateway_factory) -> None:  # type: ignore[no-untyped-def]
    """A paid CLN invoice and a settled LND invoice settle their orders from the streams alone
    (the reconciler's next pass is an hour away), each stream's cursor is stored; payments made while the gateway was
    down are delivered after the restart from the stored cursors, not from the start."""
    async with ClnDouble(network="bitcoin") as cln, LndDouble(network="bitcoin") as lnd:
        assert lnd.cert is not None
        settings = {
            "providers": [f"name=node;type=clnrest;server={cln.url};rune={cln.rune}",
                          f"name=lnd;type=lndrest;server={lnd.url};macaroon={lnd.admin_macaroon};"
                          f"tls_cert={lnd.cert.cert_path}"],
            "lightning_test_mode": False, "reconcile_interval_seconds": 3600,
            "breaker_failure_threshold": 1000,
        }
        async with gateway_factory(**settings) as http:
            await until(lambda: lnd.subscriber_count == 1)  # lnd replays nothing from 0
            cln_order, cln_hash = await order_on(http, cln, lnd=False)
            lnd_order, lnd_hash = await order_on(http, cln, lnd=True)
            cln.mark_paid(cln_hash)
            lnd.mark_paid(lnd_hash)
            await until(lambda: order_paid(http, cln_order))
            await until(lambda: order_paid(http, lnd_order))
            await until(lambda: _equals(cursors(http), {"node": 1, "lnd": 1}))
            cln_late, cln_late_hash = await order_on(http, cln, lnd=False)
            lnd_late, lnd_late_hash = await order_on(http, cln, lnd=True)
        cln.mark_paid(cln_late_hash)  # while no gateway runs
        lnd.mark_paid(lnd_late_hash)
        cln.script.requests.clear()
        lnd.script.requests.clear()
        async with gateway_factory(**settings) as http:
            await until(lambda: _equals(cursors(http), {"node": 2, "lnd": 2}))
            await until(lambda: len(cln.script.requests_to("waitanyinvoice")) >= 2)
            assert await order_paid(http, cln_late) and await order_paid(http, lnd_late)
        waits = [r.json for r in cln.script.requests_to("waitanyinvoice")]
        assert waits[0]["lastpay_index"] == 1 and waits[1]["lastpay_index"] == 2
        subscriptions = [r.path for r in lnd.script.requests_to("subscribe")]
        assert subscriptions[0].endswith("settle_index=1")


async def _equals(value: Any, expected: object) -> bool:
    return bool(await value == expected)


async def test_the_start_up_probe_gives_the_payee_key(gateway_factory) -> None:  # type: ignore[no-untyped-def]
    """With no node_pubkey configured, the node key CLN reports in the start-up probe is the
    expected payee before the first invoice, so even that one is checked."""
    async with ClnDouble() as cln:
        settings: dict[str, Any] = {
            "lightning_test_mode": False,
            "providers": [f"name=node;type=clnrest;server={cln.url};rune={cln.rune}"],
        }
        async with gateway_factory(**settings) as http:
            gateway = http.app.state.gateway  # type: ignore[attr-defined]
            assert gateway.payee_keys.pinned("node") == cln.node_id
