"""NWC (Nostr Wallet Connect, NIP-47) provider on ``nostr-sdk`` 0.45.1.

The wallet is reached through one or more Nostr relays named in the connection URL
(``nostr+walletconnect://<wallet pubkey>?relay=wss://...&secret=<hex>``). The secret signs and
encrypts our requests: it never appears in a message, ``repr`` or log line of this module.

Connections
    One ``NostrWalletConnect`` client per relay (a client with several relays fails every call as
    soon as one of them is down, while the wallet still executes it). Clients are built lazily on
    first use; the constructor opens nothing. Before each call the relay connection is checked
    and, when down, re-attempted once within ``connect_timeout``; a relay that cannot be reached
    makes the call fail over to the next relay. The relay that last answered is tried first.
    Every call is bounded by ``asyncio.wait_for`` with ``timeout``, because the library's own
    timeout does not cover connecting.

Errors
    The library reports every failure as ``NostrSdkError.Generic(<text>)``; a wallet's NIP-47
    error arrives as ``"<message> [<CamelCaseCode>]"``. They map to :mod:`lngate.errors` so:

    ==========================================================  ========================
    what happened                                               raised
    ==========================================================  ========================
    RATE_LIMITED, INTERNAL                                      ProviderUnavailable
    ``response not received`` (wallet down or slow)             ProviderUnavailable
    ``relay not connected``, relay unreachable, other client    ProviderUnavailable
    errors, our deadline passed
    UNAUTHORIZED                                                ProviderAuthFailed
    RESTRICTED, QUOTA_EXCEEDED, NOT_IMPLEMENTED,                ProviderRejected
    INSUFFICIENT_BALANCE, PAYMENT_FAILED, OTHER, NOT_FOUND
    (NOT_FOUND from ``lookup_invoice`` is ``None`` instead)
    any other ``[Code]``, or ``unknown variant `X```             ProviderRejected
    (a code the library or we do not know)
    ==========================================================  ========================

Logs
    Every request and answer at DEBUG only (``nwc.request`` with its parameters, ``nwc.answer``
    with the duration and a summary of the result or the error, ``nwc.no_answer``); a relay
    becoming unreachable at WARNING and reachable again at INFO, once per change. Amounts,
    payment hashes, states and times are shown; the secret and preimages never are.

Notifications
    The 0.45.1 binding has no NWC notification API. :meth:`NWCProvider.paid_invoices` subscribes
    on each relay client's inner ``Client`` to kinds 23197 (NIP-44) and 23196 (NIP-04) from the
    wallet to our key, decrypts them and yields the payment hash of each ``payment_received``,
    once (wallets send both kinds). It is a doorbell: the caller re-checks with
    :meth:`NWCProvider.invoice_status`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar
from urllib.parse import parse_qsl, urlsplit

import coincurve
import structlog
from nostr_sdk import (
    ClientNotificationStream,
    Event,
    Filter,
    GetBalanceResponse,
    GetInfoResponse,
    Keys,
    Kind,
    LookupInvoiceRequest,
    LookupInvoiceResponse,
    MakeInvoiceRequest,
    NostrSdkError,
    NostrWalletConnect,
    NostrWalletConnectBuilder,
    NostrWalletConnectUri,
    PublicKey,
    RelayOptions,
    RelayStatus,
    RelayUrl,
    ReqTarget,
    SecretKey,
    Timestamp,
    TransactionState,
    nip04_decrypt,
    nip44_decrypt,
)

from lngate.domain import HealthReport, PaymentState, PaymentStatus, ProviderInvoice
from lngate.errors import (
    ProviderAuthFailed,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
)
from lngate.providers.base import Capabilities, check_create_request, check_payment_hash
from lngate.providers.timestamps import from_unix

log = structlog.get_logger(__name__)

T = TypeVar("T")

SCHEME = "nostr+walletconnect"
RETRY_INTERVAL = timedelta(seconds=5)  # the library's minimum; its default is 10 s
KIND_NOTIFICATION_NIP04 = 23196
KIND_NOTIFICATION_NIP44 = 23197
_HEX64 = re.compile(r"[0-9a-f]{64}")

UNAVAILABLE_CODES = frozenset({"RATE_LIMITED", "INTERNAL"})
AUTH_CODES = frozenset({"UNAUTHORIZED"})
REJECTED_CODES = frozenset(
    {
        "RESTRICTED",
        "QUOTA_EXCEEDED",
        "NOT_IMPLEMENTED",
        "INSUFFICIENT_BALANCE",
        "PAYMENT_FAILED",
        "OTHER",
        "NOT_FOUND",
    }
)


# -- connection URL ---------------------------------------------------------------------------


class NWCUrlError(ValueError):
    """The NWC connection URL is malformed; the message never contains the secret."""


@dataclass(frozen=True, slots=True)
class NWCUrl:
    """The parts of a ``nostr+walletconnect://`` URL."""

    wallet_pubkey: str
    """The wallet service's Nostr key, x-only hex (not the Lightning node key)."""
    relays: tuple[str, ...]
    secret: str = field(repr=False)
    lud16: str | None = None


