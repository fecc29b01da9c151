"""Core Lightning as a contract row: no node can be installed here, so every path runs against
the clnrest double (tests/doubles/cln_double.py), which follows clnrest's and the JSON-RPC's
sources; tests/providers/test_real_nodes.py runs the same checks against a real node."""

from __future__ import annotations

import os
from contextlib import AsyncExitStack

import pytest

from lngate.domain import ProviderInvoice
from lngate.providers.base import Provider
from lngate.providers.clnrest import ClnRestConfig, ClnRestProvider, make_session
from tests.doubles.cln_double import METHODS, ClnDouble
from tests.doubles.scripting import Reply
from tests.providers.targets.base import Call, ContractTarget, Garbage, Stage

_HTML = Reply(201, body=b"<html>502</html>", content_type="text/html")
_GARBAGE = {
    (Call.CREATE, Garbage.NOT_JSON): _HTML,
    (Call.CREATE, Garbage.MISSING_FIELDS): Reply(201, json={}),
    (Call.CREATE, Garbage.WRONG_TYPES): Reply(201, json={"bolt11": 42, "payment_hash": 7}),
    (Call.STATUS, Garbage.NOT_JSON): _HTML,
    (Call.STATUS, Garbage.MISSING_FIELDS): Reply(201, json={}),
    (Call.STATUS, Garbage.WRONG_TYPES): Reply(201, json={"invoices": [{"payment_hash": 7,
                                                                       "status": []}]}),
    (Call.HEALTH, Garbage.NOT_JSON): _HTML,
    (Call.HEALTH, Garbage.MISSING_FIELDS): Reply(201, json={}),
    (Call.HEALTH, Garbage.WRONG_TYPES): Reply(201, json={"id": 12345}),
}
_METHOD = {Call.CREATE: "invoice", Call.STATUS: "listinvoices", Call.HEALTH: "getinfo"}


class CLNTarget(ContractTarget):
    """Core Lightning's clnrest (double), with a rune for every method."""

    id = "cln"
    stages = frozenset({Stage.HANG, Stage.GARBAGE, Stage.BAD_CREDENTIALS})
    _wrong_rune = "wrongSECRETrune" + os.urandom(12).hex()
    _built: ClnRestProvider | None = None

    def __init__(self, request: pytest.FixtureRequest, stack: AsyncExitStack) -> None:
        super().__init__(request, stack)
        self._double: ClnDouble | None = None
        self._doubles: list[ClnDouble] = []

    async def _new_double(self) -> ClnDouble:
        """A double on the current stack (a failure staged on it ends with the stack)."""
        double = await self.stack.enter_async_context(ClnDouble())
        self._doubles.append(double)
        return double

    async def double(self) -> ClnDouble:
        """The double of the healthy provider."""
        if self._double is None:
            self._double = await self._new_double()
        return self._double

    def _provider(self, url: str, rune: str, timeout: float = 5.0) -> ClnRestProvider:
        config = ClnRestConfig(url, rune, timeout=timeout)
        provider = ClnRestProvider(config, make_session(config))
        self.stack.push_async_callback(provider.aclose)
        return provider

    async def provider(self) -> Provider:
        if self._built is None:
            double = await self.double()
            self._built = self._provider(double.url, double.rune)
        return self._built

    async def pay(self, invoice: ProviderInvoice) -> None:
        (await self.double()).mark_paid(invoice.payment_hash)

    def construct(self, port: int) -> Provider:
        config = ClnRestConfig(f"http://127.0.0.1:{port}", self._wrong_rune, timeout=1.0)
        return ClnRestProvider(config, make_session(config))

    def secrets(self) -> list[str]:
        runes = [self._wrong_rune]
        for double in self._doubles:
            runes += list(double.runes)
        return runes

    async def hung(self) -> Provider:
        double = await self._new_double()
        for method in METHODS:
            double.script.always(method, Reply(hang=True))
        return self._provider(double.url, double.rune, timeout=self.timeout)

    async def garbled(self, call: Call, garbage: Garbage) -> Provider:
        double = await self._new_double()
        double.script.script(_METHOD[call], _GARBAGE[call, garbage])
        return self._provider(double.url, double.rune)

    async def refusing_credentials(self) -> tuple[Provider, str]:
        good = await self.provider()
        existing = await good.create_invoice(amount_msat=1_000, memo="exists", expiry=600)
        double = await self.double()
        return self._provider(double.url, self._wrong_rune), existing.payment_hash
