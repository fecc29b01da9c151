"""The test provider as a contract row: no upstream, so no failure mode to stage."""

from __future__ import annotations

from datetime import UTC, datetime

import coincurve

from lngate.domain import Network, ProviderInvoice
from lngate.providers.base import Provider
from lngate.providers.testprovider import TestProvider
from tests.providers.targets.base import ContractTarget


def _now() -> datetime:
    return datetime.now(UTC)


class TestProviderTarget(ContractTarget):
    """The in-memory signing provider; :meth:`pay` plays the payer's wallet."""

    __test__ = False
    id = "test"

    _key = coincurve.PrivateKey()
    _built: TestProvider | None = None

    async def provider(self) -> Provider:
        if self._built is None:
            self._built = TestProvider(network=Network.BITCOIN, clock=_now,
                                       private_key=self._key)
        return self._built

    async def pay(self, invoice: ProviderInvoice) -> None:
        assert self._built is not None and await self._built.mark_paid(invoice.payment_hash)

    def construct(self, port: int) -> Provider:
        return TestProvider(network=Network.BITCOIN, clock=_now, private_key=self._key)

    def secrets(self) -> list[str]:
        return [self._key.to_hex()]
