"""Opt-in: the CLN and LND providers against real nodes (a regtest setup), when configured.

No Bitcoin or Lightning node can be installed where the suite usually runs, so the providers
are tested against doubles that follow the nodes' sources; this file runs the same create,
look-up and health checks against real nodes whose connection settings are in the environment
(docs/providers.md says how):

- Core Lightning: ``LNGATE_TEST_CLN_URL``, ``LNGATE_TEST_CLN_RUNE``, and for clnrest's
  self-signed certificate ``LNGATE_TEST_CLN_CA`` (its ``ca.pem``) or
  ``LNGATE_TEST_CLN_FINGERPRINT`` (SHA-256 of its ``server.pem``);
- LND: ``LNGATE_TEST_LND_URL``, ``LNGATE_TEST_LND_MACAROON`` (hex), ``LNGATE_TEST_LND_CERT``
  (``tls.cert``, path or PEM).

Without them these tests are skipped, with a reason naming the variables: the one skip the
suite allows, because it is an opt-in.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Callable

import pytest

from lngate.bolt11.decode import decode
from lngate.domain import PaymentState
from lngate.providers.base import Provider
from lngate.providers.clnrest import ClnRestConfig, ClnRestProvider
from lngate.providers.clnrest import make_session as cln_session
from lngate.providers.lndrest import LndRestConfig, LndRestProvider
from lngate.providers.lndrest import make_session as lnd_session

CLN_VARIABLES = ("LNGATE_TEST_CLN_URL", "LNGATE_TEST_CLN_RUNE")
LND_VARIABLES = ("LNGATE_TEST_LND_URL", "LNGATE_TEST_LND_MACAROON", "LNGATE_TEST_LND_CERT")


def _configured(variables: tuple[str, ...]) -> bool:
    return all(os.environ.get(name) for name in variables)


def cln_provider() -> Provider:
    env = os.environ
    config = ClnRestConfig(
        env["LNGATE_TEST_CLN_URL"], env["LNGATE_TEST_CLN_RUNE"],
        ca_cert=env.get("LNGATE_TEST_CLN_CA") or None,
        tls_fingerprint=env.get("LNGATE_TEST_CLN_FINGERPRINT") or None,
        timeout=10.0,
    )
    return ClnRestProvider(config, cln_session(config), name="cln-real")


def lnd_provider() -> Provider:
    env = os.environ
    config = LndRestConfig(
        env["LNGATE_TEST_LND_URL"], env["LNGATE_TEST_LND_MACAROON"],
        tls_cert=env["LNGATE_TEST_LND_CERT"], timeout=10.0,
    )
    return LndRestProvider(config, lnd_session(config), name="lnd-real")


NODES = [
    pytest.param(cln_provider, id="cln", marks=pytest.mark.skipif(
        not _configured(CLN_VARIABLES),
        reason="real Core Lightning node not configured: set " + ", ".join(CLN_VARIABLES)
        + " (and LNGATE_TEST_CLN_CA or LNGATE_TEST_CLN_FINGERPRINT for https)")),
    pytest.param(lnd_provider, id="lnd", marks=pytest.mark.skipif(
        not _configured(LND_VARIABLES),
        reason="real LND node not configured: set " + ", ".join(LND_VARIABLES))),
]


@pytest.fixture(params=NODES)
async def node(request: pytest.FixtureRequest) -> AsyncIterator[Provider]:
    make: Callable[[], Provider] = request.param
    provider = make()
    yield provider
    await provider.aclose()


async def test_real_node_is_healthy_and_names_its_key(node: Provider) -> None:
    """The node answers health with its node key (and, if permitted, a balance)."""
    report = await node.health()

    assert report.healthy, report.error
    assert report.node_pubkey is not None and len(report.node_pubkey) == 66
    assert report.balance_msat is None or report.balance_msat >= 0


async def test_real_node_issues_an_invoice_it_signed_and_then_knows(node: Provider) -> None:
    """A created invoice is signed by the node's key for the amount, memo and expiry asked;
    looking it up says pending; an unknown hash is None."""
    report = await node.health()
    invoice = await node.create_invoice(amount_msat=1_234_000, memo="lngate real-node check",
                                        expiry=600)

    decoded = decode(invoice.bolt11)
    assert decoded.payee == report.node_pubkey
    assert decoded.amount_msat == 1_234_000 == invoice.amount_msat
    assert decoded.payment_hash == invoice.payment_hash
    assert decoded.description == "lngate real-node check" and decoded.expiry == 600
    status = await node.invoice_status(invoice.payment_hash)
    assert status is not None and status.state is PaymentState.PENDING
    unknown = hashlib.sha256(os.urandom(32)).hexdigest()
    assert await node.invoice_status(unknown) is None
