"""The Core Lightning provider against the clnrest double (tests/doubles/cln_double.py)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from lngate.bolt11.decode import decode
from lngate.domain import Network, PaymentState
from lngate.errors import ProviderAuthFailed, ProviderRejected, ProviderUnavailable
from lngate.providers.base import PaidStream, Provider
from lngate.providers.clnrest import ClnRestConfig, ClnRestProvider, make_session
from lngate.providers.cursors import CursorStore, MemoryCursorStore
from lngate.services.doorbells import listen_paid_stream
from lngate.services.settlement import SettleOutcome
from tests.doubles.cln_double import ClnDouble
from tests.doubles.scripting import Reply

TIMEOUT = 1.0


@pytest.fixture
async def double() -> AsyncIterator[ClnDouble]:
    async with ClnDouble() as d:
        yield d


def make_provider(
    double: ClnDouble,
    *,
    rune: str | None = None,
    cursor_store: CursorStore | None = None,
    **config: Any,
) -> ClnRestProvider:
    settings = ClnRestConfig(double.url, rune or double.rune, timeout=TIMEOUT, **config)
    return ClnRestProvider(settings, make_session(settings), name="cln-a",
                           cursor_store=cursor_store)


@pytest.fixture
async def provider(double: ClnDouble) -> AsyncIterator[ClnRestProvider]:
    provider = make_provider(double)
    yield provider
    await provider.aclose()


def rpc_error(code: int | None, message: str, status: int = 500) -> Reply:
    """clnrest's error answer for an RPC error."""
    return Reply(status, json={"code": code, "message": message, "data": None})


class Collector:
    """Consumes ``paid_invoices()`` in a task, recording hashes, as the doorbell listener does."""

    def __init__(self, provider: ClnRestProvider) -> None:
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
    double: ClnDouble, provider: ClnRestProvider
) -> None:
    """A created invoice is the node's BOLT11 for the requested amount, memo and expiry, signed
    by the node key, under a fresh label with our prefix (also its provider_ref)."""
    invoice = await provider.create_invoice(amount_msat=21_001, memo="order #42", expiry=600)

    decoded = decode(invoice.bolt11)
    assert decoded.amount_msat == 21_001 == invoice.amount_msat
    assert decoded.payment_hash == invoice.payment_hash
    assert decoded.description == "order #42" and decoded.expiry == 600
    assert decoded.network is Network.REGTEST and decoded.payee == double.node_id
    assert invoice.provider_ref.startswith("lngate-") and len(invoice.provider_ref) == 39
    assert double.invoices[invoice.payment_hash].label == invoice.provider_ref


async def test_create_sends_the_invoice_rpc_as_clnrest_wants_it(
    double: ClnDouble, provider: ClnRestProvider
) -> None:
    """Create is POST /v1/invoice with JSON amount_msat (int), label, description and expiry,
    the rune in the Rune header."""
    invoice = await provider.create_invoice(amount_msat=5_000, memo="m", expiry=60)

    [request] = double.script.requests_to("invoice")
    assert request.method == "POST" and request.path == "/v1/invoice"
    assert request.json == {"amount_msat": 5_000, "label": invoice.provider_ref,
                            "description": "m", "expiry": 60}
    assert request.headers["Rune"] == double.rune
    assert request.headers["Content-Type"] == "application/json"


async def test_each_invoice_gets_its_own_label(provider: ClnRestProvider) -> None:
    """Labels must be unique on a CLN node: two creates use two labels."""
    first = await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
    second = await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)

    assert first.provider_ref != second.provider_ref


@pytest.mark.parametrize(("amount", "expiry"), [(0, 60), (-1, 60), (1.5, 60), (True, 60),
                                                (1_000, 0), (1_000, -5), (1_000, "60")])
async def test_bad_amount_or_expiry_is_refused_before_sending(
    double: ClnDouble, provider: ClnRestProvider, amount: Any, expiry: Any
) -> None:
    """An amount or expiry that is not a positive int is rejected without calling the node."""
    with pytest.raises(ProviderRejected):
        await provider.create_invoice(amount_msat=amount, memo="x", expiry=expiry)
    assert double.script.requests_to("invoice") == []


