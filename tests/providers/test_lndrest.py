"""The LND provider against the LND REST double (tests/doubles/lnd_double.py), over TLS."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from lngate.bolt11.decode import decode
from lngate.domain import Network, PaymentState
from lngate.errors import ProviderAuthFailed, ProviderRejected, ProviderUnavailable
from lngate.providers.base import PaidStream, Provider
from lngate.providers.cursors import CursorStore, MemoryCursorStore
from lngate.providers.lndrest import LndRestConfig, LndRestProvider, make_session
from lngate.services.doorbells import listen_paid_stream
from lngate.services.settlement import SettleOutcome
from tests.doubles.lnd_double import CertFiles, LndDouble, gateway_bytes, make_self_signed_cert
from tests.doubles.scripting import Reply

TIMEOUT = 1.0


@pytest.fixture
async def double() -> AsyncIterator[LndDouble]:
    async with LndDouble() as d:
        yield d


@pytest.fixture(scope="module")
def other_cert() -> Iterator[CertFiles]:
    """A certificate like lnd's, but not the double's."""
    with tempfile.TemporaryDirectory() as directory:
        yield make_self_signed_cert(Path(directory), "other")


def make_provider(
    double: LndDouble,
    *,
    macaroon: str | None = None,
    cursor_store: CursorStore | None = None,
    clock: Any = time.time,
    **config: Any,
) -> LndRestProvider:
    assert double.cert is not None
    if not {"tls_cert", "tls_fingerprint", "ca_cert"} & config.keys():
        config["tls_cert"] = str(double.cert.cert_path)
    settings = LndRestConfig(double.url, macaroon or double.admin_macaroon, timeout=TIMEOUT,
                             **config)
    return LndRestProvider(settings, make_session(settings), name="lnd-a",
                           cursor_store=cursor_store, clock=clock)


@pytest.fixture
async def provider(double: LndDouble) -> AsyncIterator[LndRestProvider]:
    provider = make_provider(double)
    yield provider
    await provider.aclose()


def grpc_error(code: int, message: str, status: int = 500) -> Reply:
    """grpc-gateway's error answer for a gRPC status."""
    return Reply(status, json={"code": code, "message": message, "details": []})


class Collector:
    """Consumes ``paid_invoices()`` in a task, recording hashes, as the doorbell listener does."""

    def __init__(self, provider: LndRestProvider) -> None:
        self.hashes: list[str] = []
        self.error: BaseException | None = None
        self._provider = provider
        self._arrived = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            async for payment_hash in self._provider.paid_invoices():
                self.hashes.append(payment_hash)
                self._arrived.set()
        except Exception as exc:  # the test inspects it
            self.error = exc
            self._arrived.set()

    async def wait_for(self, count: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.hashes) < count and self.error is None:
            self._arrived.clear()
            await asyncio.wait_for(self._arrived.wait(), deadline - time.monotonic())

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def wait_until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


# ------------------------------------------------------------------------------- invoices


async def test_create_invoice_is_the_nodes_signed_invoice(
    double: LndDouble, provider: LndRestProvider
) -> None:
    """A created invoice is lnd's BOLT11 for the requested amount, memo and expiry, signed by
    the node key; r_hash (base64) becomes the hex payment hash."""
    invoice = await provider.create_invoice(amount_msat=21_001, memo="order #42", expiry=600)

    decoded = decode(invoice.bolt11)
    assert decoded.amount_msat == 21_001 == invoice.amount_msat
    assert decoded.payment_hash == invoice.payment_hash == invoice.provider_ref
    assert decoded.description == "order #42" and decoded.expiry == 600
    assert decoded.network is Network.REGTEST and decoded.payee == double.identity_pubkey
    assert bytes.fromhex(invoice.payment_hash) in double.invoices


async def test_create_sends_add_invoice_with_int64_strings(
    double: LndDouble, provider: LndRestProvider
) -> None:
    """Create is POST /v1/invoices with value_msat and expiry as decimal strings, the memo,
    and the macaroon in hex in Grpc-Metadata-macaroon."""
    await provider.create_invoice(amount_msat=5_000, memo="m", expiry=60)

    [request] = double.script.requests_to("addinvoice")
    assert request.method == "POST" and request.path == "/v1/invoices"
    assert request.json == {"value_msat": "5000", "memo": "m", "expiry": "60"}
    assert request.headers["Grpc-Metadata-macaroon"] == double.admin_macaroon


