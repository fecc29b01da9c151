"""The test provider: real, correctly signed BOLT11 invoices from a throwaway node key.

For demos and tests only. It runs only when ``LIGHTNING_TEST_MODE`` is on, always last in the
provider order, and every invoice it issues is flagged ``isTest``. Its invoices cannot be
paid on any network; :meth:`TestProvider.mark_paid` plays the customer's wallet.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import coincurve

from lngate.bolt11.encode import encode
from lngate.domain import HealthReport, Network, PaymentState, PaymentStatus, ProviderInvoice
from lngate.providers.base import Capabilities, check_create_request, check_payment_hash


@dataclass(slots=True)
class _Issued:
    amount_msat: int
    preimage: str
    expires_at: float
    paid_at: datetime | None = None


class TestProvider:
    """An in-memory Lightning "node" that signs invoices on the configured network."""

    __test__ = False  # not a pytest test class
    capabilities = Capabilities()

    def __init__(
        self, *, network: Network, clock: Callable[[], datetime], name: str = "test",
        private_key: coincurve.PrivateKey | None = None,
    ) -> None:
        self.name = name
        self._network = network
        self._clock = clock
        self._key = private_key or coincurve.PrivateKey()
        self.node_pubkey = self._key.public_key.format(compressed=True).hex()
        self._invoices: dict[str, _Issued] = {}

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
        self._invoices[payment_hash] = _Issued(amount_msat, preimage.hex(), timestamp + expiry)
        return ProviderInvoice(bolt11=bolt11, payment_hash=payment_hash,
                               amount_msat=amount_msat, provider_ref=payment_hash)

    def mark_paid(self, payment_hash: str) -> bool:
        """Record a payment of one of our invoices, as a payer's wallet would; ``False`` if unknown."""
        issued = self._invoices.get(payment_hash)
        if issued is None:
            return False
        if issued.paid_at is None:
            issued.paid_at = self._clock()
        return True

    async def invoice_status(self, payment_hash: str) -> PaymentStatus | None:
        """Paid once :meth:`mark_paid` was called, expired after its expiry, else pending."""
        issued = self._invoices.get(check_payment_hash(self.name, payment_hash))
        if issued is None:
            return None
        if issued.paid_at is not None:
            return PaymentStatus(PaymentState.PAID, issued.amount_msat, issued.preimage,
                                 issued.paid_at)
        if self._clock().timestamp() >= issued.expires_at:
            return PaymentStatus(PaymentState.EXPIRED, issued.amount_msat)
        return PaymentStatus(PaymentState.PENDING, issued.amount_msat)

    async def health(self) -> HealthReport:
        """Always healthy: it has no network to lose."""
        started = time.perf_counter()
        return HealthReport(healthy=True, response_time_ms=(time.perf_counter() - started) * 1000,
                            node_pubkey=self.node_pubkey)

    async def aclose(self) -> None:
        """Nothing to release."""
