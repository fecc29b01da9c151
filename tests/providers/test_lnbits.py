"""The LNbits provider against a real LNbits 1.6.2 (FakeWallet) and against the LNbits double."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import aiohttp
import bolt11
import pytest
import structlog
from aiohttp import web

from lngate.domain import PaymentState
from lngate.errors import ProviderAuthFailed, ProviderRejected, ProviderUnavailable
from lngate.logconfig import configure_logging
from lngate.providers.base import Provider
from lngate.providers.http import parse_retry_after
from lngate.providers.lnbits import LNbitsConfig, LNbitsProvider, make_session
from tests.doubles.lnbits_double import FAKE_NODE_PUBKEY, LNbitsDouble, Reply
from tests.peers.lnbits_peer import LNbitsPeer, free_port

TIMEOUT = 2.0


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with make_session(TIMEOUT) as s:
        yield s


@pytest.fixture
def peer_provider(lnbits_peer: LNbitsPeer, session: aiohttp.ClientSession) -> LNbitsProvider:
    return LNbitsProvider(
        LNbitsConfig(lnbits_peer.url, lnbits_peer.merchant_inkey, timeout=TIMEOUT), session
    )


@pytest.fixture
async def double() -> AsyncIterator[LNbitsDouble]:
    async with LNbitsDouble() as d:
        yield d


@pytest.fixture
def provider(double: LNbitsDouble, session: aiohttp.ClientSession) -> LNbitsProvider:
    return LNbitsProvider(
        LNbitsConfig(double.url, double.invoice_key, timeout=TIMEOUT), session, name="lnbits-a"
    )


def a_hash() -> str:
    return os.urandom(32).hex()


# ------------------------------------------------------------------------------- real LNbits


@pytest.mark.lnbits
async def test_create_invoice_matches_the_request(
    peer_provider: LNbitsProvider, lnbits_peer: LNbitsPeer
) -> None:
    """A created invoice decodes to the requested amount, memo and expiry, signed by FakeWallet."""
    invoice = await peer_provider.create_invoice(amount_msat=21_000, memo="order #42", expiry=600)

    decoded = bolt11.decode(invoice.bolt11)
    assert decoded.amount_msat == 21_000 == invoice.amount_msat
    assert decoded.payment_hash == invoice.payment_hash == invoice.provider_ref
    assert decoded.description == "order #42"
    assert decoded.expiry == 600
    assert decoded.currency == "bc"  # FakeWallet always writes mainnet invoices
    assert decoded.payee == lnbits_peer.payee_pubkey == FAKE_NODE_PUBKEY


@pytest.mark.lnbits
async def test_paid_at_is_when_lnbits_marked_the_invoice_paid(
    peer_provider: LNbitsProvider, lnbits_peer: LNbitsPeer
) -> None:
    """paid_at is LNbits' time of payment in UTC, within a second of it: neither the invoice's
    creation time nor the time of the lookup."""
    invoice = await peer_provider.create_invoice(amount_msat=2_000, memo="when", expiry=600)
    await asyncio.sleep(1.2)  # the creation is now well before the payment
    before = datetime.now(UTC)
    await lnbits_peer.apay(invoice.bolt11)
    after = datetime.now(UTC)
    await asyncio.sleep(1.5)  # and the lookup well after it
    looked_up = datetime.now(UTC)

    status = await peer_provider.invoice_status(invoice.payment_hash)

    assert status is not None and status.state is PaymentState.PAID
    assert status.paid_at is not None and status.paid_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= status.paid_at <= after + timedelta(seconds=1)
    assert status.paid_at < looked_up - timedelta(seconds=1)
    _, body = lnbits_peer.request(
        "GET", f"/api/v1/payments/{invoice.payment_hash}", key=lnbits_peer.merchant_inkey
    )
    assert status.paid_at == datetime.fromisoformat(body["details"]["updated_at"])


@pytest.mark.lnbits
async def test_expired_invoice_is_failed(peer_provider: LNbitsProvider) -> None:
    """An invoice past its expiry is reported failed (LNbits marks it so on the next read)."""
    invoice = await peer_provider.create_invoice(amount_msat=1_000, memo="late", expiry=1)
    await asyncio.sleep(2.2)
    status = await peer_provider.invoice_status(invoice.payment_hash)
    assert status is not None and status.state is PaymentState.FAILED


@pytest.mark.lnbits
async def test_webhook_url_reaches_lnbits(
    peer_provider: LNbitsProvider, lnbits_peer: LNbitsPeer
) -> None:
    """The webhook URL given at creation is called by LNbits when the invoice is paid."""
    received: asyncio.Queue[bytes] = asyncio.Queue()

    async def hook(request: web.Request) -> web.Response:
        await received.put(await request.read())
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        port = runner.addresses[0][1]
        invoice = await peer_provider.create_invoice(
            amount_msat=2_000,
            memo="hooked",
            expiry=600,
            webhook_url=f"http://127.0.0.1:{port}/hook?token=t1",
        )
        await lnbits_peer.apay(invoice.bolt11)
        body = await asyncio.wait_for(received.get(), timeout=10)
    finally:
        await runner.cleanup()
    assert invoice.payment_hash.encode() in body


@pytest.mark.lnbits
async def test_health_reports_the_wallet_balance(
    peer_provider: LNbitsProvider, lnbits_peer: LNbitsPeer
) -> None:
    """Health is healthy and carries the merchant wallet's balance in msat."""
    _, wallet = lnbits_peer.request("GET", "/api/v1/wallet", key=lnbits_peer.merchant_inkey)
    report = await peer_provider.health()
    assert report.healthy, report.error
    assert report.error is None
    assert report.balance_msat == wallet["balance"]
    assert 0 < report.response_time_ms < TIMEOUT * 1000


