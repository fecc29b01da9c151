"""Failover between the real LNbits peer (primary) and the real NWC peer (fallback)."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote

import bolt11 as reference_bolt11
import pytest

from lngate.resilience.breaker import BreakerState
from tests.doubles.lnbits_double import FAKE_NODE_PUBKEY, LNbitsDouble, Reply
from tests.doubles.tcp_proxy import Mode, TcpProxy
from tests.peers.lnbits_peer import LNbitsPeer
from tests.peers.nwc_peer import NWCPeer
from tests.web.payments import poll_status

pytestmark = [pytest.mark.lnbits, pytest.mark.nwc]

REQUEST = {"amount": 50, "description": "DazNode mensuel"}


def settings(lnbits_url: str, lnbits_key: str, nwc_uri: str, **extra: Any) -> dict[str, Any]:
    """LNbits first, NWC as fallback, no test provider, a fast breaker for the test."""
    return {"lnbits_endpoint": lnbits_url, "lnbits_invoice_key": lnbits_key,
            "lnbits_node_pubkey": FAKE_NODE_PUBKEY, "nwc_url": nwc_uri,
            "lightning_test_mode": False, "breaker_failure_threshold": 2,
            "breaker_cooldown_seconds": 1.0, **extra}


async def create(http) -> tuple[dict[str, Any], float]:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    response = await http.post("/api/create-invoice", json=REQUEST)
    assert response.status_code == 200, response.text
    return response.json(), time.monotonic() - started


def assert_valid_nwc_invoice(body: dict[str, Any], nwc_peer: NWCPeer) -> None:
    assert body["provider"] == "nwc"
    decoded = reference_bolt11.decode(body["invoice"]["payment_request"])
    assert decoded.amount_msat == 50_000 and decoded.description == REQUEST["description"]
    assert decoded.payee == nwc_peer.node_pubkey


def breaker_state(http) -> BreakerState:  # type: ignore[no-untyped-def]
    return http.app.state.gateway.router.breaker("lnbits").state


async def test_nwc_alone_serves_valid_invoices(gateway_factory, nwc_peer: NWCPeer) -> None:  # type: ignore[no-untyped-def]
    """With only NWC configured, the invoice comes from the real wallet service, validated."""
    async with gateway_factory(nwc_url=nwc_peer.uri, lightning_test_mode=False) as http:
        body, _ = await create(http)
        assert_valid_nwc_invoice(body, nwc_peer)
        check = await http.get("/api/check-invoice", params={"id": body["invoice"]["id"]})
        assert check.json() == {"status": "pending"}
        nwc_peer.settle(body["invoice"]["id"])
        assert await poll_status(http, body["invoice"]["id"]) == "settled"


@pytest.mark.parametrize("failure", [Mode.REFUSE, Mode.HANG])
async def test_breaker_cycle_with_the_real_lnbits(
    gateway_factory, lnbits_peer: LNbitsPeer, nwc_peer: NWCPeer, failure: Mode  # type: ignore[no-untyped-def]
) -> None:
    """LNbits down or hung: NWC serves, the breaker opens, half-opens, and closes when back."""
    host, port = lnbits_peer.url.removeprefix("http://").split(":")
    async with TcpProxy(host, int(port)) as proxy:
        config = settings(proxy.url, lnbits_peer.merchant_inkey, nwc_peer.uri,
                          attempt_timeout_default=0.5, attempt_timeout_floor=0.25)
        async with gateway_factory(**config) as http:
            # precondition, not the behaviour under test: on a loaded machine the first call
            # (or the start-up probe) can outlast the short timeouts of this test
            for _ in range(5):
                body, _ = await create(http)
                if body["provider"] == "lnbits":
                    break
                await http.app.state.gateway.monitoring.health.run_once()  # a fresh probe
            assert body["provider"] == "lnbits"
            await proxy.set(failure)
            for _ in range(2):
                body, elapsed = await create(http)
                assert_valid_nwc_invoice(body, nwc_peer)
                assert elapsed < 3.0
            assert breaker_state(http) is BreakerState.OPEN
            body, elapsed = await create(http)  # LNbits is skipped: no timeout paid
            assert_valid_nwc_invoice(body, nwc_peer)
            assert elapsed < 0.5
            await proxy.set(Mode.FORWARD)
            await asyncio.sleep(1.1)
            assert http.app.state.gateway.router.breaker("lnbits").available()
            body, _ = await create(http)  # the half-open trial succeeds
            assert body["provider"] == "lnbits"
            assert breaker_state(http) is BreakerState.CLOSED


@pytest.mark.parametrize("case", ["500", "invalid invoice"])
async def test_lnbits_errors_fail_over_to_nwc(
    gateway_factory, nwc_peer: NWCPeer, case: str  # type: ignore[no-untyped-def]
) -> None:
    """LNbits answering 500 or a wrong invoice: NWC serves, and the breaker opens."""
    async with LNbitsDouble() as double:
        if case == "500":
            double.always("create", Reply(500, json={"detail": "Unexpected error"}))
        else:
            double.always("create", lambda r: Reply(201, json=double.issue(r.json, network="tb")))
        async with gateway_factory(**settings(double.url, double.invoice_key,
                                              nwc_peer.uri)) as http:
            for _ in range(2):
                body, _ = await create(http)
                assert_valid_nwc_invoice(body, nwc_peer)
            assert breaker_state(http) is BreakerState.OPEN


async def test_every_provider_down_gives_503_with_each_reason(
    gateway_factory, nwc_peer: NWCPeer  # type: ignore[no-untyped-def]
) -> None:
    """LNbits refusing and NWC's relay unreachable: 503 naming both, within the deadline."""
    dead_relay = quote("ws://127.0.0.1:9", safe="")
    dead_nwc = nwc_peer.uri.split("?")[0] + f"?relay={dead_relay}&secret={nwc_peer.client_secret}"
    async with gateway_factory(**settings("http://127.0.0.1:9", "k" * 32, dead_nwc)) as http:
        started = time.monotonic()
        response = await http.post("/api/create-invoice", json=REQUEST)
        assert time.monotonic() - started < 3.5
        assert response.status_code == 503
        reasons = response.json()["providers"]
        assert set(reasons) == {"lnbits", "nwc"}
        assert all(reason.startswith("provider_unavailable") for reason in reasons.values())
