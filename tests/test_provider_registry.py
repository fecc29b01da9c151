"""The provider registry builds every type from its spec, against the doubles and the real NWC
peer; the composition root builds the configured list, pins keys, and gives streams a store."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from lngate.bootstrap import build_providers
from lngate.config_secrets import SecretUrl
from lngate.provider_registry import REGISTRY, BuildContext, build_provider
from lngate.provider_specs import ClnRestSpec, LNbitsSpec, LndRestSpec, NWCSpec, ProviderSpec
from lngate.providers.base import Provider
from lngate.providers.clnrest import ClnRestProvider
from lngate.providers.cursors import CursorStore, MemoryCursorStore
from lngate.providers.lnbits import LNbitsProvider
from lngate.providers.lndrest import LndRestProvider
from lngate.providers.nwc import NWCProvider
from lngate.services.payee_keys import PayeeKeys
from lngate.settings import ConfigError, Settings
from lngate.store import Database
from lngate.store.stream_cursors import StreamCursorStore
from tests.doubles.cln_double import ClnDouble
from tests.doubles.lnbits_double import FAKE_NODE_PUBKEY, LNbitsDouble
from tests.doubles.lnd_double import LndDouble
from tests.peers.lnbits_peer import LNbitsPeer
from tests.peers.nwc_peer import NWCPeer

ROOT = Path(__file__).resolve().parents[1]


class RecordingStores:
    """A ``cursor_store`` that remembers which providers asked, each store preset to ``start``."""

    def __init__(self, start: int | None = None) -> None:
        self.start = start
        self.stores: dict[str, MemoryCursorStore] = {}

    def __call__(self, name: str) -> CursorStore:
        self.stores[name] = MemoryCursorStore(self.start)
        return self.stores[name]


@asynccontextmanager
async def built(spec: ProviderSpec, context: BuildContext) -> AsyncIterator[Any]:
    provider = build_provider(spec, context)
    try:
        yield provider
    finally:
        await provider.aclose()


async def issue_and_check(provider: Provider) -> None:
    """The provider answers health with its node key and issues an invoice it then knows."""
    report = await provider.health()
    assert report.healthy, report.error
    invoice = await provider.create_invoice(amount_msat=21_000, memo="registry", expiry=600)
    assert await provider.invoice_status(invoice.payment_hash) is not None


async def test_the_registry_builds_lnbits_with_its_own_session() -> None:
    """An lnbits spec builds an LNbitsProvider under the spec's name that reaches the wallet."""
    async with LNbitsDouble() as double:
        spec = LNbitsSpec(name="shop", type="lnbits", server=double.url,
                          invoice_key=SecretStr(double.invoice_key))
        async with built(spec, BuildContext(timeout=2.0)) as provider:
            assert isinstance(provider, LNbitsProvider) and provider.name == "shop"
            await issue_and_check(provider)
            assert double.requests[-1].headers["X-Api-Key"] == double.invoice_key


@pytest.mark.parametrize("trust", ["ca_cert", "tls_fingerprint"])
async def test_the_registry_builds_clnrest_trusting_the_node_certificate(trust: str) -> None:
    """A clnrest spec builds a ClnRestProvider whose session trusts clnrest's CA or its pinned
    server certificate, and which reports the node's key."""
    async with ClnDouble(tls=True) as double:
        assert double.certs is not None
        option = {"ca_cert": str(double.certs.ca_path),
                  "tls_fingerprint": double.certs.server_fingerprint}[trust]
        spec = ClnRestSpec(name="node", type="clnrest", server=double.url,
                           rune=SecretStr(double.rune), **{trust: option})
        async with built(spec, BuildContext(timeout=2.0)) as provider:
            assert isinstance(provider, ClnRestProvider) and provider.name == "node"
            await issue_and_check(provider)
            assert provider.node_pubkey == double.node_id


