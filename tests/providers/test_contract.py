"""One contract for every provider: each behaviour is one test, run for every contract target.

The rows are listed in ``tests/providers/targets/__init__.py`` (one module per provider). A row
runs against its real peer; the failure modes it can stage (``Stage``) run against the same
peer, a TCP proxy or a double, as the row decides. The contract itself is written down in
``lngate.providers.base``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import bolt11
import pytest
from aiohttp import web

from lngate.domain import PaymentState
from lngate.errors import (
    ProviderAuthFailed,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
)
from lngate.providers.base import MAX_EXPIRY_SECONDS, MAX_MEMO_BYTES, Provider
from tests.providers.targets import TARGETS
from tests.providers.targets.base import Call, ContractTarget, Garbage, Stage

SLACK = 1.0
"""Seconds a failing call may take beyond its timeout on a loaded machine."""
PAID_AT_SLACK = timedelta(seconds=2)
"""Payment times have a resolution of a second at some providers."""


def rows(stage: Stage | None = None) -> list[Any]:
    """The targets (those able to stage ``stage``), as pytest params with their markers."""
    return [
        pytest.param(t, id=t.id, marks=[getattr(pytest.mark, m) for m in t.marks])
        for t in TARGETS
        if stage is None or stage in t.stages
    ]


@pytest.fixture
async def target(request: pytest.FixtureRequest) -> AsyncIterator[ContractTarget]:
    """The row under test; everything it opened is closed afterwards."""
    async with AsyncExitStack() as stack:
        yield request.param(request, stack)


def every(stage: Stage | None = None) -> Any:
    return pytest.mark.parametrize("target", rows(stage), indirect=True)


def a_hash() -> str:
    return os.urandom(32).hex()


async def timed(call: Any) -> tuple[Any, float]:
    """Await ``call``; return (result or exception, seconds)."""
    started = time.monotonic()
    try:
        result = await call
    except Exception as exc:  # the test inspects it
        result = exc
    return result, time.monotonic() - started


# ------------------------------------------------------------------------------- shape


@every()
async def test_fits_the_protocol_and_declares_balance_honestly(target: ContractTarget) -> None:
    """The provider is a Provider; its health carries a balance exactly when it declares one,
    and it has a paid stream exactly when it declares one."""
    provider = await target.provider()
    assert isinstance(provider, Provider)
    report = await provider.health()
    assert report.healthy, report.error
    assert report.error is None and report.response_time_ms >= 0
    if provider.capabilities.balance:
        assert isinstance(report.balance_msat, int) and report.balance_msat >= 0
    else:
        assert report.balance_msat is None
    assert hasattr(provider, "paid_invoices") == provider.capabilities.paid_stream


@every()
async def test_create_matches_the_request(target: ContractTarget) -> None:
    """A created invoice decodes to the requested amount, description and expiry, and to the
    payment hash and amount the provider reports."""
    provider = await target.provider()
    invoice = await provider.create_invoice(amount_msat=21_000, memo="contract order 21",
                                            expiry=600)
    decoded = bolt11.decode(invoice.bolt11)
    assert decoded.amount_msat == invoice.amount_msat == 21_000
    assert decoded.description == "contract order 21"
    assert decoded.expiry == 600
    assert decoded.payment_hash == invoice.payment_hash
    assert invoice.provider_ref


@every()
async def test_unknown_invoice_is_none(target: ContractTarget) -> None:
    """A payment hash the provider never issued is None, not an error."""
    provider = await target.provider()
    assert await provider.invoice_status(a_hash()) is None


@every()
async def test_invoice_is_pending_then_paid_with_proof_and_time(target: ContractTarget) -> None:
    """A new invoice is pending, without a preimage (one is no proof while unpaid); once paid
    it is PAID for its amount, with a preimage whose sha256 is the payment hash and a
    timezone-aware payment time near the payment."""
    provider = await target.provider()
    invoice = await provider.create_invoice(amount_msat=5_000, memo="pay me", expiry=600)
    pending = await provider.invoice_status(invoice.payment_hash)
    assert pending is not None and pending.state is PaymentState.PENDING
    assert pending.preimage is None and pending.paid_at is None

    before = datetime.now(UTC)
    await target.pay(invoice)
    after = datetime.now(UTC)
    paid = await provider.invoice_status(invoice.payment_hash)

    assert paid is not None and paid.state is PaymentState.PAID
    assert paid.amount_msat == 5_000
    assert paid.preimage is not None
    assert hashlib.sha256(bytes.fromhex(paid.preimage)).hexdigest() == invoice.payment_hash
    assert paid.paid_at is not None and paid.paid_at.tzinfo is not None
    assert before - PAID_AT_SLACK <= paid.paid_at <= after + PAID_AT_SLACK


@every()
async def test_declared_notifications_arrive(target: ContractTarget) -> None:
    """A provider declaring a webhook calls it, and one declaring a paid stream yields the
    hash, when an invoice is paid (neither declared: nothing to check)."""
    provider = await target.provider()
    caps = provider.capabilities
    received: asyncio.Queue[bytes] = asyncio.Queue()
    webhook_url = None
    async with AsyncExitStack() as stack:
        if caps.webhook:
            webhook_url = await stack.enter_async_context(_webhook_sink(received))
        stream = None
        if caps.paid_stream:
            stream = provider.paid_invoices()  # type: ignore[attr-defined]
            first = asyncio.ensure_future(anext(stream))
            stack.push_async_callback(stream.aclose)
            stack.push_async_callback(_cancel, first)
            await asyncio.sleep(0.3)  # let the subscription reach the relay
        invoice = await provider.create_invoice(amount_msat=2_000, memo="notify me",
                                                expiry=600, webhook_url=webhook_url)
        await target.pay(invoice)
        if caps.webhook:
            body = await asyncio.wait_for(received.get(), 10)
            assert invoice.payment_hash.encode() in body
        if stream is not None:
            assert await asyncio.wait_for(first, 10) == invoice.payment_hash


# ------------------------------------------------------------------------------- arguments


@every()
@pytest.mark.parametrize(
    "arguments",
    [
        {"amount_msat": 0},
        {"amount_msat": -1_000},
        {"memo": "x" * (MAX_MEMO_BYTES + 1)},
        {"memo": "é" * (MAX_MEMO_BYTES // 2 + 1)},
        {"expiry": 0},
        {"expiry": MAX_EXPIRY_SECONDS + 1},
    ],
    ids=["zero amount", "negative amount", "long memo", "long memo in bytes", "zero expiry",
         "expiry too long"],
)
async def test_invalid_create_arguments_are_rejected(
    target: ContractTarget, arguments: dict[str, Any]
) -> None:
    """An amount <= 0, a memo longer than an invoice holds or an expiry out of range is a
    ProviderRejected (not a ValueError, not an auth failure), for every provider."""
    provider = await target.provider()
    request = {"amount_msat": 1_000, "memo": "ok", "expiry": 600, **arguments}
    with pytest.raises(ProviderRejected) as caught:
        await provider.create_invoice(**request)
    assert type(caught.value) is ProviderRejected
    assert caught.value.provider == provider.name


@every()
@pytest.mark.parametrize("bad", ["", "xyz", "ab" * 31, "../wallet" + "a" * 55])
async def test_malformed_payment_hash_is_rejected(target: ContractTarget, bad: str) -> None:
    """A payment hash that is not 64 hex digits is a ProviderRejected, for every provider."""
    provider = await target.provider()
    with pytest.raises(ProviderRejected) as caught:
        await provider.invoice_status(bad)
    assert type(caught.value) is ProviderRejected


# ------------------------------------------------------------------------------- failures


@every(Stage.HANG)
async def test_hung_upstream_is_unavailable_within_the_timeout(target: ContractTarget) -> None:
    """An upstream that never answers makes create and status ProviderUnavailable, and health
    unhealthy without raising, each within the provider's timeout plus a little slack."""
    provider = await target.hung()
    limit = target.timeout + SLACK
    created, took = await timed(provider.create_invoice(amount_msat=1_000, memo="x", expiry=60))
    assert isinstance(created, ProviderUnavailable), created
    assert took < limit
    looked_up, took = await timed(provider.invoice_status(a_hash()))
    assert isinstance(looked_up, ProviderUnavailable), looked_up
    assert took < limit
    report, took = await timed(provider.health())
    assert not report.healthy and report.error
    assert took < limit