def parse_nwc_url(url: str) -> NWCUrl:
    """Parse and check an NWC connection URL; raise :class:`NWCUrlError` saying what is wrong."""
    if not isinstance(url, str) or not url.strip():
        raise NWCUrlError("NWC URL is empty")
    text = url.strip()
    scheme, sep, rest = text.partition(":")
    if not sep or scheme.lower() != SCHEME:
        raise NWCUrlError(f"NWC URL must start with {SCHEME}://")
    parts = urlsplit(f"{SCHEME}:{rest}")
    pubkey = (parts.netloc or parts.path.lstrip("/")).lower()
    if not pubkey:
        raise NWCUrlError("NWC URL has no wallet pubkey after the scheme")
    if not _HEX64.fullmatch(pubkey) or not _is_xonly_point(pubkey):
        raise NWCUrlError("NWC URL wallet pubkey must be a 64-hex-digit secp256k1 x-only key")

    relays: list[str] = []
    secrets_: list[str] = []
    lud16: str | None = None
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "relay":
            relays.append(value.strip())
        elif key == "secret":
            secrets_.append(value.strip().lower())
        elif key == "lud16":
            lud16 = value or None

    if not relays:
        raise NWCUrlError("NWC URL has no relay= parameter")
    for i, relay in enumerate(relays, 1):
        if not relay.lower().startswith(("ws://", "wss://")):
            raise NWCUrlError(f"NWC URL relay {i} of {len(relays)} is not a ws:// or wss:// URL")
        try:
            RelayUrl.parse(relay)
        except NostrSdkError:
            raise NWCUrlError(f"NWC URL relay {i} of {len(relays)} is not a valid URL") from None
    if not secrets_:
        raise NWCUrlError("NWC URL has no secret= parameter")
    if len(secrets_) > 1:
        raise NWCUrlError("NWC URL has more than one secret= parameter")
    secret = secrets_[0]
    if not _HEX64.fullmatch(secret):
        raise NWCUrlError("NWC URL secret must be 64 hex digits")
    try:
        coincurve.PrivateKey(bytes.fromhex(secret))
    except ValueError:
        raise NWCUrlError("NWC URL secret is not a valid secp256k1 secret key") from None
    return NWCUrl(
        wallet_pubkey=pubkey, relays=tuple(dict.fromkeys(relays)), secret=secret, lud16=lud16
    )


def _is_xonly_point(hex_key: str) -> bool:
    try:
        coincurve.PublicKey(b"\x02" + bytes.fromhex(hex_key))
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class NWCConfig:
    """How to reach an NWC wallet. ``uri`` holds the secret and is kept out of ``repr``."""

    uri: str = field(repr=False)
    timeout: float = 5.0
    """Deadline of one call in seconds, connecting included."""
    connect_timeout: float = 3.0
    """Deadline of one attempt to (re)connect a relay, within the call's deadline."""

    def __post_init__(self) -> None:
        parse_nwc_url(self.uri)
        if not self.timeout > 0 or not self.connect_timeout > 0:
            raise ValueError("NWC timeout and connect_timeout must be positive")


# -- errors -----------------------------------------------------------------------------------

