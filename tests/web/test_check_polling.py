"""Polling cannot hammer providers: check-invoice coalesces concurrent checks of one invoice,
reuses a fresh "not paid yet" for a short interval, and is rate-limited per client IP; a
doorbell (the demo wallet here, a webhook or notification in production) still settles at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from lngate.bootstrap import Gateway


def count_lookups(gateway: Gateway) -> list[str]:
    """Record every status look-up the test provider answers (the provider stays real)."""
    calls: list[str] = []
    provider = gateway.test_provider
    answer = provider.invoice_status

    async def counted(payment_hash: str) -> Any:
        calls.append(payment_hash)
        await asyncio.sleep(0.05)  # an upstream that takes a moment, so polls overlap
        return await answer(payment_hash)

    provider.invoice_status = counted  # type: ignore[method-assign]
    return calls


async def new_invoice(http: httpx.AsyncClient) -> str:
    response = await http.post("/api/create-invoice", json={"amount": 5, "description": "x"})
    return str(response.json()["invoice"]["id"])


async def test_100_concurrent_polls_cost_one_lookup(gateway_factory: Callable[..., Any]) -> None:
    """100 concurrent polls of one pending invoice ask its provider once."""
    async with gateway_factory() as http:
        lookups = count_lookups(http.app.state.gateway)  # type: ignore[attr-defined]
        invoice_id = await new_invoice(http)
        answers = await asyncio.gather(*(
            http.get("/api/check-invoice", params={"id": invoice_id}) for _ in range(100)))
    assert {a.json()["status"] for a in answers} == {"pending"}
    assert len(lookups) == 1


async def test_sequential_polls_reuse_a_fresh_answer(gateway_factory: Callable[..., Any]) -> None:
    """Polls within CHECK_REUSE_SECONDS reuse the last answer; after it, the provider is asked
    again."""
    async with gateway_factory(check_reuse_seconds=2.0) as http:
        lookups = count_lookups(http.app.state.gateway)  # type: ignore[attr-defined]
        invoice_id = await new_invoice(http)
        for _ in range(30):
            await http.get("/api/check-invoice", params={"id": invoice_id})
        assert len(lookups) == 1
        await asyncio.sleep(2.1)
        await http.get("/api/check-invoice", params={"id": invoice_id})
    assert len(lookups) == 2


async def test_a_doorbell_settles_at_once_despite_a_fresh_pending_answer(
    gateway_factory: Callable[..., Any],
) -> None:
    """A payment's doorbell is not held back by the reused answer: the next poll says settled."""
    async with gateway_factory(check_reuse_seconds=60) as http:
        invoice_id = await new_invoice(http)
        first = await http.get("/api/check-invoice", params={"id": invoice_id})
        await http.post(f"/api/demo/pay/{invoice_id}")
        second = await http.get("/api/check-invoice", params={"id": invoice_id})
    assert first.json() == {"status": "pending"} and second.json() == {"status": "settled"}


async def test_check_invoice_is_rate_limited_per_client(gateway_factory: Callable[..., Any]) -> None:
    """Past RATE_LIMIT_CHECK, check-invoice answers 429 with Retry-After."""
    async with gateway_factory(rate_limit_check="5/minute") as http:
        answers = [await http.get("/api/check-invoice", params={"id": "ab" * 32})
                   for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert int(answers[-1].headers["retry-after"]) >= 1
    assert answers[-1].json()["code"] == "rate_limited"


async def test_webhook_and_event_stream_are_rate_limited(gateway_factory: Callable[..., Any]) -> None:
    """The webhook (RATE_LIMIT_WEBHOOK) and the event stream (RATE_LIMIT_CHECK) refuse a
    flood from one client with 429."""
    async with gateway_factory(rate_limit_webhook="3/minute", rate_limit_check="3/minute") as http:
        hooks = [await http.post("/api/webhook/lnbits-payment", content=b"{}") for _ in range(4)]
        streams = [await http.get(f"/api/invoices/{'ab' * 32}/events") for _ in range(4)]
    assert [h.status_code for h in hooks] == [401, 401, 401, 429]
    assert [s.status_code for s in streams] == [404, 404, 404, 429]
