"""LND as a provider, through its REST proxy (grpc-gateway in front of lnd's gRPC server).

Every call carries the macaroon as hex in ``Grpc-Metadata-macaroon``, over TLS to lnd's own
certificate (pinned, or through a CA: :mod:`lngate.providers.nodetls`). lnd's JSON has
snake_case names, int64 values as **decimal strings** and bytes as **base64**:

- create: ``POST /v1/invoices`` ``{"value_msat": "<msat>", "memo", "expiry": "<s>"}`` (and
  ``"private": true`` with ``private_route_hints``) -> ``r_hash`` (base64 of the payment
  hash, turned into hex), ``payment_request``, ``add_index``;
- status: ``GET /v2/invoices/lookup?payment_hash=<URL-safe base64, padded>`` (a raw ``+``
  would read as a space in a query); unknown: 404 with gRPC code 5, or on a node without any
  invoice 500 with code 2 ``there are no existing invoices`` (both ``None``). ``state``
  ``OPEN`` / ``ACCEPTED`` / ``SETTLED`` / ``CANCELED``; once settled ``amt_paid_msat``,
  ``r_preimage`` (base64) and ``settle_date`` (Unix seconds). lnd has no "expired" state: an
  ``OPEN`` invoice past ``creation_date + expiry`` is reported expired, and so is a
  ``CANCELED`` one (lnd cancels expired invoices); a ``CANCELED`` one before its expiry
  failed;
- health: ``GET /v1/getinfo`` (``identity_pubkey``, pinned by the gateway for payee checks;
  ``synced_to_chain`` false makes the node unhealthy), then ``GET /v1/balance/channels``
  (``local_balance.msat``). A macaroon without ``offchain:read`` leaves the balance out
  (:attr:`LndRestProvider.balance_note`) without failing health;
- paid stream: ``GET /v1/invoices/subscribe?settle_index=<cursor>``: a response that never
  ends, one ``{"result": <Invoice>}`` line per added or settled invoice (settled ones after
  the cursor are replayed first), ``{"error": <Status>}`` before it ends in error. Only
  ``SETTLED`` invoices ring the doorbell; their ``settle_index`` is the cursor
  (:mod:`lngate.providers.cursors`). With no saved cursor the stream starts at 0, which lnd
  reads as "no replay". lnd sends nothing while nothing happens (not even the response
  headers before the first event), so after ``stream_idle_seconds`` of silence the stream is
  opened again from the cursor, quietly: a silent connection may be a dead one.

The macaroon needs ``invoices:read``, ``invoices:write``, ``info:read`` and, for the balance,
``offchain:read``: ``lncli bakemacaroon invoices:read invoices:write info:read offchain:read``
(lnd's ``invoice.macaroon`` lacks ``info:read``, so health fails with it).

How answers map to the error tree (:mod:`lngate.errors`), on top of the shared HTTP mapping of
:mod:`lngate.providers.http` (no connection, timeouts, TLS failures, a certificate that does
not match included, 5xx, 429: unavailable; 401 and 403: auth failed; other 4xx: rejected).
lnd's error body is the gRPC status ``{"code", "message", "details"}``:

======================================================  =======================================
what lnd answered                                       raised
======================================================  =======================================
500, code 2, about the macaroon (``expected 1           ``ProviderAuthFailed``
macaroon, got 0``, ``encoding/hex: ...``, ``cannot get
macaroon: ...``, ``verification failed...``,
``permission denied``): lnd reports refused
credentials as gRPC ``Unknown``
404 with code 5 on a look-up, or 500 ``there are no     ``None`` (not an error)
existing invoices``
400 (code 3: our request is wrong)                      ``ProviderRejected``
any other 500 (code 2: lnd could not do it right now)   ``ProviderUnavailable``
a 200 whose body is not the JSON the API promises,      ``ProviderUnavailable``
a stream line that is not, a stream that ends
======================================================  =======================================

Logs: each request and answer at DEBUG (``lndrest.request``, ``lndrest.answer``,
``lndrest.no_answer``; the stream's ``lndrest.stream_open``, ``lndrest.settled``,
``lndrest.stream_idle``) with amounts, hashes, states, indexes and times; never the macaroon
(masked should lnd echo it) or a preimage.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import structlog

from lngate.domain import HealthReport, PaymentState, PaymentStatus, ProviderInvoice
from lngate.errors import ProviderError, ProviderRejected, ProviderUnavailable
from lngate.providers.base import Capabilities, check_create_request, check_payment_hash
from lngate.providers.cursors import CursorStore, MemoryCursorStore
from lngate.providers.http import (
    HttpAnswer,
    HttpTransport,
    LogSummary,
    error_for_status,
)
from lngate.providers.http import make_session as make_http_session
from lngate.providers.nodetls import TlsOption, check_endpoint, tls_option
from lngate.providers.timestamps import from_unix

log = structlog.get_logger(__name__)

GRPC_UNKNOWN = 2
GRPC_NOT_FOUND = 5
NO_INVOICES = "there are no existing invoices"
"""lnd's answer (500, code 2) to a look-up on a node that has no invoice at all."""
MACAROON_HEADER = "Grpc-Metadata-macaroon"
_AUTH_TEXTS = ("macaroon", "permission denied", "encoding/hex", "verification failed",
               "packet too short")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_NODE_ID = re.compile(r"0[23][0-9a-f]{64}")