@pytest.mark.lnbits
async def test_wrong_key_is_auth_failed_everywhere(
    lnbits_peer: LNbitsPeer, peer_provider: LNbitsProvider, session: aiohttp.ClientSession
) -> None:
    """An unknown key fails create and status as auth errors, and makes health unhealthy."""
    existing = await peer_provider.create_invoice(amount_msat=1_000, memo="x", expiry=600)
    wrong = LNbitsProvider(LNbitsConfig(lnbits_peer.url, "0" * 32, timeout=TIMEOUT), session)

    with pytest.raises(ProviderAuthFailed, match="Wallet not found"):
        await wrong.create_invoice(amount_msat=1_000, memo="x", expiry=600)
    # LNbits answers an unknown key with the key-less shape, not a 404
    with pytest.raises(ProviderAuthFailed, match="did not recognise"):
        await wrong.invoice_status(existing.payment_hash)
    report = await wrong.health()
    assert not report.healthy
    assert report.error is not None and "Wallet not found" in report.error


@pytest.mark.lnbits
async def test_disallowed_webhook_is_rejected_with_lnbits_detail(
    peer_provider: LNbitsProvider,
) -> None:
    """LNbits' 400 for a webhook origin outside its rules is a rejection carrying its detail."""
    with pytest.raises(ProviderRejected) as caught:
        await peer_provider.create_invoice(
            amount_msat=1_000, memo="x", expiry=600, webhook_url="http://example.com/hook"
        )
    assert not isinstance(caught.value, ProviderAuthFailed)
    assert "HTTP 400" in str(caught.value)
    assert "is not allowed" in str(caught.value)


@pytest.mark.lnbits
async def test_call_after_lnbits_500_works(
    lnbits_peer: LNbitsPeer, peer_provider: LNbitsProvider, session: aiohttp.ClientSession
) -> None:
    """After LNbits answers 500 and drops the pooled connection, the next create still works."""
    for _ in range(3):
        async with session.post(
            f"{lnbits_peer.url}/api/v1/payments",
            json={"out": False, "memo": "no amount"},  # LNbits' unhandled error: a 500
            headers={"X-Api-Key": lnbits_peer.merchant_inkey},
        ) as response:
            assert response.status == 500
            await response.read()
        invoice = await peer_provider.create_invoice(amount_msat=1_000, memo="next", expiry=600)
        assert invoice.amount_msat == 1_000


@pytest.mark.lnbits
async def test_lnbits_down_then_back_up(
    lnbits_peer: LNbitsPeer, peer_provider: LNbitsProvider
) -> None:
    """While LNbits is stopped every call is unavailable; once restarted, the same provider
    (and its pooled session) works again."""
    existing = await peer_provider.create_invoice(amount_msat=1_000, memo="before", expiry=600)
    lnbits_peer.stop()
    try:
        assert not lnbits_peer.is_running
        with pytest.raises(ProviderUnavailable):
            await peer_provider.create_invoice(amount_msat=1_000, memo="down", expiry=600)
        with pytest.raises(ProviderUnavailable):
            await peer_provider.invoice_status(existing.payment_hash)
        report = await peer_provider.health()
        assert not report.healthy and report.error
    finally:
        lnbits_peer.start()
    assert lnbits_peer.is_running
    # FakeWallet keeps its invoices in memory: after a restart LNbits finds the old pending
    # invoice unknown to its funding source and marks it failed.
    status = await peer_provider.invoice_status(existing.payment_hash)
    assert status is not None and status.state is PaymentState.FAILED
    invoice = await peer_provider.create_invoice(amount_msat=1_000, memo="back", expiry=600)
    assert bolt11.decode(invoice.bolt11).description == "back"


# ------------------------------------------------------------------------------- transport