async def test_status_follows_the_invoice_to_paid(
    double: ClnDouble, provider: ClnRestProvider
) -> None:
    """Pending until paid; then paid with the amount received, the preimage of the hash and
    the node's payment time."""
    invoice = await provider.create_invoice(amount_msat=21_000, memo="x", expiry=600)

    pending = await provider.invoice_status(invoice.payment_hash)
    assert pending is not None and pending.state is PaymentState.PENDING
    assert pending.amount_msat == 21_000

    paid_at = int(time.time()) - 5
    double.mark_paid(invoice.payment_hash, amount_msat=21_500, at=paid_at)
    paid = await provider.invoice_status(invoice.payment_hash.upper())

    assert paid is not None and paid.state is PaymentState.PAID
    assert paid.amount_msat == 21_500
    assert paid.preimage is not None
    assert hashlib.sha256(bytes.fromhex(paid.preimage)).hexdigest() == invoice.payment_hash
    assert paid.paid_at is not None and int(paid.paid_at.timestamp()) == paid_at
    [request] = double.script.requests_to("listinvoices")[-1:]
    assert request.json == {"payment_hash": invoice.payment_hash}


async def test_expired_invoice_is_expired(double: ClnDouble, provider: ClnRestProvider) -> None:
    """An unpaid invoice past its expiry is reported expired, as CLN's status says."""
    invoice = await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
    double.clock = lambda: time.time() + 61

    status = await provider.invoice_status(invoice.payment_hash)

    assert status is not None and status.state is PaymentState.EXPIRED


async def test_unknown_hash_is_none(provider: ClnRestProvider) -> None:
    """A hash the node does not know (an empty invoices list) is None, not an error."""
    assert await provider.invoice_status(os.urandom(32).hex()) is None


async def test_malformed_hash_is_rejected_before_any_call(
    double: ClnDouble, provider: ClnRestProvider
) -> None:
    """A payment hash that is not 64 hex characters is refused before any call."""
    with pytest.raises(ProviderRejected):
        await provider.invoice_status("abc")
    assert double.script.requests_to("listinvoices") == []


def _entry(hash_: str, **overrides: Any) -> dict[str, Any]:
    entry = {"label": "lngate-x", "payment_hash": hash_, "status": "paid",
             "expires_at": 1_900_000_000, "created_index": 1, "amount_msat": 1_000,
             "pay_index": 1, "amount_received_msat": 1_000, "paid_at": 1_800_000_000,
             "payment_preimage": "11" * 32}
    entry.update(overrides)
    return {key: value for key, value in entry.items() if value is not None}


@pytest.mark.parametrize(
    ("overrides", "state"),
    [
        ({"amount_received_msat": 0}, PaymentState.UNKNOWN),
        ({"status": "refunded"}, PaymentState.UNKNOWN),
        ({"payment_hash": "00" * 32}, PaymentState.UNKNOWN),
        ({"status": "unpaid"}, PaymentState.PENDING),
        ({"status": "expired"}, PaymentState.EXPIRED),
    ],
)
async def test_listinvoices_entries_map_to_states(
    double: ClnDouble, provider: ClnRestProvider, overrides: dict[str, Any], state: PaymentState
) -> None:
    """A paid entry that received nothing, an unknown status or an entry about another hash is
    UNKNOWN; unpaid is pending, expired is expired."""
    payment_hash = os.urandom(32).hex()
    double.script.script("listinvoices", Reply(201, json={"invoices": [
        _entry(payment_hash, **overrides)]}))

    status = await provider.invoice_status(payment_hash)

    assert status is not None and status.state is state


