"""/api/admin/lightning-monitor: bearer-token only, every row of the contract in its exact shape.

The shape checks below assert names, types, nesting and list-versus-object field by field, as
the original system's admin screens read them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from lngate.store.tables import provider_calls

TOKEN = "admin-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {**AUTH, "Content-Type": "application/json"}
URL = "/api/admin/lightning-monitor"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
GET_ACTIONS = ["status", "health", "metrics", "stats"]
POST_ACTIONS = ["simulate_payment", "force_health_check", "reset_metrics"]


def is_number(value: Any) -> bool:
    """A JSON number (bool is not one)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_count(value: Any) -> bool:
    """A JSON whole number, at least 0."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def assert_provider_status(status: Any, name: str) -> None:
    """ProviderStatus: {name, healthy: bool, responseTime?: number, lastError?: string|null,
    lastCheck: ISO, uptime?: number}."""
    assert isinstance(status, dict)
    assert status["name"] == name
    assert isinstance(status["healthy"], bool)
    assert ISO.match(status["lastCheck"])
    if "responseTime" in status:
        assert is_number(status["responseTime"])
    if "lastError" in status:
        assert status["lastError"] is None or isinstance(status["lastError"], str)
    if "uptime" in status:
        assert is_number(status["uptime"])


def assert_provider_metrics(metrics: Any) -> None:
    """ProviderMetrics: {totalInvoices, successfulInvoices, failedInvoices,
    averageResponseTime, uptime, lastError}, counts adding up."""
    assert isinstance(metrics, dict)
    for key in ("totalInvoices", "successfulInvoices", "failedInvoices"):
        assert is_count(metrics[key]), key
    assert metrics["totalInvoices"] == metrics["successfulInvoices"] + metrics["failedInvoices"]
    assert is_number(metrics["averageResponseTime"])
    assert "uptime" in metrics and (metrics["uptime"] is None or is_number(metrics["uptime"]))
    assert "lastError" in metrics
    assert metrics["lastError"] is None or isinstance(metrics["lastError"], str)


def assert_overall(overall: Any) -> None:
    """OverallStats: {totalProviders, healthyProviders, totalInvoices, successRate,
    averageResponseTime}, all numbers."""
    assert isinstance(overall, dict)
    for key in ("totalProviders", "healthyProviders", "totalInvoices"):
        assert is_count(overall[key]), key
    assert is_number(overall["successRate"]) and is_number(overall["averageResponseTime"])


def assert_error(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    """An error answer: the status, the exact message, a code beside it."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error and isinstance(body["code"], str)
    return body  # type: ignore[no-any-return]


@pytest.fixture
async def admin(gateway_factory: Callable[..., Any]) -> Any:
    """A demo gateway (the test provider alone) with an admin token."""
    async with gateway_factory(admin_token=TOKEN) as http:
        yield http


async def flush(http: httpx.AsyncClient) -> None:
    """Store the provider calls recorded so far (the recorder batches them)."""
    await http.app.state.gateway.recorder.flush()  # type: ignore[attr-defined]


async def create(http: httpx.AsyncClient, sats: int = 21) -> str:
    """Create an invoice through the public endpoint; its payment hash."""
    response = await http.post("/api/create-invoice", json={"amount": sats, "description": "x"})
    assert response.status_code == 200, response.text
    return response.json()["invoice"]["id"]  # type: ignore[no-any-return]


async def get(http: httpx.AsyncClient, **params: str) -> httpx.Response:
    """GET the monitor with the admin token."""
    return await http.get(URL, params=params, headers=AUTH)


async def post(http: httpx.AsyncClient, body: Any) -> httpx.Response:
    """POST a JSON body to the monitor with the admin token."""
    return await http.post(URL, json=body, headers=AUTH)


# ----------------------------------------------------------------------------- access


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
    get_ = await admin.get(URL, params={"action": "status"}, headers=headers)
    post_ = await admin.post(URL, json={"action": "reset_metrics", "provider": "test"},
                             headers=headers)
    for response in (get_, post_):
        assert response.status_code == 401
        assert response.json() == {"error": "Unauthorized", "code": "unauthorized"}
        assert response.headers["www-authenticate"].startswith("Bearer")


# ----------------------------------------------------------------------------- GET status