async def test_refused_connection_is_unavailable(session: aiohttp.ClientSession) -> None:
    """A closed port makes create and status unavailable, and health unhealthy."""
    provider = LNbitsProvider(
        LNbitsConfig(f"http://127.0.0.1:{free_port()}", "k" * 32, timeout=TIMEOUT), session
    )
    with pytest.raises(ProviderUnavailable, match="ClientConnectorError") as caught:
        await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
    assert caught.value.provider == "lnbits"
    with pytest.raises(ProviderUnavailable):
        await provider.invoice_status(a_hash())
    assert not (await provider.health()).healthy


async def test_hang_is_unavailable_within_the_timeout(
    double: LNbitsDouble, session: aiohttp.ClientSession
) -> None:
    """A server that never answers costs one timeout, then the call is unavailable."""
    provider = LNbitsProvider(LNbitsConfig(double.url, double.invoice_key, timeout=0.3), session)
    double.always("create", Reply(hang=True))
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable, match="no answer within 0.3 s"):
        await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
    assert 0.25 < time.monotonic() - started < 1.0


async def test_body_that_never_ends_is_unavailable_within_the_timeout(
    double: LNbitsDouble, session: aiohttp.ClientSession
) -> None:
    """Headers followed by a body that never completes still end within the timeout."""
    provider = LNbitsProvider(LNbitsConfig(double.url, double.invoice_key, timeout=0.3), session)
    double.always(
        "status",
        Reply(raw=b'HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{"paid":', hang=True),
    )
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable):
        await provider.invoice_status(a_hash())
    assert time.monotonic() - started < 1.0


async def test_health_times_out_without_raising(
    double: LNbitsDouble, session: aiohttp.ClientSession
) -> None:
    """A hanging wallet endpoint makes health unhealthy within the timeout, without raising."""
    provider = LNbitsProvider(LNbitsConfig(double.url, double.invoice_key, timeout=0.3), session)
    double.always("wallet", Reply(hang=True))
    report = await provider.health()
    assert not report.healthy
    assert report.error == "health: no answer within 0.3 s"
    assert 250 < report.response_time_ms < 1000


async def test_slow_answer_within_the_timeout_is_fine(
    double: LNbitsDouble, provider: LNbitsProvider
) -> None:
    """An answer slower than usual but inside the timeout is used."""
    double.script("wallet", Reply(json={"name": "m", "balance": 7}, delay=0.2))
    report = await provider.health()
    assert report.healthy and report.balance_msat == 7
    assert report.response_time_ms >= 200


async def test_truncated_body_is_unavailable(
    double: LNbitsDouble, provider: LNbitsProvider
) -> None:
    """A connection closed before the announced body length is unavailable."""
    double.script("create", Reply(raw=b"HTTP/1.1 201 Created\r\nContent-Length: 100\r\n\r\n{}"))
    with pytest.raises(ProviderUnavailable, match="ClientPayloadError"):
        await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)


async def test_connection_dropped_after_a_500_does_not_fail_the_next_create(
    double: LNbitsDouble, provider: LNbitsProvider
) -> None:
    """A 500 after which the server silently closes the keep-alive connection (as LNbits does)
    does not make the next create fail."""
    double.script(
        "create",
        Reply(raw=b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 2\r\n\r\n{}", linger=0.2),
    )
    with pytest.raises(ProviderUnavailable, match="HTTP 500"):
        await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
    invoice = await provider.create_invoice(amount_msat=1_000, memo="y", expiry=60)
    assert invoice.amount_msat == 1_000
    # the first try of the second create died with the dropped connection, unanswered
    assert len(double.requests_to("create")) == 2


async def test_create_is_resent_at_most_once(
    double: LNbitsDouble, provider: LNbitsProvider
) -> None:
    """A create whose connection is dropped without an answer is sent once more, then fails."""
    drop = Reply(raw=b"")
    double.script("create", drop, drop, drop)
    with pytest.raises(ProviderUnavailable, match="ServerDisconnectedError"):
        await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
    assert len(double.requests_to("create")) == 2


# ------------------------------------------------------------------------------- HTTP status


async def test_500_is_unavailable_with_detail(
    double: LNbitsDouble, provider: LNbitsProvider
) -> None:
    """A 500 is unavailable and names LNbits' detail."""
    double.script("create", Reply(500, json={"detail": "Unexpected error! ID: abc"}))
    with pytest.raises(ProviderUnavailable) as caught:
        await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
    assert str(caught.value) == "lnbits-a: create_invoice: HTTP 500: Unexpected error! ID: abc"
    assert caught.value.retry_after is None


async def test_520_from_the_funding_source_is_unavailable(
    double: LNbitsDouble, provider: LNbitsProvider
) -> None:
    """LNbits' 520 (its funding source failed) is unavailable."""
    double.script(
        "create", Reply(520, json={"detail": "Could not create invoice.", "status": "failed"})
    )
    with pytest.raises(ProviderUnavailable, match="Could not create invoice"):
        await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)


