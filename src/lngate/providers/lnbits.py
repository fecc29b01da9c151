"""LNbits (REST API of 1.x, tested against 1.6.2) as a provider.

Calls, all with the wallet's invoice key in ``X-Api-Key``:

- create: ``POST /api/v1/payments``
  ``{"out": false, "amount": <sat>, "memo", "expiry", "webhook"?}``
  (``out`` defaults to true in LNbits, and a missing ``out`` gives a misleading 403);
- status: ``GET /api/v1/payments/{payment_hash}``;
- health: ``GET /api/v1/wallet`` (``balance`` in msat).

Amounts: the create request takes sats; every answer gives msat.

How answers map to the error tree (:mod:`lngate.errors`):

- no connection, reset, timeout, 5xx, 429 (``Retry-After`` kept in ``retry_after``), and a 2xx
  whose body is not the JSON we need -> ``ProviderUnavailable``. A 2xx with garbage means this
  LNbits (or a proxy before it) is broken right now, not that our request was wrong: it must
  count for the breaker and the router must try another provider, which is what "unavailable"
  means; "rejected" would tell the router the request itself is bad.
- 401, 403, and LNbits' ``404 {"detail": "Wallet not found."}`` (its answer to an unknown key)
  -> ``ProviderAuthFailed``;
- any other 4xx and any 3xx (redirects are not followed: they would carry the key elsewhere)
  -> ``ProviderRejected``, with LNbits' ``detail`` text, truncated.

LNbits closes the connection after any 500 without a ``Connection: close``, so the next POST
on that pooled connection fails at once (measured: every time). A create that fails that way is
sent once more on another connection, within the same timeout (aiohttp does this itself for
GET). No other retries happen here: retry policy belongs to the caller.

Error messages never contain the keys: they are built from the operation, the status and the
server's detail text, with the keys masked should the server echo them.

Logs: each request and its answer are logged at DEBUG only (``lnbits.request``,
``lnbits.answer`` with status and duration, ``lnbits.no_answer``), each with a short summary of
the body: amounts, payment hashes, states and times, the BOLT11 cut short, and neither the keys,
the webhook URL (it carries a token) nor the preimage. The one INFO-or-above line per call is
the caller's (the call recorder's, for routed calls).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
import structlog

from lngate.domain import (
    MSAT_PER_SAT,
    HealthReport,
    PaymentState,
    PaymentStatus,
    ProviderInvoice,
)
from lngate.errors import ProviderAuthFailed, ProviderRejected, ProviderUnavailable
from lngate.providers.base import Capabilities
from lngate.providers.timestamps import from_iso

_DETAIL_MAX = 200
# What the DEBUG log lines show of bodies (see LNbitsProvider._summary).
_SUMMARY_FIELDS = (
    "out", "amount", "expiry", "payment_hash", "paid", "status", "updated_at", "balance",
    "detail", "error", "message",
)
_SUMMARY_TEXT_MAX = 120
_BOLT11_SHOWN = 20
_HASH = re.compile(r"[0-9a-f]{64}")
log = structlog.get_logger(__name__)
# LNbits' exact 404 texts: an unknown key, and an unknown payment (for our wallet).
_WALLET_NOT_FOUND = "Wallet not found."
_PAYMENT_NOT_FOUND = "Payment does not exist."


@dataclass(frozen=True, slots=True)
class LNbitsConfig:
    """Where an LNbits wallet is and how to reach it. The keys never appear in the repr."""

    endpoint: str
    """Base URL of the LNbits server, e.g. ``https://lnbits.example.com`` (no trailing path
    beyond a reverse-proxy prefix)."""
    invoice_key: str = field(repr=False)
    """The wallet's invoice/read key: enough to create invoices and read their status."""
    admin_key: str | None = field(default=None, repr=False)
    """The wallet's admin key; not needed to receive payments, so usually left unset."""
    timeout: float = 5.0
    """Seconds allowed for one call, connecting included."""
    connect_timeout: float | None = None
    """Seconds allowed to connect; defaults to ``timeout``."""

    def __post_init__(self) -> None:
        parts = urlsplit(self.endpoint)
        if "@" in parts.netloc:  # checked first: the messages below show the endpoint
            raise ValueError("LNbits endpoint must not carry credentials; use the keys")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"LNbits endpoint must be an http(s) URL, got {self.endpoint!r}")
        if parts.query or parts.fragment:
            raise ValueError("LNbits endpoint must not have a query or fragment")
        if not self.invoice_key:
            raise ValueError("LNbits invoice key is empty")
        if self.timeout <= 0 or (self.connect_timeout is not None and self.connect_timeout <= 0):
            raise ValueError("LNbits timeouts must be positive")
        object.__setattr__(self, "endpoint", self.endpoint.rstrip("/"))


