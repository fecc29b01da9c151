"""The dashboard's live stream (``GET /admin/events``) against a real HTTP server: every
section at once, then what a payment or a probe changes, pushed at once (not at the next
periodic refresh); a session that ends ends the stream; its lifetime is bounded."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from lngate.services.clock import utcnow
from lngate.web import dashboard_live
from lngate.web.dashboard_live import REFRESH_SECONDS, SECTIONS
from tests.doubles.lnbits_double import FAKE_NODE_PUBKEY, LNbitsDouble, Reply
from tests.web.backoffice import TOKEN, loadtest_report, new_order, record_loadtest_run, sign_in
from tests.web.live import serve_gateway


@dataclass
class Received:
    """The events of one stream, with when each arrived (seconds since it opened)."""

    opened_at: float = field(default_factory=time.monotonic)
    events: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    async def until(self, predicate: Callable[[str, dict[str, Any]], bool], *,
                    timeout: float = 10.0, after: int = 0) -> tuple[float, str, dict[str, Any]]:
        """The first event from index ``after`` on that matches ``predicate``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events[after:]:
                if predicate(event[1], event[2]):
                    return event
            await asyncio.sleep(0.02)
        raise TimeoutError(f"no such event in {[(e[0], e[1], e[2].get('id')) for e in self.events]}")


@asynccontextmanager
async def dashboard_events(http: httpx.AsyncClient) -> AsyncIterator[Received]:
    """Read ``/admin/events`` in the background while the block runs."""
    received = Received()

    async def read() -> None:
        async with http.stream("GET", "/admin/events", timeout=60) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            name = None
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: ") and name:
                    received.events.append((time.monotonic() - received.opened_at, name,
                                            json.loads(line[6:])))
                    name = None
        received.ended.set()

    task = asyncio.create_task(read())
    try:
        yield received
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def section(name: str, contains: str = "") -> Callable[[str, dict[str, Any]], bool]:
    return lambda event, data: (event == "section" and data["id"] == name
                                and contains in data["html"])


async def test_stream_sends_every_section_then_a_payment_at_once(tmp_path: Path) -> None:
    """The stream starts with every section; a paid order then shows in the latest orders
    and invoices within a moment (under a second here), before the periodic refresh."""
    async with serve_gateway(tmp_path, admin_token=TOKEN, health_check_interval=3600) as live:
        await sign_in(live.http)
        async with dashboard_events(live.http) as received:
            for name in SECTIONS:
                await received.until(section(name))
            first = len(received.events)
            paid_at = time.monotonic()
            created = await new_order(live.http, pay=True)
            order_id = created["order"]["id"]
            orders = await received.until(section("orders", order_id), after=first)
            invoices = await received.until(section("invoices", created["invoice"]["payment_hash"]),
                                            after=first)
        delay = received.opened_at + max(orders[0], invoices[0]) - paid_at
        assert delay < 2.5 and max(orders[0], invoices[0]) < REFRESH_SECONDS
        assert "payée" in orders[2]["html"]


async def test_a_recorded_load_test_is_pushed_to_the_open_dashboard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run recorded on this instance (``POST /api/admin/loadtests``) is pushed into the open
    dashboard's load test panel by its own signal: the periodic refresh is pushed out of the
    test's reach, so only that signal can bring it."""
    monkeypatch.setattr(dashboard_live, "REFRESH_SECONDS", 3600.0)
    async with serve_gateway(tmp_path, admin_token=TOKEN, health_check_interval=3600) as live:
        await sign_in(live.http)
        async with dashboard_events(live.http) as received:
            empty = await received.until(section("loadtests", "lngate loadtest health"))
            run_id = await record_loadtest_run(live.http, loadtest_report(
                "create-invoice", utcnow(), passed=False))
            pushed = await received.until(section("loadtests", f'data-run="{run_id}"'),
                                          after=received.events.index(empty) + 1)
        assert 'data-passed="no"' in pushed[2]["html"]


async def test_a_failing_probe_turns_the_card_red_at_once(tmp_path: Path) -> None:
    """A probe that finds the provider down is pushed to the open dashboard at once (its card
    says "down" with the error), and the next healthy probe turns it back "up"."""
    async with LNbitsDouble() as double:
        settings = {"lnbits_endpoint": double.url, "lnbits_invoice_key": double.invoice_key,
                    "lnbits_node_pubkey": FAKE_NODE_PUBKEY, "lightning_test_mode": False,
                    "admin_token": TOKEN, "health_check_interval": 3600}
        async with serve_gateway(tmp_path, **settings) as live:
            await sign_in(live.http)
            async with dashboard_events(live.http) as received:
                await received.until(section("providers", 'data-health="up"'))
                double.always("wallet", Reply(500, json={"detail": "database is locked"}))
                probed_at = time.monotonic()
                await live.gateway.monitoring.health.run_once()
                down = await received.until(section("providers", 'data-health="down"'))
                assert received.opened_at + down[0] - probed_at < 2.0
                assert "HTTP 500" in down[2]["html"]
                summary = await received.until(section("summary", "0 / 1"))
                assert summary[0] < REFRESH_SECONDS
                double.always("wallet", None)
                await live.gateway.monitoring.health.run_once()
                await received.until(section("providers", 'data-health="up"'),
                                     after=received.events.index(down))


async def test_signing_out_ends_an_open_stream(tmp_path: Path) -> None:
    """An open stream whose session is signed out ends with ``signed-out`` (within the
    refresh period), and reconnecting is refused."""
    async with serve_gateway(tmp_path, admin_token=TOKEN, health_check_interval=3600) as live:
        csrf = await sign_in(live.http)
        cookie = live.http.cookies["lngate_admin"]
        async with dashboard_events(live.http) as received:
            await received.until(section("orders"))
            out = await live.http.post("/admin/logout", data={"csrf_token": csrf})
            assert out.status_code == 303
            await received.until(lambda event, _data: event == "signed-out",
                                 timeout=REFRESH_SECONDS + 3)
            await asyncio.wait_for(received.ended.wait(), 5)
        again = await live.http.get("/admin/events", headers={"Cookie": f"lngate_admin={cookie}"})
        assert again.status_code == 401


async def test_stream_lifetime_is_bounded(tmp_path: Path) -> None:
    """Past SSE_MAX_SECONDS the server ends the stream (the browser reconnects by itself)."""
    async with serve_gateway(tmp_path, admin_token=TOKEN, health_check_interval=3600,
                             sse_max_seconds=1) as live:
        await sign_in(live.http)
        started = time.monotonic()
        async with dashboard_events(live.http) as received:
            await asyncio.wait_for(received.ended.wait(), 8)
        assert time.monotonic() - started < 8
        assert {data["id"] for event, data in ((e[1], e[2]) for e in received.events)
                if event == "section"} == set(SECTIONS)
