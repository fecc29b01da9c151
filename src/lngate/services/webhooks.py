"""The LNbits payment webhook: per-invoice tokens, reading LNbits' body, handling one call.

Token scheme
    LNbits does not sign its webhook, and the payment hash is not known before the invoice
    exists, so each create draws a random ``nonce`` (stored with the invoice) and gives LNbits
    ``<PUBLIC_URL>/api/webhook/lnbits-payment?nonce=<nonce>&token=<token>``, where ``token`` is
    ``HMAC-SHA256(key, nonce)`` (base64url) and ``key`` is derived from
    ``LNBITS_WEBHOOK_SECRET``. A call is authentic when the token matches the nonce *and* the
    nonce is the one stored with the invoice the body names, so a URL learnt from one invoice
    cannot ring for another. ``X-Api-Key: <LNBITS_WEBHOOK_SECRET>`` is accepted instead, for
    the original shop's setup. Every comparison is constant-time.

Above all the webhook is a doorbell: ``settle`` asks LNbits itself before anything changes.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncConnection

from lngate.domain import InvoiceState
from lngate.services.settlement import SettleOutcome, Settler
from lngate.store import Database
from lngate.store.invoices import InvoiceRecord, get_invoice_and_order_id
from lngate.store.webhook_events import insert_event, redact_credentials, set_outcome

WEBHOOK_PATH = "/api/webhook/lnbits-payment"
_HASH = re.compile(r"[0-9a-f]{64}")
_TOKEN_CONTEXT = b"lngate/lnbits-webhook-token/v1"
MAX_STORED_BODY = 16 * 1024
STORED_HEADERS = ("user-agent", "content-type", "content-length", "x-forwarded-for")


class WebhookAuth:
    """Issues and checks webhook tokens; holds the secret, never shows it."""

    def __init__(self, secret: str, public_url: str) -> None:
        if len(secret) < 16:
            raise ValueError("the webhook secret must be at least 16 characters")
        self._secret = secret.encode()
        self._key = hmac.new(self._secret, _TOKEN_CONTEXT, hashlib.sha256).digest()
        self._base = public_url.rstrip("/") + WEBHOOK_PATH

    def __repr__(self) -> str:
        return f"WebhookAuth(url={self._base!r})"

    def token(self, nonce: str) -> str:
        """The token for ``nonce``."""
        digest = hmac.new(self._key, nonce.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def url(self, nonce: str) -> str:
        """The webhook URL to give the provider for an invoice created with ``nonce``."""
        return f"{self._base}?{urlencode({'nonce': nonce, 'token': self.token(nonce)})}"

    def token_valid(self, nonce: str, token: str) -> bool:
        """Whether ``token`` was issued for ``nonce`` (constant-time)."""
        return hmac.compare_digest(self.token(nonce).encode(), token.encode())

    def api_key_valid(self, key: str) -> bool:
        """Whether an ``X-Api-Key`` header carries the secret (constant-time)."""
        return hmac.compare_digest(self._secret, key.encode())


class InvalidPayload(ValueError):
    """The body is not LNbits' payment JSON (object, or a JSON string holding one)."""


@dataclass(frozen=True, slots=True)
class WebhookPayment:
    """What we read from the body; only the hash is used (the rest is LNbits' word)."""

    payment_hash: str
    amount_msat: int | None


def parse_lnbits_body(raw: bytes) -> WebhookPayment:
    """Read LNbits' body: a JSON object, or a JSON string containing one (LNbits 1.x)."""
    try:
        data = json.loads(raw)
        if isinstance(data, str):
            data = json.loads(data)
    except (ValueError, RecursionError):
        raise InvalidPayload("not JSON") from None
    if not isinstance(data, dict):
        raise InvalidPayload("not a JSON object")
    payment_hash = data.get("payment_hash")
    if not isinstance(payment_hash, str) or not _HASH.fullmatch(payment_hash.lower()):
        raise InvalidPayload("no valid payment_hash")
    amount = data.get("amount")
    amount_msat = amount if isinstance(amount, int) and not isinstance(amount, bool) else None
    return WebhookPayment(payment_hash.lower(), amount_msat)


class WebhookResult(enum.StrEnum):
    """How a webhook call ended (also stored as the event's outcome)."""

    SETTLED = "settled"
    ALREADY_SETTLED = "already_settled"
    NO_MATCH = "no_match"
    NOT_PAID = "not_paid"
    MISMATCH = "mismatch"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    WRONG_NONCE = "wrong_nonce"


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    """The result, with the order and amount (sats) for the answer."""

    result: WebhookResult
    order_id: str | None = None
    amount_sat: int | None = None
    timings: Mapping[str, float] = field(default_factory=dict)
    """Milliseconds per step: ``read_ms`` (reading the invoice, storing the event), then from
    settle ``lookup_ms`` (the provider's answer to its verification), ``transaction_ms`` and
    ``publish_ms``, and ``outcome_ms`` (recording the event's outcome)."""


