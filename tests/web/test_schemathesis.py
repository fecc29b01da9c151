"""Schema-based fuzzing: schemathesis generates requests from the OpenAPI document for every
operation and checks each answer of a real server against the document (not a server error;
documented status, content type and body).

The gateway runs as ``lngate serve`` in a subprocess (demo mode, SQLite in a temporary folder),
so what is fuzzed is what a client reaches: uvicorn, the middlewares, the routes. Every
operation in the document is fuzzed, none is excluded; the SSE stream gets a short lifetime
(``SSE_MAX_SECONDS``) so that a request for a pending invoice ends within a second. Random ids
rarely name a real invoice or order, so a directed test also checks the answers about real
ones (paid, pending, fulfilled, with metrics) against the document.

The operations must be known at collection time (one test per operation), so the document is
built from an app with the server's settings (building an app opens nothing), and a test checks
that the server serves that very document. (``schemathesis.pytest.from_fixture``, which loads
it from the server's URL at run time, fails under pytest 9.2: it sets ``Function._nodeid``,
which pytest 9.2 no longer has.)

Runs are derandomized (the same examples every time). For a deeper search:
``LNGATE_FUZZ_EXAMPLES=400 LNGATE_FUZZ_RANDOM=1 uv run --frozen pytest tests/web/test_schemathesis.py``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from lngate.settings import Settings
from lngate.web.app import create_app

ADMIN_TOKEN = "fuzz-admin-token-throwaway"
WEBHOOK_SECRET = "fuzz-webhook-secret-throwaway"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
MAX_EXAMPLES = int(os.environ.get("LNGATE_FUZZ_EXAMPLES", "25"))
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES, deadline=None,
    derandomize=os.environ.get("LNGATE_FUZZ_RANDOM") != "1",
    # the generated data is what the schema allows; the server's speed is not under test
    suppress_health_check=list(HealthCheck),
)
REQUEST_TIMEOUT = 15
# A start is a second or two here; a machine busy with other suites has taken over 30 s.
START_SECONDS = 120
CREDENTIALS = {"Authorization": f"Bearer {ADMIN_TOKEN}", "X-Api-Key": WEBHOOK_SECRET}


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gateway_settings(folder: Path) -> dict[str, str]:
    """The fuzzed gateway's settings, by variable name: demo mode, generous rate limits."""
    return {
        "DATABASE_URL": f"sqlite:///{folder / 'gateway.sqlite3'}",
        "LIGHTNING_TEST_MODE": "true",
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "LNBITS_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "RATE_LIMIT": "100000/minute",
        "RATE_LIMIT_CHECK": "100000/minute",
        "RATE_LIMIT_WEBHOOK": "100000/minute",
        "SSE_MAX_SECONDS": "1",
        "SSE_RECHECK_SECONDS": "0.2",
        "EMAIL_FOLDER": str(folder / "mail"),
    }


def server_environment(folder: Path) -> dict[str, str]:
    """Only these settings: the parent's environment could name a real provider."""
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(folder), **gateway_settings(folder)}


def fuzzed_document() -> dict[str, Any]:
    """The OpenAPI document of an app built with the fuzzed gateway's settings."""
    settings = Settings(_env_file=None, **gateway_settings(Path("never-opened")))  # type: ignore[call-arg]
    return create_app(settings).openapi()