@pytest.mark.parametrize(
    "overrides",
    [{"amount_received_msat": None}, {"amount_received_msat": "1000msat"}, {"status": None},
     {"status": 3}, {"payment_hash": 7}],
    ids=["no amount", "amount as text", "no status", "status a number", "hash a number"],
)
async def test_listinvoices_entry_with_fields_missing_or_mistyped_is_unavailable(
    double: ClnDouble, provider: ClnRestProvider, overrides: dict[str, Any]
) -> None:
    """An entry lacking a field the schema requires, or with one of the wrong type, is a
    malformed answer (ProviderUnavailable), never a guess."""
    payment_hash = os.urandom(32).hex()
    double.script.script("listinvoices", Reply(201, json={"invoices": [
        _entry(payment_hash, **overrides)]}))

    with pytest.raises(ProviderUnavailable):
        await provider.invoice_status(payment_hash)


async def test_paid_with_bad_preimage_or_time_stays_paid_without_them(
    double: ClnDouble, provider: ClnRestProvider
) -> None:
    """A paid entry with a malformed preimage or payment time is still paid, without them."""
    payment_hash = os.urandom(32).hex()
    double.script.script("listinvoices", Reply(201, json={"invoices": [
        _entry(payment_hash, payment_preimage="zz", paid_at=0)]}))

    status = await provider.invoice_status(payment_hash)

    assert status is not None and status.state is PaymentState.PAID
    assert status.preimage is None and status.paid_at is None


# ------------------------------------------------------------------------------- health


async def test_health_reports_the_node_key_and_balance(
    double: ClnDouble, provider: ClnRestProvider
) -> None:
    """Health is getinfo's id (for payee checks) and the sum of our channel balances."""
    report = await provider.health()

    assert report.healthy and report.error is None
    assert report.node_pubkey == double.node_id == provider.node_pubkey
    assert report.balance_msat == sum(double.channels_msat)
    assert provider.balance_note is None


async def test_balance_not_permitted_by_the_rune_keeps_health(
    double: ClnDouble, debug_logs: list[dict[str, Any]]
) -> None:
    """A rune without listfunds gives a healthy report without balance, says why, and logs it
    once at INFO."""
    rune = double.make_rune({"invoice", "listinvoices", "waitanyinvoice", "getinfo"})
    provider = make_provider(double, rune=rune)
    try:
        first = await provider.health()
        second = await provider.health()
    finally:
        await provider.aclose()

    for report in (first, second):
        assert report.healthy and report.balance_msat is None
        assert report.node_pubkey == double.node_id
    assert provider.balance_note is not None
    assert provider.balance_note.startswith("balance not permitted by the rune")
    assert "method is not equal to" in provider.balance_note
    notes = [e for e in debug_logs if e["event"] == "clnrest.balance_not_permitted"]
    assert len(notes) == 1 and notes[0]["log_level"] == "info"


async def test_syncing_node_is_unhealthy_with_the_warning(
    double: ClnDouble, provider: ClnRestProvider
) -> None:
    """A getinfo sync warning makes the node unhealthy, with the warning as the reason."""
    double.sync_warning = "Bitcoind is not up-to-date with network."

    report = await provider.health()

    assert not report.healthy
    assert report.error is not None and "Bitcoind is not up-to-date" in report.error
    assert report.node_pubkey == double.node_id


@pytest.mark.parametrize(
    "reply",
    [rpc_error(-1, "internal error"), Reply(201, body="<html>", content_type="text/html"),
     Reply(201, json={"id": "not a key"}), Reply(hang=True)],
    ids=["500", "garbage", "bad id", "hang"],
)
async def test_unhealthy_answers_do_not_raise(
    double: ClnDouble, provider: ClnRestProvider, reply: Reply
) -> None:
    """A failing, unreadable or hung getinfo is an unhealthy report, within the timeout."""
    double.script.script("getinfo", reply)
    started = time.monotonic()

    report = await provider.health()

    assert not report.healthy and report.error
    assert time.monotonic() - started < TIMEOUT + 0.5


