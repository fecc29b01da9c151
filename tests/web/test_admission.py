"""Admission at the door: creates in flight are bounded, the excess refused fast with 503."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest

from lngate.web.admission import Admission

Message = dict[str, Any]


class HeldApp:
    """An ASGI app whose requests stay in flight until released (or fail when told)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = 0
        self.fail = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.entered += 1
        await self.release.wait()
        if self.fail:
            raise RuntimeError("bug in the route")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


async def call(app: Any, method: str, path: str) -> list[Message]:
    """One request through ``app``; the messages it sent."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": []}
    await app(scope, receive, send)
    return sent


async def fill(admission: Admission, inner: HeldApp, count: int) -> list[asyncio.Task[Any]]:
    tasks = [asyncio.create_task(call(admission, "POST", "/api/create-invoice"))
             for _ in range(count)]
    while inner.entered < count:
        await asyncio.sleep(0)
    return tasks


async def test_creates_beyond_the_limit_are_refused_with_retry_after() -> None:
    """With ``limit`` creates in flight, the next one gets 503, Retry-After and the public
    error shape at once; once one finishes, creates are served again."""
    inner = HeldApp()
    admission = Admission(inner, limit=2)
    held = await fill(admission, inner, 2)
    assert admission.in_flight == 2

    start, body = await call(admission, "POST", "/api/orders")
    assert start["status"] == 503
    headers = dict(start["headers"])
    assert headers[b"retry-after"] == b"1" and headers[b"content-type"] == b"application/json"
    answer = orjson.loads(body["body"])
    assert answer == {"error": "Service momentanément surchargé, réessayez dans un instant",
                      "code": "overloaded", "retryAfter": 1}
    assert admission.refused == 1 and inner.entered == 2  # never reached the app

    inner.release.set()
    for task in held:
        assert (await task)[0]["status"] == 200
    assert admission.in_flight == 0
    assert (await call(admission, "POST", "/api/create-invoice"))[0]["status"] == 200


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/check-invoice"), ("POST", "/api/webhook/lnbits-payment"),
    ("GET", "/api/orders"), ("OPTIONS", "/api/create-invoice"), ("GET", "/metrics"),
])
async def test_other_requests_pass_even_when_full(method: str, path: str) -> None:
    """Only POSTs to the create endpoints are counted: the rest passes, even at the limit."""
    inner = HeldApp()
    admission = Admission(inner, limit=1)
    held = await fill(admission, inner, 1)
    other = asyncio.create_task(call(admission, method, path))
    while inner.entered < 2:
        await asyncio.sleep(0)
    inner.release.set()
    assert (await other)[0]["status"] == 200
    await asyncio.gather(*held)
    assert admission.refused == 0


async def test_a_failing_create_gives_its_place_back() -> None:
    """A create that raises still leaves the count, so errors cannot fill the door."""
    inner = HeldApp()
    inner.fail = True
    inner.release.set()
    admission = Admission(inner, limit=1)
    with pytest.raises(RuntimeError):
        await call(admission, "POST", "/api/create-invoice")
    assert admission.in_flight == 0


async def test_limit_zero_turns_admission_off() -> None:
    """``MAX_CREATES_IN_FLIGHT=0``: nothing is counted nor refused."""
    inner = HeldApp()
    admission = Admission(inner, limit=0)
    held = await fill(admission, inner, 5)
    assert admission.in_flight == 0 and admission.refused == 0
    inner.release.set()
    await asyncio.gather(*held)


async def test_the_app_refuses_with_cors_headers_for_the_shop(
        gateway_factory: Callable[..., Any]) -> None:
    """In the real app, a create held in flight (its body still arriving) fills a limit of
    1: the next create is refused before any route runs, with the CORS headers a shop's page
    needs to read the 503 and its Retry-After; the first create then succeeds."""
    body_gate = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b'{"amount": 21, '
        await body_gate.wait()
        yield b'"description": "DazBox"}'

    async with gateway_factory(max_creates_in_flight=1) as http:
        first = asyncio.create_task(http.post(
            "/api/create-invoice", content=slow_body(),
            headers={"content-type": "application/json"}))
        for _ in range(200):
            await asyncio.sleep(0.005)
            refused = await http.post("/api/create-invoice", json={"amount": 21,
                                      "description": "DazBox"},
                                      headers={"Origin": "https://shop.example.com"})
            if refused.status_code == 503:
                break
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.headers["access-control-allow-origin"] == "*"
        assert refused.json()["code"] == "overloaded"
        # each refusal is answered afresh: the same headers, none repeated or grown
        again = await http.post("/api/create-invoice", json={"amount": 21,
                                "description": "DazBox"},
                                headers={"Origin": "https://shop.example.com"})
        assert again.status_code == 503
        assert again.headers.multi_items() == refused.headers.multi_items()
        assert again.headers["vary"] == "Origin"
        body_gate.set()
        assert (await first).status_code == 200
        metrics = (await http.get("/metrics")).text
        assert 'lngate_admission_refused_total{path="/api/create-invoice"} 2.0' in metrics
