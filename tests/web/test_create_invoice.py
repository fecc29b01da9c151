"""POST /api/create-invoice: the contract, hostile inputs, idempotency and rate limits."""

from __future__ import annotations

import json
from typing import Any

import bolt11 as reference_bolt11
import httpx
import pytest
from sqlalchemy import func, select

from lngate.store.tables import test_invoices

VALID = {"amount": 21, "description": "DazBox commande #42"}


async def test_creates_a_valid_signed_invoice(client: httpx.AsyncClient) -> None:
    """A valid request returns the contract's shape with a real, decodable BOLT11."""
    response = await client.post("/api/create-invoice", json={**VALID, "metadata": {"o": 1}})
    assert response.status_code == 200, response.text
    body = response.json()
    invoice = body["invoice"]
    assert set(invoice) == {"id", "payment_request", "payment_hash", "expires_at", "amount",
                            "isTest"}
    assert invoice["isTest"] is True and body["provider"] == "test"
    assert invoice["id"] == invoice["payment_hash"] and invoice["amount"] == 21
    assert body["paymentUrl"] == "lightning:" + invoice["payment_request"]
    decoded = reference_bolt11.decode(invoice["payment_request"])
    assert decoded.amount_msat == 21_000
    assert decoded.payment_hash == invoice["payment_hash"]
    assert decoded.description == VALID["description"]
    assert decoded.expiry == 3600
    assert invoice["expires_at"].endswith("Z")


async def test_check_invoice_follows_the_payment(client: httpx.AsyncClient) -> None:
    """check-invoice says pending, then settled once the (test) wallet has paid."""
    invoice_id = (await client.post("/api/create-invoice", json=VALID)).json()["invoice"]["id"]
    check = await client.get("/api/check-invoice", params={"id": invoice_id})
    assert check.json() == {"status": "pending"}
    assert (await client.post(f"/api/demo/pay/{invoice_id}")).status_code == 200
    check = await client.get("/api/check-invoice", params={"id": invoice_id})
    assert check.json() == {"status": "settled"}


@pytest.mark.parametrize(
    ("params", "status", "expected"),
    [
        ({}, 400, {"error": "ID de facture manquant", "code": "missing_id"}),
        ({"id": ""}, 400, {"error": "ID de facture manquant", "code": "missing_id"}),
        ({"id": "ab" * 32}, 200, {"status": "not_found", "error": "Facture non trouvée",
                                  "code": "not_found"}),
        ({"id": "' OR 1=1 --"}, 200, {"status": "not_found", "error": "Facture non trouvée",
                                      "code": "not_found"}),
        ({"id": "z" * 5000}, 200, {"status": "not_found", "error": "Facture non trouvée",
                                   "code": "not_found"}),
    ],
)
async def test_check_invoice_hostile_ids(
    client: httpx.AsyncClient, params: dict[str, str], status: int, expected: dict[str, str]
) -> None:
    """Missing, unknown and malformed ids get the contract's answers, never a 500."""
    response = await client.get("/api/check-invoice", params=params)
    assert response.status_code == status and response.json() == expected


