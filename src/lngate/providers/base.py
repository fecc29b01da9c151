"""The interface every provider implements.

A provider receives its typed configuration and its clients (HTTP session, clock) from the
composition root; it never reads settings, opens sockets in its constructor or starts tasks.
Failures raise from :mod:`lngate.errors`; an unknown invoice is ``None``, not an error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from lngate.domain import HealthReport, PaymentStatus, ProviderInvoice


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
