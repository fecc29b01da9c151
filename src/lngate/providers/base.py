"""The interface every provider implements.

A provider receives its typed configuration and its clients (HTTP session, clock) from the
composition root; it never reads settings, opens sockets in its constructor or starts tasks.
Failures raise from :mod:`lngate.errors`; an unknown invoice is ``None``, not an error.

The contract every provider keeps (``tests/providers/test_contract.py`` checks it for each):

- arguments outside :func:`check_create_request` / :func:`check_payment_hash` raise
  ``ProviderRejected`` before anything is sent (never ``ValueError``);
- an answer that cannot be read (not JSON, a field missing or of the wrong type) raises
  ``ProviderUnavailable``, for creates and lookups alike; an answer that is read but does not
  add up (contradictory states, another payment hash) is a ``PaymentStatus`` of ``UNKNOWN``;
- credentials the provider refuses raise ``ProviderAuthFailed``; a provider that does not
  answer raises ``ProviderUnavailable`` within its timeout;
- ``health()`` never raises; secrets appear in no repr, error or log line; the constructor
  opens no connection and starts no task.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from lngate.domain import HealthReport, PaymentStatus, ProviderInvoice, is_payment_hash
from lngate.errors import ProviderRejected

MAX_MEMO_BYTES = 639
"""The longest description (UTF-8) a BOLT11 ``d`` field holds: 1023 groups of 5 bits."""
MIN_EXPIRY_SECONDS = 1
MAX_EXPIRY_SECONDS = 7 * 24 * 3600
"""A week: far above the public API's 86400 s, low enough to catch milliseconds passed as
seconds."""


def check_create_request(provider: str, *, amount_msat: object, memo: object,
                         expiry: object) -> None:
    """Refuse, with ``ProviderRejected``, a create no provider should send: an amount that is
    not a positive int of msat, a memo that is not text of at most :data:`MAX_MEMO_BYTES`, an
    expiry outside :data:`MIN_EXPIRY_SECONDS`..:data:`MAX_EXPIRY_SECONDS`."""
    if isinstance(amount_msat, bool) or not isinstance(amount_msat, int) or amount_msat <= 0:
        raise ProviderRejected(
            f"amount must be a positive int of msat, got {amount_msat!r}", provider=provider
        )
    if not isinstance(memo, str):
        raise ProviderRejected(f"memo must be text, got {type(memo).__name__}",
                               provider=provider)
    try:
        size = len(memo.encode("utf-8"))
    except UnicodeEncodeError:
        raise ProviderRejected("memo is not valid Unicode text", provider=provider) from None
    if size > MAX_MEMO_BYTES:
        raise ProviderRejected(
            f"memo is {size} bytes; an invoice holds at most {MAX_MEMO_BYTES}", provider=provider
        )
    if (isinstance(expiry, bool) or not isinstance(expiry, int)
            or not MIN_EXPIRY_SECONDS <= expiry <= MAX_EXPIRY_SECONDS):
        raise ProviderRejected(
            f"expiry must be an int of seconds within {MIN_EXPIRY_SECONDS}.."
            f"{MAX_EXPIRY_SECONDS}, got {expiry!r}",
            provider=provider,
        )


def check_payment_hash(provider: str, payment_hash: object) -> str:
    """``payment_hash`` in lower case; ``ProviderRejected`` unless it is 64 hex digits."""
    if not isinstance(payment_hash, str) or not is_payment_hash(payment_hash):
        raise ProviderRejected("payment_hash must be 64 hex characters", provider=provider)
    return payment_hash.lower()


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a provider can do beyond the required methods."""

    webhook: bool = False
    """It calls a webhook URL when an invoice is paid."""
    paid_stream: bool = False
    """It implements :meth:`Provider.paid_invoices`."""
    balance: bool = False
    """Its health report carries a wallet balance."""


@runtime_checkable
class Provider(Protocol):
    """A Lightning backend that can issue invoices and say whether they are paid."""

    name: str
    capabilities: Capabilities

    async def create_invoice(
        self, *, amount_msat: int, memo: str, expiry: int, webhook_url: str | None = None
    ) -> ProviderInvoice:
        """Issue an invoice of ``amount_msat`` with description ``memo``, valid ``expiry`` s."""
        ...

    async def invoice_status(self, payment_hash: str) -> PaymentStatus | None:
        """Say whether the invoice is paid; ``None`` when the provider does not know it."""
        ...

    async def health(self) -> HealthReport:
        """Probe the provider once; never raises for an unhealthy provider."""
        ...

    async def aclose(self) -> None:
        """Release connections; the provider is not used afterwards."""
        ...


class PaidStream(Protocol):
    """Optional: providers with ``capabilities.paid_stream`` yield payment hashes as paid."""

    def paid_invoices(self) -> AsyncIterator[str]:
        """Yield the payment hash of each invoice the provider sees paid (a doorbell)."""
        ...
