"""Helpers for the back office's web tests: the admin token, orders made and paid through the
public API (demo mode), and signing in."""

from __future__ import annotations

import re
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
