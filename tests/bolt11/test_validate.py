"""validate_invoice: one test per rule, plus what tampering does to the payee."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from bech32 import CHARSET as BECH32_CHARSET
from bech32 import bech32_encode
from coincurve import PrivateKey

from lngate.bolt11 import InvoiceExpectation, decode, encode, validate_invoice
from lngate.domain import Network
from lngate.errors import InvalidInvoice
from tests.bolt11 import vectors as V

NODE_KEY = PrivateKey(b"\x2a" * 32)
NODE = NODE_KEY.public_key.format().hex()
IMPOSTOR_KEY = PrivateKey(b"\x66" * 32)
HASH = "ab" * 32
MEMO = "DazBox - commande 42"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
CREATED = int(NOW.timestamp()) - 5

EXPECT = InvoiceExpectation(
    network=Network.BITCOIN,
    amount_msat=400_000_000,
    payment_hash=HASH,
    description=MEMO,
    expiry=900,
    payee=NODE,
    now=NOW,
)


def make(key: PrivateKey = NODE_KEY, **overrides: object) -> str:
    """A provider's invoice exactly as EXPECT asks, with ``overrides`` changed."""
    params: dict[str, object] = {
        "currency": Network.BITCOIN,
        "amount_msat": 400_000_000,
        "timestamp": CREATED,
        "payment_hash": HASH,
        "payment_secret": "cd" * 32,
        "description": MEMO,
        "expiry": 900,
    }
    params.update(overrides)
    return encode(key, **params)  # type: ignore[arg-type]


def refused(invoice: str, expect: InvoiceExpectation = EXPECT) -> str:
    """The reason validate_invoice gives; it never repeats the invoice and leaves provider unset."""
    with pytest.raises(InvalidInvoice) as caught:
        validate_invoice(invoice, expect)
    reason = str(caught.value)
    assert caught.value.provider is None
    assert invoice not in reason and invoice[:60] not in reason
    return reason


def test_accepts_the_invoice_that_was_asked_for() -> None:
    """An invoice matching every expectation is returned decoded."""
    decoded = validate_invoice(make(), EXPECT)
    assert (decoded.amount_msat, decoded.payment_hash, decoded.payee) == (400_000_000, HASH, NODE)


def test_refuses_what_does_not_decode() -> None:
    """A string that is not a valid invoice is refused with the decoder's reason."""
    bad_checksum = next(v for v in V.INVALID if v.name == "bech32 checksum is invalid")
    assert refused(bad_checksum.invoice) == "invoice does not decode: bad bech32 checksum"
    assert refused("hello").startswith("invoice does not decode: not a bech32 string")



def test_refuses_an_invalid_signature() -> None:
    """An invoice whose signature does not verify against its ``n`` field is refused."""
    invoice = make(key=IMPOSTOR_KEY, payee=NODE)
    assert "signature does not verify" in refused(invoice)


def test_refuses_another_signer() -> None:
    """An invoice signed by another key than the provider's node is refused, naming both keys."""
    reason = refused(make(key=IMPOSTOR_KEY))
    impostor = IMPOSTOR_KEY.public_key.format().hex()
    assert reason == f"payee: invoice signed by {impostor}, expected {NODE}"


def test_payee_comparison_ignores_case() -> None:
    """The expected payee may be given in upper-case hex."""
    validate_invoice(make(), replace(EXPECT, payee=NODE.upper()))


def test_unknown_payee_is_not_checked() -> None:
    """With no known payee, an invoice signed by any key passes: pin the key to close that gap."""
    assert validate_invoice(make(key=IMPOSTOR_KEY), replace(EXPECT, payee=None)).payee != NODE


def test_refuses_another_network() -> None:
    """An invoice for another network than the configured one is refused."""
    reason = refused(make(currency=Network.TESTNET))
    assert reason == "network: invoice is for testnet ('tb'), expected bitcoin ('bc')"


def test_refuses_an_invoice_without_amount() -> None:
    """An invoice that leaves the amount to the payer is refused."""
    assert refused(make(amount_msat=None)) == "amount: invoice has none, expected 400000000 msat"


def test_refuses_another_amount() -> None:
    """An invoice for another amount, even one millisatoshi off, is refused."""
    reason = refused(make(amount_msat=400_000_001))
    assert reason == "amount: invoice 400000001 msat, expected 400000000 msat"


def test_refuses_another_payment_hash() -> None:
    """An invoice whose payment hash differs from the provider's report is refused."""
    assert refused(make(payment_hash="ef" * 32)) == (
        f"payment hash: invoice {'ef' * 32}, expected {HASH}"
    )


def test_payment_hash_comparison_ignores_case() -> None:
    """The reported payment hash may be upper-case hex."""
    validate_invoice(make(), replace(EXPECT, payment_hash=HASH.upper()))


def test_refuses_an_invoice_without_payment_secret() -> None:
    """A legacy invoice without an ``s`` field is refused, as the current spec requires."""
    legacy = next(v for v in V.LEGACY_VALID if v.name.startswith("legacy: $3 for a cup"))
    expect = InvoiceExpectation(
        network=Network.BITCOIN,
        amount_msat=legacy.amount_msat or 0,
        payment_hash=legacy.payment_hash,
        description=legacy.description or "",
        expiry=legacy.expiry,
        payee=legacy.payee,
        now=datetime.fromtimestamp(legacy.timestamp + 10, tz=UTC),
    )
    assert refused(legacy.invoice, expect).startswith("payment secret: invoice has none")