async def test_private_route_hints_are_asked_for_when_configured(double: LndDouble) -> None:
    """With private_route_hints the request carries lnd's ``private: true``."""
    provider = make_provider(double, private_route_hints=True)
    try:
        await provider.create_invoice(amount_msat=5_000, memo="m", expiry=60)
    finally:
        await provider.aclose()

    assert double.script.requests_to("addinvoice")[0].json["private"] is True


@pytest.mark.parametrize(("amount", "expiry"), [(0, 60), (-1, 60), (1.5, 60), (True, 60),
                                                (1_000, 0), (1_000, "60")])
async def test_bad_amount_or_expiry_is_refused_before_sending(
    double: LndDouble, provider: LndRestProvider, amount: Any, expiry: Any
) -> None:
    """An amount or expiry that is not a positive int is rejected without calling lnd."""
    with pytest.raises(ProviderRejected):
        await provider.create_invoice(amount_msat=amount, memo="x", expiry=expiry)
    assert double.script.requests_to("addinvoice") == []


async def test_status_follows_the_invoice_to_settled(
    double: LndDouble, provider: LndRestProvider
) -> None:
    """OPEN is pending; SETTLED is paid with amt_paid_msat, the preimage (base64 -> hex) and
    the settle date."""
    invoice = await provider.create_invoice(amount_msat=21_000, memo="x", expiry=600)

    pending = await provider.invoice_status(invoice.payment_hash)
    assert pending is not None and pending.state is PaymentState.PENDING
    assert pending.amount_msat == 21_000

    settled_at = int(time.time()) + 2
    double.mark_paid(invoice.payment_hash, amount_msat=21_500, at=settled_at)
    paid = await provider.invoice_status(invoice.payment_hash)

    assert paid is not None and paid.state is PaymentState.PAID
    assert paid.amount_msat == 21_500
    assert paid.preimage is not None
    assert hashlib.sha256(bytes.fromhex(paid.preimage)).hexdigest() == invoice.payment_hash
    assert paid.paid_at is not None and int(paid.paid_at.timestamp()) == settled_at


async def test_lookup_sends_the_hash_as_url_safe_base64(
    double: LndDouble, provider: LndRestProvider
) -> None:
    """The hash goes in the query as padded URL-safe base64, so a hash whose standard base64
    has ``+`` or ``/`` still reaches lnd intact."""
    await provider.create_invoice(amount_msat=1_000, memo="x", expiry=600)
    payment_hash = "fb" * 32  # standard base64: "+/v7..."

    assert await provider.invoice_status(payment_hash) is None

    [request] = double.script.requests_to("lookup")
    assert request.path.startswith("/v2/invoices/lookup?payment_hash=")
    query = request.path.split("=", 1)[1]
    assert "+" not in query and "/" not in query
    assert gateway_bytes(query.replace("%3D", "=")).hex() == payment_hash


async def test_unknown_hash_is_none(double: LndDouble, provider: LndRestProvider) -> None:
    """lnd's NotFound (404, code 5), and its 500 "there are no existing invoices" on a node
    without any invoice, are None."""
    assert await provider.invoice_status(os.urandom(32).hex()) is None  # no invoices yet
    await provider.create_invoice(amount_msat=1_000, memo="x", expiry=600)
    assert await provider.invoice_status(os.urandom(32).hex()) is None


async def test_404_that_is_not_lnds_is_rejected(
    double: LndDouble, provider: LndRestProvider
) -> None:
    """A 404 without lnd's NotFound status (a proxy's page: wrong path) is never "unknown"."""
    double.script.script("lookup", Reply(404, body="<h1>Not Found</h1>", content_type="text/html"))

    with pytest.raises(ProviderRejected, match="HTTP 404"):
        await provider.invoice_status(os.urandom(32).hex())