_CODE_SUFFIX = re.compile(r"^(?P<message>.*?)\s*\[(?P<code>[A-Za-z]+)\]$", re.S)
_UNKNOWN_VARIANT = re.compile(r"unknown variant `(?P<code>[^`]*)`")


def nip47_code(camel: str) -> str:
    """``"QuotaExceeded"`` -> ``"QUOTA_EXCEEDED"``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).upper()


def _text(exc: NostrSdkError) -> str:
    return exc[0] if isinstance(exc, NostrSdkError.Generic) else type(exc).__name__


def wallet_error_code(exc: NostrSdkError) -> str | None:
    """The NIP-47 code of a wallet's error answer (``"NOT_FOUND"``), else ``None``."""
    m = _CODE_SUFFIX.match(_text(exc))
    return nip47_code(m["code"]) if m else None


def map_error(exc: NostrSdkError, *, operation: str, provider: str, secret: str) -> ProviderError:
    """Turn a ``nostr-sdk`` error into our tree (see the module docstring's table)."""
    text = _text(exc).replace(secret, "<secret>")
    if m := _CODE_SUFFIX.match(text):
        code, message = nip47_code(m["code"]), m["message"]
        detail = f"{operation}: wallet answered {code}: {message}"
        if code in UNAVAILABLE_CODES:
            return ProviderUnavailable(detail, provider=provider)
        if code in AUTH_CODES:
            return ProviderAuthFailed(detail, provider=provider)
        if code in REJECTED_CODES:
            return ProviderRejected(detail, provider=provider)
        return ProviderRejected(
            f"{operation}: wallet answered an unknown NIP-47 error code {code}: {message}",
            provider=provider,
        )
    if m := _UNKNOWN_VARIANT.search(text):
        return ProviderRejected(
            f"{operation}: wallet answered error code {m['code']}, which the NWC client does not "
            "know (the wallet's message is lost)",
            provider=provider,
        )
    if text == "response not received":
        return ProviderUnavailable(
            f"{operation}: no response from the wallet service (down or slow)", provider=provider
        )
    if text == "relay not connected":
        return ProviderUnavailable(f"{operation}: relay not connected", provider=provider)
    return ProviderUnavailable(f"{operation}: NWC client error: {text}", provider=provider)


# -- provider ---------------------------------------------------------------------------------


class _RelayClient:
    """One ``NostrWalletConnect`` client bound to a single relay, built on first use."""

    def __init__(self, url: NWCUrl, relay: str, timeout: float) -> None:
        self.relay = relay
        self._url = url
        self._timeout = timeout
        self._nwc: NostrWalletConnect | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self.reachable: bool | None = None
        """Whether the last attempt to reach the relay succeeded (``None``: not tried yet)."""

    @property
    def built(self) -> NostrWalletConnect | None:
        return self._nwc

    async def ready(self, connect_timeout: float) -> NostrWalletConnect:
        """The client, with its relay connected; raises ``NostrSdkError`` when unreachable."""
        async with self._lock:
            if self._closed:
                raise NostrSdkError.Generic("client closed")
            relay_url = RelayUrl.parse(self.relay)
            if self._nwc is None:
                uri = NostrWalletConnectUri(
                    PublicKey.parse(self._url.wallet_pubkey),
                    [relay_url],
                    SecretKey.parse(self._url.secret),
                    self._url.lud16,
                )
                opts = RelayOptions().retry_interval(RETRY_INTERVAL)
                nwc = (
                    NostrWalletConnectBuilder(uri)
                    .timeout(timedelta(seconds=self._timeout))
                    .relay(opts)
                    .build()
                )
                # Added here, not by the library's lazy bootstrap, so that connecting is ours:
                # bounded, and retried on the next call instead of in a 5 s background loop.
                await nwc.client().add_relay(relay_url, opts=opts)
                self._nwc = nwc
            relay = await self._nwc.client().relay(relay_url)
            if relay is None:
                raise NostrSdkError.Generic("relay not connected")
            status = relay.status()
            if status == RelayStatus.CONNECTED:
                return self._nwc
            if status not in (RelayStatus.INITIALIZED, RelayStatus.TERMINATED):
                # Lost connection: the library retries every 5 s in the background. Retry now
                # (subscriptions are re-sent on reconnect).
                relay.disconnect()
            await relay.try_connect(timedelta(seconds=connect_timeout))
            return self._nwc

    async def aclose(self) -> None:
        # Not under the lock: a connect attempt in progress must not delay the shutdown.
        self._closed = True
        nwc, self._nwc = self._nwc, None
        if nwc is not None:
            await nwc.client().shutdown()