async def test_the_registry_builds_lndrest_pinning_its_tls_cert() -> None:
    """An lndrest spec builds an LndRestProvider trusting lnd's tls.cert, with its macaroon."""
    async with LndDouble() as double:
        assert double.cert is not None
        spec = LndRestSpec(name="lnd", type="lndrest", server=double.url,
                           macaroon=SecretStr(double.admin_macaroon),
                           tls_cert=str(double.cert.cert_path))
        async with built(spec, BuildContext(timeout=2.0)) as provider:
            assert isinstance(provider, LndRestProvider) and provider.name == "lnd"
            await issue_and_check(provider)
            assert provider.node_pubkey == double.identity_pubkey


async def test_the_registry_builds_nwc_against_the_real_peer(nwc_peer: NWCPeer) -> None:
    """An nwc spec builds an NWCProvider that reaches the real wallet service and learns its
    node key from get_info."""
    spec = NWCSpec(name="alby", type="nwc", uri=SecretUrl(nwc_peer.uri))
    async with built(spec, BuildContext(timeout=5.0)) as provider:
        assert isinstance(provider, NWCProvider) and provider.name == "alby"
        await issue_and_check(provider)
        assert provider.node_pubkey == nwc_peer.node_pubkey


async def test_cln_and_lnd_streams_resume_from_the_store_the_factory_gives_them() -> None:
    """Each node provider gets the cursor store of its own name; its paid stream starts after
    the stored position (the payment at index 1 is not delivered again)."""
    stores = RecordingStores(start=1)
    context = BuildContext(timeout=2.0, cursor_store=stores)
    async with ClnDouble() as cln, LndDouble() as lnd:
        assert lnd.cert is not None
        specs = [ClnRestSpec(name="node", type="clnrest", server=cln.url,
                             rune=SecretStr(cln.rune)),
                 LndRestSpec(name="lnd", type="lndrest", server=lnd.url,
                             macaroon=SecretStr(lnd.admin_macaroon),
                             tls_cert=str(lnd.cert.cert_path))]
        for spec, double in zip(specs, (cln, lnd), strict=True):
            async with built(spec, context) as provider:
                first = await provider.create_invoice(amount_msat=1000, memo="a", expiry=600)
                second = await provider.create_invoice(amount_msat=2000, memo="b", expiry=600)
                double.mark_paid(first.payment_hash)
                double.mark_paid(second.payment_hash)
                stream = provider.paid_invoices()
                assert await asyncio.wait_for(anext(stream), 5) == second.payment_hash
                await stream.aclose()
        assert set(stores.stores) == {"node", "lnd"}


async def test_lnbits_and_nwc_need_no_cursor_store(nwc_peer: NWCPeer) -> None:
    """Providers without a cursor-based stream never ask for a store."""
    stores = RecordingStores()
    context = BuildContext(timeout=2.0, cursor_store=stores)
    specs: list[ProviderSpec] = [
        LNbitsSpec(name="shop", type="lnbits", server="http://127.0.0.1:9",
                   invoice_key=SecretStr("k" * 32)),
        NWCSpec(name="alby", type="nwc", uri=SecretUrl(nwc_peer.uri)),
    ]
    for spec in specs:
        async with built(spec, context):
            pass
    assert stores.stores == {}


def test_a_spec_of_another_type_is_refused_by_the_registry() -> None:
    """A spec whose ``type`` names another row is not handed to that row's factory."""
    spec = LNbitsSpec(name="shop", type="clnrest", server="https://lnbits.example.com",
                      invoice_key=SecretStr("k" * 32))
    with pytest.raises(ValueError, match="type clnrest is built from a ClnRestSpec, not a "
                                         "LNbitsSpec"):
        build_provider(spec, BuildContext(timeout=1.0))


def test_every_registry_type_is_documented() -> None:
    """Each provider type of the registry has its row, with its keys, in the configuration
    guide, and each of its keys is there."""
    guide = (ROOT / "docs" / "configuration.md").read_text()
    for type_name, row in REGISTRY.items():
        line = next((ln for ln in guide.splitlines() if ln.startswith(f"| `{type_name}` |")), None)
        assert line is not None, type_name
        for key in row.keys:
            if key not in ("name", "type"):
                assert f"`{key}`" in line, (type_name, key)


# --- the composition root ---------------------------------------------------------------------


def settings_with(**values: Any) -> Settings:
    return Settings(_env_file=None, lightning_test_mode=False, **values)  # type: ignore[call-arg]