async def test_other_lookup_failures_are_unavailable(
    double: LndDouble, provider: LndRestProvider
) -> None:
    """Only lnd's two "no such invoice" answers mean None: any other 500 is unavailable."""
    double.script.script("lookup", grpc_error(2, "unable to fetch invoice: database is locked"))

    with pytest.raises(ProviderUnavailable, match="database is locked"):
        await provider.invoice_status(os.urandom(32).hex())


async def test_malformed_hash_is_rejected_before_any_call(
    double: LndDouble, provider: LndRestProvider
) -> None:
    """A payment hash that is not 64 hex characters is refused before any call."""
    with pytest.raises(ProviderRejected):
        await provider.invoice_status("zz" * 32)
    assert double.script.requests_to("lookup") == []


@pytest.mark.parametrize(
    ("state", "age", "expected"),
    [
        ("OPEN", 0, PaymentState.PENDING),
        ("OPEN", 700, PaymentState.EXPIRED),
        ("ACCEPTED", 0, PaymentState.PENDING),
        ("CANCELED", 0, PaymentState.FAILED),
        ("CANCELED", 700, PaymentState.EXPIRED),
        ("SOMETHING_NEW", 0, PaymentState.UNKNOWN),
    ],
)
async def test_lnd_states_map_to_payment_states(
    double: LndDouble, state: str, age: int, expected: PaymentState
) -> None:
    """lnd has no expired state: OPEN or CANCELED past creation_date + expiry is expired,
    CANCELED before it failed, ACCEPTED (held HTLCs) pending, anything else UNKNOWN."""
    provider = make_provider(double, clock=lambda: time.time() + age)
    try:
        invoice = await provider.create_invoice(amount_msat=1_000, memo="x", expiry=600)
        double.invoices[bytes.fromhex(invoice.payment_hash)].state = state

        status = await provider.invoice_status(invoice.payment_hash)
    finally:
        await provider.aclose()

    assert status is not None and status.state is expected


@pytest.mark.parametrize(
    ("change", "outcome"),
    [({"amt_paid_msat": "0"}, PaymentState.UNKNOWN),
     ({"r_hash": base64.b64encode(b"\x00" * 32).decode()}, PaymentState.UNKNOWN),
     ({"amt_paid_msat": "many"}, ProviderUnavailable),
     ({"amt_paid_msat": None}, ProviderUnavailable),
     ({"r_hash": "not base64!"}, ProviderUnavailable),
     ({"state": 3}, ProviderUnavailable)],
    ids=["nothing paid", "other hash", "amount not a number", "amount missing", "bad hash",
         "state a number"],
)
async def test_settled_answers_that_do_not_add_up_or_cannot_be_read(
    double: LndDouble, provider: LndRestProvider, change: dict[str, Any], outcome: Any
) -> None:
    """A settled invoice with nothing paid, or an answer about another hash, is UNKNOWN; a
    field missing or of the wrong type is a malformed answer (ProviderUnavailable)."""
    invoice = await provider.create_invoice(amount_msat=1_000, memo="x", expiry=600)
    double.mark_paid(invoice.payment_hash)
    body = double.invoices[bytes.fromhex(invoice.payment_hash)].as_json() | change
    double.script.script("lookup", Reply(200, json={k: v for k, v in body.items()
                                                    if v is not None}))

    if outcome is ProviderUnavailable:
        with pytest.raises(ProviderUnavailable):
            await provider.invoice_status(invoice.payment_hash)
    else:
        status = await provider.invoice_status(invoice.payment_hash)
        assert status is not None and status.state is outcome


# ------------------------------------------------------------------------------- health


async def test_health_reports_the_node_key_and_channel_balance(
    double: LndDouble, provider: LndRestProvider
) -> None:
    """Health is getinfo's identity_pubkey (for payee checks) and local_balance.msat."""
    report = await provider.health()

    assert report.healthy and report.error is None
    assert report.node_pubkey == double.identity_pubkey == provider.node_pubkey
    assert report.balance_msat == double.local_balance_msat


async def test_node_not_synced_to_chain_is_unhealthy(
    double: LndDouble, provider: LndRestProvider
) -> None:
    """synced_to_chain false makes lnd unhealthy, naming why."""
    double.synced_to_chain = False

    report = await provider.health()

    assert not report.healthy and report.error is not None and "synced" in report.error
    assert report.node_pubkey == double.identity_pubkey


