"""What a customer sees of a failure: the contract's message and codes, never internals."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from lngate.store import database, direct_insert

from tests.peers.lnbits_peer import LNbitsPeer, fake_wallet_payee_pubkey
from tests.web.test_lnbits_end_to_end import lnbits_settings
from tests.web.test_test_mode_trust import failing_lnbits

INTERNALS = re.compile(r"127\.0\.0\.1|localhost|:\d{2,5}\b|[A-Z]\w*(Error|Exception)\b|"
                       r"Traceback|errno|ssl:|aiohttp|Connect call")


async def test_503_names_no_host_port_or_exception(gateway_factory: Callable[..., Any]) -> None:
    """With the only provider refusing connections, the 503 body gives the error code per
    provider and nothing else; the log keeps the detailed reason."""
    settings = failing_lnbits()
    async with gateway_factory(**settings) as http:
        with capture_logs() as logs:
            response = await http.post("/api/create-invoice",
                                       json={"amount": 21, "description": "x"})
            order = await http.post("/api/orders", json={
                "product": "dazpay", "amount": 21, "customer": {"email": "a@example.com"}})
    port = settings["lnbits_endpoint"].rsplit(":", 1)[1]
    for answer in (response, order):
        assert answer.status_code == 503
        assert answer.json() == {"error": "Aucun fournisseur Lightning n'a pu créer la facture",
                                 "code": "no_provider_available",
                                 "providers": {"lnbits": "provider_unavailable"}}
        assert not INTERNALS.search(answer.text) and port not in answer.text
    [detail, *_] = [e for e in logs if e["event"] == "no_provider_available"]
    assert port in detail["reasons"]["lnbits"]


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("GET", "/api/create-invoice", "POST"),
    ("DELETE", "/api/check-invoice", "GET"),
    ("PUT", "/api/orders", "POST"),
])
async def test_405_says_which_methods_are_allowed(
    client: httpx.AsyncClient, method: str, path: str, allowed: str
) -> None:
    """A wrong method gets 405 with an ``Allow`` header, as HTTP requires."""
    response = await client.request(method, path)
    assert response.status_code == 405
    assert allowed in response.headers["allow"]
    assert response.json()["code"] == "http_405"


@pytest.fixture
def held_sqlite_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], Any]:
    """Hold the test gateway's SQLite write lock from another connection (``async with
    held():``), the gateway waiting 0.1 s for it instead of 5 s."""
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_MS", 100)
    monkeypatch.setattr(direct_insert, "SQLITE_BUSY_TIMEOUT_MS", 100)

    @asynccontextmanager
    async def held() -> AsyncIterator[None]:
        # taken without blocking the event loop: a write of the gateway's in flight on it
        # (its commit still to be sent) would otherwise keep the lock from us for good
        holder = sqlite3.connect(tmp_path / "gateway.sqlite3", isolation_level=None, timeout=0)
        async with asyncio.timeout(10):
            while True:
                try:
                    holder.execute("BEGIN IMMEDIATE")
                    break
                except sqlite3.OperationalError:
                    await asyncio.sleep(0.01)
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()

    return held


@pytest.mark.lnbits
@pytest.mark.parametrize(("path", "body"), [
    ("/api/create-invoice", {"amount": 21, "description": "x"}),
    ("/api/orders", {"product": "dazpay", "amount": 21, "customer": {"email": "a@example.com"}}),
])
async def test_a_database_locked_past_the_wait_gets_503_with_retry_after(
    gateway_factory: Callable[..., Any], held_sqlite_lock: Callable[[], Any],
    lnbits_peer: LNbitsPeer, path: str, body: dict[str, Any]
) -> None:
    """Another writer holding SQLite's lock past the wait (an overloaded process): a create
    through LNbits, on the hot path or through FastAPI's routing, answers 503
    ``database_unavailable`` with ``Retry-After``, no internals, the cause in the log; once the
    lock is free it succeeds."""
    settings = lnbits_settings(lnbits_peer, lnbits_node_pubkey=fake_wallet_payee_pubkey())
    async with gateway_factory(**settings) as http:
        async with held_sqlite_lock():
            with capture_logs() as logs:
                refused = await http.post(path, json=body)
        served = await http.post(path, json=body)
    assert refused.status_code == 503, refused.text
    assert refused.headers["retry-after"] == "2", refused.text
    assert refused.json() == {"error": "Service momentanément indisponible, réessayez dans un "
                                       "instant", "code": "database_unavailable"}
    assert not INTERNALS.search(refused.text)
    [logged] = [e for e in logs if e["event"] == "database_unavailable"]
    assert "locked" in logged["error"]
    assert not [e for e in logs if e["event"] == "unhandled_error"]
    assert served.is_success, served.text