async def test_failing_listfunds_is_unhealthy(
    double: ClnDouble, provider: ClnRestProvider
) -> None:
    """A listfunds that fails for another reason than the rune makes health fail."""
    double.script.script("listfunds", rpc_error(-1, "wallet trouble"))

    report = await provider.health()

    assert not report.healthy and report.error is not None and "wallet trouble" in report.error


# ------------------------------------------------------------------------------- errors


async def test_rune_not_ours_is_auth_failed(double: ClnDouble) -> None:
    """A rune the node did not issue is refused (401, 1501): ProviderAuthFailed everywhere."""
    provider = make_provider(double, rune="tU-RLjMiDpY2U0o3W1oFowar36RFGpWloPbW9-RuZdo9MyZpZD0w")
    try:
        with pytest.raises(ProviderAuthFailed, match="Not derived from master"):
            await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
        with pytest.raises(ProviderAuthFailed):
            await provider.invoice_status(os.urandom(32).hex())
        report = await provider.health()
    finally:
        await provider.aclose()
    assert not report.healthy and report.error is not None and "HTTP 401" in report.error


async def test_rune_without_the_method_is_auth_failed(double: ClnDouble) -> None:
    """A rune that does not permit invoice is refused (401, 1502 Not permitted)."""
    provider = make_provider(double, rune=double.make_rune({"getinfo"}))
    try:
        with pytest.raises(ProviderAuthFailed, match="Not permitted"):
            await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
    finally:
        await provider.aclose()


async def test_missing_rune_answer_is_auth_failed(
    double: ClnDouble, provider: ClnRestProvider
) -> None:
    """clnrest's 403 (a rune it did not receive) is ProviderAuthFailed."""
    double.script.script("invoice", rpc_error(1501, "Not authorized: Missing rune", 403))

    with pytest.raises(ProviderAuthFailed, match="HTTP 403"):
        await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)


async def test_invalid_params_is_rejected(double: ClnDouble, provider: ClnRestProvider) -> None:
    """An RPC parameter error (-32602) is permanent: ProviderRejected with CLN's message."""
    double.script.script("invoice", rpc_error(-32602, "amount_msat: should be positive msat"))

    with pytest.raises(ProviderRejected) as caught:
        await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
    assert not isinstance(caught.value, ProviderAuthFailed)
    assert "should be positive msat (code -32602)" in caught.value.message


@pytest.mark.parametrize(
    "reply",
    [rpc_error(-1, "Catchall nonspecific error"), rpc_error(900, "Duplicate label 'x'"),
     Reply(503, body="upstream down", content_type="text/plain")],
)
async def test_other_failures_are_unavailable(
    double: ClnDouble, provider: ClnRestProvider, reply: Reply
) -> None:
    """Any other RPC error or 5xx is transient: ProviderUnavailable."""
    double.script.script("invoice", reply)

    with pytest.raises(ProviderUnavailable):
        await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)


async def test_unknown_method_is_rejected(double: ClnDouble) -> None:
    """A 404 from clnrest (no such RPC method: plugin missing) is ProviderRejected."""
    double.script.script("listinvoices", rpc_error(-32601, "Unknown command 'listinvoices'", 404))
    provider = make_provider(double)
    try:
        with pytest.raises(ProviderRejected, match="HTTP 404"):
            await provider.invoice_status(os.urandom(32).hex())
    finally:
        await provider.aclose()


@pytest.mark.parametrize(
    "reply",
    [Reply(201, body="<html>ok</html>", content_type="text/html"),
     Reply(201, json=["not", "an", "object"]),
     Reply(201, json={"payment_hash": "ab" * 32}),
     Reply(201, json={"bolt11": "lnbcrt1...", "payment_hash": "not hex"})],
    ids=["html", "array", "no bolt11", "bad hash"],
)
async def test_garbage_create_answer_is_unavailable(
    double: ClnDouble, provider: ClnRestProvider, reply: Reply
) -> None:
    """A 201 that is not the invoice result the schema promises is ProviderUnavailable."""
    double.script.script("invoice", reply)

    with pytest.raises(ProviderUnavailable):
        await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)


