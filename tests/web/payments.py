"""Helpers for the payment tests of the web layer: order bodies, webhook calls, table dumps."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import select

from lngate.store import Database
from lngate.store.tables import invoices, orders, outbox, shipments, subscriptions, webhook_events

WEBHOOK_SECRET = "test-webhook-secret-0123456789abcdef"
ADDRESS = {"line1": "12 rue des Lilas", "city": "Lyon", "postal_code": "69001",
           "country": "France"}


def order_body(product: str = "dazbox", **extra: Any) -> dict[str, Any]:
    """A valid create-order body for ``product``."""
    customer: dict[str, Any] = {"email": "alice@example.com", "name": "Alice"}
    if product == "dazbox":
        customer["address"] = dict(ADDRESS)
    body: dict[str, Any] = {"product": product, "customer": customer}
    if product == "dazpay":
        body["amount"] = 2100
    body.update(extra)
    return body


def webhook_target(url: str) -> tuple[str, dict[str, str]]:
    """The path and query parameters of a webhook URL given to LNbits."""
    parts = urlsplit(url)
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


def lnbits_body(payment: dict[str, Any]) -> bytes:
    """The body exactly as LNbits 1.6.2 sends it: a JSON string containing the payment JSON."""
    return json.dumps(json.dumps(payment)).encode()


async def post_webhook(
    http: httpx.AsyncClient, body: bytes, *, params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None, path: str = "/api/webhook/lnbits-payment",
) -> httpx.Response:
    """POST a webhook body the way LNbits does (``Content-Type: application/json``)."""
    return await http.post(path, content=body, params=params,
                           headers={"Content-Type": "application/json",
                                    "User-Agent": "LNbits/1.6.2", **(headers or {})})


async def dump(db: Database) -> dict[str, list[dict[str, Any]]]:
    """Every row of the payment tables (everything a webhook could change)."""
    tables = {"invoices": invoices, "orders": orders, "shipments": shipments,
              "subscriptions": subscriptions, "outbox": outbox}
    result: dict[str, list[dict[str, Any]]] = {}
    async with db.connect() as conn:
        for name, table in tables.items():
            rows = await conn.execute(select(table).order_by(*table.primary_key.columns))
            result[name] = [dict(r._mapping) for r in rows]
    for row in result["invoices"]:
        row.pop("claimed_until")  # the reconciler's lease, not payment state
        row.pop("next_check_at")  # the reconciler's schedule, likewise
    # what was queued, not how its delivery (by the outbox worker, concurrently) is going
    result["outbox"] = [{k: row[k] for k in ("id", "order_id", "kind", "recipient", "payload")}
                        for row in result["outbox"]]
    return result


async def events(db: Database) -> list[dict[str, Any]]:
    """The stored webhook events, oldest first."""
    async with db.connect() as conn:
        rows = await conn.execute(select(webhook_events).order_by(webhook_events.c.id))
        return [dict(r._mapping) for r in rows]


async def poll_status(http: httpx.AsyncClient, invoice_id: str, *, until: str = "settled",
                      seconds: float = 6.0) -> str:
    """Poll check-invoice as a checkout page does, until ``until`` or ``seconds`` pass; the
    last status (a "not paid yet" answer is reused for CHECK_REUSE_SECONDS)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        status = str((await http.get("/api/check-invoice", params={"id": invoice_id})).json()
                     ["status"])
        if status == until or asyncio.get_running_loop().time() >= deadline:
            return status
        await asyncio.sleep(0.25)
