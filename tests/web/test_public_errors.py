"""What a customer sees of a failure: the contract's message and codes, never internals."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

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