async def test_garbage_listinvoices_answer_is_unavailable(
    double: ClnDouble, provider: ClnRestProvider
) -> None:
    """A listinvoices answer without an invoices list is ProviderUnavailable, never None."""
    double.script.script("listinvoices", Reply(201, json={"invoices": ["lngate-x"]}))

    with pytest.raises(ProviderUnavailable):
        await provider.invoice_status(os.urandom(32).hex())


async def test_hang_is_unavailable_within_the_timeout(
    double: ClnDouble, provider: ClnRestProvider
) -> None:
    """A node that accepts the request and never answers costs the timeout, no more."""
    double.script.script("invoice", Reply(hang=True))
    started = time.monotonic()

    with pytest.raises(ProviderUnavailable, match="no answer within"):
        await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
    assert time.monotonic() - started < TIMEOUT + 0.5


async def test_refused_connection_is_unavailable(double: ClnDouble) -> None:
    """Nothing listening: ProviderUnavailable."""
    url = double.url
    await double.stop()
    settings = ClnRestConfig(url, "rune", timeout=TIMEOUT)
    provider = ClnRestProvider(settings, make_session(settings))
    try:
        with pytest.raises(ProviderUnavailable):
            await provider.invoice_status(os.urandom(32).hex())
    finally:
        await provider.aclose()


# ------------------------------------------------------------------------------- TLS


async def test_tls_with_clnrest_ca_and_pins() -> None:
    """Over https, the node is reached when its CA, its server certificate or that
    certificate's fingerprint is configured."""
    async with ClnDouble(tls=True) as double:
        assert double.certs is not None
        for tls in ({"ca_cert": str(double.certs.ca_path)},
                    {"tls_cert": str(double.certs.server_path)},
                    {"tls_fingerprint": double.certs.server_fingerprint.upper()}):
            provider = make_provider(double, **tls)
            try:
                assert (await provider.health()).healthy, tls
            finally:
                await provider.aclose()


async def test_tls_without_trust_is_refused() -> None:
    """clnrest's self-signed chain is not trusted by the system's CAs: unavailable, and the
    node never sees the request."""
    async with ClnDouble(tls=True) as double:
        provider = make_provider(double)
        try:
            with pytest.raises(ProviderUnavailable):
                await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
        finally:
            await provider.aclose()
        assert double.script.requests_to("invoice") == []


# ------------------------------------------------------------------------------- paid stream


async def test_stream_yields_each_paid_invoice_once_in_order(
    double: ClnDouble, provider: ClnRestProvider
) -> None:
    """Each payment is yielded once, in pay order, and its pay_index becomes the cursor once
    the consumer asks for the next."""
    first = await provider.create_invoice(amount_msat=1_000, memo="a", expiry=600)
    second = await provider.create_invoice(amount_msat=2_000, memo="b", expiry=600)
    collector = Collector(provider)
    try:
        await wait_until(lambda: double.script.requests_to("waitanyinvoice"))
        double.mark_paid(second.payment_hash)
        double.mark_paid(first.payment_hash)
        await collector.wait_for(2)
        await wait_until(lambda: provider.paid_cursor == 2)
    finally:
        await collector.stop()

    assert collector.hashes == [second.payment_hash, first.payment_hash]
    waits = [r.json for r in double.script.requests_to("waitanyinvoice")]
    assert waits[:3] == [{"lastpay_index": 0, "timeout": 60}, {"lastpay_index": 1, "timeout": 60},
                         {"lastpay_index": 2, "timeout": 60}]


