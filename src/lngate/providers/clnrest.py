"""Core Lightning as a provider, through its ``clnrest`` plugin (the Rust one, current releases).

Every call is ``POST /v1/<rpc method>`` with the parameters as a JSON object and the rune in
the ``Rune`` header; success is **201** with the RPC result as the body:

- create: ``invoice`` ``{"amount_msat", "label", "description", "expiry"}``. The label must be
  unique on the node: ``<label_prefix><32 random hex digits>``, also the invoice's
  ``provider_ref``. The answer gives ``bolt11`` and ``payment_hash`` (hex);
- status: ``listinvoices`` ``{"payment_hash"}``; an unknown hash is an empty list (``None``);
  ``status`` ``unpaid`` / ``paid`` / ``expired``, with ``amount_received_msat``,
  ``payment_preimage`` and ``paid_at`` (Unix seconds) once paid;
- health: ``getinfo`` (``id`` is the node key, pinned by the gateway for payee checks; a
  ``warning_bitcoind_sync`` or ``warning_lightningd_sync`` makes the node unhealthy), then
  ``listfunds`` for the balance (sum of ``channels[].our_amount_msat``). A rune that does not
  permit ``listfunds`` leaves the balance out (:attr:`ClnRestProvider.balance_note` says so,
  logged once at INFO) without failing health;
- paid stream: ``waitanyinvoice`` ``{"lastpay_index", "timeout"}``, a long poll answered with
  the first invoice paid after ``lastpay_index``; ``timeout`` seconds without a payment is
  the RPC error 904, upon which the next poll starts. The ``pay_index`` of each payment is the
  stream's cursor (:mod:`lngate.providers.cursors`); with no saved cursor the stream starts at
  0, so the node's paid invoices are replayed once. Only invoices whose label starts with
  ``label_prefix`` ring the doorbell; the cursor passes over the others.

How answers map to the error tree (:mod:`lngate.errors`), on top of the shared HTTP mapping of
:mod:`lngate.providers.http` (no connection, timeouts, TLS failures, 5xx and 429: unavailable;
401 and 403: auth failed; other 4xx: rejected). clnrest's error body is the RPC error
``{"code", "message", "data"}``:

=====================================================  =========================================
what clnrest answered                                  raised
=====================================================  =========================================
403 ``1501 Not authorized: Missing rune``; 401 1501    ``ProviderAuthFailed``
(a rune not derived from this node's master), 1502
(``Not permitted: ...``), 1503 (blacklisted)
500 ``-32602`` (invalid parameters: our request is     ``ProviderRejected``
wrong, asking again gets the same answer)
500 with any other code (``-1``, ``900`` duplicate     ``ProviderUnavailable``
label, a plugin failing...)
404 ``-32601`` (no such method: clnrest or a plugin    ``ProviderRejected``
missing), 405, 406
a 201 whose body is not the JSON the schema promises   ``ProviderUnavailable``
=====================================================  =========================================

Logs: each request and answer at DEBUG (``clnrest.request``, ``clnrest.answer``,
``clnrest.no_answer``) with amounts, hashes, labels, states, indexes and times; never the
rune (it travels in a header, and is masked should the node echo it), the preimage or the
payment secret.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import AsyncIterator
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

INVALID_PARAMS = -32602
RUNE_NOT_PERMITTED = 1502
WAIT_TIMED_OUT = 904
_HASH = re.compile(r"[0-9a-f]{64}")
_NODE_ID = re.compile(r"0[23][0-9a-f]{64}")
_SYNC_WARNINGS = ("warning_bitcoind_sync", "warning_lightningd_sync")
_SUMMARY = LogSummary(
    shown=("amount_msat", "label", "expiry", "payment_hash", "status", "expires_at",
           "created_index", "pay_index", "lastpay_index", "timeout", "paid_at",
           "amount_received_msat", "code", "message", "id", "network", "blockheight",
           *_SYNC_WARNINGS),
    shortened=("bolt11",),
    present=("payment_preimage", "payment_secret"),
)


@dataclass(frozen=True, slots=True)
class ClnRestConfig:
    """Where a Core Lightning node's clnrest is and how to reach it. The rune is never shown."""

    endpoint: str
    """Base URL of clnrest, e.g. ``https://node.example:3010`` (``http`` only on this
    machine)."""
    rune: str = field(repr=False)
    """A rune permitting ``invoice``, ``listinvoices``, ``waitanyinvoice`` and ``getinfo``
    (``listfunds`` too for the balance)."""
    ca_cert: str | None = None
    """clnrest's ``ca.pem`` (path or PEM text): verify the server against it, host name
    included."""
    tls_cert: str | None = None
    """clnrest's ``server.pem`` (path or PEM text): accept only this certificate."""
    tls_fingerprint: str | None = None
    """SHA-256 of ``server.pem`` (hex, colons allowed): accept only this certificate."""
    timeout: float = 5.0
    """Seconds allowed for one call, connecting included."""
    connect_timeout: float | None = None
    """Seconds allowed to connect; defaults to ``timeout``."""
    poll_seconds: int = 60
    """How long one ``waitanyinvoice`` long poll waits for a payment before it is renewed."""
    label_prefix: str = "lngate-"
    """Our invoices' labels start with it; the paid stream only reports those (``""``: all)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "endpoint", check_endpoint(self.endpoint, what="CLN"))
        if not self.rune or any(c.isspace() for c in self.rune) or not self.rune.isprintable():
            raise ValueError("CLN rune is empty or has spaces or control characters")
        if self.timeout <= 0 or (self.connect_timeout is not None and self.connect_timeout <= 0):
            raise ValueError("CLN timeouts must be positive")
        if isinstance(self.poll_seconds, bool) or not isinstance(self.poll_seconds, int) \
                or self.poll_seconds < 1:
            raise ValueError("CLN poll_seconds must be a positive int")
        if not self.label_prefix.isprintable():
            raise ValueError("CLN label_prefix must be printable")
        self.tls()  # refuse a wrong TLS setting now, not at the first call

    def tls(self) -> TlsOption:
        """The TLS setting of the session (see :mod:`lngate.providers.nodetls`)."""
        return tls_option(ca_cert=self.ca_cert, cert=self.tls_cert,
                          fingerprint=self.tls_fingerprint, what="CLN TLS")


def make_session(config: ClnRestConfig) -> aiohttp.ClientSession:
    """A pooled session trusting the node's certificate; call it inside the running loop."""
    return make_http_session(config.timeout, ssl_context=config.tls())