def test_refuses_another_description() -> None:
    """An invoice whose description differs from the memo is refused, quoting both."""
    reason = refused(make(description="DazBox - commande 43"))
    assert reason == "description: invoice 'DazBox - commande 43', expected 'DazBox - commande 42'"


def test_long_descriptions_are_shortened_in_reasons() -> None:
    """A long description is cut in the reason, so reasons stay short."""
    assert len(refused(make(description="x" * 600))) < 250


def test_accepts_the_hash_of_the_memo() -> None:
    """An invoice carrying ``h`` = sha256(memo as UTF-8) instead of ``d`` is accepted."""
    memo_hash = hashlib.sha256(MEMO.encode()).hexdigest()
    invoice = make(description=None, description_hash=memo_hash)
    assert validate_invoice(invoice, EXPECT).description_hash == memo_hash


def test_refuses_the_hash_of_another_description() -> None:
    """An ``h`` field that is not the hash of the memo is refused, naming both hashes."""
    reason = refused(make(description=None, description_hash=V.LONG_DESCRIPTION_HASH))
    memo_hash = hashlib.sha256(MEMO.encode()).hexdigest()
    assert reason == (
        f"description hash: invoice {V.LONG_DESCRIPTION_HASH}, expected {memo_hash}"
        " (sha256 of the memo)"
    )


def test_refuses_another_expiry() -> None:
    """An invoice whose expiry differs from the requested one is refused."""
    assert refused(make(expiry=3600)) == "expiry: invoice 3600 s, expected 900 s"


def test_missing_expiry_means_one_hour() -> None:
    """An invoice without ``x`` has the default expiry of 3600 s, and is judged by it."""
    validate_invoice(make(expiry=None), replace(EXPECT, expiry=3600))
    assert refused(make(expiry=None)) == "expiry: invoice 3600 s, expected 900 s"


def test_refuses_an_expired_invoice() -> None:
    """An invoice whose timestamp plus expiry is at or before now is refused."""
    invoice = make()
    expires = datetime.fromtimestamp(CREATED + 900, tz=UTC)
    validate_invoice(invoice, replace(EXPECT, now=expires - timedelta(seconds=1)))
    reason = refused(invoice, replace(EXPECT, now=expires))
    assert reason == (
        "expired: invoice expired at 2025-06-01T12:14:55+00:00, now 2025-06-01T12:14:55+00:00"
    )


def test_refuses_a_timestamp_far_in_the_future() -> None:
    """An invoice created more than 10 minutes after now is refused; 10 minutes is tolerated."""
    validate_invoice(make(timestamp=int(NOW.timestamp()) + 600), EXPECT)
    reason = refused(make(timestamp=int(NOW.timestamp()) + 601))
    assert reason == (
        "timestamp: invoice created at 2025-06-01T12:10:01+00:00, more than 10 minutes after"
        " now 2025-06-01T12:00:00+00:00"
    )


def test_now_in_another_timezone_is_the_same_instant() -> None:
    """Expiry is judged on the instant, whatever the timezone of ``now``."""
    paris = timezone(timedelta(hours=2))
    validate_invoice(make(), replace(EXPECT, now=NOW.astimezone(paris)))


def test_expectation_needs_an_aware_now() -> None:
    """A naive ``now`` is refused when the expectation is built."""
    with pytest.raises(ValueError, match="aware"):
        replace(EXPECT, now=datetime(2025, 6, 1, 12, 0))


# Where fields start in make()'s data part: timestamp (7), s (3 + 52), p (3 + 52), d (3 + ...).
P_DATA = 7 + 55 + 3
D_DATA = 7 + 55 + 55 + 3


def data_part(invoice: str) -> str:
    return invoice[invoice.rindex("1") + 1 : -6]


def rechecksum(invoice: str, position: int, character: str) -> str:
    """``invoice`` with data character ``position`` replaced and a valid checksum recomputed."""
    data = list(data_part(invoice))
    data[position] = character
    hrp = invoice[: invoice.rindex("1")]
    return bech32_encode(hrp, [BECH32_CHARSET.index(c) for c in data])


def test_tampered_invoice_recovers_another_payee() -> None:
    """A flipped description character still decodes, to another payee, and is refused for it."""
    invoice = make()
    assert data_part(invoice)[D_DATA - 3] == "d"
    first = data_part(invoice)[D_DATA]
    tampered = rechecksum(invoice, D_DATA, "q" if first != "q" else "p")
    original, forged = decode(invoice), decode(tampered)
    assert forged.description != original.description
    assert forged.payee != NODE
    assert refused(tampered).startswith(f"payee: invoice signed by {forged.payee}")


def test_tampered_padding_is_caught_only_by_the_payee() -> None:
    """Changing only the padding bits of the ``p`` field keeps every field but changes the payee.

    This is why a valid signature means nothing without the expected payee (PERFORMANCE.md).
    """
    invoice = make()
    assert data_part(invoice)[P_DATA - 3 : P_DATA] == "pp5"
    last = P_DATA + 51  # the 52nd character: 1 data bit, then 4 padding bits
    value = BECH32_CHARSET.index(data_part(invoice)[last])
    tampered = rechecksum(invoice, last, BECH32_CHARSET[value ^ 0b0001])
    original, forged = decode(invoice), decode(tampered)
    assert replace(forged, payee=NODE) == original
    assert forged.payee != NODE
    assert validate_invoice(tampered, replace(EXPECT, payee=None)).payee == forged.payee
    assert refused(tampered).startswith("payee:")
