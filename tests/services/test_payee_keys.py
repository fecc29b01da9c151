"""Node keys: pinned in settings, reported by the provider's probe, or learned."""

from __future__ import annotations

from structlog.testing import capture_logs

from lngate.services.payee_keys import PayeeKeys

KEY_A = "02" + "aa" * 32
KEY_B = "03" + "bb" * 32


def test_a_reported_key_is_taken_when_none_is_pinned() -> None:
    """The key a probe reports becomes the expected payee."""
    keys = PayeeKeys()
    keys.report("node", KEY_A.upper())
    assert keys.expected("node") == KEY_A


def test_a_pinned_key_wins_over_a_reported_one() -> None:
    """A key pinned in settings is kept; a disagreeing report is logged as an error."""
    keys = PayeeKeys({"node": KEY_A})
    with capture_logs() as logs:
        keys.report("node", KEY_B)
    assert keys.expected("node") == KEY_A
    assert [e["event"] for e in logs] == ["payee_key_mismatch"]


def test_a_newer_report_replaces_a_learned_key() -> None:
    """A key learned from an invoice is replaced by what the provider itself reports."""
    keys = PayeeKeys()
    keys.learn("node", KEY_A)
    keys.report("node", KEY_B)
    assert keys.expected("node") == KEY_B
