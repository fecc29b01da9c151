"""/metrics in the Prometheus format, /healthz, /readyz and /api/lightning/health."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

DEAD_LNBITS = {"lnbits_endpoint": "http://127.0.0.1:9", "lnbits_invoice_key": "k" * 32,
               "lightning_test_mode": False, "health_check_timeout": 0.5}


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Samples by name from a Prometheus exposition."""
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def value(found: dict[str, list[tuple[dict[str, str], float]]], name: str,
          **labels: str) -> float:
    matching = [v for sample_labels, v in found.get(name, [])
                if all(sample_labels.get(k) == want for k, want in labels.items())]
    assert len(matching) == 1, (name, labels, found.get(name))
    return matching[0]


async def test_metrics_exposition_parses_and_counts(client: httpx.AsyncClient) -> None:
    """Requests, provider calls, breaker, health, invoices created/settled and outbox appear."""
    created = await client.post("/api/create-invoice", json={"amount": 21, "description": "x"})
    invoice_id = created.json()["invoice"]["id"]
    await client.post(f"/api/demo/pay/{invoice_id}")
    assert (await client.get("/api/check-invoice", params={"id": invoice_id})).json() == {
        "status": "settled"}
    await client.get("/no/such/path")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    assert value(found, "lngate_http_requests_total", route="/api/create-invoice",
                 method="POST", status="200") == 1
    assert value(found, "lngate_http_requests_total", route="unmatched", method="GET",
                 status="404") == 1
    assert value(found, "lngate_http_request_duration_seconds_count",
                 route="/api/check-invoice", method="GET") == 1
    assert value(found, "lngate_provider_calls_total", provider="test",
                 operation="create_invoice", outcome="success") == 1
    assert value(found, "lngate_provider_call_duration_seconds_count", provider="test",
                 operation="create_invoice") == 1
    assert value(found, "lngate_provider_calls_total", provider="test",
                 operation="invoice_status", outcome="success") >= 1
    assert value(found, "lngate_circuit_breaker_state", provider="test", state="closed") == 1
    assert value(found, "lngate_circuit_breaker_state", provider="test", state="open") == 0
    assert value(found, "lngate_provider_up", provider="test") == 1
    assert value(found, "lngate_invoices_created_total", provider="test") == 1
    assert value(found, "lngate_invoices_settled", provider="test") == 1
    assert value(found, "lngate_outbox_backlog") == 0
    # the scrape itself is counted by the next one
    found = samples((await client.get("/metrics")).text)
    assert value(found, "lngate_http_requests_total", route="/metrics", method="GET",
                 status="200") == 1


async def test_healthz_readyz_and_lightning_health_when_ready(client: httpx.AsyncClient) -> None:
    """A demo gateway is alive, ready, and healthy in the original's shape."""
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert ready.json()["database"] == "up"
    health = await client.get("/api/lightning/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "healthy" and body["timestamp"].endswith("Z")
    assert body["service"]["name"] == "lngate"
    assert body["service"]["providers"]["test"]["healthy"] is True


async def test_every_provider_down_is_not_ready(gateway_factory: Callable[..., Any]) -> None:
    """With the only provider unreachable, readyz and lightning/health answer 503 (down)."""
    async with gateway_factory(**DEAD_LNBITS) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "not_ready"
        assert ready.json()["providers"]["lnbits"]["healthy"] is False
        assert ready.json()["providers"]["lnbits"]["lastError"]
        health = await http.get("/api/lightning/health")
        assert health.status_code == 503 and health.json()["status"] == "down"
        assert (await http.get("/healthz")).status_code == 200
        found = samples((await http.get("/metrics")).text)
        assert value(found, "lngate_provider_up", provider="lnbits") == 0


async def test_database_down_is_not_ready(client: httpx.AsyncClient) -> None:
    """When the database cannot answer, readyz says so with a 503."""
    gateway = client.app.state.gateway  # type: ignore[attr-defined]

    async def broken_ping() -> None:
        raise OSError("database unreachable")

    gateway.db.ping = broken_ping
    ready = await client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["database"] == "down"