_MAX_ERROR_BODY = 64 * 1024
_SUMMARY = LogSummary(
    shown=("value_msat", "expiry", "r_hash", "add_index", "settle_index", "state",
           "creation_date", "settle_date", "amt_paid_msat", "code", "message",
           "identity_pubkey", "synced_to_chain", "block_height", "balance"),
    shortened=("payment_request",),
    present=("r_preimage", "payment_addr"),
)


@dataclass(frozen=True, slots=True)
class LndRestConfig:
    """Where an lnd node's REST API is and how to reach it. The macaroon is never shown."""

    endpoint: str
    """Base URL of the REST API, e.g. ``https://node.example:8080`` (``http`` only on this
    machine, for an lnd run with ``no-rest-tls``)."""
    macaroon: str = field(repr=False)
    """The macaroon, hex (``xxd -p -c 1000 invoices.macaroon``): see the module for the
    permissions it needs."""
    tls_cert: str | None = None
    """lnd's ``tls.cert`` (path or PEM text): accept only this certificate."""
    tls_fingerprint: str | None = None
    """SHA-256 of ``tls.cert`` (hex, colons allowed): accept only this certificate."""
    ca_cert: str | None = None
    """A CA (path or PEM text) to verify the server against, host name included."""
    timeout: float = 5.0
    """Seconds allowed for one call, connecting included."""
    connect_timeout: float | None = None
    """Seconds allowed to connect; defaults to ``timeout``."""
    private_route_hints: bool = False
    """Put hints for private channels in invoices (lnd's ``private``): for a node whose
    channels are all private."""
    stream_idle_seconds: float = 300.0
    """Silence after which the paid stream is opened again (a silent connection may be
    dead)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "endpoint", check_endpoint(self.endpoint, what="LND"))
        macaroon = self.macaroon.strip() if isinstance(self.macaroon, str) else ""
        if not _HEX.fullmatch(macaroon):
            raise ValueError("LND macaroon must be the macaroon file's bytes in hex")
        object.__setattr__(self, "macaroon", macaroon.lower())
        if self.timeout <= 0 or (self.connect_timeout is not None and self.connect_timeout <= 0):
            raise ValueError("LND timeouts must be positive")
        if self.stream_idle_seconds <= 0:
            raise ValueError("LND stream_idle_seconds must be positive")
        self.tls()  # refuse a wrong TLS setting now, not at the first call

    def tls(self) -> TlsOption:
        """The TLS setting of the session (see :mod:`lngate.providers.nodetls`)."""
        return tls_option(ca_cert=self.ca_cert, cert=self.tls_cert,
                          fingerprint=self.tls_fingerprint, what="LND TLS")


def make_session(config: LndRestConfig) -> aiohttp.ClientSession:
    """A pooled session trusting lnd's certificate; call it inside the running loop."""
    return make_http_session(config.timeout, ssl_context=config.tls())