async def test_balance_not_permitted_by_the_macaroon_keeps_health(
    double: LndDouble, debug_logs: list[dict[str, Any]]
) -> None:
    """A macaroon without offchain:read gives a healthy report without balance, says why and
    logs it once at INFO."""
    macaroon = double.bake({("invoices", "read"), ("invoices", "write"), ("info", "read")})
    provider = make_provider(double, macaroon=macaroon)
    try:
        reports = [await provider.health(), await provider.health()]
    finally:
        await provider.aclose()

    assert all(r.healthy and r.balance_msat is None for r in reports)
    assert provider.balance_note is not None and "offchain:read" in provider.balance_note
    notes = [e for e in debug_logs if e["event"] == "lndrest.balance_not_permitted"]
    assert len(notes) == 1 and notes[0]["log_level"] == "info"


async def test_invoice_macaroon_cannot_read_node_info(double: LndDouble) -> None:
    """lnd's invoice.macaroon lacks info:read: health fails as an auth problem, clearly."""
    provider = make_provider(double, macaroon=double.invoice_macaroon)
    try:
        report = await provider.health()
        invoice = await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
    finally:
        await provider.aclose()

    assert not report.healthy
    assert report.error is not None and "permission denied" in report.error
    assert invoice.payment_hash  # invoices themselves work with it


@pytest.mark.parametrize(
    "reply",
    [grpc_error(2, "lnd is shutting down"), Reply(200, body="<html>", content_type="text/html"),
     Reply(200, json={"identity_pubkey": "nope", "synced_to_chain": True}),
     Reply(200, json={"identity_pubkey": "02" + "ab" * 32}), Reply(hang=True)],
    ids=["500", "garbage", "bad key", "no sync flag", "hang"],
)
async def test_unhealthy_answers_do_not_raise(
    double: LndDouble, provider: LndRestProvider, reply: Reply
) -> None:
    """A failing, unreadable or hung getinfo is an unhealthy report, within the timeout."""
    double.script.script("getinfo", reply)
    started = time.monotonic()

    report = await provider.health()

    assert not report.healthy and report.error
    assert time.monotonic() - started < TIMEOUT + 0.5


# ------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "message",
    ["expected 1 macaroon, got 0", "encoding/hex: invalid byte: U+0067 'g'",
     "cannot get macaroon: root key with id 0 doesn't exist", "permission denied",
     "verification failed: signature mismatch after caveat verification"],
)
async def test_macaroon_refusals_are_auth_failed(
    double: LndDouble, provider: LndRestProvider, message: str
) -> None:
    """lnd refuses credentials with HTTP 500 and gRPC code 2: read as ProviderAuthFailed."""
    double.script.script("addinvoice", grpc_error(2, message))

    with pytest.raises(ProviderAuthFailed, match="HTTP 500"):
        await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)


async def test_macaroon_not_from_this_node_is_auth_failed(double: LndDouble) -> None:
    """A macaroon lnd did not issue is refused on every call."""
    provider = make_provider(double, macaroon=os.urandom(40).hex())
    try:
        with pytest.raises(ProviderAuthFailed, match="cannot get macaroon"):
            await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
        with pytest.raises(ProviderAuthFailed):
            await provider.invoice_status(os.urandom(32).hex())
    finally:
        await provider.aclose()


@pytest.mark.parametrize(
    ("reply", "error"),
    [(grpc_error(2, "unable to add invoice: database is locked"), ProviderUnavailable),
     (grpc_error(14, "connection refused", 503), ProviderUnavailable),
     (grpc_error(3, 'proto: (line 1:2): unknown field "vlaue"', 400), ProviderRejected),
     (Reply(200, body="<html>", content_type="text/html"), ProviderUnavailable),
     (Reply(200, json={"r_hash": "not base64!", "payment_request": "lnbcrt1..."}),
      ProviderUnavailable),
     (Reply(200, json={"r_hash": base64.b64encode(b"\x01" * 32).decode(), "add_index": "1"}),
      ProviderUnavailable)],
    ids=["500", "503", "400", "html", "bad r_hash", "no payment_request"],
)
async def test_create_failures_map_to_the_error_tree(
    double: LndDouble, provider: LndRestProvider, reply: Reply, error: type[Exception]
) -> None:
    """Other 500s and 5xx are transient, a 400 is our request's fault, and a 200 that is not
    AddInvoiceResponse is unavailable."""
    double.script.script("addinvoice", reply)

    with pytest.raises(error) as caught:
        await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
    assert not isinstance(caught.value, ProviderAuthFailed)


