"""The NWC provider against a real Nostr relay and NWC wallet service (tests/peers/nwc_peer.py)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote

import bolt11
import pytest
from structlog.testing import capture_logs

from lngate.domain import PaymentState
from lngate.errors import ProviderAuthFailed, ProviderRejected, ProviderUnavailable
from lngate.providers.nwc import NWCConfig, NWCProvider, NWCUrlError, parse_nwc_url
from tests.peers.nwc_peer import NWCPeer, free_port

T = TypeVar("T")

TIMEOUT = 2.0
# Upper bound for "did not hang": the deadline plus generous slack for a loaded CI machine.
SLACK = 1.5


def with_relays(peer: NWCPeer, *relays: str) -> str:
    """The peer's URI with its relay list replaced by ``relays``."""
    params = "&".join(f"relay={quote(r, safe='')}" for r in relays)
    return f"nostr+walletconnect://{peer.wallet_pubkey}?{params}&secret={peer.client_secret}"


@pytest.fixture
async def provider(nwc_peer: NWCPeer) -> AsyncIterator[NWCProvider]:
    p = NWCProvider(NWCConfig(uri=nwc_peer.uri, timeout=TIMEOUT, connect_timeout=1.0))
    try:
        yield p
    finally:
        await p.aclose()
        nwc_peer.mute(False)


async def timed(coro: Awaitable[T]) -> tuple[T | Exception, float]:
    """Await ``coro``; return (result or exception, seconds)."""
    started = time.perf_counter()
    try:
        result = await coro
    except Exception as exc:  # the test inspects it
        result = exc
    return result, time.perf_counter() - started


async def cancel(task: asyncio.Future[object]) -> None:
    """Cancel ``task`` and wait until it has finished (a generator cannot close while in use)."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


# -- the happy path -------------------------------------------------------------------------


@pytest.mark.nwc
async def test_create_invoice_returns_a_signed_bolt11_matching_the_request(
    provider: NWCProvider, nwc_peer: NWCPeer
) -> None:
    """make_invoice yields a BOLT11 whose amount, hash, memo and payee match the request."""
    health = await provider.health()
    invoice = await provider.create_invoice(
        amount_msat=21_000, memo="lngate test 21 sat", expiry=600
    )
    decoded = bolt11.decode(invoice.bolt11)
    assert invoice.bolt11.startswith("lnbc210n1")
    assert decoded.amount_msat == invoice.amount_msat == 21_000
    assert decoded.payment_hash == invoice.payment_hash == invoice.provider_ref
    assert decoded.description == "lngate test 21 sat"
    assert decoded.expiry == 600
    assert decoded.payee == health.node_pubkey == provider.node_pubkey == nwc_peer.node_pubkey


@pytest.mark.nwc
async def test_health_reports_balance_and_node_pubkey(
    provider: NWCProvider, nwc_peer: NWCPeer
) -> None:
    """A reachable wallet is healthy, with its balance in msat and its Lightning node key."""
    report = await provider.health()
    assert report.healthy and report.error is None
    assert isinstance(report.balance_msat, int) and report.balance_msat >= 0
    assert report.node_pubkey == nwc_peer.node_pubkey
    assert 0 < report.response_time_ms < TIMEOUT * 1000


def peer_invoice(peer: NWCPeer, payment_hash: str) -> dict[str, Any]:
    """The wallet's own record of an invoice (its ``created_at``, ``settled_at``...)."""
    [record] = [i for i in peer.invoices() if i["payment_hash"] == payment_hash]
    return record


