"""LND as a contract row: no node can be installed here, so every path runs against the LND
REST double (tests/doubles/lnd_double.py, HTTPS with its own certificate, pinned), which
follows lnd's and grpc-gateway's sources; tests/providers/test_real_nodes.py runs the same
checks against a real node."""

from __future__ import annotations

import os
from contextlib import AsyncExitStack

import pytest

from lngate.domain import ProviderInvoice
from lngate.providers.base import Provider
from lngate.providers.lndrest import LndRestConfig, LndRestProvider, make_session
from tests.doubles.lnd_double import ROUTES, LndDouble
from tests.doubles.scripting import Reply
from tests.providers.targets.base import Call, ContractTarget, Garbage, Stage

_HTML = Reply(200, body=b"<html>502</html>", content_type="text/html")
_GARBAGE = {
    (Call.CREATE, Garbage.NOT_JSON): _HTML,
    (Call.CREATE, Garbage.MISSING_FIELDS): Reply(200, json={}),
    (Call.CREATE, Garbage.WRONG_TYPES): Reply(200, json={"r_hash": 42, "payment_request": 7,
                                                         "add_index": "seven"}),
    (Call.STATUS, Garbage.NOT_JSON): _HTML,
    (Call.STATUS, Garbage.MISSING_FIELDS): Reply(200, json={}),
    (Call.STATUS, Garbage.WRONG_TYPES): Reply(200, json={"r_hash": 5, "state": ["SETTLED"]}),
    (Call.HEALTH, Garbage.NOT_JSON): _HTML,
    (Call.HEALTH, Garbage.MISSING_FIELDS): Reply(200, json={}),
    (Call.HEALTH, Garbage.WRONG_TYPES): Reply(200, json={"identity_pubkey": 5,
                                                         "synced_to_chain": "yes"}),
}
_ROUTE = {Call.CREATE: "addinvoice", Call.STATUS: "lookup", Call.HEALTH: "getinfo"}


class LNDTarget(ContractTarget):
    """LND's REST proxy (double), with an admin-like macaroon and its tls.cert pinned."""

    id = "lnd"
    stages = frozenset({Stage.HANG, Stage.GARBAGE, Stage.BAD_CREDENTIALS})
    _wrong_macaroon = "0201" + os.urandom(40).hex()
    _built: LndRestProvider | None = None

    def __init__(self, request: pytest.FixtureRequest, stack: AsyncExitStack) -> None:
        super().__init__(request, stack)
        self._double: LndDouble | None = None
        self._doubles: list[LndDouble] = []

    async def _new_double(self) -> LndDouble:
        """A double on the current stack (a failure staged on it ends with the stack)."""
        double = await self.stack.enter_async_context(LndDouble())
        self._doubles.append(double)
        return double

    async def double(self) -> LndDouble:
        """The double of the healthy provider."""
        if self._double is None:
            self._double = await self._new_double()
        return self._double

    def _provider(self, double: LndDouble, macaroon: str, timeout: float = 5.0) -> LndRestProvider:
        assert double.cert is not None
        config = LndRestConfig(double.url, macaroon, tls_fingerprint=double.cert.fingerprint,
                               timeout=timeout)
        provider = LndRestProvider(config, make_session(config))
        self.stack.push_async_callback(provider.aclose)
        return provider

    async def provider(self) -> Provider:
        if self._built is None:
            double = await self.double()
            self._built = self._provider(double, double.admin_macaroon)
        return self._built

    async def pay(self, invoice: ProviderInvoice) -> None:
        (await self.double()).mark_paid(invoice.payment_hash)

    def construct(self, port: int) -> Provider:
        config = LndRestConfig(f"https://127.0.0.1:{port}", self._wrong_macaroon,
                               tls_fingerprint="ab" * 32, timeout=1.0)
        return LndRestProvider(config, make_session(config))

    def secrets(self) -> list[str]:
        macaroons = [self._wrong_macaroon]
        for double in self._doubles:
            macaroons += list(double.macaroons)
        return macaroons

    async def hung(self) -> Provider:
        double = await self._new_double()
        for route in ROUTES:
            double.script.always(route, Reply(hang=True))
        return self._provider(double, double.admin_macaroon, timeout=self.timeout)

    async def garbled(self, call: Call, garbage: Garbage) -> Provider:
        double = await self._new_double()
        double.script.script(_ROUTE[call], _GARBAGE[call, garbage])
        return self._provider(double, double.admin_macaroon)

    async def refusing_credentials(self) -> tuple[Provider, str]:
        good = await self.provider()
        existing = await good.create_invoice(amount_msat=1_000, memo="exists", expiry=600)
        double = await self.double()
        return self._provider(double, self._wrong_macaroon), existing.payment_hash