def make_session(timeout: float = 5.0, *, limit: int = 100) -> aiohttp.ClientSession:
    """A pooled HTTP session for one LNbits provider; call it inside the running event loop.

    ``timeout`` bounds each call (the provider also passes its own per call). Idle connections
    are kept 4 s, under uvicorn's 5 s keep-alive (LNbits' server), so we do not send a request
    on a connection the server is closing at that moment.
    """
    connector = aiohttp.TCPConnector(
        limit=limit, limit_per_host=limit, keepalive_timeout=4.0, ttl_dns_cache=300
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout, connect=timeout),
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": "lngate"},
        trust_env=False,
    )


class LNbitsProvider:
    """One LNbits wallet, reached over its REST API with an injected ``aiohttp`` session.

    The provider takes ownership of the session: :meth:`aclose` closes it. The constructor
    opens nothing.
    """

    capabilities = Capabilities(webhook=True, paid_stream=False, balance=True)

    def __init__(
        self, config: LNbitsConfig, session: aiohttp.ClientSession, name: str = "lnbits"
    ) -> None:
        self.name = name
        self._config = config
        self._session = session
        self._create_url = f"{config.endpoint}/api/v1/payments"
        self._status_url = f"{config.endpoint}/api/v1/payments/"
        self._wallet_url = f"{config.endpoint}/api/v1/wallet"
        self._headers = {"X-Api-Key": config.invoice_key, "Accept": "application/json"}
        self._post_headers = {**self._headers, "Content-Type": "application/json"}
        self._timeout = aiohttp.ClientTimeout(
            total=config.timeout, connect=config.connect_timeout or config.timeout
        )
        self._secrets = tuple(key for key in (config.invoice_key, config.admin_key) if key)

    def __repr__(self) -> str:
        return f"LNbitsProvider(name={self.name!r}, endpoint={self._config.endpoint!r})"

    async def create_invoice(
        self, *, amount_msat: int, memo: str, expiry: int, webhook_url: str | None = None
    ) -> ProviderInvoice:
        """Issue an invoice; the BOLT11 is returned as LNbits gave it (validated by the caller).

        Raises ``ProviderRejected`` before sending anything for an amount that is not a positive
        whole number of sats (LNbits would silently truncate it) or a non-positive expiry.
        """
        if isinstance(amount_msat, bool) or not isinstance(amount_msat, int) or amount_msat <= 0:
            raise ProviderRejected(
                f"amount must be a positive int of msat, got {amount_msat!r}", provider=self.name
            )
        if amount_msat % MSAT_PER_SAT:
            raise ProviderRejected(
                f"LNbits takes whole sats; {amount_msat} msat is not", provider=self.name
            )
        if isinstance(expiry, bool) or not isinstance(expiry, int) or expiry <= 0:
            raise ProviderRejected(
                f"expiry must be a positive int of seconds, got {expiry!r}", provider=self.name
            )
        request: dict[str, Any] = {
            "out": False,
            "amount": amount_msat // MSAT_PER_SAT,
            "memo": memo,
            "expiry": expiry,
        }
        if webhook_url:
            request["webhook"] = webhook_url
        status, retry_after, raw = await self._call(
            "POST", self._create_url, "create_invoice", body=orjson.dumps(request)
        )
        self._check_status("create_invoice", status, retry_after, raw)
        data = self._json_object("create_invoice", raw)
        bolt11 = data.get("bolt11") or data.get("payment_request")  # the latter: before 1.0
        payment_hash = data.get("payment_hash")
        if not isinstance(bolt11, str) or not bolt11:
            raise self._unavailable("create_invoice: the answer has no bolt11")
        if not isinstance(payment_hash, str) or not _HASH.fullmatch(payment_hash.lower()):
            raise self._unavailable("create_invoice: the answer has no valid payment_hash")
        checking_id = data.get("checking_id")
        if not isinstance(checking_id, str) or not checking_id:
            checking_id = payment_hash  # what LNbits uses for incoming invoices anyway
        amount = data.get("amount", amount_msat)  # absent before LNbits 1.0; the BOLT11 decides
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise self._unavailable("create_invoice: the answer's amount is not an int of msat")
        return ProviderInvoice(
            bolt11=bolt11,
            payment_hash=payment_hash.lower(),
            amount_msat=amount,
            provider_ref=checking_id,
        )

    async def invoice_status(self, payment_hash: str) -> PaymentStatus | None:
        """Ask LNbits whether the invoice is paid; ``None`` when this wallet has no such invoice.

        ``PAID`` carries the amount (msat) and preimage as LNbits reports them; ``FAILED`` is
        how LNbits marks an expired invoice (lazily, on this very GET); an answer that cannot be
        read is ``UNKNOWN``. ``paid_at`` is when LNbits marked it paid (``details.updated_at``),
        ``None`` when that time is missing or unusable.
        Raises ``ValueError`` if ``payment_hash`` is not 64 hex characters.
        """
        payment_hash = payment_hash.lower()
        if not _HASH.fullmatch(payment_hash):
            raise ValueError("payment_hash must be 64 hex characters")
        status, retry_after, raw = await self._call(
            "GET", self._status_url + payment_hash, "invoice_status"
        )
        if status == 404:
            detail = self._detail(raw)
            if detail == _PAYMENT_NOT_FOUND:
                return None
            if detail != _WALLET_NOT_FOUND:
                # not LNbits' answer (a wrong endpoint path, a proxy): never "unknown invoice"
                raise self._rejected(f"invoice_status: HTTP 404: {detail or 'no detail'}")
        self._check_status("invoice_status", status, retry_after, raw)
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return PaymentStatus(PaymentState.UNKNOWN)
        return self._payment_status(payment_hash, data)

    async def health(self) -> HealthReport:
        """Read the wallet (balance in msat) once, within the timeout; never raises."""
        started = time.perf_counter()
        try:
            status, retry_after, raw = await self._call("GET", self._wallet_url, "health")
            self._check_status("health", status, retry_after, raw)
            balance = self._json_object("health", raw).get("balance")
            if isinstance(balance, bool) or not isinstance(balance, int):
                raise self._unavailable("health: the wallet answer has no balance")
        except (ProviderUnavailable, ProviderRejected) as exc:
            elapsed_ms = (time.perf_counter() - started) * 1000
            return HealthReport(healthy=False, response_time_ms=elapsed_ms, error=exc.message)
        elapsed_ms = (time.perf_counter() - started) * 1000
        return HealthReport(healthy=True, response_time_ms=elapsed_ms, balance_msat=balance)

    async def aclose(self) -> None:
        """Close the session (and its pooled connections) this provider was given."""
        await self._session.close()

    # ----------------------------------------------------------------------------- internals

    async def _call(
        self, method: str, url: str, operation: str, *, body: bytes | None = None
    ) -> tuple[int, str | None, bytes]:
        """One HTTP exchange: ``(status, Retry-After header, body)``; transport failures raise
        ``ProviderUnavailable``. The whole exchange, a resend included, fits in ``timeout``.

        The request and its answer are logged at DEBUG with a short summary of each body
        (:meth:`_summary`): never a key, a webhook URL or a preimage.
        """
        if not log.is_enabled_for(logging.DEBUG):  # the summaries cost ~20 µs a call
            return await self._exchange(method, url, operation, body=body)
        fields = {
            "provider": self.name,
            "operation": operation,
            "method": method,
            "path": urlsplit(url).path,
        }
        log.debug("lnbits.request", **fields, body=None if body is None else self._summary(body))
        started = time.perf_counter()
        try:
            status, retry_after, raw = await self._exchange(method, url, operation, body=body)
        except ProviderUnavailable as exc:
            log.debug("lnbits.no_answer", **fields, duration_ms=_ms_since(started),
                      error=exc.message)
            raise
        log.debug("lnbits.answer", **fields, status=status, duration_ms=_ms_since(started),
                  body=self._summary(raw))
        return status, retry_after, raw

    async def _exchange(
        self, method: str, url: str, operation: str, *, body: bytes | None
    ) -> tuple[int, str | None, bytes]:
        headers = self._post_headers if body is not None else self._headers
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._config.timeout
        timeout = self._timeout
        resent = False
        while True:
            try:
                async with self._session.request(
                    method,
                    url,
                    data=body,
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=False,
                ) as response:
                    raw = await response.read()
                    return response.status, response.headers.get("Retry-After"), raw
            except TimeoutError:  # asyncio's and aiohttp's timeouts both derive from it
                raise self._unavailable(
                    f"{operation}: no answer within {self._config.timeout:g} s"
                ) from None
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                raise self._unavailable(
                    f"{operation}: {type(exc).__name__}: {self._clean(str(exc))}"
                ) from None
            except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
                # A pooled connection the server had closed. LNbits (uvicorn) closes the
                # connection after every 500 without saying so, and the next POST on it fails
                # at once; aiohttp itself resends only idempotent methods. Resending a create
                # is safe: at worst LNbits holds one more invoice that nobody sees.
                remaining = deadline - loop.time()
                if resent or method != "POST" or remaining <= 0:
                    raise self._unavailable(
                        f"{operation}: {type(exc).__name__}: {self._clean(str(exc))}"
                    ) from None
                resent = True
                timeout = aiohttp.ClientTimeout(
                    total=remaining, connect=min(remaining, self._timeout.connect or remaining)
                )
            except aiohttp.ClientError as exc:
                # `from None`: aiohttp's response errors hold the request headers (our key).
                raise self._unavailable(
                    f"{operation}: {type(exc).__name__}: {self._clean(str(exc))}"
                ) from None

    def _check_status(
        self, operation: str, status: int, retry_after: str | None, raw: bytes
    ) -> None:
        if 200 <= status < 300:
            return
        detail = self._detail(raw)
        message = f"{operation}: HTTP {status}" + (f": {detail}" if detail else "")
        if status == 429 or status >= 500:
            raise ProviderUnavailable(
                message, provider=self.name, retry_after=parse_retry_after(retry_after)
            )
        if status in (401, 403) or (status == 404 and detail == _WALLET_NOT_FOUND):
            raise ProviderAuthFailed(message, provider=self.name)
        raise self._rejected(message)

    def _payment_status(self, payment_hash: str, data: Any) -> PaymentStatus:
        unknown = PaymentStatus(PaymentState.UNKNOWN)
        if not isinstance(data, dict):
            return unknown
        if "details" not in data:
            # LNbits only leaves out the details when the key is not the owning wallet's; an
            # unknown key is not a 404 here, so without this check a revoked key would make
            # every invoice look merely unpaid.
            raise ProviderAuthFailed(
                "invoice_status: LNbits did not recognise the invoice key (no details)",
                provider=self.name,
            )
        details = data["details"]
        if not isinstance(details, dict):
            return unknown
        if str(details.get("payment_hash", payment_hash)).lower() != payment_hash:
            return unknown  # an answer about another payment
        amount = details.get("amount")
        amount_msat = amount if isinstance(amount, int) and not isinstance(amount, bool) else None
        paid = data.get("paid")
        states = {data.get("status"), details.get("status")} - {None}
        if paid is True or "success" in states:
            if paid is False or "failed" in states or "pending" in states:
                return unknown  # contradictory
            if amount_msat is None or amount_msat <= 0:
                return unknown  # no amount, or an outgoing payment: not our invoice being paid
            preimage = data.get("preimage") or details.get("preimage")
            if not isinstance(preimage, str) or not _HASH.fullmatch(preimage.lower()):
                preimage = None
            return PaymentStatus(
                PaymentState.PAID,
                amount_msat=amount_msat,
                preimage=preimage,
                paid_at=self._paid_at(details),
            )
        if paid is not False:
            return unknown
        if "failed" in states:
            return PaymentStatus(PaymentState.FAILED, amount_msat=amount_msat)
        if states <= {"pending"}:
            return PaymentStatus(PaymentState.PENDING, amount_msat=amount_msat)
        return unknown

    def _paid_at(self, details: dict[str, Any]) -> datetime | None:
        """When LNbits marked the invoice paid: ``details.updated_at`` of a successful payment.

        LNbits (1.x) stamps ``updated_at`` on every write to the payment, and the write that
        turns an incoming invoice to ``success`` is the last one in the normal course (the
        webhook result is stored without touching it); ``time`` and ``created_at`` are the
        creation time. Only an operator editing the paid payment's labels or extra later moves
        ``updated_at`` on. A time that is missing, malformed or before the creation is ``None``.
        """
        raw_created = details.get("created_at") or details.get("time")
        created = None if raw_created is None else from_iso(
            raw_created, provider=self.name, field="details.created_at"
        )
        return from_iso(
            details.get("updated_at"),
            provider=self.name,
            field="details.updated_at",
            not_before=created,
        )

    def _summary(self, raw: bytes) -> dict[str, Any] | str:
        """What a log line may show of a request or answer body.

        Amounts, hashes, states, times and error texts, each cleaned of our keys; the BOLT11
        shortened; the webhook URL (it carries the invoice's token) and the preimage reduced to
        whether they are there. A body that is not a JSON object is described, not shown whole.
        """
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            text = self._clean(raw.decode("utf-8", "replace"))
            return f"{len(raw)} bytes, not JSON: {text[:_SUMMARY_TEXT_MAX]}"
        if not isinstance(data, dict):
            return f"{len(raw)} bytes, JSON {type(data).__name__}"
        summary = self._summary_fields(data)
        details = data.get("details")
        if isinstance(details, dict):
            summary["details"] = self._summary_fields(details)
        return summary

    def _summary_fields(self, data: dict[str, Any]) -> dict[str, Any]:
        summary: dict[str, Any] = {}
        for key in _SUMMARY_FIELDS:
            value = data.get(key)
            if value is None:
                continue
            if isinstance(value, bool | int | float):
                summary[key] = value
            else:
                summary[key] = self._clean(str(value))[:_SUMMARY_TEXT_MAX]
        for key in ("bolt11", "payment_request"):
            value = data.get(key)
            if isinstance(value, str) and value:
                summary[key] = value[:_BOLT11_SHOWN] + "…"
                break
        for key in ("webhook", "preimage"):
            if data.get(key):
                summary[key] = "present"
        return summary

    def _json_object(self, operation: str, raw: bytes) -> dict[str, Any]:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise self._unavailable(f"{operation}: the answer is not JSON") from None
        if not isinstance(data, dict):
            raise self._unavailable(f"{operation}: the answer is not a JSON object")
        return data

    def _detail(self, raw: bytes) -> str:
        """LNbits' error text (``detail``; FastAPI validation lists joined), cleaned."""
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return self._clean(raw.decode("utf-8", "replace"))
        if isinstance(data, dict):
            detail = data.get("detail", data.get("error", data.get("message")))
            if isinstance(detail, list):  # FastAPI validation errors
                detail = "; ".join(
                    f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}"
                    if isinstance(e, dict)
                    else str(e)
                    for e in detail
                )
            if detail is not None:
                return self._clean(str(detail))
        return self._clean(raw.decode("utf-8", "replace"))

    def _clean(self, text: str) -> str:
        """One line, at most ``_DETAIL_MAX`` characters, with our keys masked."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        text = " ".join(text.split())
        return text if len(text) <= _DETAIL_MAX else text[: _DETAIL_MAX - 1] + "…"

    def _unavailable(self, message: str) -> ProviderUnavailable:
        return ProviderUnavailable(message, provider=self.name)

    def _rejected(self, message: str) -> ProviderRejected:
        return ProviderRejected(message, provider=self.name)


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or HTTP-date), else None."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
