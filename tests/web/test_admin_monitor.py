"""/api/admin/lightning-monitor: bearer-token only, every action with its exact shape."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

TOKEN = "admin-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
URL = "/api/admin/lightning-monitor"
STATUS_KEYS = {"name", "healthy", "responseTime", "lastError", "lastCheck", "uptime"}
METRICS_KEYS = {"totalInvoices", "successfulInvoices", "failedInvoices", "averageResponseTime",
                "uptime", "lastError"}
OVERALL_KEYS = {"totalProviders", "healthyProviders", "totalInvoices", "successRate",
                "averageResponseTime"}
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


@pytest.fixture
async def admin(gateway_factory: Callable[..., Any]) -> Any:
    """A demo gateway with an admin token."""
    async with gateway_factory(admin_token=TOKEN) as http:
        yield http


async def flush(http: httpx.AsyncClient) -> None:
    """Store the provider calls recorded so far (the recorder batches them)."""
    await http.app.state.gateway.recorder.flush()  # type: ignore[attr-defined]


async def test_without_admin_token_configured_the_api_is_closed(
    gateway_factory: Callable[..., Any]
) -> None:
    """No ADMIN_TOKEN: 503 saying so, for GET and POST, whatever the request carries."""
    async with gateway_factory() as http:
        for response in (
            await http.get(URL, params={"action": "status"}),
            await http.get(URL, params={"action": "status"}, headers=AUTH),
            await http.post(URL, json={"action": "force_health_check"}, headers=AUTH),
        ):
            assert response.status_code == 503
            assert "ADMIN_TOKEN" in response.json()["error"]
            assert response.json()["code"] == "admin_disabled"


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer wrong-token"},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": "Bearer"},
])
async def test_missing_or_wrong_token_is_401(admin: httpx.AsyncClient,
                                             headers: dict[str, str]) -> None:
    """Without the exact bearer token: 401, GET and POST alike."""
    get = await admin.get(URL, params={"action": "status"}, headers=headers)
    post = await admin.post(URL, json={"action": "reset_metrics", "provider": "test"},
                            headers=headers)
    for response in (get, post):
        assert response.status_code == 401
        assert response.json() == {"error": "Unauthorized", "code": "unauthorized"}
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_status_shape(admin: httpx.AsyncClient) -> None:
    """status: {providers: {name: {ProviderStatus, breaker, metrics}}, overall, bestProvider}."""
    await admin.post("/api/create-invoice", json={"amount": 21, "description": "x"})
    await flush(admin)
    response = await admin.get(URL, params={"action": "status"}, headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"providers", "overall", "bestProvider"}
    assert body["bestProvider"] == "test"
    test = body["providers"]["test"]
    assert set(test) == STATUS_KEYS | {"breaker", "metrics"}
    assert test["name"] == "test" and test["healthy"] is True and test["breaker"] == "closed"
    assert ISO.match(test["lastCheck"]) and test["uptime"] == 100.0
    assert METRICS_KEYS <= set(test["metrics"])
    assert test["metrics"]["totalInvoices"] == 1 and test["metrics"]["successfulInvoices"] == 1
    assert OVERALL_KEYS <= set(body["overall"])
    assert body["overall"]["totalProviders"] == 1 and body["overall"]["healthyProviders"] == 1
    assert body["overall"]["totalInvoices"] == 1 and body["overall"]["successRate"] == 100.0


async def test_health_and_force_health_check_shape(admin: httpx.AsyncClient) -> None:
    """health (GET) and force_health_check (POST) probe now and answer the same shape."""
    gateway = admin.app.state.gateway  # type: ignore[attr-defined]
    rounds = gateway.monitoring.health.rounds
    for response in (await admin.get(URL, params={"action": "health"}, headers=AUTH),
                     await admin.post(URL, json={"action": "force_health_check"}, headers=AUTH)):
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"message", "results", "timestamp"}
        assert body["message"] == "Health check completed" and ISO.match(body["timestamp"])
        assert set(body["results"]) == {"test"}
        assert set(body["results"]["test"]) == STATUS_KEYS
        assert body["results"]["test"]["healthy"] is True
    assert gateway.monitoring.health.rounds == rounds + 2


async def test_metrics_needs_a_known_provider(admin: httpx.AsyncClient) -> None:
    """metrics without provider is a 400 with the original message; unknown provider 404."""
    response = await admin.get(URL, params={"action": "metrics"}, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"] == "Provider parameter required for metrics"
    response = await admin.get(URL, params={"action": "metrics", "provider": "nope"}, headers=AUTH)
    assert response.status_code == 404 and response.json()["availableProviders"] == ["test"]


async def test_metrics_shape(admin: httpx.AsyncClient) -> None:
    """metrics: ProviderMetrics plus percentiles, histogram, errors by type, volume."""
    for _ in range(3):
        await admin.post("/api/create-invoice", json={"amount": 5, "description": "x"})
    await flush(admin)
    response = await admin.get(URL, params={"action": "metrics", "provider": "test", "hours": "2"},
                               headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert METRICS_KEYS <= set(body)
    assert body["totalInvoices"] == 3 and body["failedInvoices"] == 0 and body["lastError"] is None
    assert set(body["latency"]) == {"mean", "p50", "p95", "p99", "histogram"}
    assert body["latency"]["p50"] > 0 and body["averageResponseTime"] > 0
    assert sum(b["count"] for b in body["latency"]["histogram"]) == 3
    assert body["errorsByType"] == {}
    assert sum(h["invoices"] for h in body["volume"]["hourly"]) == 3
    assert body["window"]["hours"] == 2
    bad = await admin.get(URL, params={"action": "metrics", "provider": "test", "hours": "-1"},
                          headers=AUTH)
    assert bad.status_code == 400


async def test_stats_shape(admin: httpx.AsyncClient) -> None:
    """stats: {overall, providers, lastUpdated}."""
    response = await admin.get(URL, params={"action": "stats"}, headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"overall", "providers", "lastUpdated"}
    assert OVERALL_KEYS <= set(body["overall"]) and ISO.match(body["lastUpdated"])
    assert METRICS_KEYS <= set(body["providers"]["test"])


@pytest.mark.parametrize(("method", "available"), [
    ("GET", ["status", "health", "metrics", "stats"]),
    ("POST", ["simulate_payment", "force_health_check", "reset_metrics"]),
])
async def test_unknown_action_lists_available_actions(admin: httpx.AsyncClient, method: str,
                                                      available: list[str]) -> None:
    """An unknown or missing action is a 400 carrying availableActions."""
    for action in ("explode", None):
        if method == "GET":
            params = {"action": action} if action else {}
            response = await admin.get(URL, params=params, headers=AUTH)
        else:
            response = await admin.post(URL, json={"action": action}, headers=AUTH)
        assert response.status_code == 400
        assert response.json()["availableActions"] == available
        assert response.json()["code"] == "unknown_action"


async def test_simulate_payment_runs_the_real_path(admin: httpx.AsyncClient) -> None:
    """simulate_payment creates a test invoice, pays and settles it; figures are measured."""
    response = await admin.post(URL, json={"action": "simulate_payment", "provider": "test",
                                           "data": {"amount": 1234}}, headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) >= {"message", "invoiceId", "provider", "amount", "duration", "success"}
    assert body["success"] is True and body["provider"] == "test" and body["amount"] == 1234
    assert body["message"] == "Payment simulation completed"
    assert re.fullmatch(r"[0-9a-f]{64}", body["invoiceId"])
    assert 0 < body["duration"] < 5000
    check = await admin.get("/api/check-invoice", params={"id": body["invoiceId"]})
    assert check.json() == {"status": "settled"}
    await flush(admin)
    metrics = (await admin.get(URL, params={"action": "metrics", "provider": "test"},
                               headers=AUTH)).json()
    assert metrics["successfulInvoices"] == 1


@pytest.mark.parametrize(("payload", "code"), [
    ({"data": {"amount": 0}}, "invalid_amount"),
    ({"data": {"amount": "100"}}, "invalid_amount"),
    ({"data": {"amount": 10**9}}, "invalid_amount"),
    ({"data": [1]}, "invalid_data"),
    ({"provider": "lnbits"}, "simulation_provider"),
])
async def test_simulate_payment_refuses_bad_input(admin: httpx.AsyncClient,
                                                  payload: dict[str, Any], code: str) -> None:
    """Bad amounts, a non-object data or a real provider are refused with a 400."""
    response = await admin.post(URL, json={"action": "simulate_payment", **payload}, headers=AUTH)
    assert response.status_code == 400 and response.json()["code"] == code


async def test_simulate_payment_works_with_test_mode_off(
    gateway_factory: Callable[..., Any]
) -> None:
    """simulate_payment settles a real test invoice for the admin even with
    LIGHTNING_TEST_MODE=false (the private test provider backs it in every mode)."""
    async with gateway_factory(admin_token=TOKEN, lightning_test_mode=False) as http:
        response = await http.post(URL, json={"action": "simulate_payment", "provider": "test",
                                              "data": {"amount": 10}}, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["success"] is True


async def test_reset_metrics_really_resets(admin: httpx.AsyncClient) -> None:
    """reset_metrics deletes the provider's calls and probes: its metrics start from zero."""
    await admin.post("/api/create-invoice", json={"amount": 5, "description": "x"})
    await flush(admin)
    missing = await admin.post(URL, json={"action": "reset_metrics"}, headers=AUTH)
    assert missing.status_code == 400
    assert missing.json()["error"] == "Provider parameter required for reset_metrics"
    response = await admin.post(URL, json={"action": "reset_metrics", "provider": "test"},
                                headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["message"] == "Metrics reset for test" and body["provider"] == "test"
    assert body["deleted"]["provider_calls"] == 1 and body["deleted"]["health_checks"] >= 1
    metrics = (await admin.get(URL, params={"action": "metrics", "provider": "test"},
                               headers=AUTH)).json()
    assert metrics["totalInvoices"] == 0 and metrics["uptime"] is None


async def test_post_needs_a_json_object(admin: httpx.AsyncClient) -> None:
    """A POST whose body is not a JSON object is a 400, never a 500."""
    response = await admin.post(URL, content=b"[1,2]", headers={**AUTH,
                                                                "Content-Type": "application/json"})
    assert response.status_code == 400
    response = await admin.post(URL, content=b"{nope", headers={**AUTH,
                                                                "Content-Type": "application/json"})
    assert response.status_code == 400