@pytest.mark.nwc
async def test_paid_at_is_the_wallets_settled_at(provider: NWCProvider, nwc_peer: NWCPeer) -> None:
    """paid_at is the wallet's settled_at in UTC, not the time of the lookup."""
    invoice = await provider.create_invoice(amount_msat=3_000, memo="when", expiry=600)
    nwc_peer.settle(invoice.payment_hash)
    await asyncio.sleep(1.5)  # found later than it was paid
    looked_up = datetime.now(UTC)

    status = await provider.invoice_status(invoice.payment_hash)

    settled_at = peer_invoice(nwc_peer, invoice.payment_hash)["settled_at"]
    assert status is not None and status.state is PaymentState.PAID
    assert status.paid_at == datetime.fromtimestamp(settled_at, UTC)
    assert status.paid_at.utcoffset() == timedelta(0)
    assert status.paid_at < looked_up - timedelta(seconds=1)


@pytest.mark.nwc
@pytest.mark.parametrize("settled_at", [0, 10**15, "before creation"])
async def test_implausible_settled_at_is_none_and_logged(
    provider: NWCProvider,
    nwc_peer: NWCPeer,
    debug_logs: list[dict[str, Any]],
    settled_at: object,
) -> None:
    """A settled_at of 0, out of range or before the invoice's creation leaves the invoice
    paid with paid_at None (the gateway uses its own clock), logged at DEBUG, never raising."""
    invoice = await provider.create_invoice(amount_msat=1_000, memo="odd time", expiry=600)
    if settled_at == "before creation":
        settled_at = peer_invoice(nwc_peer, invoice.payment_hash)["created_at"] - 60
    nwc_peer.settle(invoice.payment_hash, settled_at=settled_at)

    status = await provider.invoice_status(invoice.payment_hash)

    assert status is not None and status.state is PaymentState.PAID and status.paid_at is None
    [dropped] = [e for e in debug_logs if e["event"] == "provider_time_unusable"]
    assert dropped["log_level"] == "debug" and dropped["field"] == "settled_at"


@pytest.mark.nwc
async def test_settled_at_that_is_not_an_integer_makes_the_answer_unreadable(
    provider: NWCProvider, nwc_peer: NWCPeer
) -> None:
    """nostr-sdk refuses a settled_at that is not an unsigned integer, so the lookup is
    unavailable (the invoice stays pending and is asked again), not a crash."""
    invoice = await provider.create_invoice(amount_msat=1_000, memo="bad time", expiry=600)
    nwc_peer.settle(invoice.payment_hash, settled_at="yesterday")
    with pytest.raises(ProviderUnavailable, match="expected u64"):
        await provider.invoice_status(invoice.payment_hash)


# -- NIP-47 errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "raised"),
    [
        ("RATE_LIMITED", ProviderUnavailable),
        ("INTERNAL", ProviderUnavailable),
        ("UNAUTHORIZED", ProviderAuthFailed),
        ("RESTRICTED", ProviderRejected),
        ("QUOTA_EXCEEDED", ProviderRejected),
        ("NOT_IMPLEMENTED", ProviderRejected),
        ("INSUFFICIENT_BALANCE", ProviderRejected),
        ("PAYMENT_FAILED", ProviderRejected),
        ("OTHER", ProviderRejected),
    ],
)
@pytest.mark.nwc
async def test_wallet_error_codes_map_to_the_error_tree(
    provider: NWCProvider, code: str, raised: type[Exception]
) -> None:
    """Each NIP-47 error code from make_invoice raises its documented class, naming the code."""
    with pytest.raises((ProviderUnavailable, ProviderRejected)) as info:
        await provider.create_invoice(amount_msat=1_000, memo=f"nwc-peer:error:{code}", expiry=60)
    assert type(info.value) is raised
    assert code in str(info.value) and info.value.provider == "nwc"


@pytest.mark.nwc
async def test_unknown_error_code_is_rejected_with_a_clear_message(provider: NWCProvider) -> None:
    """A code outside the library's enum is a ProviderRejected that names the code."""
    with pytest.raises(ProviderRejected) as info:
        await provider.create_invoice(
            amount_msat=1_000, memo="nwc-peer:error:UNSUPPORTED_ENCRYPTION", expiry=60
        )
    assert type(info.value) is ProviderRejected
    assert "UNSUPPORTED_ENCRYPTION" in str(info.value) and "does not know" in str(info.value)