async def test_stream_resumes_after_a_restart_without_missing_or_repeating(
    double: ClnDouble,
) -> None:
    """After a restart the stream resumes from the stored lastpay_index: the payments handled
    before are not delivered again, the one made while the gateway was down is delivered."""
    store = MemoryCursorStore()
    provider = make_provider(double, cursor_store=store)
    invoices = [await provider.create_invoice(amount_msat=1_000, memo=str(i), expiry=600)
                for i in range(3)]
    collector = Collector(provider)
    try:
        double.mark_paid(invoices[0].payment_hash)
        double.mark_paid(invoices[1].payment_hash)
        await collector.wait_for(2)
        await wait_until(lambda: store.cursor == 2)  # the consumer asked for the next one
    finally:
        await collector.stop()  # the gateway stops while waiting for the next payment
        await provider.aclose()
    double.mark_paid(invoices[2].payment_hash)  # paid while the gateway is down

    restarted = make_provider(double, cursor_store=store)
    collector = Collector(restarted)
    try:
        await collector.wait_for(1)
        await asyncio.sleep(0.1)
    finally:
        await collector.stop()
        await restarted.aclose()

    assert collector.hashes == [invoices[2].payment_hash]
    assert store.cursor == 3


async def test_cursor_is_saved_only_once_the_consumer_asks_for_more(double: ClnDouble) -> None:
    """While the consumer handles a payment its pay_index is not saved yet (a crash then means
    the payment is delivered again, never lost); asking for the next one saves it."""
    store = MemoryCursorStore()
    provider = make_provider(double, cursor_store=store)
    invoice = await provider.create_invoice(amount_msat=1_000, memo="a", expiry=600)
    double.mark_paid(invoice.payment_hash)
    payments = provider.paid_invoices()
    try:
        assert await anext(payments) == invoice.payment_hash
        assert store.cursor is None and provider.paid_cursor is None
        waiting = asyncio.create_task(anext(payments))
        await wait_until(lambda: store.cursor == 1)
        assert not waiting.done()
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
    finally:
        await payments.aclose()  # type: ignore[attr-defined]
        await provider.aclose()


async def test_first_start_replays_every_paid_invoice_of_ours(double: ClnDouble) -> None:
    """With no stored cursor the stream starts at 0: invoices paid before the first start are
    delivered (a payment is never missed), and others' invoices are passed over."""
    ours = make_provider(double)
    theirs = make_provider(double, label_prefix="shop-")
    mine = await ours.create_invoice(amount_msat=1_000, memo="mine", expiry=600)
    other = await theirs.create_invoice(amount_msat=1_000, memo="other", expiry=600)
    later = await ours.create_invoice(amount_msat=1_000, memo="later", expiry=600)
    double.mark_paid(other.payment_hash)
    double.mark_paid(mine.payment_hash)
    collector = Collector(ours)
    try:
        await collector.wait_for(1)
        double.mark_paid(later.payment_hash)
        await collector.wait_for(2)
        await wait_until(lambda: ours.paid_cursor == 3)
    finally:
        await collector.stop()
        await ours.aclose()
        await theirs.aclose()

    assert collector.hashes == [mine.payment_hash, later.payment_hash]


async def test_poll_timeout_starts_the_next_poll(double: ClnDouble) -> None:
    """waitanyinvoice's timeout (904) is not an error: the next poll starts from the same
    cursor, and a payment after it is delivered."""
    provider = make_provider(double, poll_seconds=1)
    invoice = await provider.create_invoice(amount_msat=1_000, memo="x", expiry=600)
    collector = Collector(provider)
    try:
        await wait_until(lambda: len(double.script.requests_to("waitanyinvoice")) >= 2, 4)
        double.mark_paid(invoice.payment_hash)
        await collector.wait_for(1)
    finally:
        await collector.stop()
        await provider.aclose()

    assert collector.error is None and collector.hashes == [invoice.payment_hash]
    polls = [r.json for r in double.script.requests_to("waitanyinvoice")]
    assert polls[:2] == [{"lastpay_index": 0, "timeout": 1}] * 2