async def test_status_of_every_provider_shape(admin: httpx.AsyncClient) -> None:
    """status: {providers: {name: {...ProviderStatus, metrics}}, overall, bestProvider}."""
    await create(admin)
    await flush(admin)
    response = await get(admin, action="status")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"providers", "overall", "bestProvider"}
    assert isinstance(body["providers"], dict) and set(body["providers"]) == {"test"}
    test = body["providers"]["test"]
    assert_provider_status(test, "test")
    assert test["healthy"] is True and test["uptime"] == 100.0 and test["breaker"] == "closed"
    assert_provider_metrics(test["metrics"])
    assert test["metrics"]["totalInvoices"] == 1 and test["metrics"]["successfulInvoices"] == 1
    assert_overall(body["overall"])
    assert body["overall"]["totalProviders"] == 1 and body["overall"]["healthyProviders"] == 1
    assert body["overall"]["totalInvoices"] == 1 and body["overall"]["successRate"] == 100.0
    assert body["bestProvider"] == "test"


async def test_action_defaults_to_status(admin: httpx.AsyncClient) -> None:
    """A GET without action (or with an empty one) answers status."""
    for params in ({}, {"action": ""}):
        response = await admin.get(URL, params=params, headers=AUTH)
        assert response.status_code == 200, response.text
        assert set(response.json()) == {"providers", "overall", "bestProvider"}


async def test_status_without_invoices_has_null_metrics(admin: httpx.AsyncClient) -> None:
    """Before any invoice, a provider's metrics are null and the overall figures are zeros."""
    body = (await get(admin, action="status")).json()
    assert body["providers"]["test"]["metrics"] is None
    assert_provider_status(body["providers"]["test"], "test")
    assert_overall(body["overall"])
    assert body["overall"]["totalInvoices"] == 0 and body["overall"]["successRate"] == 0


async def test_status_of_one_provider_shape(admin: httpx.AsyncClient) -> None:
    """status&provider=p: {provider, status: ProviderStatus, metrics}."""
    await create(admin)
    await flush(admin)
    response = await get(admin, action="status", provider="test")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"provider", "status", "metrics"}
    assert body["provider"] == "test"
    assert_provider_status(body["status"], "test")
    assert "metrics" not in body["status"]
    assert_provider_metrics(body["metrics"])
    assert body["metrics"]["totalInvoices"] == 1


async def test_status_of_an_unknown_provider_is_404(admin: httpx.AsyncClient) -> None:
    """status&provider=<unknown>: 404 Provider not found, with availableProviders."""
    body = assert_error(await get(admin, action="status", provider="nope"), 404,
                        "Provider not found")
    assert body["availableProviders"] == ["test"]


# ----------------------------------------------------------------------------- GET health


async def test_health_probes_now_and_lists_results(admin: httpx.AsyncClient) -> None:
    """health: {message: "Health check completed", results: [ProviderStatus], timestamp}."""
    gateway = admin.app.state.gateway  # type: ignore[attr-defined]
    rounds = gateway.monitoring.health.rounds
    response = await get(admin, action="health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"message", "results", "timestamp"}
    assert body["message"] == "Health check completed" and ISO.match(body["timestamp"])
    assert isinstance(body["results"], list) and len(body["results"]) == 1
    assert_provider_status(body["results"][0], "test")
    assert body["results"][0]["healthy"] is True
    assert gateway.monitoring.health.rounds == rounds + 1


# ----------------------------------------------------------------------------- GET metrics


async def test_metrics_without_provider_is_400(admin: httpx.AsyncClient) -> None:
    """metrics without provider: 400 Provider parameter required for metrics."""
    for params in ({"action": "metrics"}, {"action": "metrics", "provider": ""}):
        assert_error(await admin.get(URL, params=params, headers=AUTH), 400,
                     "Provider parameter required for metrics")


async def test_metrics_without_any_is_404(admin: httpx.AsyncClient) -> None:
    """metrics of a provider with no invoice in the window, or of an unknown one: 404 No
    metrics found for provider."""
    body = assert_error(await get(admin, action="metrics", provider="test"), 404,
                        "No metrics found for provider")
    assert body["code"] == "no_metrics"
    body = assert_error(await get(admin, action="metrics", provider="nope"), 404,
                        "No metrics found for provider")
    assert body["availableProviders"] == ["test"]


async def test_metrics_shape(admin: httpx.AsyncClient) -> None:
    """metrics: {provider, metrics: ProviderMetrics} with percentiles, errors by type, volume."""
    for _ in range(3):
        await create(admin, 5)
    await flush(admin)
    response = await get(admin, action="metrics", provider="test", hours="2")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"provider", "metrics"} and body["provider"] == "test"
    metrics = body["metrics"]
    assert_provider_metrics(metrics)
    assert metrics["totalInvoices"] == 3 and metrics["failedInvoices"] == 0
    assert metrics["lastError"] is None and metrics["averageResponseTime"] > 0
    assert set(metrics["latency"]) == {"mean", "p50", "p95", "p99", "histogram"}
    assert metrics["latency"]["p50"] > 0
    assert sum(b["count"] for b in metrics["latency"]["histogram"]) == 3
    assert metrics["errorsByType"] == {}
    assert sum(h["invoices"] for h in metrics["volume"]["hourly"]) == 3
    assert metrics["window"]["hours"] == 2
    bad = await get(admin, action="metrics", provider="test", hours="-1")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_window"