@pytest.mark.nwc
async def test_lookup_error_other_than_not_found_raises(
    provider: NWCProvider, nwc_peer: NWCPeer
) -> None:
    """A revoked connection (UNAUTHORIZED) on lookup raises ProviderAuthFailed, not None."""
    nwc_peer.fail_next("UNAUTHORIZED")
    with pytest.raises(ProviderAuthFailed):
        await provider.invoice_status("cd" * 32)


@pytest.mark.nwc
async def test_health_of_a_failing_wallet_reports_instead_of_raising(
    provider: NWCProvider, nwc_peer: NWCPeer
) -> None:
    """health() returns an unhealthy report with the reason when the wallet errors."""
    nwc_peer.fail_next("INTERNAL")
    report = await provider.health()
    assert not report.healthy and report.error is not None and "INTERNAL" in report.error


# -- outages ---------------------------------------------------------------------------------


@pytest.mark.nwc
async def test_wallet_that_never_answers_is_unavailable_within_the_deadline(
    nwc_peer: NWCPeer,
) -> None:
    """A request the wallet never answers raises ProviderUnavailable at our 1 s deadline."""
    provider = NWCProvider(NWCConfig(uri=nwc_peer.uri, timeout=1.0, connect_timeout=0.5))
    try:
        await provider.health()  # connected: what follows measures only the unanswered call
        result, took = await timed(
            provider.create_invoice(amount_msat=1_000, memo="nwc-peer:noreply", expiry=60)
        )
    finally:
        await provider.aclose()
    assert isinstance(result, ProviderUnavailable), result
    assert 0.9 <= took < 1.0 + SLACK


@pytest.mark.nwc
async def test_muted_wallet_is_unavailable_and_recovers(
    nwc_peer: NWCPeer,
) -> None:
    """A hung wallet makes lookups fail within the deadline; it works again once it answers."""
    provider = NWCProvider(NWCConfig(uri=nwc_peer.uri, timeout=1.0, connect_timeout=0.5))
    try:
        invoice = await provider.create_invoice(amount_msat=1_000, memo="mute", expiry=60)
        nwc_peer.mute(True)
        result, took = await timed(provider.invoice_status(invoice.payment_hash))
        assert isinstance(result, ProviderUnavailable), result
        assert took < 1.0 + SLACK
        report = await provider.health()
        assert not report.healthy
        nwc_peer.mute(False)
        status = await provider.invoice_status(invoice.payment_hash)
        assert status is not None and status.state is PaymentState.PENDING
    finally:
        nwc_peer.mute(False)
        await provider.aclose()


@pytest.mark.nwc
async def test_unreachable_relay_is_unavailable_within_the_deadline(
    nwc_peer: NWCPeer,
) -> None:
    """A URI whose relay port is closed raises ProviderUnavailable, without hanging."""
    dead = f"ws://127.0.0.1:{free_port()}"
    provider = NWCProvider(
        NWCConfig(uri=with_relays(nwc_peer, dead), timeout=2.0, connect_timeout=1.0)
    )
    try:
        for _ in range(2):  # the first call connects, the second finds the relay still down
            result, took = await timed(
                provider.create_invoice(amount_msat=1_000, memo="dead relay", expiry=60)
            )
            assert isinstance(result, ProviderUnavailable), result
            assert "no relay reachable" in str(result)
            assert took < 2.0 + SLACK
        report = await provider.health()
        assert not report.healthy and report.node_pubkey is None
    finally:
        await provider.aclose()


