"""Node keys: pinned in settings, reported by the provider's probe, or learned; learned keys
are shared through the database: every instance, and the next start, trusts the key the first
instance learned, and refuses invoices signed by another."""

from __future__ import annotations

import coincurve
import pytest
from structlog.testing import capture_logs

from lngate.errors import InvalidInvoice
from lngate.providers.lnbits import LNbitsConfig, LNbitsProvider, make_session
from lngate.services.invoices import InvoiceRequest, create_invoice
from lngate.services.payee_keys import PayeeKeys
from lngate.store import Database
from tests.doubles.lnbits_double import FAKE_NODE_PUBKEY, LNbitsDouble
from tests.services.conftest import SettableClock, make_kit

KEY_A = coincurve.PrivateKey().public_key.format().hex()
KEY_B = coincurve.PrivateKey().public_key.format().hex()
KEY_C = coincurve.PrivateKey().public_key.format().hex()


async def test_a_key_learned_by_one_instance_is_expected_by_another(db: Database) -> None:
    """The key learned from one instance's first valid invoice is the one another instance,
    or a restarted one, expects before it saw any invoice."""
    async with LNbitsDouble() as double:
        provider = LNbitsProvider(LNbitsConfig(double.url, double.invoice_key, timeout=2.0),
                                  make_session(2.0))
        try:
            first = await make_kit(db, provider, SettableClock())  # no pinned key
            assert await first.gateway.payee_keys.expected("lnbits") is None
            await create_invoice(InvoiceRequest(amount_sat=21, description="tofu", expiry=600),
                                 first.gateway.invoices)
        finally:
            await provider.aclose()
    other = PayeeKeys(db=db)
    assert other.pinned("lnbits") is None
    assert await other.expected("lnbits") == FAKE_NODE_PUBKEY
    assert other.pinned("lnbits") == FAKE_NODE_PUBKEY  # read once, then known here


async def test_the_first_key_stored_wins_and_another_is_refused(db: Database) -> None:
    """Two instances learning different keys for one provider: the first stored wins; the
    other's invoice, signed by another key, is refused and it expects the winner from then on."""
    first, second = PayeeKeys(db=db), PayeeKeys(db=db)
    await first.learn("nwc", KEY_A)
    with pytest.raises(InvalidInvoice, match="learned first"):
        await second.learn("nwc", KEY_B)
    assert await second.expected("nwc") == KEY_A
    await second.learn("nwc", KEY_A)  # the same key again is fine


async def test_pinned_keys_are_not_stored(db: Database) -> None:
    """A key pinned in settings stays in its process: it is configuration, not learned."""
    pinned = PayeeKeys({"lnbits": KEY_A}, db=db)
    assert await pinned.expected("lnbits") == KEY_A
    assert await PayeeKeys(db=db).expected("lnbits") is None


async def test_a_reported_key_is_taken_when_none_is_pinned() -> None:
    """The key a probe reports becomes the expected payee."""
    keys = PayeeKeys()
    keys.report("node", KEY_A.upper())
    assert await keys.expected("node") == KEY_A


async def test_a_pinned_key_wins_over_a_reported_one() -> None:
    """A key pinned in settings is kept; a disagreeing report is logged as an error."""
    keys = PayeeKeys({"node": KEY_A})
    with capture_logs() as logs:
        keys.report("node", KEY_B)
    assert await keys.expected("node") == KEY_A
    assert [e["event"] for e in logs] == ["payee_key_mismatch"]


async def test_a_disagreeing_report_is_logged_once_per_key() -> None:
    """The same disagreeing key reported at every probe is one error, not one per probe; a
    different one is logged again."""
    keys = PayeeKeys({"node": KEY_A})
    with capture_logs() as logs:
        for _ in range(3):
            keys.report("node", KEY_B)
        keys.report("node", KEY_C)
    assert [(e["event"], e["reported"]) for e in logs] == [
        ("payee_key_mismatch", KEY_B), ("payee_key_mismatch", KEY_C)]


async def test_a_newer_report_replaces_a_learned_key() -> None:
    """A key learned from an invoice is replaced by what the provider itself reports."""
    keys = PayeeKeys()
    await keys.learn("node", KEY_A)
    keys.report("node", KEY_B)
    assert await keys.expected("node") == KEY_B
