"""CORS: a shop front end on another origin can call the public endpoints; the admin API and
the webhook are never opened to browsers on other origins."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

SHOP = "https://shop.example.com"


def preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type"}


@pytest.mark.parametrize(("path", "method"), [
    ("/api/create-invoice", "POST"), ("/api/check-invoice", "GET"), ("/api/orders", "POST"),
    (f"/api/orders/{'a' * 22}", "GET"), (f"/api/invoices/{'ab' * 32}/events", "GET"),
    ("/api/catalog", "GET"),
])
async def test_preflight_of_public_endpoints_is_answered(
    client: httpx.AsyncClient, path: str, method: str
) -> None:
    """A preflight from any origin gets 200 with ``*``, the method and Content-Type allowed,
    and no credentials, as the original answered."""
    response = await client.options(path, headers=preflight(SHOP, method))
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert method in response.headers["access-control-allow-methods"]
    assert "content-type" in response.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in response.headers


async def test_public_answers_carry_the_allow_origin_header(client: httpx.AsyncClient) -> None:
    """A cross-origin create-invoice can be read by the page that sent it."""
    response = await client.post("/api/create-invoice", headers={"Origin": SHOP},
                                 json={"amount": 5, "description": "x"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("path", ["/api/admin/lightning-monitor", "/api/webhook/lnbits-payment",
                                  "/metrics", "/readyz"])
async def test_admin_webhook_and_operations_are_never_opened(
    client: httpx.AsyncClient, path: str
) -> None:
    """Preflights and requests to non-public paths get no CORS header at all."""
    response = await client.options(path, headers=preflight(SHOP))
    assert not any(h.startswith("access-control-") for h in response.headers)
    response = await client.get(path, headers={"Origin": SHOP})
    assert not any(h.startswith("access-control-") for h in response.headers)


async def test_allowed_origins_can_be_narrowed(gateway_factory: Callable[..., Any]) -> None:
    """With CORS_ALLOW_ORIGINS set, only the listed origins are allowed."""
    async with gateway_factory(cors_allow_origins=SHOP) as http:
        allowed = await http.options("/api/create-invoice", headers=preflight(SHOP))
        refused = await http.options("/api/create-invoice",
                                     headers=preflight("https://evil.example"))
        simple = await http.get("/api/catalog", headers={"Origin": "https://evil.example"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == SHOP
    assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
    assert "access-control-allow-origin" not in simple.headers


def test_a_malformed_origin_is_a_configuration_error() -> None:
    """CORS_ALLOW_ORIGINS refuses a value that is not an origin, naming the variable."""
    from lngate.settings import ConfigError, load_settings

    with pytest.raises(ConfigError, match="CORS_ALLOW_ORIGINS"):
        load_settings(_env_file=None, cors_allow_origins="shop.example.com/path")
