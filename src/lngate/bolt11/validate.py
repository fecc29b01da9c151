"""Check that a provider's invoice is exactly the one the gateway asked for.

Every BOLT11 a provider returns passes through :func:`validate_invoice` before a customer sees
it. Decoding proves only that *someone* signed the fields; the
payee check against the provider's known node key is what ties the invoice to the provider, since
a tampered invoice simply recovers to another key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lngate.bolt11.decode import DecodedInvoice, InvoiceDecodeError, decode
from lngate.domain import Network
from lngate.errors import InvalidInvoice

MAX_CLOCK_SKEW = timedelta(minutes=10)
"""How far in the future an invoice's timestamp may be before it is refused."""


@dataclass(frozen=True, slots=True)
class InvoiceExpectation:
    """What the gateway requested from the provider, and the time to judge expiry at."""

    network: Network
    amount_msat: int
    payment_hash: str
    """As the provider reported it, hex in any case."""
    description: str
    """The memo sent to the provider."""
    expiry: int
    """The requested expiry in seconds."""
    payee: str | None
    """The provider's node public key (hex), or ``None`` when it is not known yet."""
    now: datetime
    """An aware datetime."""

    def __post_init__(self) -> None:
        if self.now.tzinfo is None or self.now.utcoffset() is None:
            raise ValueError("InvoiceExpectation.now must be an aware datetime")


def validate_invoice(bolt11: str, expect: InvoiceExpectation) -> DecodedInvoice:
    """Decode ``bolt11`` and check it against ``expect``; return the decoded invoice.

    Raises :class:`~lngate.errors.InvalidInvoice` (``provider`` left ``None`` for the caller to
    fill) with a short reason naming the field and both values when the invoice does not decode
    or its signature is invalid, has no payment secret, or its payee, network, amount, payment
    hash, description (or description hash), expiry or timestamp differ from what was asked.
    """
    try:
        invoice = decode(bolt11)
    except InvoiceDecodeError as exc:
        raise InvalidInvoice(f"invoice does not decode: {exc}") from None

    # The payee first: if someone else signed it, no other field can be trusted.
    if expect.payee is not None and invoice.payee != expect.payee.lower():
        raise InvalidInvoice(f"payee: invoice signed by {invoice.payee}, expected {expect.payee}")
    if invoice.network != expect.network:
        raise InvalidInvoice(
            f"network: invoice is for {invoice.network.name.lower()} ({invoice.currency!r}),"
            f" expected {expect.network.name.lower()} ({expect.network.value!r})"
        )
    if invoice.amount_msat is None:
        raise InvalidInvoice(f"amount: invoice has none, expected {expect.amount_msat} msat")
    if invoice.amount_msat != expect.amount_msat:
        raise InvalidInvoice(
            f"amount: invoice {invoice.amount_msat} msat, expected {expect.amount_msat} msat"
        )
    if invoice.payment_hash != expect.payment_hash.lower():
        raise InvalidInvoice(
            f"payment hash: invoice {invoice.payment_hash}, expected {expect.payment_hash}"
        )
    if invoice.payment_secret is None:
        raise InvalidInvoice("payment secret: invoice has none (s field), required by BOLT11")
    if invoice.description_hash is not None:
        memo_hash = hashlib.sha256(expect.description.encode("utf-8")).hexdigest()
        if invoice.description_hash != memo_hash:
            raise InvalidInvoice(
                f"description hash: invoice {invoice.description_hash}, expected {memo_hash}"
                " (sha256 of the memo)"
            )
    elif invoice.description != expect.description:
        raise InvalidInvoice(
            f"description: invoice {_shorten(invoice.description)!r},"
            f" expected {_shorten(expect.description)!r}"
        )
    if invoice.expiry != expect.expiry:
        raise InvalidInvoice(f"expiry: invoice {invoice.expiry} s, expected {expect.expiry} s")
    now = expect.now.timestamp()
    if invoice.expires_at <= now:
        raise InvalidInvoice(
            f"expired: invoice expired at {_iso(invoice.expires_at)}, now {_iso(now)}"
        )
    if invoice.timestamp > now + MAX_CLOCK_SKEW.total_seconds():
        raise InvalidInvoice(
            f"timestamp: invoice created at {_iso(invoice.timestamp)}, more than"
            f" {MAX_CLOCK_SKEW.total_seconds() / 60:.0f} minutes after now {_iso(now)}"
        )
    return invoice


def _shorten(text: str | None, limit: int = 80) -> str | None:
    """Keep reasons short: a provider could return a very long description."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, tz=UTC).isoformat(timespec="seconds")