HOSTILE_BODIES: list[tuple[str, Any, int, str]] = [
    ("missing amount", {"description": "x"}, 400, "Le montant et la description sont requis"),
    ("missing description", {"amount": 5}, 400, "Le montant et la description sont requis"),
    ("empty object", {}, 400, "Le montant et la description sont requis"),
    ("null amount", {"amount": None, "description": "x"}, 400,
     "Le montant et la description sont requis"),
    ("float amount", {"amount": 1.5, "description": "x"}, 400,
     "Le montant doit être un nombre positif"),
    ("integral float", {"amount": 100.0, "description": "x"}, 400,
     "Le montant doit être un nombre positif"),
    ("string amount", {"amount": "100", "description": "x"}, 400,
     "Le montant doit être un nombre positif"),
    ("boolean amount", {"amount": True, "description": "x"}, 400,
     "Le montant doit être un nombre positif"),
    ("zero", {"amount": 0, "description": "x"}, 400, "Le montant doit être un nombre positif"),
    ("negative", {"amount": -5, "description": "x"}, 400,
     "Le montant doit être un nombre positif"),
    ("over maximum", {"amount": 1_000_001, "description": "x"}, 400,
     "Montant maximum: 1,000,000 sats"),
    ("huge", {"amount": 10**30, "description": "x"}, 400, "Montant maximum: 1,000,000 sats"),
    ("list amount", {"amount": [1], "description": "x"}, 400,
     "Le montant doit être un nombre positif"),
    ("description number", {"amount": 5, "description": 5}, 400,
     "La description doit être un texte"),
    ("blank description", {"amount": 5, "description": "  \n\t "}, 400,
     "Le montant et la description sont requis"),
    ("control characters only", {"amount": 5, "description": "\x00\x07\x1b"}, 400,
     "Le montant et la description sont requis"),
    ("description 640 bytes", {"amount": 5, "description": "é" * 320}, 400,
     "La description dépasse 639 octets"),
    ("metadata list", {**VALID, "metadata": [1]}, 400, "Les métadonnées doivent être un objet JSON"),
    ("metadata string", {**VALID, "metadata": "x"}, 400,
     "Les métadonnées doivent être un objet JSON"),
    ("metadata 5 KB", {**VALID, "metadata": {"k": "x" * 5000}}, 400,
     "Les métadonnées dépassent 4 Ko"),
    ("expiry too short", {**VALID, "expiry": 59}, 400,
     "L'expiration doit être un entier entre 60 et 86400 secondes"),
    ("expiry too long", {**VALID, "expiry": 86401}, 400,
     "L'expiration doit être un entier entre 60 et 86400 secondes"),
    ("expiry string", {**VALID, "expiry": "600"}, 400,
     "L'expiration doit être un entier entre 60 et 86400 secondes"),
    ("array body", [VALID], 400, "Le corps doit être un objet JSON"),
    ("string body", "amount=5", 400, "Le corps doit être un objet JSON"),
    ("null body", None, 400, "Le corps doit être un objet JSON"),
]


@pytest.mark.parametrize(("case", "body", "status", "message"), HOSTILE_BODIES,
                         ids=[case[0] for case in HOSTILE_BODIES])