async def test_build_providers_follows_the_list_and_pins_configured_keys(
    db: Database, nwc_peer: NWCPeer,
) -> None:
    """The composition root builds the list in order, under the configured names, pins each
    node_pubkey, and gives the node providers their database cursor store."""
    async with LNbitsDouble() as first, LNbitsDouble() as second, ClnDouble() as cln:
        settings = settings_with(providers=[
            f"name=primary;type=lnbits;server={first.url};invoice_key={first.invoice_key};"
            f"node_pubkey={FAKE_NODE_PUBKEY}",
            f"name=backup;type=lnbits;server={second.url};invoice_key={second.invoice_key}",
            f"name=node;type=clnrest;server={cln.url};rune={cln.rune}",
            f"name=alby;type=nwc;uri={nwc_peer.uri}",
        ])
        keys = PayeeKeys()
        providers, sessions, test_provider = await build_providers(settings, keys, db=db)
        try:
            assert [p.name for p in providers] == ["primary", "backup", "node", "alby"]
            assert [type(p) for p in providers] == [LNbitsProvider, LNbitsProvider,
                                                   ClnRestProvider, NWCProvider]
            assert sessions == [] and test_provider not in providers
            assert keys.pinned("primary") == FAKE_NODE_PUBKEY
            assert keys.pinned("backup") is None and keys.pinned("node") is None
            store = providers[2]._cursor_store  # type: ignore[attr-defined]
            assert isinstance(store, StreamCursorStore) and store.provider == "node"
        finally:
            for provider in providers:
                await provider.aclose()


async def test_a_certificate_gone_since_settings_loaded_is_a_config_error(tmp_path: Path) -> None:
    """A provider that cannot be built any more stops the build with one line naming it, and
    the providers built before it are closed."""
    async with ClnDouble(tls=True) as double:
        assert double.certs is not None
        ca = tmp_path / "ca.pem"
        ca.write_text(double.certs.ca_path.read_text())
        settings = settings_with(providers=[
            "name=shop;type=lnbits;server=http://127.0.0.1:9;invoice_key=" + "k" * 32,
            f"name=node;type=clnrest;server={double.url};rune={double.rune};ca_cert={ca}",
        ])
        ca.unlink()
        built_before: list[Provider] = []
        original = build_provider

        def recording(spec: ProviderSpec, context: BuildContext) -> Provider:
            provider = original(spec, context)
            built_before.append(provider)
            return provider

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("lngate.bootstrap.build_provider", recording)
            with pytest.raises(ConfigError) as error:
                await build_providers(settings, PayeeKeys())
        assert error.value.problems == [
            f"PROVIDERS: provider 'node' (clnrest): CLN TLS: cannot read {str(ca)!r}: No such "
            "file or directory"]
        assert [p.name for p in built_before] == ["shop"]
        assert built_before[0]._session.closed  # type: ignore[attr-defined]


def test_lngate_check_lists_each_provider_by_name_with_its_type(
    lnbits_peer: LNbitsPeer, tmp_path: Path,
) -> None:
    """`lngate check` with two LNbits providers named differently checks both, each row giving
    its name and its type; no key is printed."""
    key = lnbits_peer.merchant_inkey
    entries = [f"name=lnbits-main;type=lnbits;server={lnbits_peer.url};invoice_key={key}",
               f"name=lnbits-spare;type=lnbits;server={lnbits_peer.url};invoice_key={key}"]
    env = {**os.environ, "PROVIDERS": "|".join(entries), "LIGHTNING_TEST_MODE": "false",
           "DATABASE_URL": f"sqlite:///{tmp_path / 'check.sqlite3'}", "LOG_FORMAT": "json"}
    result = subprocess.run([sys.executable, "-m", "lngate", "check"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["provider", "type", "result"]
    assert [line.split()[:3] for line in lines[2:]] == [["lnbits-main", "lnbits", "OK"],
                                                        ["lnbits-spare", "lnbits", "OK"]]
    assert "checking lnbits-main (lnbits) ..." in result.stderr
    assert key not in result.stdout + result.stderr