async def test_hang_is_unavailable_within_the_timeout(
    double: LndDouble, provider: LndRestProvider
) -> None:
    """lnd accepting the request and never answering costs the timeout, no more."""
    double.script.script("addinvoice", Reply(hang=True))
    started = time.monotonic()

    with pytest.raises(ProviderUnavailable, match="no answer within"):
        await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
    assert time.monotonic() - started < TIMEOUT + 0.5


# ------------------------------------------------------------------------------- TLS


@pytest.mark.parametrize("how", ["tls_cert file", "tls_cert text", "tls_fingerprint", "ca_cert"])
async def test_lnd_is_reached_with_its_certificate_trusted(double: LndDouble, how: str) -> None:
    """tls.cert as a file, as PEM text, as its SHA-256 fingerprint or as a CA all reach lnd."""
    assert double.cert is not None
    fingerprint = ":".join(double.cert.fingerprint[i:i + 2] for i in range(0, 64, 2)).upper()
    option = {
        "tls_cert file": {"tls_cert": str(double.cert.cert_path)},
        "tls_cert text": {"tls_cert": double.cert.pem},
        "tls_fingerprint": {"tls_fingerprint": fingerprint},
        "ca_cert": {"ca_cert": str(double.cert.cert_path)},
    }[how]
    provider = make_provider(double, **option)
    try:
        assert (await provider.health()).healthy
    finally:
        await provider.aclose()


@pytest.mark.parametrize("how", ["tls_cert", "tls_fingerprint", "ca_cert", "system CAs"])
async def test_another_certificate_is_refused_before_anything_is_sent(
    double: LndDouble, other_cert: CertFiles, how: str
) -> None:
    """A server whose certificate is not the pinned one (or not signed by the CA, or not
    trusted by the system) is never talked to: unavailable, and lnd received nothing."""
    option = {
        "tls_cert": {"tls_cert": str(other_cert.cert_path)},
        "tls_fingerprint": {"tls_fingerprint": other_cert.fingerprint},
        "ca_cert": {"ca_cert": str(other_cert.cert_path)},
        "system CAs": {"ca_cert": None, "tls_cert": None},
    }[how]
    provider = make_provider(double, **option)
    try:
        with pytest.raises(ProviderUnavailable):
            await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
        with pytest.raises(ProviderUnavailable):
            async for _ in provider.paid_invoices():
                pass
        assert not (await provider.health()).healthy
    finally:
        await provider.aclose()
    assert double.script.requests == []


# ------------------------------------------------------------------------------- paid stream


async def test_stream_yields_each_settlement_once_and_skips_adds(
    double: LndDouble, provider: LndRestProvider
) -> None:
    """Settlements are yielded in settle order; the add events lnd also streams are not."""
    first = await provider.create_invoice(amount_msat=1_000, memo="a", expiry=600)
    second = await provider.create_invoice(amount_msat=2_000, memo="b", expiry=600)
    collector = Collector(provider)
    try:
        await wait_until(lambda: double.subscriber_count == 1)
        await provider.create_invoice(amount_msat=3_000, memo="c", expiry=600)  # an add event
        double.mark_paid(second.payment_hash)
        double.mark_paid(first.payment_hash)
        await collector.wait_for(2)
        await wait_until(lambda: provider.paid_cursor == 2)
    finally:
        await collector.stop()

    assert collector.hashes == [second.payment_hash, first.payment_hash]
    [request] = double.script.requests_to("subscribe")
    assert request.path == "/v1/invoices/subscribe?settle_index=0"