_FROM_SETTLE = {
    SettleOutcome.SETTLED: WebhookResult.SETTLED,
    SettleOutcome.ALREADY_SETTLED: WebhookResult.ALREADY_SETTLED,
    SettleOutcome.UNKNOWN_INVOICE: WebhookResult.NO_MATCH,
    SettleOutcome.NOT_PAID: WebhookResult.NOT_PAID,
    SettleOutcome.EXPIRED: WebhookResult.NOT_PAID,
    SettleOutcome.MISMATCH: WebhookResult.MISMATCH,
    SettleOutcome.PROVIDER_UNAVAILABLE: WebhookResult.PROVIDER_UNAVAILABLE,
    SettleOutcome.TEST_INVOICE_REFUSED: WebhookResult.MISMATCH,
}


def _received(invoice: InvoiceRecord | None, nonce: str | None) -> str | None:
    """The outcome to store the event with as it arrives; ``None`` when the URL's nonce is not
    the invoice's (the call is refused and nothing is stored)."""
    if invoice is None:
        return WebhookResult.NO_MATCH.value
    if nonce is not None and not (
        invoice.webhook_nonce
        and hmac.compare_digest(invoice.webhook_nonce.encode(), nonce.encode())
    ):
        return None
    if invoice.state is InvoiceState.PAID:  # a duplicate: settle would change nothing
        return WebhookResult.ALREADY_SETTLED.value
    return "received"


async def handle_webhook(
    payment: WebhookPayment,
    *,
    nonce: str | None,
    auth: str,
    raw_body: bytes,
    headers: dict[str, str],
    received_at: datetime,
    db: Database,
    settler: Settler,
) -> WebhookOutcome:
    """Check the nonce binds to the invoice, store the event, then ring ``settle``.

    ``nonce`` is the URL's (already checked against its token), ``None`` when the call was
    authenticated by ``X-Api-Key``.
    """
    kept = {k.lower(): v for k, v in headers.items() if k.lower() in STORED_HEADERS}
    started = time.perf_counter()

    async def store_event(conn: AsyncConnection, invoice: InvoiceRecord | None,
                          outcome: str) -> int:
        return await insert_event(
            conn, source="lnbits", received_at=received_at, payment_hash=payment.payment_hash,
            auth=auth, headers=kept, outcome=outcome,
            body=redact_credentials(raw_body.decode("utf-8", "replace"), known=(
                nonce, invoice.webhook_nonce if invoice else None))[:MAX_STORED_BODY],
        )

    if db.reads_apart:
        # The read on a reading connection, so only the event's insert queues for SQLite's
        # one writer (behind settlements and the outbox). A settlement committed in between
        # only makes the event say "received": settle then finds it paid and records that.
        async with db.connect() as conn:
            found = await get_invoice_and_order_id(conn, payment.payment_hash)
        invoice, order_id = found if found is not None else (None, None)
        outcome = _received(invoice, nonce)
        if outcome is None:
            return WebhookOutcome(WebhookResult.WRONG_NONCE)  # nothing written
        async with db.transaction() as conn:
            event_id = await store_event(conn, invoice, outcome)
    else:
        async with db.transaction() as conn:
            found = await get_invoice_and_order_id(conn, payment.payment_hash)
            invoice, order_id = found if found is not None else (None, None)
            outcome = _received(invoice, nonce)
            if outcome is None:
                return WebhookOutcome(WebhookResult.WRONG_NONCE)  # nothing written: rolled back
            event_id = await store_event(conn, invoice, outcome)
    read = time.perf_counter()
    timings = {"read_ms": (read - started) * 1000}
    if invoice is None:
        return WebhookOutcome(WebhookResult.NO_MATCH, timings=timings)
    if invoice.state is InvoiceState.PAID:
        return WebhookOutcome(WebhookResult.ALREADY_SETTLED, order_id,
                              invoice.amount_msat // 1000, timings)

    async def settled(conn: AsyncConnection) -> None:
        await set_outcome(conn, event_id, WebhookResult.SETTLED.value)

    outcome = await settler.settle(payment.payment_hash, source="webhook", timings=timings,
                                   record=invoice, also=settled)
    result = _FROM_SETTLE[outcome]
    if result is not WebhookResult.SETTLED:  # settled: stored with the settlement already
        done = time.perf_counter()
        async with db.transaction() as conn:
            await set_outcome(conn, event_id, result.value)
        timings["outcome_ms"] = (time.perf_counter() - done) * 1000
    return WebhookOutcome(result, order_id, invoice.amount_msat // 1000, timings)