async def test_429_is_unavailable_with_retry_after(
    double: LNbitsDouble, provider: LNbitsProvider
) -> None:
    """A 429 is unavailable and carries Retry-After in seconds."""
    double.script(
        "create",
        Reply(
            429,
            json={"error": "Rate limit exceeded: 200 per 1 minute"},
            headers={"Retry-After": "7"},
        ),
    )
    with pytest.raises(ProviderUnavailable, match="Rate limit exceeded") as caught:
        await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
    assert caught.value.retry_after == 7.0


async def test_503_retry_after_as_http_date(double: LNbitsDouble, provider: LNbitsProvider) -> None:
    """A Retry-After given as an HTTP date becomes the seconds until then."""
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    double.script("status", Reply(503, body="busy", headers={"Retry-After": when}))
    with pytest.raises(ProviderUnavailable) as caught:
        await provider.invoice_status(a_hash())
    assert caught.value.retry_after is not None and 27 <= caught.value.retry_after <= 30


def test_parse_retry_after() -> None:
    """Retry-After parses delay-seconds and HTTP dates, and ignores nonsense."""
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=40.0) == 60.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:10 GMT", now=40.0) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize("status", [401, 403])
async def test_401_and_403_are_auth_failures(
    double: LNbitsDouble, provider: LNbitsProvider, status: int
) -> None:
    """401 and 403 are auth failures (a kind of rejection: never retried)."""
    double.script("create", Reply(status, json={"detail": "Invoice (or Admin) key required."}))
    with pytest.raises(ProviderAuthFailed, match=f"HTTP {status}: Invoice"):
        await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)


async def test_400_is_rejected_with_truncated_detail(
    double: LNbitsDouble, provider: LNbitsProvider
) -> None:
    """A 400 is a rejection with LNbits' detail on one line, cut to 200 characters."""
    double.script("create", Reply(400, json={"detail": "Memo too long:\n" + "x" * 1000}))
    with pytest.raises(ProviderRejected) as caught:
        await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
    assert not isinstance(caught.value, ProviderAuthFailed)
    assert caught.value.message.startswith("create_invoice: HTTP 400: Memo too long: xxx")
    assert caught.value.message.endswith("…")
    assert len(caught.value.message) <= len("create_invoice: HTTP 400: ") + 200


async def test_validation_error_lists_are_readable(
    double: LNbitsDouble, provider: LNbitsProvider
) -> None:
    """FastAPI's list of validation errors becomes "field: message" text."""
    detail = [{"loc": ["body", "amount"], "msg": "ensure this value is greater than or equal to 0"}]
    double.script("create", Reply(400, json={"detail": detail}))
    with pytest.raises(ProviderRejected, match="body.amount: ensure this value"):
        await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)


async def test_redirect_is_not_followed(double: LNbitsDouble, provider: LNbitsProvider) -> None:
    """A redirect (e.g. LNbits before its first install) is rejected, not followed with our key."""
    double.script("create", Reply(307, body=b"", headers={"Location": "http://127.0.0.1:9/steal"}))
    with pytest.raises(ProviderRejected, match="HTTP 307"):
        await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
    assert len(double.requests) == 1


# ------------------------------------------------------------------------------- create


async def test_create_sends_lnbits_request(double: LNbitsDouble, provider: LNbitsProvider) -> None:
    """Create posts out=false, the amount in sats, memo, expiry and webhook with the invoice key."""
    await provider.create_invoice(
        amount_msat=21_000, memo="order #7", expiry=900, webhook_url="http://127.0.0.1:1/h?t=x"
    )
    (sent,) = double.requests
    assert sent.method == "POST" and sent.path == "/api/v1/payments"
    assert sent.headers["X-Api-Key"] == double.invoice_key
    assert sent.json == {
        "out": False,
        "amount": 21,
        "memo": "order #7",
        "expiry": 900,
        "webhook": "http://127.0.0.1:1/h?t=x",
    }


async def test_create_without_webhook_sends_none(
    double: LNbitsDouble, provider: LNbitsProvider
) -> None:
    """Without a webhook URL the request has no webhook field."""
    await provider.create_invoice(amount_msat=1_000, memo="m", expiry=60)
    assert "webhook" not in double.requests[0].json


@pytest.mark.parametrize("amount_msat", [1_500, 999, 0, -1_000, True, 1_000.0])
async def test_amount_that_is_not_whole_positive_sats_is_refused_before_sending(
    double: LNbitsDouble, provider: LNbitsProvider, amount_msat: object
) -> None:
    """An amount LNbits cannot take exactly is refused without any request."""
    with pytest.raises(ProviderRejected):
        await provider.create_invoice(amount_msat=amount_msat, memo="x", expiry=60)  # type: ignore
    assert double.requests == []