class ClnRestProvider:
    """One Core Lightning node, reached over clnrest with an injected ``aiohttp`` session.

    The provider owns the session (:meth:`aclose` closes it); the constructor opens nothing.
    ``cursor_store`` keeps the paid stream's ``lastpay_index`` across restarts (in memory when
    not given).
    """

    capabilities = Capabilities(webhook=False, paid_stream=True, balance=True)

    def __init__(
        self,
        config: ClnRestConfig,
        session: aiohttp.ClientSession,
        *,
        name: str = "cln",
        cursor_store: CursorStore | None = None,
    ) -> None:
        self.name = name
        self._config = config
        self._http = HttpTransport(
            session, config.endpoint, provider=name, timeout=config.timeout,
            connect_timeout=config.connect_timeout, headers={"Rune": config.rune},
            secrets=[config.rune], log_prefix="clnrest", summary=_SUMMARY,
        )
        self._cursor_store = cursor_store if cursor_store is not None else MemoryCursorStore()
        self._paid_cursor: int | None = None
        self.node_pubkey: str | None = None
        """The node key (``getinfo.id``) from the last successful health probe."""
        self.balance_note: str | None = None
        """Why the last health report has no balance (the rune does not permit listfunds)."""

    def __repr__(self) -> str:
        return f"ClnRestProvider(name={self.name!r}, endpoint={self._config.endpoint!r})"

    @property
    def paid_cursor(self) -> int | None:
        """The ``pay_index`` of the last payment the stream's consumer handled (or loaded)."""
        return self._paid_cursor

    # ----------------------------------------------------------------------------- invoices

    async def create_invoice(
        self, *, amount_msat: int, memo: str, expiry: int, webhook_url: str | None = None
    ) -> ProviderInvoice:
        """Issue an invoice under a fresh label; ``webhook_url`` is ignored (no webhooks).

        Raises ``ProviderRejected`` before sending anything for a request no provider should
        send (:func:`~lngate.providers.base.check_create_request`).
        """
        check_create_request(self.name, amount_msat=amount_msat, memo=memo, expiry=expiry)
        label = f"{self._config.label_prefix}{secrets.token_hex(16)}"
        data = await self._rpc(
            "invoice",
            {"amount_msat": amount_msat, "label": label, "description": memo, "expiry": expiry},
            operation="create_invoice",
        )
        bolt11 = self._http.require("create_invoice", data, "bolt11", str)
        payment_hash = self._http.require("create_invoice", data, "payment_hash", str).lower()
        if not _HASH.fullmatch(payment_hash):
            raise self._http.malformed("create_invoice", "the answer's payment_hash is not hex")
        return ProviderInvoice(
            bolt11=bolt11, payment_hash=payment_hash, amount_msat=amount_msat, provider_ref=label
        )

    async def invoice_status(self, payment_hash: str) -> PaymentStatus | None:
        """The node's view of the invoice; ``None`` when it has no invoice with that hash.

        Raises ``ProviderRejected`` if ``payment_hash`` is not 64 hex characters.
        """
        payment_hash = check_payment_hash(self.name, payment_hash)
        data = await self._rpc(
            "listinvoices", {"payment_hash": payment_hash}, operation="invoice_status"
        )
        invoices = data.get("invoices")
        if not isinstance(invoices, list) or not all(isinstance(i, dict) for i in invoices):
            raise self._http.malformed("invoice_status", "the answer has no list of invoices")
        if not invoices:
            return None
        for entry in invoices:
            reported = self._http.require("invoice_status", entry, "payment_hash", str)
            if reported.lower() == payment_hash:
                return self._payment_status(entry)
        return PaymentStatus(PaymentState.UNKNOWN)  # an answer about other invoices

    def _payment_status(self, entry: dict[str, Any]) -> PaymentStatus:
        """A listinvoices entry as a status: a field missing or of the wrong type is a
        malformed answer; a paid invoice that received nothing does not add up (UNKNOWN)."""
        status = self._http.require("invoice_status", entry, "status", str)
        amount = _int_or_none(entry.get("amount_msat"))
        if status == "paid":
            received = self._http.require("invoice_status", entry, "amount_received_msat", int)
            if received <= 0:
                return PaymentStatus(PaymentState.UNKNOWN)
            preimage = entry.get("payment_preimage")
            if not isinstance(preimage, str) or not _HASH.fullmatch(preimage.lower()):
                preimage = None
            paid_at = from_unix(entry.get("paid_at"), provider=self.name, field="paid_at")
            return PaymentStatus(PaymentState.PAID, amount_msat=received,
                                 preimage=preimage and preimage.lower(), paid_at=paid_at)
        if status == "unpaid":
            return PaymentStatus(PaymentState.PENDING, amount_msat=amount)
        if status == "expired":
            return PaymentStatus(PaymentState.EXPIRED, amount_msat=amount)
        return PaymentStatus(PaymentState.UNKNOWN)

    # ----------------------------------------------------------------------------- health

    async def health(self) -> HealthReport:
        """``getinfo`` (node key, sync warnings), then the balance if the rune permits it;
        never raises."""
        started = time.perf_counter()
        balance: int | None = None
        try:
            info = await self._rpc("getinfo", {}, operation="health")
            node_id = self._http.require("health", info, "id", str).lower()
            if not _NODE_ID.fullmatch(node_id):
                raise self._http.malformed("health", "getinfo's id is not a node key")
            self.node_pubkey = node_id
            balance = await self._balance()
        except (ProviderUnavailable, ProviderRejected) as exc:
            return HealthReport(healthy=False, response_time_ms=_ms_since(started),
                                error=exc.message, node_pubkey=self.node_pubkey)
        warnings = [str(info[k]) for k in _SYNC_WARNINGS if info.get(k)]
        if warnings:
            return HealthReport(
                healthy=False, response_time_ms=_ms_since(started), balance_msat=balance,
                error="health: " + self._http.clean("; ".join(warnings)), node_pubkey=node_id,
            )
        return HealthReport(healthy=True, response_time_ms=_ms_since(started),
                            balance_msat=balance, node_pubkey=node_id)

    async def _balance(self) -> int | None:
        answer = await self._post("listfunds", {}, operation="balance")
        code, message = self._rpc_error(answer)
        if answer.status == 401 and code == RUNE_NOT_PERMITTED:
            note = f"balance not permitted by the rune: {message}"
            if note != self.balance_note:
                log.info("clnrest.balance_not_permitted", provider=self.name, detail=message)
            self.balance_note = note
            return None
        data = self._result("balance", answer)
        channels = data.get("channels")
        if not isinstance(channels, list):
            raise self._http.malformed("balance", "listfunds has no channels list")
        total = 0
        for channel in channels:
            ours = _int_or_none(channel.get("our_amount_msat")) if isinstance(channel, dict) \
                else None
            if ours is None:
                raise self._http.malformed("balance", "a channel has no our_amount_msat")
            total += ours
        self.balance_note = None
        return total

    # ----------------------------------------------------------------------------- paid stream

    async def paid_invoices(self) -> AsyncIterator[str]:
        """Yield the payment hash of each of our invoices paid after the saved cursor.

        Long polls ``waitanyinvoice`` forever; the cursor is saved once the consumer asks for
        the next payment. Raises ``ProviderUnavailable`` (or ``ProviderAuthFailed``) when the
        node cannot be asked; call again to resume from the cursor.
        """
        cursor = await self._load_cursor()
        while True:
            entry = await self._wait_any_invoice(cursor)
            if entry is None:
                continue  # the poll's timeout passed without a payment
            pay_index = _int_or_none(entry.get("pay_index"))
            payment_hash = str(entry.get("payment_hash", "")).lower()
            if pay_index is None or pay_index <= cursor or not _HASH.fullmatch(payment_hash):
                raise self._http.malformed(
                    "paid_stream", f"waitanyinvoice answered no paid invoice after {cursor}"
                )
            label = entry.get("label")
            if entry.get("status") == "paid" and isinstance(label, str) \
                    and label.startswith(self._config.label_prefix):
                log.debug("clnrest.paid", provider=self.name, payment_hash=payment_hash,
                          pay_index=pay_index)
                yield payment_hash
            cursor = pay_index
            await self._save_cursor(cursor)

    async def _wait_any_invoice(self, cursor: int) -> dict[str, Any] | None:
        poll = self._config.poll_seconds
        answer = await self._post(
            "waitanyinvoice", {"lastpay_index": cursor, "timeout": poll},
            operation="paid_stream", timeout=poll + self._config.timeout,
        )
        if answer.status == 500 and self._rpc_error(answer)[0] == WAIT_TIMED_OUT:
            return None
        return self._result("paid_stream", answer)

    async def _load_cursor(self) -> int:
        cursor = await self._cursor_store.load()
        if cursor is not None and (isinstance(cursor, bool) or not isinstance(cursor, int)
                                   or cursor < 0):
            raise ValueError(f"{self.name}: the stored lastpay_index {cursor!r} is not an int >= 0")
        self._paid_cursor = cursor
        return cursor or 0

    async def _save_cursor(self, cursor: int) -> None:
        self._paid_cursor = cursor
        try:
            await self._cursor_store.save(cursor)
        except Exception as exc:  # a failing store costs a repeated doorbell, never a payment
            log.warning("clnrest.cursor_not_saved", provider=self.name, cursor=cursor,
                        error=f"{type(exc).__name__}: {exc}"[:200])

    async def aclose(self) -> None:
        """Close the session (and its pooled connections) this provider was given."""
        await self._http.session.close()

    # ----------------------------------------------------------------------------- internals

    async def _post(
        self, method: str, params: dict[str, Any], *, operation: str,
        timeout: float | None = None,
    ) -> HttpAnswer:
        return await self._http.request(
            "POST", f"/v1/{method}", operation=operation, json=params, timeout=timeout
        )

    async def _rpc(self, method: str, params: dict[str, Any], *, operation: str) -> dict[str, Any]:
        return self._result(operation, await self._post(method, params, operation=operation))

    def _result(self, operation: str, answer: HttpAnswer) -> dict[str, Any]:
        """The RPC result of a 2xx answer; otherwise the error it means (module table)."""
        if answer.ok:
            return self._http.json_object(operation, answer)
        code, message = self._rpc_error(answer)
        detail = message if code is None else f"{message} (code {code})"
        error: ProviderError | None
        if answer.status == 500 and code == INVALID_PARAMS:
            error = self._http.rejected(f"{operation}: HTTP 500: {detail}")
        else:
            error = error_for_status(answer.status, detail, operation=operation,
                                     provider=self.name, retry_after=answer.retry_after())
        assert error is not None
        raise error

    def _rpc_error(self, answer: HttpAnswer) -> tuple[int | None, str]:
        """clnrest's ``{"code", "message", "data"}``: the code (``None`` when absent) and the
        cleaned message (the body's text when it is not such an object)."""
        if answer.ok:
            return None, ""
        try:
            data = orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            return _int_or_none(data.get("code")), self._http.clean(data["message"])
        return None, self._http.detail(answer.body)


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
