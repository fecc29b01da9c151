"""Invoices a provider gets wrong never reach a client: an LNbits double serves bad ones."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from tests.doubles.lnbits_double import FAKE_NODE_PUBKEY, LNbitsDouble, RecordedRequest, Reply

REQUEST = {"amount": 21, "description": "DazBox #7", "expiry": 900}


def forged(double: LNbitsDouble, **wrong: Any) -> Callable[[RecordedRequest], Reply]:
    """A create answer whose invoice differs from the request in the ``wrong`` fields."""
    def answer(request: RecordedRequest) -> Reply:
        body = double.issue(request.json, **{k: v for k, v in wrong.items() if k != "json_amount"})
        if "json_amount" in wrong:
            body["amount"] = wrong["json_amount"]
        return Reply(201, json=body)
    return answer


def other_key() -> str:
    return os.urandom(32).hex()


BAD_INVOICES: list[tuple[str, dict[str, Any], str]] = [
    ("bolt11 amount differs", {"amount_msat": 22_000, "json_amount": 21_000}, "amount"),
    ("reported amount differs", {"json_amount": 20_000}, "msat"),
    ("wrong network", {"network": "tb"}, "network"),
    ("signed by another node", {"private_key": other_key()}, "payee"),
    ("payment hash differs", {"bolt11_payment_hash": "ab" * 32}, "hash"),
    ("already expired", {"timestamp": int(time.time()) - 7200, "expiry": 900}, "expir"),
    ("other expiry", {"expiry": 60}, "expiry"),
    ("other description", {"memo": "something else"}, "description"),
    ("description hash instead", {"description_hash": "cd" * 32}, "description"),
]


@pytest.mark.parametrize(("case", "wrong", "reason"), BAD_INVOICES,
                         ids=[c[0] for c in BAD_INVOICES])
async def test_invalid_invoice_is_refused_and_counted_as_provider_failure(
    gateway_factory, case: str, wrong: dict[str, Any], reason: str  # type: ignore[no-untyped-def]
) -> None:
    """A BOLT11 that does not match the request is refused (503, the provider's error code
    only); the log says exactly what was wrong."""
    async with LNbitsDouble() as double:
        double.always("create", forged(double, **wrong))
        async with gateway_factory(lnbits_endpoint=double.url,
                                   lnbits_invoice_key=double.invoice_key,
                                   lnbits_node_pubkey=FAKE_NODE_PUBKEY,
                                   lightning_test_mode=False) as http:
            with capture_logs() as logs:
                response = await http.post("/api/create-invoice", json=REQUEST)
            assert response.status_code == 503, response.text
            assert response.json()["providers"] == {"lnbits": "invalid_invoice"}
            assert "lnbc" not in response.text  # the refused invoice is never shown
            [refusal] = [e for e in logs if e["event"] == "no_provider_available"]
            assert reason in refusal["reasons"]["lnbits"].lower()


async def test_invalid_invoice_never_falls_back_to_a_test_invoice(gateway_factory) -> None:  # type: ignore[no-untyped-def]
    """With a real provider configured, a bad invoice from it is a 503 even with
    LIGHTNING_TEST_MODE on: the test provider never serves customers then."""
    async with LNbitsDouble() as double:
        double.always("create", forged(double, network="tb"))
        async with gateway_factory(lnbits_endpoint=double.url,
                                   lnbits_invoice_key=double.invoice_key,
                                   lnbits_node_pubkey=FAKE_NODE_PUBKEY,
                                   lightning_test_mode=True) as http:
            response = await http.post("/api/create-invoice", json=REQUEST)
            assert response.status_code == 503
            assert response.json()["providers"] == {"lnbits": "invalid_invoice"}


PROVIDER_FAILURES: list[tuple[str, Reply, str]] = [
    ("500", Reply(500, json={"detail": "boom"}), "provider_unavailable"),
    ("garbage JSON", Reply(201, body=b"<html>not json"), "provider_unavailable"),
    ("missing fields", Reply(201, json={"payment_hash": "ab" * 32}), "provider_unavailable"),
    ("401", Reply(401, json={"detail": "No Api Key provided."}), "provider_auth_failed"),
    ("400", Reply(400, json={"detail": "Amount too small"}), "provider_rejected"),
]


@pytest.mark.parametrize(("case", "reply", "code"), PROVIDER_FAILURES,
                         ids=[c[0] for c in PROVIDER_FAILURES])
async def test_provider_failures_give_503_with_the_reason(
    gateway_factory, case: str, reply: Reply, code: str  # type: ignore[no-untyped-def]
) -> None:
    """Errors, garbage and refusals from LNbits become a 503 naming the provider's reason."""
    async with LNbitsDouble() as double:
        double.always("create", reply)
        async with gateway_factory(lnbits_endpoint=double.url,
                                   lnbits_invoice_key=double.invoice_key,
                                   lightning_test_mode=False) as http:
            response = await http.post("/api/create-invoice", json=REQUEST)
            assert response.status_code == 503
            assert response.json()["providers"] == {"lnbits": code}
            assert double.invoice_key not in response.text