@pytest.mark.parametrize("expiry", [0, -5, 1.5])
async def test_bad_expiry_is_refused_before_sending(
    double: LNbitsDouble, provider: LNbitsProvider, expiry: object
) -> None:
    """A non-positive or non-integer expiry is refused without any request (LNbits would
    silently use 3600 s for 0)."""
    with pytest.raises(ProviderRejected, match="expiry"):
        await provider.create_invoice(amount_msat=1_000, memo="x", expiry=expiry)  # type: ignore
    assert double.requests == []


async def test_legacy_answer_with_payment_request_only(
    double: LNbitsDouble, provider: LNbitsProvider
) -> None:
    """An older LNbits answer (payment_request, no bolt11/amount/checking_id) is accepted."""
    h = a_hash()
    double.script(
        "create", Reply(201, json={"payment_hash": h.upper(), "payment_request": "lnbc1legacy"})
    )
    invoice = await provider.create_invoice(amount_msat=3_000, memo="x", expiry=60)
    assert invoice.bolt11 == "lnbc1legacy"
    assert invoice.payment_hash == h and invoice.provider_ref == h.upper()
    assert invoice.amount_msat == 3_000


async def test_create_keeps_what_lnbits_reported(
    double: LNbitsDouble, provider: LNbitsProvider
) -> None:
    """The provider reports LNbits' amount and BOLT11 as they are; validating them is the
    service's job."""
    double.script(
        "create",
        lambda req: Reply(201, json=double.issue(req.json, amount_msat=999_000, network="tb")),
    )
    invoice = await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
    assert invoice.amount_msat == 999_000
    assert invoice.bolt11.startswith("lntb9990n")


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply(201, body=b"<html>oops</html>", content_type="text/html"), "not JSON"),
        (Reply(200, json=["not", "an", "object"]), "not a JSON object"),
        (Reply(201, json={"payment_hash": "ab" * 32}), "no bolt11"),
        (Reply(201, json={"bolt11": "lnbc1x"}), "no valid payment_hash"),
        (Reply(201, json={"bolt11": "lnbc1x", "payment_hash": "../../x"}), "no valid payment_hash"),
        (
            Reply(201, json={"bolt11": "lnbc1x", "payment_hash": "ab" * 32, "amount": "21"}),
            "amount",
        ),
    ],
)
async def test_unreadable_create_answer_is_unavailable(
    double: LNbitsDouble, provider: LNbitsProvider, reply: Reply, reason: str
) -> None:
    """A 2xx whose body is not a usable invoice means the provider is broken: unavailable."""
    double.script("create", reply)
    with pytest.raises(ProviderUnavailable, match=reason):
        await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)


# ------------------------------------------------------------------------------- status


async def test_status_follows_the_invoice(double: LNbitsDouble, provider: LNbitsProvider) -> None:
    """Status reads pending, then paid with LNbits' amount, preimage and time of payment."""
    invoice = await provider.create_invoice(amount_msat=4_000, memo="x", expiry=60)
    pending = await provider.invoice_status(invoice.payment_hash.upper())
    assert pending is not None and pending.state is PaymentState.PENDING
    assert pending.paid_at is None
    created = datetime.fromisoformat(double.invoices[invoice.payment_hash]["created_at"])
    paid_at = created + timedelta(seconds=1.5)
    double.mark_paid(invoice.payment_hash, at=paid_at)
    paid = await provider.invoice_status(invoice.payment_hash)
    assert paid is not None and paid.state is PaymentState.PAID
    assert paid.amount_msat == 4_000
    assert paid.preimage == double.invoices[invoice.payment_hash]["preimage"]
    assert paid.paid_at == paid_at and paid.paid_at.tzinfo is not None
    assert double.requests[-1].path == f"/api/v1/payments/{invoice.payment_hash}"


@pytest.mark.parametrize(
    "updated_at",
    [
        "missing",
        "soon",
        1_795_000_000,  # unix seconds: LNbits 1.x writes ISO-8601
        "1970-01-01T00:00:00+00:00",
        "before creation",
    ],
)
async def test_unusable_payment_time_is_none_and_logged(
    double: LNbitsDouble,
    provider: LNbitsProvider,
    debug_logs: list[dict[str, Any]],
    updated_at: object,
) -> None:
    """A paid invoice whose time is missing, malformed or before its creation is still paid,
    with paid_at None (the gateway uses its own clock), and the reason is logged at DEBUG."""
    invoice = await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
    payment = double.invoices[invoice.payment_hash]
    if updated_at == "before creation":
        updated_at = datetime.fromisoformat(payment["created_at"]) - timedelta(minutes=1)
    double.mark_paid(invoice.payment_hash, at=updated_at)  # type: ignore[arg-type]
    if updated_at == "missing":
        del payment["updated_at"]

    status = await provider.invoice_status(invoice.payment_hash)

    assert status is not None and status.state is PaymentState.PAID and status.amount_msat == 1_000
    assert status.paid_at is None
    [dropped] = [e for e in debug_logs if e["event"] == "provider_time_unusable"]
    assert dropped["log_level"] == "debug"
    assert dropped["provider"] == "lnbits-a" and dropped["field"] == "details.updated_at"


