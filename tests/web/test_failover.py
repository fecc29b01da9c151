"""Failover between the real LNbits peer (primary) and the real NWC peer (fallback), and along
longer provider lists (PROVIDERS): two LNbits wallets, and LNbits, CLN, LND and NWC."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote

import bolt11 as reference_bolt11
import pytest

from lngate.resilience.breaker import BreakerState
from tests.doubles.cln_double import ClnDouble
from tests.doubles.lnbits_double import FAKE_NODE_PUBKEY, LNbitsDouble, Reply
from tests.doubles.lnd_double import LndDouble
from tests.doubles.scripting import Reply as NodeReply
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


# --- providers configured as a list (PROVIDERS) -------------------------------------------------

ADMIN_TOKEN = "admin-token-for-failover-tests-0123"
CLN_DOWN = NodeReply(500, json={"code": -1, "message": "lightningd is restarting", "data": None})
LND_DOWN = NodeReply(500, json={"code": 2, "message": "server is still in the process of starting",
                            "details": []})


def lnbits_entry(name: str, double: LNbitsDouble) -> str:
    return (f"name={name};type=lnbits;server={double.url};invoice_key={double.invoice_key};"
            f"node_pubkey={FAKE_NODE_PUBKEY}")


async def test_two_lnbits_wallets_fail_over_by_name_through_the_app(gateway_factory) -> None:  # type: ignore[no-untyped-def]
    """Two LNbits providers named differently: the second serves when the first fails, its
    invoice is checked and settled at the second, and the admin API lists both by name."""
    async with LNbitsDouble() as primary, LNbitsDouble() as backup:
        primary.always("create", Reply(500, json={"detail": "Unexpected error"}))
        async with gateway_factory(
            providers=[lnbits_entry("primary", primary), lnbits_entry("backup", backup)],
            lightning_test_mode=False, admin_token=ADMIN_TOKEN,
        ) as http:
            body, _ = await create(http)
            assert body["provider"] == "backup"
            payment_hash = body["invoice"]["id"]
            assert payment_hash in backup.invoices and not primary.invoices
            backup.mark_paid(payment_hash)
            assert await poll_status(http, payment_hash) == "settled"
            status = await http.get("/api/admin/lightning-monitor", params={"action": "status"},
                                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            assert status.status_code == 200, status.text
            assert set(status.json()["providers"]) == {"primary", "backup"}
            assert [p.name for p in http.app.state.gateway.providers] == ["primary", "backup"]


@pytest.mark.parametrize(("failing", "serving"), [(0, "shop"), (1, "node"), (2, "lnd"),
                                                  (3, "alby")])
async def test_four_providers_fail_over_along_the_list(
    gateway_factory, nwc_peer: NWCPeer, failing: int, serving: str  # type: ignore[no-untyped-def]
) -> None:
    """LNbits, Core Lightning, LND and NWC in that order: with the first ``failing`` of them
    down, the next one issues the invoice, signed by its own node, and it is looked up there."""
    async with LNbitsDouble() as lnbits, ClnDouble(network="bitcoin") as cln, \
            LndDouble(network="bitcoin") as lnd:
        assert lnd.cert is not None
        providers = [
            lnbits_entry("shop", lnbits),
            f"name=node;type=clnrest;server={cln.url};rune={cln.rune};node_pubkey={cln.node_id}",
            f"name=lnd;type=lndrest;server={lnd.url};macaroon={lnd.admin_macaroon};"
            f"tls_cert={lnd.cert.cert_path};node_pubkey={lnd.identity_pubkey}",
            f"name=alby;type=nwc;uri={nwc_peer.uri};node_pubkey={nwc_peer.node_pubkey}",
        ]
        outages = [lambda: lnbits.always("create", Reply(500, json={"detail": "boom"})),
                   lambda: cln.script.always("invoice", CLN_DOWN),
                   lambda: lnd.script.always("addinvoice", LND_DOWN)]
        for outage in outages[:failing]:
            outage()
        payees = {"shop": FAKE_NODE_PUBKEY, "node": cln.node_id, "lnd": lnd.identity_pubkey,
                  "alby": nwc_peer.node_pubkey}
        async with gateway_factory(providers=providers, lightning_test_mode=False) as http:
            body, elapsed = await create(http)
            assert body["provider"] == serving
            assert elapsed < 3.0
            decoded = reference_bolt11.decode(body["invoice"]["payment_request"])
            assert decoded.payee == payees[serving] and decoded.amount_msat == 50_000
            check = await http.get("/api/check-invoice", params={"id": body["invoice"]["id"]})
            assert check.json() == {"status": "pending"}