@pytest.mark.nwc
async def test_second_relay_takes_over_when_the_first_is_dead(
    nwc_peer: NWCPeer,
) -> None:
    """With a dead and a live relay, calls go through the live one and create one invoice each."""
    dead = f"ws://127.0.0.1:{free_port()}"
    provider = NWCProvider(
        NWCConfig(
            uri=with_relays(nwc_peer, dead, nwc_peer.relay_url), timeout=2.0, connect_timeout=1.0
        )
    )
    before = len(nwc_peer.invoices())
    try:
        first = await provider.create_invoice(amount_msat=2_000, memo="failover 1", expiry=60)
        second = await provider.create_invoice(amount_msat=2_000, memo="failover 2", expiry=60)
    finally:
        await provider.aclose()
    issued = [i["payment_hash"] for i in nwc_peer.invoices()[before:]]
    assert issued == [first.payment_hash, second.payment_hash]
    assert provider.relays == (dead, nwc_peer.relay_url)


@pytest.mark.nwc
async def test_relay_restart_is_unavailable_then_recovers(
    nwc_peer: NWCPeer, debug_logs: list[dict[str, Any]]
) -> None:
    """While the relay is down calls fail fast; once it is back calls and the paid stream work,
    and the log says so once each way (WARNING down, INFO back)."""
    provider = NWCProvider(NWCConfig(uri=nwc_peer.uri, timeout=2.0, connect_timeout=1.0))
    stream = provider.paid_invoices()
    paid = asyncio.ensure_future(anext(stream))
    try:
        assert (await provider.health()).healthy
        nwc_peer.stop_relay()
        try:
            await asyncio.sleep(0.2)  # let the client see the connection close
            result, took = await timed(provider.invoice_status("ef" * 32))
            assert isinstance(result, ProviderUnavailable), result
            assert took < 1.0  # a refused connection, not a wait for the 2 s deadline
        finally:
            nwc_peer.start_relay()  # waits until the wallet has re-subscribed
        # The client reconnects on this call, not at the library's next 5 s retry.
        report = await provider.health()
        assert report.healthy, report.error
        invoice = await provider.create_invoice(amount_msat=1_000, memo="after restart", expiry=60)
        nwc_peer.settle(invoice.payment_hash)
        # The subscription was re-sent on reconnect.
        assert await asyncio.wait_for(paid, 3) == invoice.payment_hash
        changes = [(e["event"], e["log_level"]) for e in debug_logs
                   if e["event"].startswith("nwc.relay_") and e["log_level"] != "debug"]
        assert changes == [("nwc.relay_unreachable", "warning"), ("nwc.relay_reachable", "info")]
    finally:
        await cancel(paid)
        await stream.aclose()
        await provider.aclose()


# -- the paid stream -------------------------------------------------------------------------


@pytest.mark.nwc
async def test_paid_invoices_yields_each_settled_hash_once(
    provider: NWCProvider, nwc_peer: NWCPeer
) -> None:
    """Settling two invoices yields their two hashes in order, each once despite two notices."""
    stream = provider.paid_invoices()
    first = asyncio.ensure_future(anext(stream))
    try:
        await asyncio.sleep(0.2)  # let the subscription reach the relay
        one = await provider.create_invoice(amount_msat=1_000, memo="stream 1", expiry=60)
        two = await provider.create_invoice(amount_msat=1_000, memo="stream 2", expiry=60)
        nwc_peer.settle(one.payment_hash)
        assert await asyncio.wait_for(first, 3) == one.payment_hash
        nwc_peer.settle(two.payment_hash)
        # The wallet sent `one` twice (kinds 23197 and 23196): the next hash must be `two`.
        assert await asyncio.wait_for(anext(stream), 3) == two.payment_hash
    finally:
        await cancel(first)
        await stream.aclose()


@pytest.mark.nwc
async def test_paid_invoices_ends_when_the_provider_closes(
    nwc_peer: NWCPeer,
) -> None:
    """aclose() ends a running paid stream instead of leaving it waiting forever."""
    provider = NWCProvider(NWCConfig(uri=nwc_peer.uri, timeout=2.0, connect_timeout=1.0))
    stream = provider.paid_invoices()
    waiting = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.2)
    await provider.aclose()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, 3)


