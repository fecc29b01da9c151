"""GET /api/invoices/{hash}/events: the status at once, the change when it happens (this process
or another), heartbeats, and a bounded lifetime."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import httpx

from lngate.store import Database
from lngate.store.settlement import mark_paid
from tests.web.payments import order_body


def parse(stream: str) -> list[tuple[str, dict]]:
    """The (event, data) pairs of an SSE body."""
    found = []
    for block in stream.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines()
                     if line and not line.startswith(":") and ": " in line)
        if "event" in lines:
            found.append((lines["event"], json.loads(lines["data"])))
    return found


async def new_invoice(http: httpx.AsyncClient) -> str:
    created = await http.post("/api/orders", json=order_body("dazpay"))
    return created.json()["invoice"]["payment_hash"]


async def test_stream_sends_pending_then_settled_and_ends(gateway_factory) -> None:  # type: ignore[no-untyped-def]
    """A waiting page gets "pending" at once and "settled" as soon as settlement commits."""
    async with gateway_factory(sse_recheck_seconds=30) as http:
        payment_hash = await new_invoice(http)
        started = time.monotonic()
        stream = asyncio.create_task(http.get(f"/api/invoices/{payment_hash}/events"))
        await asyncio.sleep(0.3)
        await http.post(f"/api/demo/pay/{payment_hash}")
        await http.get("/api/check-invoice", params={"id": payment_hash})
        response = await asyncio.wait_for(stream, 10)
        elapsed = time.monotonic() - started
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert parse(response.text) == [("status", {"status": "pending", "paymentHash": payment_hash}),
                                    ("status", {"status": "settled", "paymentHash": payment_hash})]
    assert elapsed < 5  # woken by the settlement, not by the 30 s re-check


async def test_settlement_by_another_process_is_seen_by_the_recheck(gateway_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A settlement written by another process (no in-process notice) reaches the stream."""
    async with gateway_factory(sse_recheck_seconds=0.2) as http:
        payment_hash = await new_invoice(http)
        stream = asyncio.create_task(http.get(f"/api/invoices/{payment_hash}/events"))
        await asyncio.sleep(0.3)
        other = Database.from_url(f"sqlite:///{tmp_path / 'gateway.sqlite3'}")
        try:
            async with other.transaction() as conn:
                assert await mark_paid(conn, payment_hash, paid_at=datetime.now(UTC), late=False)
        finally:
            await other.aclose()
        response = await asyncio.wait_for(stream, 10)
    assert [e[1]["status"] for e in parse(response.text)] == ["pending", "settled"]


async def test_final_invoice_gets_one_event(gateway_factory) -> None:  # type: ignore[no-untyped-def]
    """An invoice already settled gets its status once and the stream ends."""
    async with gateway_factory() as http:
        payment_hash = await new_invoice(http)
        await http.post(f"/api/demo/pay/{payment_hash}")
        await http.get("/api/check-invoice", params={"id": payment_hash})
        response = await http.get(f"/api/invoices/{payment_hash}/events")
    assert parse(response.text) == [("status", {"status": "settled", "paymentHash": payment_hash})]


async def test_heartbeats_and_bounded_lifetime(gateway_factory) -> None:  # type: ignore[no-untyped-def]
    """An idle stream sends keep-alive comments and ends with a timeout event."""
    async with gateway_factory(sse_recheck_seconds=0.1, sse_heartbeat_seconds=0.2,
                               sse_max_seconds=1.0) as http:
        payment_hash = await new_invoice(http)
        started = time.monotonic()
        response = await http.get(f"/api/invoices/{payment_hash}/events")
        elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 3
    assert response.text.count(": keep-alive") >= 2
    assert [e[0] for e in parse(response.text)] == ["status", "timeout"]


async def test_stream_headers_and_bytes_on_the_wire(gateway_factory) -> None:  # type: ignore[no-untyped-def]
    """The stream's headers (CORS for a shop's origin included) and bytes, exactly: the SSE
    retry hint, the events, the keep-alive comments."""
    async with gateway_factory(sse_recheck_seconds=0.1, sse_heartbeat_seconds=0.2,
                               sse_max_seconds=0.5) as http:
        payment_hash = await new_invoice(http)
        response = await http.get(f"/api/invoices/{payment_hash}/events",
                                  headers={"Origin": "https://shop.example"})
    assert response.status_code == 200
    assert response.headers.raw == [
        (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no"),
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"access-control-allow-origin", b"*"),
        (b"access-control-expose-headers", b"Retry-After, Idempotent-Replayed"),
        (b"vary", b"Origin"),
    ]
    keep_alives = response.text.count(": keep-alive\n\n")  # 2, fewer on a slow machine
    assert keep_alives >= 1
    assert response.text == (
        'retry: 3000\n\nevent: status\ndata: {"status":"pending","paymentHash":"'
        + payment_hash + '"}\n\n' + ": keep-alive\n\n" * keep_alives
        + 'event: timeout\ndata: {"status":"pending"}\n\n')


async def test_unknown_or_malformed_hash_is_404(client: httpx.AsyncClient) -> None:
    """A hash the gateway never issued, or not a hash at all, is a 404 JSON error."""
    for value in ("ab" * 32, "nothex"):
        response = await client.get(f"/api/invoices/{value}/events")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