async def test_stream_resumes_after_a_restart_without_missing_or_repeating(
    double: LndDouble,
) -> None:
    """After a restart the stream asks lnd to replay from the stored settle_index: payments
    handled before are not delivered again, the one settled while down is delivered."""
    store = MemoryCursorStore()
    provider = make_provider(double, cursor_store=store)
    invoices = [await provider.create_invoice(amount_msat=1_000, memo=str(i), expiry=600)
                for i in range(3)]
    collector = Collector(provider)
    try:
        await wait_until(lambda: double.subscriber_count == 1)
        double.mark_paid(invoices[0].payment_hash)
        double.mark_paid(invoices[1].payment_hash)
        await collector.wait_for(2)
        await wait_until(lambda: store.cursor == 2)
    finally:
        await collector.stop()
        await provider.aclose()
    double.mark_paid(invoices[2].payment_hash)  # settled while the gateway is down

    restarted = make_provider(double, cursor_store=store)
    collector = Collector(restarted)
    try:
        await collector.wait_for(1)
        await wait_until(lambda: store.cursor == 3)
    finally:
        await collector.stop()
        await restarted.aclose()

    assert collector.hashes == [invoices[2].payment_hash]
    assert double.script.requests_to("subscribe")[-1].path.endswith("settle_index=2")


async def test_cursor_is_saved_only_once_the_consumer_asks_for_more(double: LndDouble) -> None:
    """While the consumer handles a payment its settle_index is not saved yet; asking for the
    next one saves it."""
    store = MemoryCursorStore(5)
    provider = make_provider(double, cursor_store=store)
    invoice = await provider.create_invoice(amount_msat=1_000, memo="a", expiry=600)
    double._settled = 5  # lnd numbers settlements for the whole node: continue after 5
    payments = provider.paid_invoices()
    try:
        receiving = asyncio.create_task(anext(payments))
        await wait_until(lambda: double.subscriber_count == 1)
        double.mark_paid(invoice.payment_hash)
        assert await receiving == invoice.payment_hash
        assert store.cursor == 5 and provider.paid_cursor == 5
        waiting = asyncio.create_task(anext(payments))
        await wait_until(lambda: store.cursor == 6)
        assert not waiting.done()
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
    finally:
        await payments.aclose()  # type: ignore[attr-defined]
        await provider.aclose()


async def test_stream_dropped_mid_way_is_unavailable_and_the_next_run_resumes(
    double: LndDouble, provider: LndRestProvider
) -> None:
    """A stream whose connection drops ends with ProviderUnavailable; the next run resumes
    from the cursor, missing and repeating nothing."""
    first = await provider.create_invoice(amount_msat=1_000, memo="a", expiry=600)
    second = await provider.create_invoice(amount_msat=1_000, memo="b", expiry=600)
    collector = Collector(provider)
    await wait_until(lambda: double.subscriber_count == 1)
    double.mark_paid(first.payment_hash)
    await collector.wait_for(1)
    await wait_until(lambda: provider.paid_cursor == 1)
    double.drop_streams()
    await collector.task

    assert isinstance(collector.error, ProviderUnavailable)
    double.mark_paid(second.payment_hash)
    again = Collector(provider)
    try:
        await again.wait_for(1)
    finally:
        await again.stop()
    assert collector.hashes == [first.payment_hash] and again.hashes == [second.payment_hash]


@pytest.mark.parametrize(
    ("action", "error", "text"),
    [
        (lambda d: d.push_stream_bytes(b"<html>oops</html>\n"), ProviderUnavailable, "not JSON"),
        (lambda d: d.push_stream_bytes(b'{"result": "x"}\n'), ProviderUnavailable, "no result"),
        (lambda d: d.end_streams_with_error(2, "invoice registry stopped"), ProviderUnavailable,
         "invoice registry stopped"),
        (lambda d: d.end_streams_with_error(2, "permission denied"), ProviderAuthFailed,
         "permission denied"),
    ],
    ids=["garbage", "no result", "error chunk", "auth error chunk"],
)
async def test_stream_failures_end_the_stream_with_an_error(
    double: LndDouble, provider: LndRestProvider, action: Any, error: type[Exception], text: str
) -> None:
    """A line that is not an event, or an ``{"error": ...}`` chunk, ends the stream with the
    error it means (the listener logs it and subscribes again)."""
    invoice = await provider.create_invoice(amount_msat=1_000, memo="a", expiry=600)
    collector = Collector(provider)
    try:
        await wait_until(lambda: double.subscriber_count == 1)
        double.mark_paid(invoice.payment_hash)
        await collector.wait_for(1)
        action(double)
        await asyncio.wait_for(collector.task, 5)
    finally:
        await collector.stop()

    assert isinstance(collector.error, error) and text in str(collector.error)