@every(Stage.BAD_CREDENTIALS)
async def test_refused_credentials_are_auth_failures(target: ContractTarget) -> None:
    """Credentials the upstream refuses make create and status ProviderAuthFailed (even for an
    invoice that exists), and health unhealthy with the reason."""
    provider, existing = await target.refusing_credentials()
    with pytest.raises(ProviderAuthFailed):
        await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
    with pytest.raises(ProviderAuthFailed):
        await provider.invoice_status(existing)
    report = await provider.health()
    assert not report.healthy and report.error


MALFORMED = [
    (Call.CREATE, Garbage.NOT_JSON),
    (Call.CREATE, Garbage.MISSING_FIELDS),
    (Call.CREATE, Garbage.WRONG_TYPES),
    (Call.STATUS, Garbage.NOT_JSON),
    (Call.STATUS, Garbage.WRONG_TYPES),
]


@every(Stage.GARBAGE)
@pytest.mark.parametrize(("call", "garbage"), MALFORMED,
                         ids=[f"{c.value}-{g.value}" for c, g in MALFORMED])
async def test_malformed_answer_is_unavailable(
    target: ContractTarget, call: Call, garbage: Garbage
) -> None:
    """A 2xx answer that is not JSON, lacks fields or has fields of the wrong type is a
    ProviderUnavailable (the provider is broken right now; another may serve), for every
    provider: never InvalidInvoice, never a crash."""
    provider = await target.garbled(call, garbage)
    with pytest.raises(ProviderError) as caught:
        if call is Call.CREATE:
            await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
        else:
            await provider.invoice_status(a_hash())
    assert type(caught.value) is ProviderUnavailable, caught.value