async def test_dropped_poll_is_unavailable_and_the_next_run_resumes(
    double: ClnDouble, provider: ClnRestProvider
) -> None:
    """A long poll whose connection drops mid-wait ends the stream with ProviderUnavailable;
    the next run resumes from the cursor, missing and repeating nothing."""
    first = await provider.create_invoice(amount_msat=1_000, memo="a", expiry=600)
    second = await provider.create_invoice(amount_msat=1_000, memo="b", expiry=600)
    collector = Collector(provider)
    double.mark_paid(first.payment_hash)
    await collector.wait_for(1)
    await wait_until(lambda: len(double.script.requests_to("waitanyinvoice")) >= 2)
    await asyncio.sleep(0.05)
    double.drop_waiters()
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
    ("reply", "error"),
    [(Reply(201, body="<html>", content_type="text/html"), ProviderUnavailable),
     (Reply(201, json={"label": "lngate-x", "status": "paid"}), ProviderUnavailable),
     (rpc_error(1502, "Not permitted: method is not equal to invoice", 401), ProviderAuthFailed)],
    ids=["garbage", "no pay_index", "rune"],
)
async def test_stream_failures_end_the_stream_with_an_error(
    double: ClnDouble, provider: ClnRestProvider, reply: Reply, error: type[Exception]
) -> None:
    """An unreadable waitanyinvoice answer, or a refused rune, ends the stream with the error
    (the listener logs it and subscribes again later)."""
    double.script.script("waitanyinvoice", reply)

    with pytest.raises(error):
        async for _ in provider.paid_invoices():
            pass


async def test_failing_cursor_store_does_not_stop_the_stream(
    double: ClnDouble, debug_logs: list[dict[str, Any]]
) -> None:
    """A store that cannot save is logged at WARNING and the stream goes on."""

    class BrokenStore(MemoryCursorStore):
        async def save(self, cursor: int) -> None:
            raise OSError("database is gone")

    provider = make_provider(double, cursor_store=BrokenStore())
    first = await provider.create_invoice(amount_msat=1_000, memo="a", expiry=600)
    second = await provider.create_invoice(amount_msat=1_000, memo="b", expiry=600)
    double.mark_paid(first.payment_hash)
    double.mark_paid(second.payment_hash)
    collector = Collector(provider)
    try:
        await collector.wait_for(2)
    finally:
        await collector.stop()
        await provider.aclose()

    assert collector.hashes == [first.payment_hash, second.payment_hash]
    warnings = [e for e in debug_logs if e["event"] == "clnrest.cursor_not_saved"]
    assert warnings and warnings[0]["log_level"] == "warning"
    assert "database is gone" in warnings[0]["error"]


async def test_stored_cursor_that_is_not_an_int_is_refused(double: ClnDouble) -> None:
    """A corrupt stored cursor is a ValueError, not a silent restart from 0."""
    provider = make_provider(double, cursor_store=MemoryCursorStore("7"))  # type: ignore[arg-type]
    try:
        with pytest.raises(ValueError, match="lastpay_index"):
            async for _ in provider.paid_invoices():
                pass
    finally:
        await provider.aclose()


# ------------------------------------------------------------------------------- secrets, config