@pytest.mark.parametrize(
    ("updated_at", "offset"),
    [("+00:00", timedelta(0)), ("", timedelta(0)), ("+02:00", timedelta(hours=2))],
)
async def test_payment_time_is_read_as_utc(
    double: LNbitsDouble, provider: LNbitsProvider, updated_at: str, offset: timedelta
) -> None:
    """A payment time with an offset is converted to UTC; one without an offset is UTC."""
    invoice = await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
    created = datetime.fromisoformat(double.invoices[invoice.payment_hash]["created_at"])
    paid = (created + timedelta(seconds=3)).replace(microsecond=0)
    wall = (paid + offset).replace(tzinfo=None).isoformat()
    double.mark_paid(invoice.payment_hash, at=wall + updated_at)

    status = await provider.invoice_status(invoice.payment_hash)

    assert status is not None and status.paid_at == paid
    assert status.paid_at.utcoffset() == timedelta(0)


def _details(h: str, **overrides: object) -> dict[str, object]:
    return {"payment_hash": h, "checking_id": h, "amount": 5_000, "status": "pending", **overrides}


@pytest.mark.parametrize(
    ("body", "state", "amount_msat"),
    [
        # only the nested status says success
        (
            lambda h: {"paid": None, "details": _details(h, status="success")},
            PaymentState.PAID,
            5_000,
        ),
        (
            lambda h: {"paid": False, "status": "failed", "details": _details(h, status="failed")},
            PaymentState.FAILED,
            5_000,
        ),
        # LNbits' answer when checking the funding source raised: no top-level status
        (lambda h: {"paid": False, "details": _details(h)}, PaymentState.PENDING, 5_000),
        (
            lambda h: {"paid": True, "details": _details(h, status="pending")},
            PaymentState.UNKNOWN,
            None,
        ),
        (
            lambda h: {"paid": True, "details": _details(h, status="success", amount=-5_000)},
            PaymentState.UNKNOWN,
            None,
        ),
        (
            lambda h: {"paid": True, "details": _details(h, status="success", amount=None)},
            PaymentState.UNKNOWN,
            None,
        ),
        (
            lambda h: {"paid": True, "details": _details("ab" * 32, status="success")},
            PaymentState.UNKNOWN,
            None,
        ),
        (
            lambda h: {"paid": False, "status": "weird", "details": _details(h)},
            PaymentState.UNKNOWN,
            None,
        ),
    ],
)
async def test_status_answers_map_to_states(
    double: LNbitsDouble,
    provider: LNbitsProvider,
    body: object,
    state: PaymentState,
    amount_msat: int | None,
) -> None:
    """Each LNbits status shape maps to one state; contradictions and oddities are UNKNOWN."""
    h = a_hash()
    double.script("status", Reply(200, json=body(h)))  # type: ignore[operator]
    status = await provider.invoice_status(h)
    assert status is not None
    assert status.state is state
    assert status.amount_msat == amount_msat


async def test_paid_with_bad_preimage_keeps_paid_without_preimage(
    double: LNbitsDouble, provider: LNbitsProvider
) -> None:
    """A paid answer whose preimage is not 32 hex bytes reports no preimage."""
    h = a_hash()
    double.script(
        "status",
        Reply(
            200,
            json={
                "paid": True,
                "preimage": "zz",
                "details": _details(h, status="success", preimage=None),
            },
        ),
    )
    status = await provider.invoice_status(h)
    assert status is not None and status.state is PaymentState.PAID and status.preimage is None


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(200, body=b"<html>", content_type="text/html"), "the answer is not JSON"),
        (Reply(200, json=[1, 2]), "the answer is not a JSON object"),
        (Reply(200, json={"paid": "yes", "details": {}}), "the answer's paid is not a boolean"),
        (Reply(200, json={"paid": False, "details": "nope"}), "details is not an object"),
    ],
)
async def test_unreadable_status_answer_is_unavailable(
    double: LNbitsDouble, provider: LNbitsProvider, reply: Reply, message: str
) -> None:
    """A 200 status answer that cannot be read (not a JSON object, paid or details of the
    wrong type) is a malformed answer, unavailable, as for every provider."""
    double.script("status", reply)
    with pytest.raises(ProviderUnavailable, match=message):
        await provider.invoice_status(a_hash())