@every(Stage.GARBAGE)
@pytest.mark.parametrize("garbage", list(Garbage), ids=[g.value for g in Garbage])
async def test_malformed_health_answer_is_unhealthy(
    target: ContractTarget, garbage: Garbage
) -> None:
    """A malformed answer to the health probe gives an unhealthy report with the reason."""
    provider = await target.garbled(Call.HEALTH, garbage)
    report = await provider.health()
    assert not report.healthy and report.error


# ------------------------------------------------------------------------------- hygiene


@every()
async def test_secrets_never_appear_in_logs_reprs_or_errors(
    target: ContractTarget, debug_logs: list[dict[str, Any]]
) -> None:
    """No secret of the provider shows in its repr, in an error (message, repr, args), in a
    health report or in any log line (DEBUG included), on success and on every failure."""
    texts: list[str] = []

    async def exercise(provider: Provider, payment_hash: str) -> None:
        texts.append(repr(provider))
        for call in (provider.create_invoice(amount_msat=1_000, memo="x", expiry=60),
                     provider.invoice_status(payment_hash), provider.health()):
            result, _ = await timed(call)
            texts.extend([str(result), repr(result)])
            if isinstance(result, Exception):
                texts.append(repr(result.args))

    await exercise(await target.provider(), a_hash())
    outer = target.stack
    for stage in (Stage.BAD_CREDENTIALS, Stage.HANG):
        if stage not in target.stages:
            continue
        async with AsyncExitStack() as target.stack:  # each failure undone before the next
            if stage is Stage.BAD_CREDENTIALS:
                await exercise(*await target.refusing_credentials())
            else:
                await exercise(await target.hung(), a_hash())
        target.stack = outer
    texts.append(repr(debug_logs))
    secrets = target.secrets()
    assert secrets
    for secret in secrets:
        for text in texts:
            assert secret not in text, text


@every()
async def test_constructing_opens_nothing(target: ContractTarget) -> None:
    """Building a provider opens no connection to its upstream and starts no task; closing
    it afterwards is fine."""
    accepted: list[object] = []

    async def on_connection(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        writer.close()

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        tasks = set(asyncio.all_tasks())
        started = time.perf_counter()
        provider = target.construct(port)
        built_in = time.perf_counter() - started
        new_tasks = set(asyncio.all_tasks()) - tasks
        await asyncio.sleep(0.2)
        assert built_in < 0.1
        assert not new_tasks
        assert accepted == []
        await provider.aclose()
    finally:
        server.close()
        await server.wait_closed()


# ------------------------------------------------------------------------------- helpers


class _WebhookSink:
    """A local HTTP server whose POSTs land in a queue; yields its URL."""

    def __init__(self, received: asyncio.Queue[bytes]) -> None:
        self.received = received
        self.runner: web.AppRunner | None = None

    async def __aenter__(self) -> str:
        async def hook(request: web.Request) -> web.Response:
            await self.received.put(await request.read())
            return web.Response()

        app = web.Application()
        app.router.add_post("/hook", hook)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}/hook?token=t"

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


def _webhook_sink(received: asyncio.Queue[bytes]) -> _WebhookSink:
    return _WebhookSink(received)


async def _cancel(task: asyncio.Future[Any]) -> None:
    task.cancel()
    try:
        await task
    except (asyncio.CancelledError, Exception):  # noqa: S110 - ending a waiter
        pass
