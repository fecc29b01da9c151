"""/metrics in the Prometheus format, /healthz, /readyz and /api/lightning/health."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import structlog
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from lngate.logconfig import configure_logging
from lngate.settings import Settings
from lngate.store import database as database_module
from lngate.store.database import Database
from lngate.web.app import create_app
from tests.web.conftest import make_settings, running_gateway

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


@pytest.fixture
def json_logs() -> Iterator[None]:
    """Production's log format: a background task's failure is one cheap line, not a pretty
    traceback that holds the event loop for seconds (and readiness past its timeout)."""
    configure_logging(verbose=False, fmt="json")
    yield
    structlog.reset_defaults()
    logging.basicConfig(level=logging.WARNING, stream=sys.__stderr__, force=True)


@pytest.mark.usefixtures("json_logs")
async def test_a_refused_write_is_not_ready(gateway_factory: Callable[..., Any]) -> None:
    """When the database answers reads but refuses writes, readyz says not_writable with a 503."""
    async with gateway_factory() as client:
        gateway = client.app.state.gateway  # type: ignore[attr-defined]
        # SQLite: the process's only writing connection (reads have their own)
        async with gateway.db.engine.connect() as conn:
            await conn.execute(text("PRAGMA query_only = ON"))
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["database"] == "not_writable"
        health = await client.get("/api/lightning/health")
        assert health.status_code == 503
        assert health.json()["service"]["database"] == "not_writable"
        async with gateway.db.engine.connect() as conn:
            await conn.execute(text("PRAGMA query_only = OFF"))
        assert (await client.get("/readyz")).status_code == 200


async def test_an_unreachable_database_is_not_ready(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """With PostgreSQL gone, readyz answers 503 (database down) within its timeout."""
    settings = make_settings(tmp_path)
    async with running_gateway(settings) as http:
        gateway = http.app.state.gateway  # type: ignore[attr-defined]
        await gateway.db.aclose()
        gateway.db.engine = Database.from_url("postgresql://nobody@127.0.0.1:9/none").engine
        ready = await http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["database"] == "down"


@asynccontextmanager
async def unmigrated_gateway(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app as a `lngate serve` worker runs it: migrations left to the parent process."""
    app = create_app(settings, migrate=False)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


async def prepared(url: str, *statements: str) -> None:
    db = Database.from_url(url)
    await db.migrate()
    async with db.transaction() as conn:
        for statement in statements:
            await conn.execute(text(statement))
    await db.aclose()


@pytest.mark.parametrize(("statements", "reason"), [
    (["DROP TABLE webhook_events"], "table 'webhook_events' is missing"),
    (["ALTER TABLE webhook_events DROP COLUMN outcome"], "lacks column(s) outcome"),
    (["DELETE FROM alembic_version", "INSERT INTO alembic_version VALUES ('0001')"],
     "schema is at revision 0001"),
    (["DROP TABLE alembic_version"], "no lngate schema"),
])
async def test_a_schema_not_at_the_migration_head_is_not_ready(
    tmp_path, capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
    statements: list[str], reason: str,
) -> None:
    """A database missing a table, a column or a migration answers 503 (database schema)."""
    settings = make_settings(tmp_path)
    await prepared(settings.database_url.get_secret_value(), *statements)
    async with unmigrated_gateway(settings) as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 503 and ready.json()["database"] == "schema"
    logged = capsys.readouterr()
    assert reason in logged.out + logged.err


async def test_the_schema_comparison_is_cached_while_the_revision_holds(
    client: httpx.AsyncClient,
) -> None:
    """After one full comparison, readiness only re-reads the revisions (it is polled)."""
    db = client.app.state.gateway.db  # type: ignore[attr-defined]
    assert (await client.get("/readyz")).status_code == 200
    calls = []
    real = database_module._schema_problem
    database_module._schema_problem = lambda conn: calls.append(1) or real(conn)
    try:
        for _ in range(3):
            assert (await client.get("/readyz")).status_code == 200
        assert calls == []
        db._schema_checked_at = None
        assert (await client.get("/readyz")).status_code == 200
        assert calls == [1]
    finally:
        database_module._schema_problem = real