DOCUMENT = fuzzed_document()
schema = schemathesis.openapi.from_dict(DOCUMENT)


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``lngate serve`` on a free loopback port, until the module's tests are done."""
    folder = tmp_path_factory.mktemp("fuzzed-gateway")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (folder / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "lngate", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=folder, env=server_environment(folder), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            assert server.poll() is None, (folder / "server.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"the gateway did not start within {START_SECONDS} s"
            time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
        log.close()


@dataclass(frozen=True)
class Seeded:
    """Objects created through the API before fuzzing, so answers about real ones are checked."""

    pending_invoice: str
    paid_invoice: str
    orders: dict[str, str]
    """Order ids: ``dazbox``, ``daznode``, ``dazpay`` (paid) and ``dazpay-pending``."""
    order_hashes: dict[str, str]


@pytest.fixture(scope="module")
def seeded(gateway_url: str) -> Seeded:
    """A pending and a paid invoice, and an order of each product (one left unpaid)."""
    with httpx.Client(base_url=gateway_url, timeout=10) as http:
        def invoice(paid: bool) -> str:
            created = http.post("/api/create-invoice", json={"amount": 21, "description": "x"})
            payment_hash = str(created.json()["invoice"]["id"])
            if paid:
                assert http.post(f"/api/demo/pay/{payment_hash}").status_code == 200
            return payment_hash

        customer = {"email": "alice@example.com", "name": "Alice"}
        bodies = {
            "dazbox": {"product": "dazbox", "quantity": 2, "customer": {**customer, "address": {
                "line1": "1 rue de la Paix", "city": "Paris", "postal_code": "75002",
                "country": "France"}}},
            "daznode": {"product": "daznode", "plan": "yearly",
                        "customer": {**customer, "pubkey": "02" + "ab" * 32}},
            "dazpay": {"product": "dazpay", "amount": 5000, "customer": customer},
            "dazpay-pending": {"product": "dazpay", "amount": 6000, "customer": customer},
        }
        orders, hashes = {}, {}
        for name, body in bodies.items():
            created = http.post("/api/orders", json=body)
            assert created.status_code == 201, created.text
            orders[name] = created.json()["order"]["id"]
            hashes[name] = created.json()["invoice"]["id"]
            if name != "dazpay-pending":
                assert http.post(f"/api/demo/pay/{hashes[name]}").status_code == 200
        return Seeded(invoice(paid=False), invoice(paid=True), orders, hashes)


class Operations:
    """Calls to the live gateway, each checked against the document like a generated one."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.last: Any = None

    def check(self, method: str, path: str, status: int, **request: Any) -> None:
        """Call ``method path`` with credentials; the answer must be ``status`` and documented."""
        case = schema[path][method].Case(**request)
        self.last = case.call_and_validate(base_url=self.url, headers=CREDENTIALS,
                                           checks=CHECKS, timeout=REQUEST_TIMEOUT)
        assert self.last.status_code == status, (method, path, request, self.last.text)


@pytest.fixture
def api(gateway_url: str) -> Operations:
    """Checked calls to the live gateway."""
    return Operations(gateway_url)


def test_real_objects_answer_as_documented(api: Operations, seeded: Seeded) -> None:
    """Answers about real invoices and orders (paid, pending, fulfilled; settled by webhook or
    not; with and without metrics) match the document."""
    for name, order_id in seeded.orders.items():
        api.check("GET", "/api/orders/{order_id}", 200, path_parameters={"order_id": order_id})
    assert api.last.json()["order"]["status"] == "pending"
    for payment_hash, status in ((seeded.pending_invoice, "pending"),
                                 (seeded.paid_invoice, "settled")):
        api.check("GET", "/api/check-invoice", 200, query={"id": payment_hash})
        assert api.last.json() == {"status": status}
        events = "/api/invoices/{payment_hash}/events"
        api.check("GET", events, 200, path_parameters={"payment_hash": payment_hash})
        assert f'"status":"{status}"' in api.last.text
    webhook = "/api/webhook/lnbits-payment"
    api.check("POST", webhook, 409, body={"payment_hash": seeded.pending_invoice})
    api.check("POST", webhook, 200, body={"payment_hash": seeded.paid_invoice})
    assert api.last.json()["order_id"] is None
    api.check("POST", webhook, 200, body={"payment_hash": seeded.order_hashes["dazbox"]})
    assert api.last.json()["order_id"] == seeded.orders["dazbox"]
    monitor = "/api/admin/lightning-monitor"
    for query in ({}, {"provider": "test"}, {"action": "health"}, {"action": "stats"},
                  {"action": "metrics", "provider": "test"}, {"hours": "0.5"}):
        api.check("GET", monitor, 200, query=query)
    assert api.last.json()["providers"]["test"]["metrics"]["totalInvoices"] >= 6
    for query, status in (({"provider": "nobody"}, 404), ({"action": "metrics"}, 400),
                          ({"action": "nothing"}, 400), ({"hours": "0"}, 400)):
        api.check("GET", monitor, status, query=query)
    for body, status in (
        ({"action": "simulate_payment", "provider": "test", "data": {"amount": 7}}, 200),
        ({"action": "force_health_check"}, 200),
        ({"action": "simulate_payment", "provider": "lnbits", "data": {"amount": 7}}, 400),
        ({"action": "reset_metrics", "provider": "nobody"}, 404),
        ({"action": "reset_metrics", "provider": "test"}, 200),
    ):
        api.check("POST", monitor, status, body=body)
    api.check("GET", monitor, 404, query={"action": "metrics", "provider": "test"})
    api.check("POST", "/api/demo/pay/{payment_hash}", 200,
              path_parameters={"payment_hash": seeded.pending_invoice})


def test_the_server_serves_the_fuzzed_document(gateway_url: str) -> None:
    """The running gateway's /openapi.json is the document the requests are generated from."""
    assert httpx.get(f"{gateway_url}/openapi.json", timeout=10).json() == DOCUMENT


@FUZZ_SETTINGS
@schema.parametrize()
def test_every_operation_answers_as_documented(case: schemathesis.Case, gateway_url: str,
                                               seeded: Seeded) -> None:
    """With credentials, every generated request gets a documented status, content type and
    body, and never a server error."""
    case.call_and_validate(base_url=gateway_url, headers=CREDENTIALS, checks=CHECKS,
                           timeout=REQUEST_TIMEOUT)


@FUZZ_SETTINGS
@schema.include(tag=["admin", "webhook"]).parametrize()
def test_authenticated_operations_refuse_anonymous_callers(case: schemathesis.Case,
                                                           gateway_url: str) -> None:
    """Without the admin token or the webhook's credentials, every request to the admin API
    or the webhook is a documented 401."""
    response = case.call(base_url=gateway_url, timeout=REQUEST_TIMEOUT)
    case.validate_response(response, checks=CHECKS)
    if case.method.upper() == case.operation.method.upper():  # not a probe of another method
        assert response.status_code == 401, response.text
