"""The load test scenarios: what one request (or flow) is, and what it leaves behind.

========================  =====================================================  ===========
scenario                  one timed unit                                         objective
========================  =====================================================  ===========
``health``                ``GET /api/lightning/health`` answered 200             health
``create-invoice``        ``POST /api/create-invoice`` answered 200              invoice
``order-and-pay``         ``POST /api/orders``, ``POST /api/demo/pay/<hash>``,   invoice
                          then ``GET /api/orders/<id>`` until paid (demo only)
``webhook``               one LNbits-shaped ``POST /api/webhook/lnbits-payment``  webhook
                          for an order paid at the demo wallet, answered
                          "Payment processed successfully" (demo only)
========================  =====================================================  ===========

The webhook scenario needs the gateway's ``LNBITS_WEBHOOK_SECRET`` (its calls authenticate
with ``X-Api-Key``, the compatibility path; LNbits' own calls carry a per-invoice token the
tester cannot know) and ``ADMIN_TOKEN``: before the timed phase it creates one order per planned
call and pays each at the demo wallet *without* ringing settlement
(``POST /api/admin/loadtests/demo-payments/<hash>``), so each timed call does a webhook's full
work: authenticate, store the event, ask the provider, settle, fulfil, queue the email.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from lngate.loadtest.results import Sample

DESCRIPTION = "lngate load test"
CUSTOMER_EMAIL = "loadtest@example.com"
"""Reserved by RFC 2606: the receipts of demo orders go nowhere."""
INVOICE_EXPIRY_SECONDS = 600
"""Invoices the tester creates expire after ten minutes (the shortest sensible: 60 s is allowed)."""


class ScenarioError(Exception):
    """A scenario cannot run against this gateway (said in one line)."""


@dataclass
class Client:
    """The HTTP session, the gateway's base URL and the credentials a scenario may need."""

    session: aiohttp.ClientSession
    base_url: str
    timeout: float = 10.0
    admin_token: str | None = None
    webhook_secret: str | None = None

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"} if self.admin_token else {}


class Unexpected(Exception):
    """An answer that is not the scenario's success: its kind becomes the sample's error."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


async def _call(client: Client, method: str, path: str, *, expect: int,
                **kwargs: Any) -> Any:
    """One request; its JSON body when the status is ``expect``, else :class:`Unexpected`."""
    timeout = aiohttp.ClientTimeout(total=client.timeout)
    async with client.session.request(method, client.url(path), timeout=timeout,
                                      **kwargs) as response:
        body = await response.read()
        if response.status != expect:
            raise Unexpected(f"http_{response.status}")
        try:
            return json.loads(body) if body else None
        except ValueError:
            raise Unexpected("not_json") from None


async def timed(steps: Callable[[dict[str, float]], Awaitable[None]]) -> Sample:
    """Run a request's steps, timing each (``steps`` fills the dict) and the whole."""
    started = time.perf_counter()
    times: dict[str, float] = {}
    try:
        await steps(times)
    except Unexpected as exc:
        return Sample(time.perf_counter() - started, times, exc.kind)
    except TimeoutError:
        return Sample(time.perf_counter() - started, times, "timeout")
    except aiohttp.ClientError as exc:
        return Sample(time.perf_counter() - started, times, f"connection_{type(exc).__name__}")
    return Sample(time.perf_counter() - started, times)


async def _step(times: dict[str, float], name: str, call: Awaitable[Any]) -> Any:
    started = time.perf_counter()
    result = await call
    times[name] = time.perf_counter() - started
    return result


@dataclass
class Scenario:
    """A scenario: its name, its objective, what it needs, and its timed unit."""

    name: str
    objective: str
    """Which objective applies: ``invoice``, ``webhook`` or ``health``."""
    creates_invoices: bool
    demo_only: bool
    amount_sats: int = 100
    prepared: list[dict[str, Any]] = field(default_factory=list)

    async def prepare(self, client: Client, count: int) -> None:
        """Work done before the timed phase (only the webhook scenario has some)."""

    async def run(self, client: Client, index: int) -> Sample:
        raise NotImplementedError

    def leaves(self, demo: bool, sent: int) -> str:
        """What the run leaves on the gateway (said in the report)."""
        if not self.creates_invoices:
            return "nothing (read-only requests)"
        if not demo:
            return (f"up to {sent} REAL unpaid invoices at the gateway's provider(s), each of "
                    f"{self.amount_sats} sats: invoices cannot be deleted; they expire after "
                    f"{INVOICE_EXPIRY_SECONDS} s, and the reconciler checks each a few times")
        if self.name == "create-invoice":
            return (f"up to {sent} unpaid test-provider invoices in the gateway's database, "
                    "nothing real (no provider was asked); they expire")
        return (f"up to {sent} paid demo orders and their test-provider invoices in the "
                "gateway's database, nothing real (no provider was asked); each queued a "
                f"receipt email to {CUSTOMER_EMAIL}, a reserved domain (RFC 2606) where mail "
                "goes nowhere")