class _Recent:
    """A bounded set of recently seen keys."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._keys: OrderedDict[str, None] = OrderedDict()

    def add(self, key: str) -> bool:
        """Remember ``key``; ``False`` if it was already there."""
        if key in self._keys:
            return False
        self._keys[key] = None
        if len(self._keys) > self._size:
            self._keys.popitem(last=False)
        return True


class NWCProvider:
    """A wallet reached over Nostr Wallet Connect (see the module docstring)."""

    capabilities = Capabilities(webhook=False, paid_stream=True, balance=True)

    def __init__(self, config: NWCConfig, name: str = "nwc") -> None:
        self.name = name
        self._config = config
        self._url = parse_nwc_url(config.uri)
        self._clients = [_RelayClient(self._url, r, config.timeout) for r in self._url.relays]
        self._wallet_pk = PublicKey.parse(self._url.wallet_pubkey)
        self._secret = SecretKey.parse(self._url.secret)
        self.node_pubkey: str | None = None
        """The wallet's Lightning node key, learned from ``get_info`` by :meth:`health`."""

    def __repr__(self) -> str:
        return f"NWCProvider(name={self.name!r}, relays={list(self._url.relays)!r})"

    @property
    def relays(self) -> tuple[str, ...]:
        """The relays from the connection URL, in configured order."""
        return self._url.relays

    # -- calls --------------------------------------------------------------------------------

    async def create_invoice(
        self, *, amount_msat: int, memo: str, expiry: int, webhook_url: str | None = None
    ) -> ProviderInvoice:
        """Issue an invoice with ``make_invoice`` (NWC has no webhooks: ``webhook_url`` unused).

        Arguments outside :func:`~lngate.providers.base.check_create_request` raise
        ``ProviderRejected`` before anything is sent; an answer without the invoice or its
        payment hash is a malformed answer: ``ProviderUnavailable``.
        """
        check_create_request(self.name, amount_msat=amount_msat, memo=memo, expiry=expiry)
        request = MakeInvoiceRequest(
            amount=amount_msat, description=memo, description_hash=None, expiry=expiry
        )
        resp = await self._call(
            "make_invoice",
            lambda nwc: nwc.make_invoice(request),
            params={"amount_msat": amount_msat, "expiry": expiry},
        )
        if not resp.invoice or not resp.payment_hash:
            raise ProviderUnavailable(
                "make_invoice: wallet answered without an invoice or payment hash",
                provider=self.name,
            )
        payment_hash = resp.payment_hash.lower()
        return ProviderInvoice(
            bolt11=resp.invoice,
            payment_hash=payment_hash,
            amount_msat=resp.amount if resp.amount is not None else amount_msat,
            provider_ref=payment_hash,
        )

    async def invoice_status(self, payment_hash: str) -> PaymentStatus | None:
        """Ask with ``lookup_invoice``; ``None`` when the wallet answers NOT_FOUND.

        SETTLED is PAID; PENDING and ACCEPTED (held) are PENDING. A wallet that omits ``state``
        (older NIP-47) is PAID when it gives ``settled_at``, else UNKNOWN; so is an answer about
        another payment hash. ``paid_at`` is the wallet's ``settled_at``; ``None`` when it is
        missing or implausible (0, out of range, before ``created_at``). A ``settled_at`` that
        is not an unsigned integer is refused by ``nostr-sdk`` itself: the whole answer is then
        unreadable (``ProviderUnavailable``). A ``payment_hash`` that is not 64 hex digits
        raises ``ProviderRejected`` before anything is sent.
        """
        payment_hash = check_payment_hash(self.name, payment_hash)
        request = LookupInvoiceRequest(payment_hash=payment_hash, invoice=None)

        async def lookup(nwc: NostrWalletConnect) -> LookupInvoiceResponse | None:
            try:
                return await nwc.lookup_invoice(request)
            except NostrSdkError as exc:
                if wallet_error_code(exc) == "NOT_FOUND":
                    return None
                raise

        resp = await self._call("lookup_invoice", lookup, params={"payment_hash": payment_hash})
        if resp is None:
            return None
        if resp.payment_hash and resp.payment_hash.lower() != payment_hash.lower():
            log.warning(
                "nwc.lookup_mismatch",
                provider=self.name,
                asked=payment_hash,
                answered=resp.payment_hash,
            )
            return PaymentStatus(PaymentState.UNKNOWN)
        state = resp.state
        if state == TransactionState.SETTLED or (state is None and resp.settled_at is not None):
            return PaymentStatus(
                PaymentState.PAID,
                amount_msat=resp.amount,
                preimage=resp.preimage or None,
                paid_at=self._paid_at(resp),
            )
        mapped = {
            TransactionState.PENDING: PaymentState.PENDING,
            TransactionState.ACCEPTED: PaymentState.PENDING,
            TransactionState.EXPIRED: PaymentState.EXPIRED,
            TransactionState.FAILED: PaymentState.FAILED,
        }.get(state, PaymentState.UNKNOWN)
        return PaymentStatus(mapped, amount_msat=resp.amount)

    def _paid_at(self, resp: LookupInvoiceResponse) -> datetime | None:
        if resp.settled_at is None:
            return None
        created = None
        if resp.created_at is not None:
            created = from_unix(
                resp.created_at.as_secs(), provider=self.name, field="created_at"
            )
        return from_unix(
            resp.settled_at.as_secs(), provider=self.name, field="settled_at", not_before=created
        )

    async def health(self) -> HealthReport:
        """``get_info`` and ``get_balance`` in parallel; learns :attr:`node_pubkey`; never raises.

        A wallet that answers but refuses one of them (RESTRICTED, NOT_IMPLEMENTED) is healthy.
        """
        started = time.perf_counter()
        # return_exceptions: a probe reports every failure, even an unexpected one.
        info: GetInfoResponse | BaseException
        balance: GetBalanceResponse | BaseException
        info, balance = await asyncio.gather(
            self._call("get_info", _get_info),
            self._call("get_balance", _get_balance),
            return_exceptions=True,
        )
        elapsed_ms = (time.perf_counter() - started) * 1000
        for result in (info, balance):
            if isinstance(result, BaseException) and not _is_refusal(result):
                error = str(result) if isinstance(result, ProviderError) else repr(result)
                return HealthReport(
                    healthy=False,
                    response_time_ms=elapsed_ms,
                    error=error,
                    node_pubkey=self.node_pubkey,
                )
        if not isinstance(info, BaseException) and info.pubkey:
            self.node_pubkey = info.pubkey.lower()
        return HealthReport(
            healthy=True,
            response_time_ms=elapsed_ms,
            balance_msat=None if isinstance(balance, BaseException) else balance.balance,
            node_pubkey=self.node_pubkey,
        )

    async def paid_invoices(self) -> AsyncIterator[str]:
        """Yield the payment hash of each ``payment_received`` notification, once each.

        Subscribes on every relay that can be reached now (raises ProviderUnavailable when none
        can); lost relay connections are re-established by the library, with the subscription.
        Notifications sent while not subscribed are lost: the reconciler covers them.
        """
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        sub_id = f"lngate-paid-{secrets.token_hex(4)}"
        readers: list[tuple[_RelayClient, asyncio.Task[None]]] = []
        try:
            failures: list[str] = []
            for client in self._clients:
                try:
                    stream = await self._subscribe_notifications(client, sub_id)
                except (NostrSdkError, TimeoutError) as exc:
                    failures.append(f"{client.relay}: {self._reason(exc)}")
                    continue
                task = asyncio.create_task(
                    self._read_notifications(stream, sub_id, queue),
                    name=f"{self.name}-paid-invoices-{client.relay}",
                )
                readers.append((client, task))
            if not readers:
                raise ProviderUnavailable(
                    "paid_invoices: could not subscribe on any relay (" + "; ".join(failures) + ")",
                    provider=self.name,
                )
            if failures:
                log.warning("nwc.paid_stream_partial", provider=self.name, failures=failures)
            seen = _Recent()
            open_readers = len(readers)
            while open_readers:
                payment_hash = await queue.get()
                if payment_hash is None:
                    open_readers -= 1
                elif seen.add(payment_hash):
                    yield payment_hash
        finally:
            for client, task in readers:
                task.cancel()
                if (nwc := client.built) is not None:
                    with contextlib.suppress(NostrSdkError, TimeoutError):
                        await asyncio.wait_for(nwc.client().unsubscribe(sub_id), 1.0)

    async def _subscribe_notifications(
        self, client: _RelayClient, sub_id: str
    ) -> ClientNotificationStream:
        nwc = await asyncio.wait_for(
            client.ready(self._config.connect_timeout), self._config.connect_timeout
        )
        inner = nwc.client()
        stream = inner.notifications()  # before subscribing: it only sees later events
        flt = (
            Filter()
            .author(self._wallet_pk)
            .pubkey(Keys(self._secret).public_key())
            .kinds([Kind(KIND_NOTIFICATION_NIP44), Kind(KIND_NOTIFICATION_NIP04)])
            .since(Timestamp.now())
        )
        await asyncio.wait_for(
            inner.subscribe(ReqTarget.auto([flt]), id=sub_id), self._config.timeout
        )
        return stream

    async def _read_notifications(
        self, stream: ClientNotificationStream, sub_id: str, queue: asyncio.Queue[str | None]
    ) -> None:
        try:
            while (note := await stream.next()) is not None:
                if not note.is_new_event() or note.subscription_id != sub_id:
                    continue  # the same client also receives the 23195 replies to our calls
                payment_hash = self._payment_hash(note.event)
                if payment_hash is not None:
                    queue.put_nowait(payment_hash)
        finally:
            queue.put_nowait(None)

    def _payment_hash(self, event: Event) -> str | None:
        """The hash of a ``payment_received`` notification from our wallet, else ``None``."""
        kind = event.kind().as_u16()
        if event.author().to_hex() != self._url.wallet_pubkey:
            return None
        decrypt = nip44_decrypt if kind == KIND_NOTIFICATION_NIP44 else nip04_decrypt
        try:
            body = json.loads(decrypt(self._secret, self._wallet_pk, event.content()))
        except (NostrSdkError, ValueError) as exc:
            log.warning(
                "nwc.notification_unreadable",
                provider=self.name,
                kind=kind,
                error=self._reason(exc),
            )
            return None
        if not isinstance(body, dict) or body.get("notification_type") != "payment_received":
            return None
        notification = body.get("notification")
        payment_hash = notification.get("payment_hash") if isinstance(notification, dict) else None
        if not isinstance(payment_hash, str) or not _HEX64.fullmatch(payment_hash.lower()):
            log.warning("nwc.notification_without_hash", provider=self.name, kind=kind)
            return None
        return payment_hash.lower()

    async def aclose(self) -> None:
        """Shut down every relay client."""
        for client in self._clients:
            try:
                await asyncio.wait_for(client.aclose(), 2.0)
            except (NostrSdkError, TimeoutError) as exc:
                log.warning(
                    "nwc.close_failed",
                    provider=self.name,
                    relay=client.relay,
                    error=self._reason(exc),
                )

    # -- plumbing -----------------------------------------------------------------------------

    async def _call(
        self,
        operation: str,
        request: Callable[[NostrWalletConnect], Awaitable[T]],
        *,
        params: dict[str, object] | None = None,
    ) -> T:
        """Run ``request`` on the first relay that can be reached, within ``timeout``.

        Each attempt and its answer are logged at DEBUG (``nwc.request``, ``nwc.answer``,
        ``nwc.no_answer``) with ``params`` and a summary of the answer (:func:`_summary`).
        """
        started = time.perf_counter()
        try:
            return await asyncio.wait_for(
                self._call_relays(operation, request, params or {}), self._config.timeout
            )
        except TimeoutError:
            log.debug("nwc.no_answer", provider=self.name, operation=operation,
                      duration_ms=_ms_since(started), error="timed out")
            raise ProviderUnavailable(
                f"{operation}: no answer within {self._config.timeout:g}s", provider=self.name
            ) from None

    async def _call_relays(
        self,
        operation: str,
        request: Callable[[NostrWalletConnect], Awaitable[T]],
        params: dict[str, object],
    ) -> T:
        """Try each relay in turn; a relay we cannot reach fails over to the next one."""
        failures: list[str] = []
        for client in list(self._clients):
            try:
                nwc = await asyncio.wait_for(
                    client.ready(self._config.connect_timeout), self._config.connect_timeout
                )
            except (NostrSdkError, TimeoutError) as exc:
                reason = self._reason(exc)
                failures.append(f"{client.relay}: {reason}")
                self._relay_reached(client, operation, reason)
                continue
            self._relay_reached(client, operation, None)
            verbose = log.is_enabled_for(logging.DEBUG)
            fields = {"provider": self.name, "operation": operation, "relay": client.relay}
            if verbose:
                log.debug("nwc.request", **fields, params=params)
            started = time.perf_counter()
            try:
                result = await request(nwc)
            except NostrSdkError as exc:
                reason = self._reason(exc)
                if verbose:
                    log.debug("nwc.answer", **fields, duration_ms=_ms_since(started),
                              error=reason)
                if reason == "relay not connected":
                    failures.append(f"{client.relay}: relay not connected")
                    continue
                raise map_error(
                    exc, operation=operation, provider=self.name, secret=self._url.secret
                ) from None
            if verbose:
                log.debug("nwc.answer", **fields, duration_ms=_ms_since(started),
                          result=_summary(result))
            if client is not self._clients[0]:  # stick to the relay that answered
                self._clients.remove(client)
                self._clients.insert(0, client)
            return result
        raise ProviderUnavailable(
            f"{operation}: no relay reachable (" + "; ".join(failures) + ")", provider=self.name
        )

    def _relay_reached(self, client: _RelayClient, operation: str, error: str | None) -> None:
        """Log a relay's reachability: a change once (WARNING down, INFO back), else DEBUG."""
        previous, client.reachable = client.reachable, error is None
        fields = {"provider": self.name, "relay": client.relay, "operation": operation}
        if error is None:
            if previous is False:
                log.info("nwc.relay_reachable", **fields)
        elif previous is not False:
            log.warning("nwc.relay_unreachable", **fields, error=error)
        else:
            log.debug("nwc.relay_unreachable", **fields, error=error)

    def _reason(self, exc: BaseException) -> str:
        if isinstance(exc, TimeoutError):
            return "timed out"
        text = _text(exc) if isinstance(exc, NostrSdkError) else str(exc)
        return text.replace(self._url.secret, "<secret>")