async def test_lookups_and_probes_are_not_invoices(admin: httpx.AsyncClient) -> None:
    """Status look-ups and probes leave totalInvoices as it is; a create adds one."""
    gateway = admin.app.state.gateway  # type: ignore[attr-defined]
    payment_hash = await create(admin)
    await flush(admin)
    before = (await get(admin, action="metrics", provider="test")).json()["metrics"]
    assert before["totalInvoices"] == 1
    for _ in range(3):
        check = await admin.get("/api/check-invoice", params={"id": payment_hash})
        assert check.json() == {"status": "pending"}
    await post(admin, {"action": "force_health_check"})
    await get(admin, action="health")
    await flush(admin)
    async with gateway.db.connect() as conn:
        lookups = (await conn.execute(select(func.count()).where(
            provider_calls.c.operation == "invoice_status"))).scalar_one()
    assert lookups >= 1  # the look-ups did reach the provider and were recorded (reused after)
    after = (await get(admin, action="metrics", provider="test")).json()["metrics"]
    assert after["totalInvoices"] == 1 and after["successfulInvoices"] == 1
    assert after["calls"]["total"] == before["calls"]["total"] + lookups
    overall = (await get(admin, action="stats")).json()["overall"]
    assert overall["totalInvoices"] == 1
    await create(admin)
    await flush(admin)
    assert (await get(admin, action="metrics", provider="test")).json()["metrics"][
        "totalInvoices"] == 2


# ----------------------------------------------------------------------------- GET stats


async def test_stats_shape(admin: httpx.AsyncClient) -> None:
    """stats: {overall, providers: {name: {status: ProviderStatus, metrics}}, lastUpdated}."""
    before = (await get(admin, action="stats")).json()
    assert before["providers"]["test"]["metrics"] is None
    await create(admin)
    await flush(admin)
    response = await get(admin, action="stats")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"overall", "providers", "lastUpdated"}
    assert_overall(body["overall"])
    assert ISO.match(body["lastUpdated"])
    assert isinstance(body["providers"], dict) and set(body["providers"]) == {"test"}
    entry = body["providers"]["test"]
    assert set(entry) == {"status", "metrics"}
    assert_provider_status(entry["status"], "test")
    assert_provider_metrics(entry["metrics"])
    assert entry["metrics"]["totalInvoices"] == 1 and body["overall"]["totalInvoices"] == 1


# ----------------------------------------------------------------------------- unknown actions


@pytest.mark.parametrize(("method", "action", "available"), [
    ("GET", "explode", GET_ACTIONS),
    ("POST", "explode", POST_ACTIONS),
    ("POST", None, POST_ACTIONS),
    ("POST", ["status"], POST_ACTIONS),
])
async def test_invalid_action_lists_available_actions(
    admin: httpx.AsyncClient, method: str, action: Any, available: list[str]
) -> None:
    """An unknown action (or, on POST, none) is 400 Invalid action with exactly the method's
    availableActions."""
    if method == "GET":
        response = await get(admin, action=action)
    else:
        response = await post(admin, {"action": action} if action is not None else {})
    body = assert_error(response, 400, "Invalid action")
    assert body["availableActions"] == available and body["code"] == "unknown_action"


# ----------------------------------------------------------------------------- POST


