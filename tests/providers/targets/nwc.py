"""NWC as a contract row: the real Nostr relay and NWC wallet service, whose control API
stages the failures (mute: a hung wallet; unauthorized: a revoked connection; garble-next: a
malformed answer)."""

from __future__ import annotations

import coincurve

from lngate.domain import ProviderInvoice
from lngate.providers.base import Provider
from lngate.providers.nwc import NWCConfig, NWCProvider
from tests.peers.nwc_peer import NWCPeer
from tests.providers.targets.base import Call, ContractTarget, Garbage, Stage

_MODE = {Garbage.NOT_JSON: "notjson", Garbage.MISSING_FIELDS: "missing",
         Garbage.WRONG_TYPES: "wrongtype"}


class NWCTarget(ContractTarget):
    """A NIP-47 wallet over a local relay."""

    id = "nwc"
    marks = ("nwc",)
    stages = frozenset({Stage.HANG, Stage.GARBAGE, Stage.BAD_CREDENTIALS})
    _built: NWCProvider | None = None
    _other_secret = coincurve.PrivateKey().to_hex()

    @property
    def peer(self) -> NWCPeer:
        peer: NWCPeer = self.request.getfixturevalue("nwc_peer")
        return peer

    def _provider(self, timeout: float = 5.0) -> NWCProvider:
        provider = NWCProvider(NWCConfig(uri=self.peer.uri, timeout=timeout, connect_timeout=1.0))
        self.stack.push_async_callback(provider.aclose)
        return provider

    async def provider(self) -> Provider:
        if self._built is None:
            self._built = self._provider()
        return self._built

    async def pay(self, invoice: ProviderInvoice) -> None:
        self.peer.settle(invoice.payment_hash)

    def construct(self, port: int) -> Provider:
        wallet = coincurve.PrivateKey().public_key.format()[1:].hex()
        uri = (f"nostr+walletconnect://{wallet}?relay=ws%3A%2F%2F127.0.0.1%3A{port}"
               f"&secret={self._other_secret}")
        return NWCProvider(NWCConfig(uri=uri))

    def secrets(self) -> list[str]:
        return [self.peer.client_secret, self._other_secret]

    async def hung(self) -> Provider:
        provider = self._provider(timeout=self.timeout)
        await provider.invoice_status("00" * 32)  # connected: what follows measures the wallet
        self.peer.mute(True)
        self.stack.callback(self.peer.mute, False)
        return provider

    async def garbled(self, call: Call, garbage: Garbage) -> Provider:
        provider = self._provider()
        await provider.invoice_status("00" * 32)  # connected before the answer is garbled
        self.peer.garble_next(_MODE[garbage])
        return provider

    async def refusing_credentials(self) -> tuple[Provider, str]:
        good = await self.provider()
        existing = await good.create_invoice(amount_msat=1_000, memo="exists", expiry=600)
        self.peer.unauthorized(True)
        self.stack.callback(self.peer.unauthorized, False)
        return self._provider(), existing.payment_hash