@pytest.mark.nwc
async def test_paid_invoices_without_a_reachable_relay_is_unavailable(
    nwc_peer: NWCPeer,
) -> None:
    """The paid stream raises ProviderUnavailable when it cannot subscribe anywhere."""
    dead = f"ws://127.0.0.1:{free_port()}"
    provider = NWCProvider(NWCConfig(uri=with_relays(nwc_peer, dead), connect_timeout=1.0))
    try:
        result, took = await timed(anext(provider.paid_invoices()))
    finally:
        await provider.aclose()
    assert isinstance(result, ProviderUnavailable), result
    assert took < 1.0 + SLACK


# -- configuration and secrets ---------------------------------------------------------------

PUBKEY = "e75f108c57ecafd0d0df600b84450001fc197b4c96bfdfd1c4fe3e8be9c86a3b"
SECRET = "5c0f6a9be1f3b7d3f2ad8b0e7c1c0a1a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a"
RELAY = "relay=wss%3A%2F%2Frelay.example.com"


def test_parse_nwc_url_reads_every_part() -> None:
    """A valid URL gives the pubkey, every relay in order (decoded, deduplicated) and lud16."""
    url = (
        f"nostr+walletconnect://{PUBKEY.upper()}?{RELAY}&relay=ws://127.0.0.1:7000"
        f"&{RELAY}&secret={SECRET}&lud16=shop%40example.com"
    )
    parsed = parse_nwc_url(url)
    assert parsed.wallet_pubkey == PUBKEY
    assert parsed.relays == ("wss://relay.example.com", "ws://127.0.0.1:7000")
    assert parsed.secret == SECRET and parsed.lud16 == "shop@example.com"
    assert SECRET not in repr(parsed)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty"),
        (f"https://{PUBKEY}?{RELAY}&secret={SECRET}", "must start with nostr+walletconnect://"),
        (f"nostr+walletconnect://?{RELAY}&secret={SECRET}", "no wallet pubkey"),
        (f"nostr+walletconnect://{PUBKEY[:-2]}?{RELAY}&secret={SECRET}", "x-only key"),
        (f"nostr+walletconnect://{'f' * 64}?{RELAY}&secret={SECRET}", "x-only key"),
        (f"nostr+walletconnect://{PUBKEY}?secret={SECRET}", "no relay= parameter"),
        (
            f"nostr+walletconnect://{PUBKEY}?relay=https://x.example&secret={SECRET}",
            "relay 1 of 1 is not a ws:// or wss:// URL",
        ),
        (f"nostr+walletconnect://{PUBKEY}?{RELAY}", "no secret= parameter"),
        (
            f"nostr+walletconnect://{PUBKEY}?{RELAY}&secret={SECRET[:-1]}z",
            "secret must be 64 hex digits",
        ),
        (
            f"nostr+walletconnect://{PUBKEY}?{RELAY}&secret={'0' * 64}",
            "not a valid secp256k1 secret key",
        ),
        (
            f"nostr+walletconnect://{PUBKEY}?{RELAY}&secret={SECRET}&secret={SECRET}",
            "more than one secret",
        ),
    ],
)
def test_parse_nwc_url_says_what_is_wrong_without_the_secret(url: str, message: str) -> None:
    """Each malformed URL is refused with a precise message that does not echo the secret."""
    with pytest.raises(NWCUrlError, match=re.escape(message)) as info:
        parse_nwc_url(url)
    assert SECRET not in str(info.value) and SECRET[:-1] not in str(info.value)
    with pytest.raises(ValueError):  # the config refuses it too
        NWCConfig(uri=url)