class Health(Scenario):
    async def run(self, client: Client, index: int) -> Sample:
        async def steps(times: dict[str, float]) -> None:
            await _step(times, "health", _call(client, "GET", "/api/lightning/health",
                                               expect=200))
        return await timed(steps)


class CreateInvoice(Scenario):
    async def run(self, client: Client, index: int) -> Sample:
        body = {"amount": self.amount_sats, "description": DESCRIPTION,
                "expiry": INVOICE_EXPIRY_SECONDS}

        async def steps(times: dict[str, float]) -> None:
            await _step(times, "create", _call(client, "POST", "/api/create-invoice",
                                               expect=200, json=body))
        return await timed(steps)


def _order_body(amount_sats: int) -> dict[str, Any]:
    return {"product": "dazpay", "amount": amount_sats, "customer": {"email": CUSTOMER_EMAIL}}


class OrderAndPay(Scenario):
    settle_poll_seconds: float = 0.05

    async def run(self, client: Client, index: int) -> Sample:
        async def steps(times: dict[str, float]) -> None:
            created = await _step(times, "order", _call(
                client, "POST", "/api/orders", expect=201, json=_order_body(self.amount_sats)))
            payment_hash = created["invoice"]["payment_hash"]
            order_id = created["order"]["id"]
            await _step(times, "pay", _call(client, "POST", f"/api/demo/pay/{payment_hash}",
                                            expect=200))
            await _step(times, "settled", self._until_paid(client, order_id))
        return await timed(steps)

    async def _until_paid(self, client: Client, order_id: str) -> None:
        deadline = time.monotonic() + client.timeout
        while True:
            body = await _call(client, "GET", f"/api/orders/{order_id}", expect=200)
            if body["order"]["status"] == "paid":
                return
            if time.monotonic() > deadline:
                raise Unexpected("not_settled_in_time")
            await asyncio.sleep(self.settle_poll_seconds)


class Webhook(Scenario):
    async def prepare(self, client: Client, count: int) -> None:
        if not client.admin_token or not client.webhook_secret:
            raise ScenarioError(
                "the webhook scenario needs --admin-token (ADMIN_TOKEN) to pay its orders at "
                "the demo wallet and --webhook-secret (the gateway's LNBITS_WEBHOOK_SECRET) "
                "to authenticate its calls")
        semaphore = asyncio.Semaphore(8)

        async def one(_: int) -> dict[str, Any]:
            async with semaphore:
                created = await _call(client, "POST", "/api/orders", expect=201,
                                      json=_order_body(self.amount_sats))
                payment_hash = created["invoice"]["payment_hash"]
                await _call(client, "POST",
                            f"/api/admin/loadtests/demo-payments/{payment_hash}", expect=200,
                            headers=client.admin_headers())
                return {"payment_hash": payment_hash, "amount": self.amount_sats * 1000}

        try:
            self.prepared = list(await asyncio.gather(*(one(i) for i in range(count))))
        except Unexpected as exc:
            raise ScenarioError(f"preparing the paid orders failed ({exc.kind}); check "
                                "ADMIN_TOKEN and the gateway's RATE_LIMIT") from None

    async def run(self, client: Client, index: int) -> Sample:
        payment = self.prepared[index] if index < len(self.prepared) else None

        async def steps(times: dict[str, float]) -> None:
            if payment is None:
                raise Unexpected("not_prepared")
            # LNbits 1.x posts a JSON string that holds the payment's JSON
            body = json.dumps(json.dumps({**payment, "memo": DESCRIPTION, "pending": False}))
            answer = await _step(times, "webhook", _call(
                client, "POST", "/api/webhook/lnbits-payment", expect=200, data=body,
                headers={"Content-Type": "application/json",
                         "X-Api-Key": client.webhook_secret or ""}))
            if answer.get("message") != "Payment processed successfully":
                raise Unexpected("not_settled")
        return await timed(steps)


SCENARIOS: dict[str, Callable[[int], Scenario]] = {
    "health": lambda amount: Health("health", "health", creates_invoices=False,
                                    demo_only=False, amount_sats=amount),
    "create-invoice": lambda amount: CreateInvoice("create-invoice", "invoice",
                                                   creates_invoices=True, demo_only=False,
                                                   amount_sats=amount),
    "order-and-pay": lambda amount: OrderAndPay("order-and-pay", "invoice",
                                                creates_invoices=True, demo_only=True,
                                                amount_sats=amount),
    "webhook": lambda amount: Webhook("webhook", "webhook", creates_invoices=True,
                                      demo_only=True, amount_sats=amount),
}
