"""Helpers for the back office's web tests: the admin token, orders made and paid through the
public API (demo mode), signing in, and load test runs recorded through the admin API."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import httpx

from tests.web.payments import order_body

TOKEN = "backoffice-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def new_order(http: httpx.AsyncClient, product: str = "dazbox", *, pay: bool = False,
                    **customer: Any) -> dict[str, Any]:
    """An order made through ``POST /api/orders`` (and paid by the demo wallet if ``pay``)."""
    body = order_body(product)
    body["customer"] = {**body["customer"], **customer}
    response = await http.post("/api/orders", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    if pay:
        payment_hash = created["invoice"]["payment_hash"]
        paid = await http.post(f"/api/demo/pay/{payment_hash}")
        assert paid.json()["settlement"] == "settled", paid.text
    return created


async def login_csrf(http: httpx.AsyncClient) -> dict[str, str]:
    """The sign-in page's CSRF field (the client keeps the cookie that goes with it)."""
    page = await http.get("/admin/login")
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return {"csrf_token": found.group(1)}


async def sign_in(http: httpx.AsyncClient, token: str = TOKEN) -> str:
    """Sign in with the form; the client keeps the cookie. Returns the session's CSRF token."""
    response = await http.post("/admin/login", data={"token": token, **await login_csrf(http)})
    assert response.status_code == 303, response.text
    info = await http.get("/api/admin/session")
    assert info.status_code == 200, info.text
    csrf: str = info.json()["csrfToken"]
    return csrf


def loadtest_report(scenario: str, started_at: datetime, *, passed: bool = True,
                    rate: float = 10, duration_s: float = 30, requests: int = 300,
                    errors: int = 0, p50: float | None = 12.5,
                    p99: float | None = 48.0) -> dict[str, Any]:
    """A load tester's JSON report (the fields the gateway records)."""
    return {"scenario": scenario, "started_at": started_at.isoformat(), "rate": rate,
            "duration_s": duration_s, "requests": requests, "errors": errors,
            "passed": passed, "latency_ms": {"overall": {"p50": p50, "p99": p99}}}


async def record_loadtest_run(http: httpx.AsyncClient, report: dict[str, Any]) -> int:
    """Record ``report`` through ``POST /api/admin/loadtests`` (admin bearer token); its id."""
    response = await http.post("/api/admin/loadtests", json=report, headers=AUTH)
    assert response.status_code == 201, response.text
    run_id: int = response.json()["id"]
    return run_id