@pytest.mark.nwc
async def test_secret_never_appears_in_reprs_errors_or_logs(
    nwc_peer: NWCPeer,
) -> None:
    """Neither the config, the provider, its errors nor its log lines contain the secret."""
    dead = f"ws://127.0.0.1:{free_port()}"
    config = NWCConfig(uri=with_relays(nwc_peer, dead), timeout=1.0, connect_timeout=0.5)
    provider = NWCProvider(config)
    texts = [repr(config), str(config), repr(provider)]
    with capture_logs() as logs:
        try:
            for call in (
                provider.create_invoice(amount_msat=1_000, memo="x", expiry=60),
                provider.invoice_status("ab" * 32),
            ):
                result, _ = await timed(call)
                assert isinstance(result, ProviderUnavailable)
                texts += [str(result), repr(result)]
            texts.append(repr(await provider.health()))
        finally:
            await provider.aclose()
    texts += [repr(entry) for entry in logs]
    assert logs, "expected the unreachable relay to be logged"
    assert all(nwc_peer.client_secret not in text for text in texts)


@pytest.mark.nwc
async def test_calls_are_logged_at_debug_with_a_summary_and_no_secret(
    provider: NWCProvider, nwc_peer: NWCPeer, debug_logs: list[dict[str, Any]]
) -> None:
    """Each call is a DEBUG request line (its parameters) and a DEBUG answer line (duration and
    a summary: hash, state, amount, times); neither shows the secret or the preimage."""
    invoice = await provider.create_invoice(amount_msat=4_000, memo="logged", expiry=600)
    nwc_peer.settle(invoice.payment_hash)
    await provider.invoice_status(invoice.payment_hash)

    lines = [e for e in debug_logs if e["event"] in ("nwc.request", "nwc.answer")]
    assert {e["log_level"] for e in debug_logs} == {"debug"}
    assert [(e["event"], e["operation"]) for e in lines] == [
        ("nwc.request", "make_invoice"),
        ("nwc.answer", "make_invoice"),
        ("nwc.request", "lookup_invoice"),
        ("nwc.answer", "lookup_invoice"),
    ]
    make, made, lookup, looked_up = lines
    assert make["params"] == {"amount_msat": 4_000, "expiry": 600}
    assert made["result"]["payment_hash"] == invoice.payment_hash
    assert invoice.bolt11.startswith(made["result"]["invoice"].rstrip("…"))
    assert lookup["params"] == {"payment_hash": invoice.payment_hash}
    assert looked_up["result"]["state"] == "SETTLED" and looked_up["result"]["amount"] == 4_000
    assert isinstance(looked_up["result"]["settled_at"], int)
    assert all(e["relay"] == nwc_peer.relay_url for e in lines)
    assert all(isinstance(e["duration_ms"], float) for e in (made, looked_up))
    preimage = peer_invoice(nwc_peer, invoice.payment_hash)["preimage"]
    text = repr(debug_logs)
    for hidden in (nwc_peer.client_secret, preimage, invoice.bolt11):
        assert hidden not in text


@pytest.mark.nwc
async def test_unreachable_relay_is_a_warning_once_then_debug(
    nwc_peer: NWCPeer, debug_logs: list[dict[str, Any]]
) -> None:
    """A relay that cannot be reached is a WARNING the first time, DEBUG while it stays down."""
    dead = f"ws://127.0.0.1:{free_port()}"
    provider = NWCProvider(
        NWCConfig(uri=with_relays(nwc_peer, dead), timeout=1.0, connect_timeout=0.5)
    )
    try:
        for _ in range(3):
            result, _took = await timed(provider.invoice_status("ab" * 32))
            assert isinstance(result, ProviderUnavailable)
    finally:
        await provider.aclose()
    levels = [e["log_level"] for e in debug_logs if e["event"] == "nwc.relay_unreachable"]
    assert levels == ["warning", "debug", "debug"]


@pytest.mark.nwc
async def test_constructing_opens_nothing(nwc_peer: NWCPeer) -> None:
    """Building a provider for an unreachable relay neither blocks nor fails; closing it is fine."""
    dead = f"ws://127.0.0.1:{free_port()}"
    started = time.perf_counter()
    provider = NWCProvider(NWCConfig(uri=with_relays(nwc_peer, dead)))
    assert time.perf_counter() - started < 0.05
    await provider.aclose()
