"""The test provider: real, correctly signed BOLT11 invoices from a node key of its own.

For demos and tests only. It runs only when ``LIGHTNING_TEST_MODE`` is on, always last in the
provider order, and every invoice it issues is flagged ``isTest``. Its invoices cannot be
paid on any network; :meth:`TestProvider.mark_paid` plays the customer's wallet.

Its key is a new one unless given. What it issued lives in a :class:`IssuedInvoiceStore`: in
memory by default (one process), or the gateway's database (``test_invoices``), so that behind
several workers any of them can answer for an invoice another issued, "pay" it, and still know
it after a restart. The gateway gives it the key stored in the database too
(``bootstrap.shared_test_provider``), so that all its workers and instances are one node.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

import coincurve

from lngate.bolt11.encode import encode
from lngate.domain import HealthReport, Network, PaymentState, PaymentStatus, ProviderInvoice
from lngate.providers.base import Capabilities, check_create_request, check_payment_hash


@dataclass(frozen=True, slots=True)
class IssuedTestInvoice:
    """One invoice the test provider signed, and when its payment was simulated."""

    payment_hash: str
    amount_msat: int
    preimage: str
    expires_at: datetime
    paid_at: datetime | None = None


class IssuedInvoiceStore(Protocol):
    """Where the test provider keeps what it issued."""

    async def add(self, invoice: IssuedTestInvoice) -> None:
        """Keep a newly issued invoice."""

    async def get(self, payment_hash: str) -> IssuedTestInvoice | None:
        """The invoice with this hash, or ``None``."""

    async def mark_paid(self, payment_hash: str, paid_at: datetime) -> bool:
        """Set ``paid_at`` unless already set; ``False`` when the invoice is unknown."""


class MemoryInvoiceStore:
    """An :class:`IssuedInvoiceStore` in this process's memory."""

    def __init__(self) -> None:
        self._invoices: dict[str, IssuedTestInvoice] = {}

    async def add(self, invoice: IssuedTestInvoice) -> None:
        """Keep a newly issued invoice."""
        self._invoices[invoice.payment_hash] = invoice

    async def get(self, payment_hash: str) -> IssuedTestInvoice | None:
        """The invoice with this hash, or ``None``."""
        return self._invoices.get(payment_hash)

    async def mark_paid(self, payment_hash: str, paid_at: datetime) -> bool:
        """Set ``paid_at`` unless already set; ``False`` when the invoice is unknown."""
        issued = self._invoices.get(payment_hash)
        if issued is None:
            return False
        if issued.paid_at is None:
            self._invoices[payment_hash] = replace(issued, paid_at=paid_at)
        return True


class TestProvider:
    """A Lightning "node" that signs invoices on the configured network, keeping them in a
    :class:`IssuedInvoiceStore` (memory unless one is given)."""

    __test__ = False  # not a pytest test class
    capabilities = Capabilities()

    def __init__(
        self, *, network: Network, clock: Callable[[], datetime], name: str = "test",
        private_key: coincurve.PrivateKey | None = None, invoices: IssuedInvoiceStore | None = None,
    ) -> None:
        self.name = name
        self._network = network
        self._clock = clock
        self._key = private_key or coincurve.PrivateKey()
        self.node_pubkey = self._key.public_key.format(compressed=True).hex()
        self.invoices: IssuedInvoiceStore = invoices or MemoryInvoiceStore()

    async def create_invoice(
        self, *, amount_msat: int, memo: str, expiry: int, webhook_url: str | None = None
    ) -> ProviderInvoice:
        """Sign a fresh invoice for ``amount_msat``; arguments outside
        :func:`~lngate.providers.base.check_create_request` raise ``ProviderRejected``."""
        check_create_request(self.name, amount_msat=amount_msat, memo=memo, expiry=expiry)
        preimage = os.urandom(32)
        payment_hash = hashlib.sha256(preimage).hexdigest()
        timestamp = int(self._clock().timestamp())
        bolt11 = encode(
            self._key,
            currency=self._network.value,
            amount_msat=amount_msat,
            timestamp=timestamp,
            payment_hash=payment_hash,
            payment_secret=os.urandom(32).hex(),
            description=memo,
            expiry=expiry,
        )
        await self.invoices.add(IssuedTestInvoice(
            payment_hash, amount_msat, preimage.hex(),
            datetime.fromtimestamp(timestamp + expiry, UTC)))
        return ProviderInvoice(bolt11=bolt11, payment_hash=payment_hash,
                               amount_msat=amount_msat, provider_ref=payment_hash)

    async def mark_paid(self, payment_hash: str) -> bool:
        """Record a payment of one of our invoices, as a payer's wallet would; ``False`` if unknown."""
        return await self.invoices.mark_paid(payment_hash, self._clock())

    async def invoice_status(self, payment_hash: str) -> PaymentStatus | None:
        """Paid once :meth:`mark_paid` was called, expired after its expiry, else pending."""
        issued = await self.invoices.get(check_payment_hash(self.name, payment_hash))
        if issued is None:
            return None
        if issued.paid_at is not None:
            return PaymentStatus(PaymentState.PAID, issued.amount_msat, issued.preimage,
                                 issued.paid_at)
        if self._clock() >= issued.expires_at:
            return PaymentStatus(PaymentState.EXPIRED, issued.amount_msat)
        return PaymentStatus(PaymentState.PENDING, issued.amount_msat)

    async def health(self) -> HealthReport:
        """Always healthy: it has no network to lose."""
        started = time.perf_counter()
        return HealthReport(healthy=True, response_time_ms=(time.perf_counter() - started) * 1000,
                            node_pubkey=self.node_pubkey)

    async def aclose(self) -> None:
        """Nothing to release."""