async def test_rune_never_appears_in_logs_errors_or_reprs(
    double: ClnDouble, debug_logs: list[dict[str, Any]]
) -> None:
    """The rune is in no DEBUG line, error message or repr, even when the node echoes it;
    each request and answer is one DEBUG line, and nothing is logged at INFO or above."""
    provider = make_provider(double)
    rune = double.rune
    invoice = await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
    double.mark_paid(invoice.payment_hash)
    await provider.invoice_status(invoice.payment_hash)
    double.script.script("invoice", rpc_error(1501, f"Not authorized: rune {rune} unknown", 401))
    with pytest.raises(ProviderAuthFailed) as caught:
        await provider.create_invoice(amount_msat=1_000, memo="x", expiry=60)
    await provider.aclose()

    assert rune not in str(caught.value) and "***" in str(caught.value)
    assert rune not in repr(provider) and rune not in repr(provider._config)
    assert rune not in repr(debug_logs)
    assert double.script.requests_to("listinvoices")  # the rune was really used
    preimage = double.invoices[invoice.payment_hash].preimage
    assert preimage not in repr(debug_logs)
    events = [e["event"] for e in debug_logs if e.get("provider") == "cln-a"]
    assert events.count("clnrest.request") == 3 and events.count("clnrest.answer") == 3
    assert all(e["log_level"] == "debug" for e in debug_logs if e.get("provider") == "cln-a")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"endpoint": "http://node.example:3010"}, "https"),
        ({"endpoint": "https://user:pw@node:3010"}, "credentials"),
        ({"endpoint": "ftp://node"}, "https URL"),
        ({"endpoint": "https://node:3010/?x=1"}, "query"),
        ({"rune": ""}, "rune"),
        ({"rune": "abc def"}, "rune"),
        ({"poll_seconds": 0}, "poll_seconds"),
        ({"timeout": 0}, "timeouts"),
        ({"tls_fingerprint": "ab" * 32, "ca_cert": "/x"}, "only one"),
        ({"tls_fingerprint": "abc"}, "64 hex"),
        ({"ca_cert": "/nonexistent/ca.pem"}, "cannot read"),
    ],
)
def test_config_refuses_unsafe_or_broken_values(kwargs: dict[str, Any], message: str) -> None:
    """Plain http to another machine, credentials in the URL, an empty rune, a bad poll or
    timeout, two TLS choices or an unreadable certificate are refused when configured."""
    values: dict[str, Any] = {"endpoint": "https://node.example:3010", "rune": "abc"}
    values.update(kwargs)
    with pytest.raises(ValueError, match=message):
        ClnRestConfig(**values)


def test_config_accepts_loopback_http() -> None:
    """Plain http is fine on this machine (clnrest-protocol=http behind a local proxy)."""
    assert ClnRestConfig("http://localhost:3010/", "abc").endpoint == "http://localhost:3010"
    assert ClnRestConfig("http://[::1]:3010", "abc").endpoint == "http://[::1]:3010"


async def test_provider_fits_the_interface_and_owns_its_session(double: ClnDouble) -> None:
    """The provider is a Provider and a PaidStream, declares its capabilities and closes the
    session it was given."""
    settings = ClnRestConfig(double.url, double.rune)
    session = make_session(settings)
    provider = ClnRestProvider(settings, session)

    stream: PaidStream = provider  # the type checker holds it to the protocol
    assert isinstance(provider, Provider) and callable(stream.paid_invoices)
    assert provider.capabilities.paid_stream and provider.capabilities.balance
    assert not provider.capabilities.webhook
    assert provider.name == "cln"
    await provider.aclose()
    assert session.closed


async def test_doorbell_listener_settles_every_payment_across_a_dropped_poll(
    double: ClnDouble, provider: ClnRestProvider
) -> None:
    """With the gateway's listener, each payment is settled once, also when a poll's connection
    drops in between: the listener subscribes again and the stream resumes from the cursor."""
    settled: list[str] = []

    async def settle(payment_hash: str, *, source: str) -> SettleOutcome:
        status = await provider.invoice_status(payment_hash)  # doorbell, then verify
        assert status is not None and status.state is PaymentState.PAID
        assert source == "cln-a-notification"
        settled.append(payment_hash)
        return SettleOutcome.SETTLED

    first = await provider.create_invoice(amount_msat=1_000, memo="a", expiry=600)
    second = await provider.create_invoice(amount_msat=1_000, memo="b", expiry=600)
    listener = asyncio.create_task(
        listen_paid_stream(provider, name="cln-a", settle=settle, resubscribe_after=0.05)
    )
    try:
        double.mark_paid(first.payment_hash)
        await wait_until(lambda: settled == [first.payment_hash])
        await wait_until(lambda: len(double.script.requests_to("waitanyinvoice")) >= 2)
        await asyncio.sleep(0.05)
        double.drop_waiters()
        double.mark_paid(second.payment_hash)
        await wait_until(lambda: len(settled) == 2)
        await asyncio.sleep(0.1)
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)

    assert settled == [first.payment_hash, second.payment_hash]