class LndRestProvider:
    """One lnd node, reached over its REST API with an injected ``aiohttp`` session.

    The provider owns the session (:meth:`aclose` closes it); the constructor opens nothing.
    ``cursor_store`` keeps the paid stream's ``settle_index`` across restarts (in memory when
    not given); ``clock`` (Unix seconds) judges whether an open invoice has expired.
    """

    capabilities = Capabilities(webhook=False, paid_stream=True, balance=True)

    def __init__(
        self,
        config: LndRestConfig,
        session: aiohttp.ClientSession,
        *,
        name: str = "lnd",
        cursor_store: CursorStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._config = config
        self._clock = clock
        self._http = HttpTransport(
            session, config.endpoint, provider=name, timeout=config.timeout,
            connect_timeout=config.connect_timeout, headers={MACAROON_HEADER: config.macaroon},
            secrets=[config.macaroon], log_prefix="lndrest", summary=_SUMMARY,
        )
        self._stream_headers = {MACAROON_HEADER: config.macaroon, "Accept": "application/json"}
        self._cursor_store = cursor_store if cursor_store is not None else MemoryCursorStore()
        self._paid_cursor: int | None = None
        self.node_pubkey: str | None = None
        """The node key (``identity_pubkey``) from the last successful health probe."""
        self.balance_note: str | None = None
        """Why the last health report has no balance (the macaroon lacks offchain:read)."""

    def __repr__(self) -> str:
        return f"LndRestProvider(name={self.name!r}, endpoint={self._config.endpoint!r})"

    @property
    def paid_cursor(self) -> int | None:
        """The ``settle_index`` of the last payment the stream's consumer handled (or loaded)."""
        return self._paid_cursor

    # ----------------------------------------------------------------------------- invoices

    async def create_invoice(
        self, *, amount_msat: int, memo: str, expiry: int, webhook_url: str | None = None
    ) -> ProviderInvoice:
        """Issue an invoice; ``webhook_url`` is ignored (lnd calls no webhooks).

        Raises ``ProviderRejected`` before sending anything for a request no provider should
        send (:func:`~lngate.providers.base.check_create_request`).
        """
        check_create_request(self.name, amount_msat=amount_msat, memo=memo, expiry=expiry)
        body: dict[str, Any] = {"value_msat": str(amount_msat), "memo": memo,
                                "expiry": str(expiry)}
        if self._config.private_route_hints:
            body["private"] = True
        answer = await self._http.request("POST", "/v1/invoices", operation="create_invoice",
                                          json=body)
        data = self._result("create_invoice", answer)
        payment_hash = self._hash_field("create_invoice", data, "r_hash")
        bolt11 = self._http.require("create_invoice", data, "payment_request", str)
        self._http.require_int("create_invoice", data, "add_index", decimal_string=True)
        return ProviderInvoice(bolt11=bolt11, payment_hash=payment_hash,
                               amount_msat=amount_msat, provider_ref=payment_hash)

    async def invoice_status(self, payment_hash: str) -> PaymentStatus | None:
        """lnd's view of the invoice; ``None`` when lnd has no invoice with that hash.

        Raises ``ProviderRejected`` if ``payment_hash`` is not 64 hex characters.
        """
        payment_hash = check_payment_hash(self.name, payment_hash)
        query = base64.urlsafe_b64encode(bytes.fromhex(payment_hash)).decode()
        answer = await self._http.request(
            "GET", "/v2/invoices/lookup", operation="invoice_status",
            params={"payment_hash": query},
        )
        code, message = self._grpc_error(answer)
        if (answer.status == 404 and code == GRPC_NOT_FOUND) or (
                answer.status == 500 and code == GRPC_UNKNOWN and message == NO_INVOICES):
            return None
        data = self._result("invoice_status", answer)
        if self._hash_field("invoice_status", data, "r_hash") != payment_hash:
            return PaymentStatus(PaymentState.UNKNOWN)  # an answer about another invoice
        return self._payment_status(data)

    def _payment_status(self, invoice: dict[str, Any]) -> PaymentStatus:
        """An ``Invoice`` as a status: a field missing or of the wrong type is a malformed
        answer; a settled invoice with nothing paid does not add up (UNKNOWN)."""
        operation = "invoice_status"
        state = self._http.require(operation, invoice, "state", str)
        value = _decimal(invoice.get("value_msat"))
        created = _decimal(invoice.get("creation_date"))
        expiry = _decimal(invoice.get("expiry"))
        expired = (created is not None and expiry is not None
                   and self._clock() >= created + expiry)
        if state == "SETTLED":
            paid = self._http.require_int(operation, invoice, "amt_paid_msat",
                                          decimal_string=True)
            if paid <= 0:
                return PaymentStatus(PaymentState.UNKNOWN)
            preimage = _b64_hex(invoice.get("r_preimage"))
            created_at = None if created is None else from_unix(
                created, provider=self.name, field="creation_date")
            paid_at = from_unix(_decimal(invoice.get("settle_date")), provider=self.name,
                                field="settle_date", not_before=created_at)
            return PaymentStatus(PaymentState.PAID, amount_msat=paid, preimage=preimage,
                                 paid_at=paid_at)
        if state == "OPEN":
            return PaymentStatus(PaymentState.EXPIRED if expired else PaymentState.PENDING,
                                 amount_msat=value)
        if state == "ACCEPTED":  # a hold invoice's HTLCs are held: not paid yet
            return PaymentStatus(PaymentState.PENDING, amount_msat=value)
        if state == "CANCELED":
            return PaymentStatus(PaymentState.EXPIRED if expired else PaymentState.FAILED,
                                 amount_msat=value)
        return PaymentStatus(PaymentState.UNKNOWN)

    # ----------------------------------------------------------------------------- health

    async def health(self) -> HealthReport:
        """``getinfo`` (node key, chain sync), then the channel balance if the macaroon
        permits it; never raises."""
        started = time.perf_counter()
        try:
            info = self._result(
                "health", await self._http.request("GET", "/v1/getinfo", operation="health")
            )
            node_id = self._http.require("health", info, "identity_pubkey", str).lower()
            if not _NODE_ID.fullmatch(node_id):
                raise self._http.malformed("health", "identity_pubkey is not a node key")
            self.node_pubkey = node_id
            synced = self._http.require("health", info, "synced_to_chain", bool)
            balance = await self._balance()
        except (ProviderUnavailable, ProviderRejected) as exc:
            return HealthReport(healthy=False, response_time_ms=_ms_since(started),
                                error=exc.message, node_pubkey=self.node_pubkey)
        if not synced:
            return HealthReport(healthy=False, response_time_ms=_ms_since(started),
                                error="health: lnd is not synced to the chain",
                                balance_msat=balance, node_pubkey=node_id)
        return HealthReport(healthy=True, response_time_ms=_ms_since(started),
                            balance_msat=balance, node_pubkey=node_id)

    async def _balance(self) -> int | None:
        answer = await self._http.request("GET", "/v1/balance/channels", operation="balance")
        code, message = self._grpc_error(answer)
        if answer.status == 500 and code == GRPC_UNKNOWN and message == "permission denied":
            note = "balance not permitted by the macaroon (needs offchain:read)"
            if note != self.balance_note:
                log.info("lndrest.balance_not_permitted", provider=self.name, detail=message)
            self.balance_note = note
            return None
        data = self._result("balance", answer)
        local = data.get("local_balance")
        msat = _decimal(local.get("msat")) if isinstance(local, dict) else None
        if msat is None:
            raise self._http.malformed("balance", "the answer has no local_balance.msat")
        self.balance_note = None
        return msat

    # ----------------------------------------------------------------------------- paid stream

    async def paid_invoices(self) -> AsyncIterator[str]:
        """Yield the payment hash of each invoice settled after the saved cursor.

        The cursor is saved once the consumer asks for the next payment. Raises
        ``ProviderUnavailable`` (or ``ProviderAuthFailed``) when the stream cannot be opened,
        fails or ends; call again to resume from the cursor.
        """
        cursor = await self._load_cursor()
        while True:
            async with contextlib.aclosing(self._settlements(cursor)) as settlements:
                async for settle_index, payment_hash in settlements:
                    yield payment_hash
                    cursor = settle_index
                    await self._save_cursor(cursor)
            # silence for stream_idle_seconds: open the stream again from the cursor

    async def _settlements(self, cursor: int) -> AsyncGenerator[tuple[int, str], None]:
        """``(settle_index, payment hash)`` of each settlement after ``cursor`` on one
        connection; returns after ``stream_idle_seconds`` of silence."""
        config = self._config
        timeout = aiohttp.ClientTimeout(
            total=None, connect=config.connect_timeout or config.timeout,
            sock_read=config.stream_idle_seconds,
        )
        operation = "paid_stream"
        try:
            async with self._http.session.get(
                f"{config.endpoint}/v1/invoices/subscribe",
                params={"settle_index": str(cursor)}, headers=self._stream_headers,
                timeout=timeout, allow_redirects=False,
            ) as response:
                if response.status != 200:
                    body = await response.content.read(_MAX_ERROR_BODY)
                    self._result(operation, HttpAnswer(response.status, body, response.headers))
                log.debug("lndrest.stream_open", provider=self.name, settle_index=cursor)
                while True:
                    line = await response.content.readline()
                    if not line:
                        raise self._http.unavailable(f"{operation}: lnd ended the stream")
                    event = self._stream_event(line)
                    if event is None:
                        continue
                    settle_index, payment_hash = event
                    if settle_index <= cursor:
                        continue  # already handled (a replay overlapping what we saw)
                    cursor = settle_index
                    log.debug("lndrest.settled", provider=self.name,
                              payment_hash=payment_hash, settle_index=settle_index)
                    yield settle_index, payment_hash
        except aiohttp.SocketTimeoutError:
            log.debug("lndrest.stream_idle", provider=self.name,
                      idle_s=config.stream_idle_seconds)
        except TimeoutError:
            raise self._http.unavailable(f"{operation}: no connection within "
                                         f"{timeout.connect:g} s") from None
        except ValueError:  # aiohttp: a line longer than its buffer
            raise self._http.unavailable(f"{operation}: a stream line is too long") from None
        except aiohttp.ClientError as exc:
            # `from None`: aiohttp's errors hold the request headers (the macaroon)
            raise self._http.unavailable(
                f"{operation}: {type(exc).__name__}: {self._http.clean(str(exc))}"
            ) from None

    def _stream_event(self, line: bytes) -> tuple[int, str] | None:
        """A settlement from one stream line; ``None`` for an event that is not one."""
        operation = "paid_stream"
        if not line.strip():
            return None
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise self._http.malformed(operation, "a stream line is not JSON") from None
        if not isinstance(event, dict):
            raise self._http.malformed(operation, "a stream line is not a JSON object")
        if "error" in event:
            body = orjson.dumps(event)
            self._result(operation, HttpAnswer(500, body, {}))  # raises
        invoice = event.get("result")
        if not isinstance(invoice, dict):
            raise self._http.malformed(operation, "a stream line has no result")
        if invoice.get("state") != "SETTLED":
            return None  # an added invoice, or a state we do not act on
        settle_index = _decimal(invoice.get("settle_index"))
        if settle_index is None or settle_index <= 0:
            raise self._http.malformed(operation, "a settled invoice has no settle_index")
        return settle_index, self._hash_field(operation, invoice, "r_hash")

    async def _load_cursor(self) -> int:
        cursor = await self._cursor_store.load()
        if cursor is not None and (isinstance(cursor, bool) or not isinstance(cursor, int)
                                   or cursor < 0):
            raise ValueError(f"{self.name}: the stored settle_index {cursor!r} is not an int >= 0")
        self._paid_cursor = cursor
        return cursor or 0

    async def _save_cursor(self, cursor: int) -> None:
        self._paid_cursor = cursor
        try:
            await self._cursor_store.save(cursor)
        except Exception as exc:  # a failing store costs a repeated doorbell, never a payment
            log.warning("lndrest.cursor_not_saved", provider=self.name, cursor=cursor,
                        error=f"{type(exc).__name__}: {exc}"[:200])

    async def aclose(self) -> None:
        """Close the session (and its pooled connections) this provider was given."""
        await self._http.session.close()

    # ----------------------------------------------------------------------------- internals

    def _result(self, operation: str, answer: HttpAnswer) -> dict[str, Any]:
        """The JSON object of a 2xx answer; otherwise the error it means (module table)."""
        if answer.ok:
            return self._http.json_object(operation, answer)
        code, message = self._grpc_error(answer)
        detail = message if code is None else f"{message} (code {code})"
        error: ProviderError | None
        if answer.status == 500 and code == GRPC_UNKNOWN and _about_macaroon(message):
            error = self._http.auth_failed(f"{operation}: HTTP 500: {detail}")
        else:
            error = error_for_status(answer.status, detail, operation=operation,
                                     provider=self.name, retry_after=answer.retry_after())
        assert error is not None
        raise error

    def _grpc_error(self, answer: HttpAnswer) -> tuple[int | None, str]:
        """The gRPC status of an error answer (``{"code", "message"}``, or a stream's
        ``{"error": {...}}``): its code (``None`` when absent) and cleaned message."""
        if answer.ok:
            return None, ""
        try:
            data = orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            data = data["error"]
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            return _decimal(data.get("code")), self._http.clean(data["message"])
        return None, self._http.detail(answer.body)

    def _hash_field(self, operation: str, data: dict[str, Any], name: str) -> str:
        """A 32-byte hash sent as base64, in hex."""
        value = _b64_hex(data.get(name))
        if value is None or len(value) != 64:
            raise self._http.malformed(operation, f"the answer's {name} is not a base64 hash")
        return value


def _about_macaroon(message: str) -> bool:
    text = message.lower()
    return any(fragment in text for fragment in _AUTH_TEXTS)


def _decimal(value: object) -> int | None:
    """An int64 as lnd writes it (a decimal string), or a JSON integer."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _b64_hex(value: object) -> str | None:
    """Standard (or URL-safe) base64 bytes as hex; ``None`` for anything else or empty."""
    if not isinstance(value, str) or not value:
        return None
    try:
        raw = base64.b64decode(value, altchars=b"-_" if ("-" in value or "_" in value) else None,
                               validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() or None


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