async def test_stream_ended_by_lnd_is_unavailable(
    double: LndDouble, provider: LndRestProvider
) -> None:
    """A stream that lnd ends cleanly (lnd shutting down) is reported, not taken as silence."""
    collector = Collector(provider)
    await wait_until(lambda: double.subscriber_count == 1)
    invoice = await provider.create_invoice(amount_msat=1_000, memo="a", expiry=600)
    await asyncio.sleep(0.05)
    for subscriber in list(double._subscribers):
        subscriber.queue.put_nowait(None)
    await asyncio.wait_for(collector.task, 5)

    assert isinstance(collector.error, ProviderUnavailable) and "ended" in str(collector.error)
    assert invoice.payment_hash


async def test_refused_stream_is_auth_failed_at_once(double: LndDouble) -> None:
    """A stream opened with a macaroon lnd did not issue fails at once with the refusal."""
    provider = make_provider(double, macaroon=os.urandom(40).hex())
    try:
        with pytest.raises(ProviderAuthFailed, match="cannot get macaroon"):
            async for _ in provider.paid_invoices():
                pass
    finally:
        await provider.aclose()


async def test_silent_stream_is_reopened_from_the_cursor_quietly(
    double: LndDouble, debug_logs: list[dict[str, Any]]
) -> None:
    """lnd sends nothing while nothing happens; after stream_idle_seconds the stream is opened
    again from the cursor (so a settlement in between is replayed), with no warning, and a
    later settlement is still delivered."""
    double._settled = 4  # the node has settled 4 invoices; the gateway handled them
    provider = make_provider(double, stream_idle_seconds=0.3, cursor_store=MemoryCursorStore(4))
    invoice = await provider.create_invoice(amount_msat=1_000, memo="a", expiry=600)
    collector = Collector(provider)
    try:
        await wait_until(lambda: len(double.script.requests_to("subscribe")) >= 3, 5)
        double.mark_paid(invoice.payment_hash)
        await collector.wait_for(1)
    finally:
        await collector.stop()
        await provider.aclose()

    assert collector.error is None and collector.hashes == [invoice.payment_hash]
    assert {r.path for r in double.script.requests_to("subscribe")} == {
        "/v1/invoices/subscribe?settle_index=4"}
    assert not [e for e in debug_logs if e["log_level"] in ("warning", "error")]
    assert [e for e in debug_logs if e["event"] == "lndrest.stream_idle"]


# ------------------------------------------------------------------------------- secrets, config