_SUMMARY_FIELDS = (
    "payment_hash", "state", "amount", "created_at", "expires_at", "settled_at", "balance",
    "alias", "pubkey", "network",
)


def _summary(result: object) -> dict[str, object] | str:
    """What a log line may show of a wallet's answer: amounts, hashes, states, times, the
    invoice cut short; never the preimage."""
    if result is None:
        return "not found"
    summary: dict[str, object] = {}
    for name in _SUMMARY_FIELDS:
        value = getattr(result, name, None)
        if value is None:
            continue
        if isinstance(value, Timestamp):
            summary[name] = value.as_secs()
        elif isinstance(value, bool | int | str):
            summary[name] = value
        else:
            summary[name] = getattr(value, "name", str(value))
    invoice = getattr(result, "invoice", None)
    if isinstance(invoice, str) and invoice:
        summary["invoice"] = invoice[:20] + "…"
    return summary


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


async def _get_info(nwc: NostrWalletConnect) -> GetInfoResponse:
    return await nwc.get_info()


async def _get_balance(nwc: NostrWalletConnect) -> GetBalanceResponse:
    return await nwc.get_balance()


def _is_refusal(result: BaseException) -> bool:
    """The wallet answered but refused (not an outage, not a revoked connection)."""
    return isinstance(result, ProviderRejected) and not isinstance(result, ProviderAuthFailed)


