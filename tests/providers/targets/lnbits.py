"""LNbits as a contract row: the real LNbits peer for the happy paths and refused keys, a TCP
proxy in front of it for a hung upstream, the LNbits double for malformed answers."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from lngate.domain import ProviderInvoice
from lngate.providers.base import Provider
from lngate.providers.lnbits import LNbitsConfig, LNbitsProvider, make_session
from tests.doubles.lnbits_double import LNbitsDouble, Reply
from tests.doubles.tcp_proxy import Mode, TcpProxy
from tests.peers.lnbits_peer import LNbitsPeer
from tests.providers.targets.base import Call, ContractTarget, Garbage, Stage

_GARBAGE = {
    (Call.CREATE, Garbage.NOT_JSON): Reply(201, body=b"<html>502</html>", content_type="text/html"),
    (Call.CREATE, Garbage.MISSING_FIELDS): Reply(201, json={}),
    (Call.CREATE, Garbage.WRONG_TYPES): Reply(
        201, json={"bolt11": 42, "payment_hash": 7, "amount": "lots"}
    ),
    (Call.STATUS, Garbage.NOT_JSON): Reply(200, body=b"<html>502</html>", content_type="text/html"),
    (Call.STATUS, Garbage.WRONG_TYPES): Reply(200, json={"paid": "yes", "details": 5}),
    (Call.HEALTH, Garbage.NOT_JSON): Reply(200, body=b"<html>502</html>", content_type="text/html"),
    (Call.HEALTH, Garbage.MISSING_FIELDS): Reply(200, json={}),
    (Call.HEALTH, Garbage.WRONG_TYPES): Reply(200, json={"balance": "plenty"}),
}
_ROUTE = {Call.CREATE: "create", Call.STATUS: "status", Call.HEALTH: "wallet"}


class LNbitsTarget(ContractTarget):
    """LNbits 1.6.2 (FakeWallet); the merchant wallet's invoice key."""

    id = "lnbits"
    marks = ("lnbits",)
    stages = frozenset({Stage.HANG, Stage.GARBAGE, Stage.BAD_CREDENTIALS})
    _wrong_key = "wrong-SECRET-" + os.urandom(8).hex()
    _built: LNbitsProvider | None = None

    @property
    def peer(self) -> LNbitsPeer:
        peer: LNbitsPeer = self.request.getfixturevalue("lnbits_peer")
        return peer

    def _provider(self, url: str, key: str, timeout: float = 5.0) -> LNbitsProvider:
        provider = LNbitsProvider(LNbitsConfig(url, key, timeout=timeout), make_session(timeout))
        self.stack.push_async_callback(provider.aclose)
        return provider

    async def provider(self) -> Provider:
        if self._built is None:
            self._built = self._provider(self.peer.url, self.peer.merchant_inkey)
        return self._built

    async def pay(self, invoice: ProviderInvoice) -> None:
        await self.peer.apay(invoice.bolt11)

    def construct(self, port: int) -> Provider:
        return LNbitsProvider(LNbitsConfig(f"http://127.0.0.1:{port}", self._wrong_key),
                              make_session(1.0))

    def secrets(self) -> list[str]:
        return [self.peer.merchant_inkey, self._wrong_key]

    async def hung(self) -> Provider:
        parts = urlsplit(self.peer.url)
        assert parts.hostname and parts.port
        proxy = await self.stack.enter_async_context(TcpProxy(parts.hostname, parts.port))
        await proxy.set(Mode.HANG)
        return self._provider(proxy.url, self.peer.merchant_inkey, timeout=self.timeout)

    async def garbled(self, call: Call, garbage: Garbage) -> Provider:
        double = await self.stack.enter_async_context(LNbitsDouble())
        double.script(_ROUTE[call], _GARBAGE[call, garbage])
        return self._provider(double.url, double.invoice_key)

    async def refusing_credentials(self) -> tuple[Provider, str]:
        good = await self.provider()
        existing = await good.create_invoice(amount_msat=1_000, memo="exists", expiry=600)
        return self._provider(self.peer.url, self._wrong_key), existing.payment_hash
