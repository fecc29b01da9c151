"""LNbits (REST API of 1.x, tested against 1.6.2) as a provider.

Calls, all with the wallet's invoice key in ``X-Api-Key``:

- create: ``POST /api/v1/payments``
  ``{"out": false, "amount": <sat>, "memo", "expiry", "webhook"?}``
  (``out`` defaults to true in LNbits, and a missing ``out`` gives a misleading 403);
- status: ``GET /api/v1/payments/{payment_hash}``;
- health: ``GET /api/v1/wallet`` (``balance`` in msat).

Amounts: the create request takes sats; every answer gives msat.

The exchanges go through :class:`~lngate.providers.http.HttpTransport`, whose table maps
transport failures, statuses and malformed answers to the error tree (5xx, 429, no answer, a 2xx
that is not the JSON we need -> ``ProviderUnavailable``; 401/403 -> ``ProviderAuthFailed``;
redirects, never followed, and other 4xx -> ``ProviderRejected`` with LNbits' ``detail``). What
is LNbits' own stays here:

- LNbits' ``404 {"detail": "Wallet not found."}`` is its answer to an unknown key:
  ``ProviderAuthFailed``; its ``404 "Payment does not exist."`` on a status is ``None``; any other
  404 (a wrong path, a proxy) is ``ProviderRejected``, never "unknown invoice";
- a status answer without ``details`` means the key is not the owning wallet's:
  ``ProviderAuthFailed``;
- LNbits closes the connection after any 500 without a ``Connection: close``, so the next POST
  on that pooled connection fails at once (measured: every time). A create that fails that way
  is sent once more on another connection, within the same timeout (aiohttp does this itself
  for GET). No other retries happen here: retry policy belongs to the caller.

Error messages never contain the keys: they are built from the operation, the status and the
server's detail text, with the keys masked should the server echo them.

Logs: each request and its answer are logged at DEBUG only (``lnbits.request``,
``lnbits.answer`` with status and duration, ``lnbits.no_answer``), each with a short summary of
the body: amounts, payment hashes, states and times, the BOLT11 cut short, and neither the keys,
the webhook URL (it carries a token) nor the preimage. The one INFO-or-above line per call is
the caller's (the call recorder's, for routed calls).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog

from lngate.domain import (
    MSAT_PER_SAT,
    HealthReport,
    PaymentState,
    PaymentStatus,
    ProviderInvoice,
)
from lngate.errors import ProviderAuthFailed, ProviderRejected, ProviderUnavailable
from lngate.providers.base import Capabilities, check_create_request, check_payment_hash
from lngate.providers.http import HttpAnswer, HttpTransport, LogSummary, make_session
from lngate.providers.timestamps import from_iso

__all__ = ["LNbitsConfig", "LNbitsProvider", "make_session"]

# What the DEBUG log lines show of bodies.
_SUMMARY = LogSummary(
    shown=("out", "amount", "expiry", "payment_hash", "paid", "status", "updated_at", "balance",
           "detail", "error", "message"),
    shortened=("bolt11", "payment_request"),
    present=("webhook", "preimage"),
    nested=("details",),
)
_HASH = re.compile(r"[0-9a-f]{64}")
log = structlog.get_logger(__name__)
# LNbits' exact 404 texts: an unknown key, and an unknown payment (for our wallet).
_WALLET_NOT_FOUND = "Wallet not found."
_PAYMENT_NOT_FOUND = "Payment does not exist."
_CREATE_PATH = "/api/v1/payments"
_STATUS_PATH = "/api/v1/payments/"
_WALLET_PATH = "/api/v1/wallet"


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
        self._http = HttpTransport(
            session,
            config.endpoint,
            provider=name,
            timeout=config.timeout,
            connect_timeout=config.connect_timeout,
            headers={"X-Api-Key": config.invoice_key},
            secrets=[key for key in (config.invoice_key, config.admin_key) if key],
            log_prefix="lnbits",
            summary=_SUMMARY,
            log=log,
        )

    def __repr__(self) -> str:
        return f"LNbitsProvider(name={self.name!r}, endpoint={self._config.endpoint!r})"

    async def create_invoice(
        self, *, amount_msat: int, memo: str, expiry: int, webhook_url: str | None = None
    ) -> ProviderInvoice:
        """Issue an invoice; the BOLT11 is returned as LNbits gave it (validated by the caller).

        Raises ``ProviderRejected`` before sending anything for arguments outside
        :func:`~lngate.providers.base.check_create_request`, or an amount that is not a whole
        number of sats (LNbits would silently truncate it).
        """
        check_create_request(self.name, amount_msat=amount_msat, memo=memo, expiry=expiry)
        if amount_msat % MSAT_PER_SAT:
            raise ProviderRejected(
                f"LNbits takes whole sats; {amount_msat} msat is not", provider=self.name
            )
        request: dict[str, Any] = {
            "out": False,
            "amount": amount_msat // MSAT_PER_SAT,
            "memo": memo,
            "expiry": expiry,
        }
        if webhook_url:
            request["webhook"] = webhook_url
        operation = "create_invoice"
        # The resend: see the module docstring (LNbits drops the connection after a 500).
        # Resending a create is safe: at worst LNbits holds one more invoice that nobody sees.
        answer = await self._http.request(
            "POST", _CREATE_PATH, operation=operation, json=request, resend_if_dropped=True
        )
        self._raise_for_status(operation, answer)
        data = self._http.json_object(operation, answer)
        bolt11 = data.get("bolt11") or data.get("payment_request")  # the latter: before 1.0
        payment_hash = data.get("payment_hash")
        if not isinstance(bolt11, str) or not bolt11:
            raise self._http.malformed(operation, "the answer has no bolt11")
        if not isinstance(payment_hash, str) or not _HASH.fullmatch(payment_hash.lower()):
            raise self._http.malformed(operation, "the answer has no valid payment_hash")
        checking_id = data.get("checking_id")
        if not isinstance(checking_id, str) or not checking_id:
            checking_id = payment_hash  # what LNbits uses for incoming invoices anyway
        amount = data.get("amount", amount_msat)  # absent before LNbits 1.0; the BOLT11 decides
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise self._http.malformed(operation, "the answer's amount is not an int of msat")
        return ProviderInvoice(
            bolt11=bolt11,
            payment_hash=payment_hash.lower(),
            amount_msat=amount,
            provider_ref=checking_id,
        )

    async def invoice_status(self, payment_hash: str) -> PaymentStatus | None:
        """Ask LNbits whether the invoice is paid; ``None`` when this wallet has no such invoice.

        ``PAID`` carries the amount (msat) and preimage as LNbits reports them; ``FAILED`` is
        how LNbits marks an expired invoice (lazily, on this very GET); an answer that is read
        but does not add up (contradictory states, another payment) is ``UNKNOWN``; one that
        cannot be read (not a JSON object, ``paid`` or ``details`` of the wrong type) raises
        ``ProviderUnavailable``. ``paid_at`` is when LNbits marked it paid
        (``details.updated_at``), ``None`` when that time is missing or unusable.
        Raises ``ProviderRejected`` if ``payment_hash`` is not 64 hex characters.
        """
        payment_hash = check_payment_hash(self.name, payment_hash)
        operation = "invoice_status"
        answer = await self._http.request("GET", _STATUS_PATH + payment_hash, operation=operation)
        if answer.status == 404:
            detail = self._http.detail(answer.body)
            if detail == _PAYMENT_NOT_FOUND:
                return None
            if detail != _WALLET_NOT_FOUND:
                # not LNbits' answer (a wrong endpoint path, a proxy): never "unknown invoice"
                raise self._http.rejected(f"{operation}: HTTP 404: {detail or 'no detail'}")
        self._raise_for_status(operation, answer)
        return self._payment_status(payment_hash, self._http.json_object(operation, answer))

    async def health(self) -> HealthReport:
        """Read the wallet (balance in msat) once, within the timeout; never raises."""
        started = time.perf_counter()
        operation = "health"
        try:
            answer = await self._http.request("GET", _WALLET_PATH, operation=operation)
            self._raise_for_status(operation, answer)
            balance = self._http.json_object(operation, answer).get("balance")
            if isinstance(balance, bool) or not isinstance(balance, int):
                raise self._http.malformed(operation, "the wallet answer has no balance")
        except (ProviderUnavailable, ProviderRejected) as exc:
            elapsed_ms = (time.perf_counter() - started) * 1000
            return HealthReport(healthy=False, response_time_ms=elapsed_ms, error=exc.message)
        elapsed_ms = (time.perf_counter() - started) * 1000
        return HealthReport(healthy=True, response_time_ms=elapsed_ms, balance_msat=balance)

    async def aclose(self) -> None:
        """Close the session (and its pooled connections) this provider was given."""
        await self._session.close()

    # ----------------------------------------------------------------------------- internals

    def _raise_for_status(self, operation: str, answer: HttpAnswer) -> None:
        """The transport's mapping, after LNbits' own: its 404 for an unknown key."""
        if answer.status == 404 and self._http.detail(answer.body) == _WALLET_NOT_FOUND:
            raise self._http.auth_failed(f"{operation}: HTTP 404: {_WALLET_NOT_FOUND}")
        self._http.raise_for_status(operation, answer)

    def _payment_status(self, payment_hash: str, data: dict[str, Any]) -> PaymentStatus:
        unknown = PaymentStatus(PaymentState.UNKNOWN)
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
            raise self._http.malformed("invoice_status", "the answer's details is not an object")
        if str(details.get("payment_hash", payment_hash)).lower() != payment_hash:
            return unknown  # an answer about another payment
        amount = details.get("amount")
        amount_msat = amount if isinstance(amount, int) and not isinstance(amount, bool) else None
        paid = data.get("paid")
        if paid is not None and not isinstance(paid, bool):
            raise self._http.malformed("invoice_status", "the answer's paid is not a boolean")
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