async def test_status_without_details_is_auth_failed(
    double: LNbitsDouble, session: aiohttp.ClientSession
) -> None:
    """LNbits' key-less answer (our key was not recognised) is an auth failure, not "unpaid"."""
    invoice_hash = double.issue({"out": False, "amount": 1, "memo": "x"})["payment_hash"]
    stranger = LNbitsProvider(LNbitsConfig(double.url, "not-a-key", timeout=TIMEOUT), session)
    with pytest.raises(ProviderAuthFailed):
        await stranger.invoice_status(invoice_hash)


async def test_status_404_not_from_lnbits_is_rejected(
    double: LNbitsDouble, provider: LNbitsProvider
) -> None:
    """A 404 that is not LNbits' "Payment does not exist." (a wrong endpoint) is not "unknown"."""
    double.script("status", Reply(404, body="Not Found", content_type="text/plain"))
    with pytest.raises(ProviderRejected, match="404: Not Found"):
        await provider.invoice_status(a_hash())
    double.script("status", Reply(404, json={"detail": "Wallet not found."}))
    with pytest.raises(ProviderAuthFailed):
        await provider.invoice_status(a_hash())


async def test_status_of_unknown_hash_is_none(provider: LNbitsProvider) -> None:
    """The double's "Payment does not exist." 404 is None."""
    assert await provider.invoice_status(a_hash()) is None


@pytest.mark.parametrize("bad", ["", "xyz", "ab" * 31, "../wallet" + "a" * 55, "ab" * 32 + "/x"])
async def test_malformed_hash_is_rejected(
    double: LNbitsDouble, provider: LNbitsProvider, bad: str
) -> None:
    """A payment hash that is not 64 hex characters is rejected before any request."""
    with pytest.raises(ProviderRejected, match="64 hex"):
        await provider.invoice_status(bad)
    assert double.requests == []


# ------------------------------------------------------------------------------- health


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply(500, json={"detail": "db locked"}), "health: HTTP 500: db locked"),
        (Reply(200, body=b"nope", content_type="text/plain"), "health: the answer is not JSON"),
        (Reply(200, json={"name": "m"}), "health: the wallet answer has no balance"),
        (
            Reply(401, json={"detail": "No Api Key provided."}),
            "health: HTTP 401: No Api Key provided.",
        ),
    ],
)
async def test_unhealthy_answers_do_not_raise(
    double: LNbitsDouble, provider: LNbitsProvider, reply: Reply, error: str
) -> None:
    """Health turns every failing answer into an unhealthy report with the reason."""
    double.script("wallet", reply)
    report = await provider.health()
    assert not report.healthy
    assert report.error == error
    assert report.balance_msat is None


# ------------------------------------------------------------------------------- secrets