async def test_hostile_bodies_get_clear_errors(
    client: httpx.AsyncClient, case: str, body: Any, status: int, message: str
) -> None:
    """Each malformed body gets its 4xx and French message, and no invoice is created."""
    response = await client.post("/api/create-invoice", content=json.dumps(body),
                                 headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert response.json()["error"] == message
    assert response.json()["code"]


@pytest.mark.parametrize(
    ("content", "headers", "status", "code"),
    [
        (b"{not json", {"content-type": "application/json"}, 400, "invalid_json"),
        (b"", {"content-type": "application/json"}, 400, "invalid_json"),
        (b'{"amount": NaN, "description": "x"}', {"content-type": "application/json"}, 400,
         "invalid_json"),
        (b'{"amount": Infinity, "description": "x"}', {"content-type": "application/json"}, 400,
         "invalid_json"),
        (b'{"amount": 1' + b"0" * 5000 + b', "description": "x"}',
         {"content-type": "application/json"}, 400, "invalid_json"),
        (b"[" * 100_000, {"content-type": "application/json"}, 413, "payload_too_large"),
        (b"\xff\xfe\x00", {"content-type": "application/json"}, 400, "invalid_json"),
        (b"amount=5&description=x", {"content-type": "application/x-www-form-urlencoded"}, 415,
         "unsupported_media_type"),
        (json.dumps(VALID).encode(), {"content-type": "text/plain"}, 415, "unsupported_media_type"),
        (json.dumps(VALID).encode(), {}, 415, "unsupported_media_type"),
        (json.dumps({**VALID, "metadata": {"p": "x" * 70_000}}).encode(),
         {"content-type": "application/json"}, 413, "payload_too_large"),
        (b"[" * 50_000 + b"]" * 50_000, {"content-type": "application/json"}, 413,
         "payload_too_large"),
        (b"[" * 20_000 + b"]" * 20_000, {"content-type": "application/json"}, 400,
         "json_too_deep"),
    ],
)
async def test_malformed_requests_are_4xx_never_500(
    client: httpx.AsyncClient, content: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    """Malformed JSON, wrong content types and oversized bodies get a clear 4xx."""
    response = await client.post("/api/create-invoice", content=content, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code


async def test_control_characters_are_removed_from_the_description(
    client: httpx.AsyncClient,
) -> None:
    """Control characters are stripped before the memo reaches the provider."""
    response = await client.post("/api/create-invoice",
                                 json={"amount": 3, "description": "Daz\x00Box\x1b"})
    decoded = reference_bolt11.decode(response.json()["invoice"]["payment_request"])
    assert decoded.description == "DazBox"


async def test_description_of_exactly_639_bytes_is_accepted(client: httpx.AsyncClient) -> None:
    """639 UTF-8 bytes is the limit, inclusive."""
    response = await client.post("/api/create-invoice",
                                 json={"amount": 3, "description": "é" * 319 + "x"})
    assert response.status_code == 200, response.text


async def test_custom_expiry_is_honoured(client: httpx.AsyncClient) -> None:
    """The requested expiry is the invoice's expiry."""
    response = await client.post("/api/create-invoice", json={**VALID, "expiry": 600})
    decoded = reference_bolt11.decode(response.json()["invoice"]["payment_request"])
    assert decoded.expiry == 600


async def test_maximum_follows_the_setting(gateway_factory) -> None:  # type: ignore[no-untyped-def]
    """MAX_INVOICE_SATS changes both the limit and its message."""
    async with gateway_factory(max_invoice_sats=5000) as http:
        response = await http.post("/api/create-invoice", json={"amount": 5001, "description": "x"})
        assert response.status_code == 400
        assert response.json()["error"] == "Montant maximum: 5,000 sats"
        assert (await http.post("/api/create-invoice",
                                json={"amount": 5000, "description": "x"})).status_code == 200


async def test_same_idempotency_key_and_body_returns_the_same_invoice(
    client: httpx.AsyncClient,
) -> None:
    """A replay returns the stored invoice without a second provider call."""
    headers = {"Idempotency-Key": "order-42-attempt-1"}
    first = await client.post("/api/create-invoice", json=VALID, headers=headers)
    db = client.app.state.gateway.db  # type: ignore[attr-defined]

    async def issued() -> int:  # what the test provider issued (it keeps it in test_invoices)
        async with db.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(test_invoices)))
                       .scalar_one())

    issued_before = await issued()
    second = await client.post("/api/create-invoice", json=VALID, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert issued_before == 1 and await issued() == issued_before


async def test_same_idempotency_key_with_another_body_is_422(client: httpx.AsyncClient) -> None:
    """Reusing a key for a different request is refused."""
    headers = {"Idempotency-Key": "k-1"}
    assert (await client.post("/api/create-invoice", json=VALID, headers=headers)).status_code == 200
    response = await client.post("/api/create-invoice", json={**VALID, "amount": 22},
                                 headers=headers)
    assert response.status_code == 422 and response.json()["code"] == "idempotency_conflict"


@pytest.mark.parametrize("key", ["", "   ", "x" * 256, "bad\x01key"])
async def test_invalid_idempotency_keys_are_refused(client: httpx.AsyncClient, key: str) -> None:
    """Empty, overlong or non-printable keys get a 400."""
    response = await client.post("/api/create-invoice", json=VALID,
                                 headers={"Idempotency-Key": key})
    assert response.status_code == 400 and response.json()["code"] == "invalid_idempotency_key"


async def test_rate_limit_answers_429_with_retry_after(gateway_factory) -> None:  # type: ignore[no-untyped-def]
    """Past the per-IP limit, create-invoice answers 429 with Retry-After and a JSON error."""
    async with gateway_factory(rate_limit="3/minute") as http:
        statuses = [(await http.post("/api/create-invoice", json=VALID)).status_code
                    for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = await http.post("/api/create-invoice", json=VALID)
        assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60


async def test_no_provider_gives_503_with_reasons(gateway_factory) -> None:  # type: ignore[no-untyped-def]
    """With no provider able to issue an invoice, the answer is 503, never a fake invoice."""
    async with gateway_factory(lightning_test_mode=False) as http:
        response = await http.post("/api/create-invoice", json=VALID)
        assert response.status_code == 503
        assert response.json()["code"] == "no_provider_available"


async def test_unknown_route_and_method_are_json_errors(client: httpx.AsyncClient) -> None:
    """Unknown paths and methods get JSON errors, not HTML."""
    assert (await client.get("/api/nope")).json()["code"] == "http_404"
    assert (await client.get("/api/create-invoice")).status_code == 405