async def test_macaroon_never_appears_in_logs_errors_or_reprs(
    double: LndDouble, debug_logs: list[dict[str, Any]]
) -> None:
    """The macaroon is in no DEBUG line, error message or repr, even when lnd echoes it, and
    no preimage is logged; nothing is logged at INFO or above."""
    provider = make_provider(double)
    macaroon = double.admin_macaroon
    invoice = await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
    collector = Collector(provider)
    await wait_until(lambda: double.subscriber_count == 1)
    double.mark_paid(invoice.payment_hash)
    await collector.wait_for(1)
    await collector.stop()
    await provider.invoice_status(invoice.payment_hash)
    double.script.script("addinvoice", grpc_error(2, f"cannot get macaroon {macaroon}: bad"))
    with pytest.raises(ProviderAuthFailed) as caught:
        await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
    await provider.aclose()

    assert macaroon not in str(caught.value) and "***" in str(caught.value)
    assert macaroon not in repr(provider) and macaroon not in repr(provider._config)
    assert macaroon not in repr(debug_logs)
    preimage = double.invoices[bytes.fromhex(invoice.payment_hash)].preimage
    assert base64.b64encode(preimage).decode() not in repr(debug_logs)
    assert preimage.hex() not in repr(debug_logs)
    ours = [e for e in debug_logs if e.get("provider") == "lnd-a"]
    assert {"lndrest.request", "lndrest.answer", "lndrest.stream_open", "lndrest.settled"} <= {
        e["event"] for e in ours}
    assert all(e["log_level"] == "debug" for e in ours)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"endpoint": "http://node.example:8080"}, "https"),
        ({"endpoint": "https://u:p@node:8080"}, "credentials"),
        ({"macaroon": ""}, "hex"),
        ({"macaroon": "0201036c6e64g"}, "hex"),
        ({"macaroon": "abc"}, "hex"),
        ({"timeout": -1}, "timeouts"),
        ({"stream_idle_seconds": 0}, "stream_idle_seconds"),
        ({"tls_cert": "/x", "tls_fingerprint": "ab" * 32}, "only one"),
        ({"tls_fingerprint": "sha256:xyz"}, "64 hex"),
        ({"tls_cert": "/nonexistent/tls.cert"}, "cannot read"),
        ({"tls_cert": "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----"},
         "certificate"),
    ],
)
def test_config_refuses_unsafe_or_broken_values(kwargs: dict[str, Any], message: str) -> None:
    """Plain http to another machine, credentials in the URL, a macaroon that is not hex, bad
    timeouts, two TLS choices or an unreadable certificate are refused when configured."""
    values: dict[str, Any] = {"endpoint": "https://node.example:8080", "macaroon": "0201"}
    values.update(kwargs)
    with pytest.raises(ValueError, match=message):
        LndRestConfig(**values)


def test_config_normalises_the_macaroon_and_endpoint() -> None:
    """The macaroon is kept as lowercase hex without spaces around it; the endpoint without
    a trailing slash."""
    config = LndRestConfig("https://node:8080/", " 0201ABcd\n")

    assert config.macaroon == "0201abcd" and config.endpoint == "https://node:8080"


async def test_provider_fits_the_interface_and_owns_its_session(double: LndDouble) -> None:
    """The provider is a Provider and a PaidStream, declares its capabilities and closes the
    session it was given."""
    assert double.cert is not None
    settings = LndRestConfig(double.url, double.admin_macaroon, tls_cert=str(double.cert.cert_path))
    session = make_session(settings)
    provider = LndRestProvider(settings, session)

    stream: PaidStream = provider  # the type checker holds it to the protocol
    assert isinstance(provider, Provider) and callable(stream.paid_invoices)
    assert provider.capabilities.paid_stream and provider.capabilities.balance
    assert not provider.capabilities.webhook
    assert provider.name == "lnd"
    await provider.aclose()
    assert session.closed


async def test_doorbell_listener_settles_every_payment_across_a_dropped_stream(
    double: LndDouble, provider: LndRestProvider
) -> None:
    """With the gateway's listener, each settlement is settled once, also when the stream's
    connection drops in between: the listener subscribes again from the cursor."""
    settled: list[str] = []

    async def settle(payment_hash: str, *, source: str) -> SettleOutcome:
        status = await provider.invoice_status(payment_hash)  # doorbell, then verify
        assert status is not None and status.state is PaymentState.PAID
        settled.append(payment_hash)
        return SettleOutcome.SETTLED

    first = await provider.create_invoice(amount_msat=1_000, memo="a", expiry=600)
    second = await provider.create_invoice(amount_msat=1_000, memo="b", expiry=600)
    listener = asyncio.create_task(
        listen_paid_stream(provider, name="lnd-a", settle=settle, resubscribe_after=0.05)
    )
    try:
        await wait_until(lambda: double.subscriber_count == 1)
        double.mark_paid(first.payment_hash)
        await wait_until(lambda: settled == [first.payment_hash])
        await wait_until(lambda: provider.paid_cursor == 1)
        double.drop_streams()
        double.mark_paid(second.payment_hash)  # settled while no stream is open
        await wait_until(lambda: len(settled) == 2)
        await asyncio.sleep(0.1)
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)

    assert settled == [first.payment_hash, second.payment_hash]
    assert double.script.requests_to("subscribe")[-1].path.endswith("settle_index=1")