async def test_keys_never_appear_in_errors_or_reprs(
    double: LNbitsDouble, session: aiohttp.ClientSession
) -> None:
    """Neither key appears in any error text, error repr, health error, config or provider repr,
    even when the server echoes the key back."""
    key, admin = "inkey-SECRET-1234567890", "admin-SECRET-0987654321"
    config = LNbitsConfig(double.url, key, admin, timeout=0.3)
    provider = LNbitsProvider(config, session)
    echo = f"bad key {key} / {admin}"
    failures = [
        Reply(400, json={"detail": echo}),
        Reply(401, json={"detail": echo}),
        Reply(500, body=echo, content_type="text/plain"),
        Reply(429, json={"error": echo}, headers={"Retry-After": "1"}),
        Reply(201, body=echo, content_type="text/plain"),
        Reply(raw=b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n" + echo.encode()),
        Reply(hang=True),
    ]
    texts = [repr(config), repr(provider)]
    for reply in failures:
        double.script("create", reply)
        with pytest.raises((ProviderUnavailable, ProviderRejected)) as caught:
            await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
        texts += [
            str(caught.value),
            repr(caught.value),
            caught.value.message,
            repr(caught.value.args),
        ]
        double.script("wallet", reply)
        texts.append(str((await provider.health()).error))
    assert any("bad key ***" in text for text in texts)  # the echo itself did arrive
    for text in texts:
        assert "SECRET" not in text, text


# ------------------------------------------------------------------------------- logs


async def test_requests_and_answers_are_logged_at_debug_without_secrets(
    session: aiohttp.ClientSession, debug_logs: list[dict[str, Any]]
) -> None:
    """Each request and answer is one DEBUG line with method, path, status, duration and a short
    body summary; no key (even echoed back), webhook URL, preimage or whole BOLT11 is shown,
    and the provider logs nothing at INFO or above."""
    key, admin = "inkey-SECRET-1234567890", "admin-SECRET-0987654321"
    async with LNbitsDouble(invoice_key=key, admin_key=admin) as double:
        provider = LNbitsProvider(LNbitsConfig(double.url, key, admin, timeout=0.5), session)
        hook = f"http://127.0.0.1:1/hook?token=TOKEN-{os.urandom(8).hex()}"
        invoice = await provider.create_invoice(
            amount_msat=21_000, memo="order 42", expiry=600, webhook_url=hook
        )
        double.mark_paid(invoice.payment_hash)
        await provider.invoice_status(invoice.payment_hash)
        double.script("create", Reply(403, json={"detail": f"key {key} is not allowed"}))
        with pytest.raises(ProviderAuthFailed):
            await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
        double.script("status", Reply(hang=True))
        with pytest.raises(ProviderUnavailable):
            await provider.invoice_status(invoice.payment_hash)
        preimage = double.invoices[invoice.payment_hash]["preimage"]

    lines = [e for e in debug_logs if e["event"].startswith("lnbits.")]
    assert {e["log_level"] for e in debug_logs} == {"debug"}
    assert [(e["event"], e["method"], e.get("status")) for e in lines] == [
        ("lnbits.request", "POST", None),
        ("lnbits.answer", "POST", 201),
        ("lnbits.request", "GET", None),
        ("lnbits.answer", "GET", 200),
        ("lnbits.request", "POST", None),
        ("lnbits.answer", "POST", 403),
        ("lnbits.request", "GET", None),
        ("lnbits.no_answer", "GET", None),
    ]
    create, created, lookup, looked_up, _, refused, _, lost = lines
    assert create["path"] == "/api/v1/payments" and create["operation"] == "create_invoice"
    assert create["body"] == {"out": False, "amount": 21, "expiry": 600, "webhook": "present"}
    assert created["body"]["payment_hash"] == invoice.payment_hash
    assert created["body"]["amount"] == 21_000 and created["body"]["status"] == "pending"
    assert invoice.bolt11.startswith(created["body"]["bolt11"].rstrip("…"))
    assert lookup["path"] == f"/api/v1/payments/{invoice.payment_hash}"
    assert looked_up["body"]["paid"] is True
    assert looked_up["body"]["details"]["status"] == "success"
    assert refused["body"] == {"detail": "key *** is not allowed"}
    assert "no answer within 0.5 s" in lost["error"]
    assert all(isinstance(e["duration_ms"], float) for e in (created, looked_up, refused, lost))
    text = repr(debug_logs)
    for hidden in ("SECRET", "TOKEN-", preimage, invoice.bolt11, "order 42"):
        assert hidden not in text, hidden


async def test_verbose_mode_prints_the_exchanges_and_normal_mode_does_not(
    double: LNbitsDouble, provider: LNbitsProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    """With verbose logs (DEBUG=lightning:*) the LNbits exchanges are printed; without, not."""
    printed: dict[bool, set[str]] = {}
    try:
        for verbose in (False, True):
            configure_logging(verbose=verbose, fmt="json")
            await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
            err = capsys.readouterr().err
            printed[verbose] = {
                json.loads(line)["event"] for line in err.splitlines() if line.startswith("{")
            }
    finally:
        structlog.reset_defaults()
        logging.basicConfig(level=logging.WARNING, stream=sys.__stderr__, force=True)
    assert not printed[False] & {"lnbits.request", "lnbits.answer"}
    assert {"lnbits.request", "lnbits.answer"} <= printed[True]


def test_config_refuses_unsafe_or_broken_values() -> None:
    """The config refuses non-http endpoints, credentials in the URL, empty keys, bad timeouts."""
    with pytest.raises(ValueError):
        LNbitsConfig("ftp://h", "k")
    for with_credentials in ("https://user:pw-SECRET@h", "ftp://SECRET@h"):
        with pytest.raises(ValueError, match="credentials") as caught:
            LNbitsConfig(with_credentials, "k")
        assert "SECRET" not in str(caught.value)
    with pytest.raises(ValueError):
        LNbitsConfig("https://h", "")
    with pytest.raises(ValueError):
        LNbitsConfig("https://h", "k", timeout=0)
    assert LNbitsConfig("https://h/lnbits/", "k").endpoint == "https://h/lnbits"


# ------------------------------------------------------------------------------- interface


async def test_provider_fits_the_interface_and_owns_its_session() -> None:
    """It is a Provider with webhook and balance capabilities, and aclose closes its session."""
    session = make_session(1.0)
    provider = LNbitsProvider(LNbitsConfig("http://127.0.0.1:1", "k"), session)
    assert isinstance(provider, Provider)
    assert provider.name == "lnbits"
    assert provider.capabilities.webhook and provider.capabilities.balance
    assert not provider.capabilities.paid_stream
    assert not session.closed
    await provider.aclose()
    assert session.closed