async def test_force_health_check_shape(admin: httpx.AsyncClient) -> None:
    """force_health_check: {message: "Forced health check completed", results: [ProviderStatus],
    timestamp}, after a probe round."""
    gateway = admin.app.state.gateway  # type: ignore[attr-defined]
    rounds = gateway.monitoring.health.rounds
    response = await post(admin, {"action": "force_health_check"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"message", "results", "timestamp"}
    assert body["message"] == "Forced health check completed" and ISO.match(body["timestamp"])
    assert isinstance(body["results"], list) and len(body["results"]) == 1
    assert_provider_status(body["results"][0], "test")
    assert gateway.monitoring.health.rounds == rounds + 1


async def test_simulate_payment_runs_the_real_path(admin: httpx.AsyncClient) -> None:
    """simulate_payment creates a test invoice, pays and settles it; figures are measured."""
    response = await post(admin, {"action": "simulate_payment", "provider": "test",
                                  "data": {"amount": 1234}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert {"message", "invoiceId", "provider", "amount", "duration", "success"} <= set(body)
    assert body["message"] == "Payment simulation completed"
    assert body["success"] is True and body["provider"] == "test" and body["amount"] == 1234
    assert isinstance(body["invoiceId"], str) and re.fullmatch(r"[0-9a-f]{64}", body["invoiceId"])
    assert is_number(body["duration"]) and 0 < body["duration"] < 5000
    check = await admin.get("/api/check-invoice", params={"id": body["invoiceId"]})
    assert check.json() == {"status": "settled"}
    await flush(admin)
    metrics = (await get(admin, action="metrics", provider="test")).json()["metrics"]
    assert metrics["successfulInvoices"] == 1


@pytest.mark.parametrize("payload", [
    {},
    {"data": {"amount": 100}},
    {"provider": "", "data": {"amount": 100}},
    {"provider": "test"},
    {"provider": "test", "data": {}},
    {"provider": "test", "data": {"amount": 0}},
    {"provider": "test", "data": [1]},
])
async def test_simulate_payment_needs_provider_and_amount(admin: httpx.AsyncClient,
                                                          payload: dict[str, Any]) -> None:
    """simulate_payment without provider or data.amount: 400 Provider and amount required."""
    assert_error(await post(admin, {"action": "simulate_payment", **payload}), 400,
                 "Provider and amount required")


@pytest.mark.parametrize(("payload", "code"), [
    ({"provider": "test", "data": {"amount": "100"}}, "invalid_amount"),
    ({"provider": "test", "data": {"amount": -5}}, "invalid_amount"),
    ({"provider": "test", "data": {"amount": 10**9}}, "invalid_amount"),
    ({"provider": "lnbits", "data": {"amount": 100}}, "simulation_provider"),
    ({"provider": ["test"], "data": {"amount": 100}}, "simulation_provider"),
])
async def test_simulate_payment_refuses_bad_input(admin: httpx.AsyncClient,
                                                  payload: dict[str, Any], code: str) -> None:
    """A bad amount or a provider other than the test provider is refused with a 400."""
    response = await post(admin, {"action": "simulate_payment", **payload})
    assert response.status_code == 400 and response.json()["code"] == code
    assert isinstance(response.json()["error"], str)
    if code == "simulation_provider":
        assert response.json()["availableProviders"] == ["test"]


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


async def test_reset_metrics_needs_a_provider(admin: httpx.AsyncClient) -> None:
    """reset_metrics without provider: 400 Provider parameter required; unknown: 404."""
    for payload in ({"action": "reset_metrics"}, {"action": "reset_metrics", "provider": ""}):
        assert_error(await post(admin, payload), 400, "Provider parameter required")
    body = assert_error(await post(admin, {"action": "reset_metrics", "provider": "nope"}), 404,
                        "Provider not found")
    assert body["availableProviders"] == ["test"]


async def test_reset_metrics_really_resets(admin: httpx.AsyncClient) -> None:
    """reset_metrics: {message, provider}; the provider's calls and probes are deleted, so it
    has no metrics until its next invoice."""
    await create(admin, 5)
    await flush(admin)
    response = await post(admin, {"action": "reset_metrics", "provider": "test"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["message"], str) and body["provider"] == "test"
    assert body["message"] == "Metrics reset for test"
    assert body["deleted"]["provider_calls"] == 1 and body["deleted"]["health_checks"] >= 1
    assert_error(await get(admin, action="metrics", provider="test"), 404,
                 "No metrics found for provider")
    status = (await get(admin, action="status", provider="test")).json()
    assert_provider_status(status["status"], "test")  # probed again: still a full status
    assert status["metrics"] is None


@pytest.mark.parametrize("content", [b"{nope", b"", b"[1,2]", b'"status"', b"NaN"])
async def test_post_needs_a_json_object(admin: httpx.AsyncClient, content: bytes) -> None:
    """A POST whose body is not a JSON object is a 400 with error and code, never a 500."""
    response = await admin.post(URL, content=content, headers=JSON)
    assert response.status_code == 400
    assert isinstance(response.json()["error"], str) and isinstance(response.json()["code"], str)
