"""The whole create → pay → settled path through the gateway and a real LNbits (FakeWallet)."""

from __future__ import annotations

import os
import subprocess
import sys

import bolt11 as reference_bolt11
import pytest

from tests.peers.lnbits_peer import LNbitsPeer, fake_wallet_payee_pubkey
from tests.web.payments import poll_status

pytestmark = pytest.mark.lnbits


def lnbits_settings(peer: LNbitsPeer, **overrides: object) -> dict[str, object]:
    """Gateway settings pointing at the peer's merchant wallet, test provider off."""
    return {"lnbits_endpoint": peer.url, "lnbits_invoice_key": peer.merchant_inkey,
            "lightning_test_mode": False, **overrides}


async def test_invoice_from_lnbits_is_checked_stored_and_settled(
    gateway_factory, lnbits_peer: LNbitsPeer  # type: ignore[no-untyped-def]
) -> None:
    """A real LNbits invoice comes back verified, is pending, and settles once paid."""
    settings = lnbits_settings(lnbits_peer, lnbits_node_pubkey=fake_wallet_payee_pubkey())
    async with gateway_factory(**settings) as http:
        response = await http.post("/api/create-invoice",
                                   json={"amount": 21, "description": "DazBox #42", "expiry": 900})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["provider"] == "lnbits" and "isTest" not in body["invoice"]
        decoded = reference_bolt11.decode(body["invoice"]["payment_request"])
        assert decoded.amount_msat == 21_000 and decoded.description == "DazBox #42"
        assert decoded.payment_hash == body["invoice"]["id"] and decoded.expiry == 900
        assert decoded.payee == fake_wallet_payee_pubkey()

        check = await http.get("/api/check-invoice", params={"id": body["invoice"]["id"]})
        assert check.json() == {"status": "pending"}
        await lnbits_peer.apay(body["invoice"]["payment_request"])
        assert await poll_status(http, body["invoice"]["id"]) == "settled"


async def test_lnbits_invoice_signed_by_another_node_is_refused(
    gateway_factory, lnbits_peer: LNbitsPeer  # type: ignore[no-untyped-def]
) -> None:
    """An invoice whose signature recovers to a key other than the pinned one is never served."""
    other_key = "02" + "11" * 32
    async with gateway_factory(**lnbits_settings(lnbits_peer, lnbits_node_pubkey=other_key)) as http:
        response = await http.post("/api/create-invoice", json={"amount": 5, "description": "x"})
        assert response.status_code == 503
        assert "invalid_invoice" in response.json()["providers"]["lnbits"]


def test_lngate_check_passes_against_lnbits(lnbits_peer: LNbitsPeer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`lngate check` reaches LNbits, reads the balance, creates, validates and looks up."""
    env = {**os.environ, "LNBITS_ENDPOINT": lnbits_peer.url,
           "LNBITS_INVOICE_KEY": lnbits_peer.merchant_inkey, "LIGHTNING_TEST_MODE": "false",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'check.sqlite3'}", "LOG_FORMAT": "json"}
    result = subprocess.run([sys.executable, "-m", "lngate", "check"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("lnbits"))
    assert row.split()[:3] == ["lnbits", "lnbits", "OK"]  # name, type, result
    assert lnbits_peer.merchant_inkey not in result.stdout + result.stderr


def test_lngate_check_fails_on_a_dead_provider(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`lngate check` exits 1 and says why when LNbits cannot be reached."""
    env = {**os.environ, "LNBITS_ENDPOINT": "http://127.0.0.1:9", "LNBITS_INVOICE_KEY": "k" * 32,
           "LIGHTNING_TEST_MODE": "false", "LOG_FORMAT": "json",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'check.sqlite3'}"}
    result = subprocess.run([sys.executable, "-m", "lngate", "check"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "FAIL" in result.stdout and "provider_unavailable" in result.stdout
