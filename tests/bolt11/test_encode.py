"""Our encoder: byte-exact on the specification's examples, and read back by both decoders."""

from __future__ import annotations

import bolt11
import pytest
from coincurve import PrivateKey

from lngate.bolt11 import DEFAULT_FEATURES, amount_to_hrp, decode, encode
from lngate.bolt11.decode import amount_from_hrp
from lngate.domain import Network
from tests.bolt11 import vectors as V
from tests.bolt11.test_decode import ours, reference

KEY = PrivateKey(bytes.fromhex(V.PRIVATE_KEY))
NODE_KEY = PrivateKey(b"\x2a" * 32)
NODE = NODE_KEY.public_key.format().hex()
HASH = "ab" * 32
SECRET = "cd" * 32


def vector(name_start: str) -> V.ValidVector:
    return next(v for v in V.VALID if v.name.startswith(name_start))


@pytest.mark.parametrize(
    "example",
    [
        vector("donation"),
        vector("$3 for a cup of coffee"),
        vector("0.0025 BTC for a cup of nonsense"),
        vector("$24 for an entire list"),
    ],
    ids=lambda v: v.name,
)
def test_reproduces_spec_examples_exactly(example: V.ValidVector) -> None:
    """Given an example's values, encode writes the specification's invoice character for character.

    These examples write their fields in our order (s, p, d/h, x, 9) and no ``c`` field, and
    libsecp256k1's RFC 6979 signatures are deterministic, so the whole string must match.
    """
    invoice = encode(
        KEY,
        currency=example.currency,
        amount_msat=example.amount_msat,
        timestamp=example.timestamp,
        payment_hash=example.payment_hash,
        payment_secret=example.payment_secret,
        description=example.description,
        description_hash=example.description_hash,
        expiry=None if example.expiry == 3600 else example.expiry,
        min_final_cltv_expiry=None,
        features=example.features,
    )
    assert invoice == example.invoice


CASES = {
    "typical": {},
    "no amount": {"amount_msat": None},
    "one msat": {"amount_msat": 1},
    "testnet": {"currency": Network.TESTNET},
    "signet": {"currency": "tbs"},
    "regtest": {"currency": Network.REGTEST, "amount_msat": 123_456_789},
    "description hash": {"description": None, "description_hash": V.LONG_DESCRIPTION_HASH},
    "longest description": {"description": "é" * 319 + "x"},
    "empty description": {"description": ""},
    "unicode description": {"description": "DazBox ⚡ commande n°42"},
    "long expiry and cltv": {"expiry": 86400 * 365, "min_final_cltv_expiry": 1000},
    "no x and c fields": {"expiry": None, "min_final_cltv_expiry": None},
    "mpp and metadata features": {"features": DEFAULT_FEATURES | (1 << 17) | (1 << 49)},
    "with n field": {"payee": NODE},
    "max timestamp": {"timestamp": 2**35 - 1},
}


def make(**overrides: object) -> str:
    params: dict[str, object] = {
        "currency": Network.BITCOIN,
        "amount_msat": 150_000_000,
        "timestamp": 1_750_000_000,
        "payment_hash": HASH,
        "payment_secret": SECRET,
        "description": "DazNode 1 mois",
        "expiry": 900,
        "min_final_cltv_expiry": 80,
    }
    params.update(overrides)
    return encode(NODE_KEY, **params)  # type: ignore[arg-type]


@pytest.mark.parametrize("overrides", CASES.values(), ids=CASES.keys())
def test_round_trip_through_both_decoders(overrides: dict[str, object]) -> None:
    """What encode writes, our decoder and ``bolt11.decode`` both read back as written."""
    params = {
        "currency": "bc",
        "amount_msat": 150_000_000,
        "timestamp": 1_750_000_000,
        "payment_hash": HASH,
        "payment_secret": SECRET,
        "description": "DazNode 1 mois",
        "description_hash": None,
        "expiry": 900,
        "min_final_cltv_expiry": 80,
        "features": DEFAULT_FEATURES,
    } | overrides
    invoice = make(**overrides)
    decoded = ours(invoice)
    assert decoded == reference(invoice)
    assert decoded == {
        "currency": str(params["currency"]),
        "amount_msat": params["amount_msat"],
        "timestamp": params["timestamp"],
        "payment_hash": HASH,
        "payment_secret": SECRET,
        "description": params["description"],
        "description_hash": params["description_hash"],
        "expiry": 3600 if params["expiry"] is None else params["expiry"],
        "min_final_cltv_expiry": (
            18 if params["min_final_cltv_expiry"] is None else params["min_final_cltv_expiry"]
        ),
        "payee": NODE,
        "features": params["features"],
    }


def test_zero_is_written_as_an_empty_field() -> None:
    """A zero ``c`` (or ``x``) is written with data_length 0, the minimal form, and read back as 0.

    bolt11 2.2.0 cannot read an empty ``c``/``x`` field (bitstring refuses to interpret zero
    bits as an integer); such invoices are unrealistic, so this stays a documented difference.
    """
    invoice = make(min_final_cltv_expiry=0)
    assert "cqq9qrsgq" in invoice  # "c", data_length "qq" (0), then the "9" field
    assert decode(invoice).min_final_cltv_expiry == 0
    with pytest.raises(ValueError, match="zero length"):
        bolt11.decode(invoice)


def test_default_features_are_what_nodes_set() -> None:
    """By default the invoice requires var_onion_optin (8) and payment_secret (14)."""
    assert decode(make()).features == (1 << 8) | (1 << 14)
    assert bolt11.decode(make()).features.readable == {
        "var_onion_optin": "required",
        "payment_secret": "required",
    }


def test_no_features_omits_the_field() -> None:
    """Features 0 or None leave the ``9`` field out."""
    assert decode(make(features=0)).features is None
    assert decode(make(features=None)).features is None


def test_output_is_lower_case_and_deterministic() -> None:
    """The same inputs give the same lower-case invoice."""
    assert make() == make() == make().lower()


@pytest.mark.parametrize(
    ("amount_msat", "text"),
    [
        (1, "10p"),
        (10, "100p"),
        (100, "1n"),
        (1_000, "10n"),
        (123_456, "1234560p"),
        (100_000, "1u"),
        (250_000_000, "2500u"),
        (2_000_000_000, "20m"),
        (967_878_534, "9678785340p"),
        (100_000_000_000, "1"),
        (2_100_000_000_000_000_000, "21000000"),
        (150_000_000_001, "1500000000010p"),
    ],
)
def test_amount_to_hrp(amount_msat: int, text: str) -> None:
    """Amounts use the largest multiplier that keeps them whole, as the spec recommends."""
    assert amount_to_hrp(amount_msat) == text


def test_amount_to_hrp_is_exact_and_shortest() -> None:
    """For many amounts the text reads back exactly and no other exact form is shorter."""
    units = {"": 10**11, "m": 10**8, "u": 10**5, "n": 10**2}
    amounts = [*range(1, 2000, 7), *(10**k for k in range(12)), *(3 * 10**k for k in range(12))]
    for amount in amounts:
        text = amount_to_hrp(amount)
        digits, multiplier = (text[:-1], text[-1]) if text[-1] in "munp" else (text, "")
        assert amount_from_hrp(digits, multiplier) == amount
        exact = [f"{amount // unit}{m}" for m, unit in units.items() if amount % unit == 0]
        exact.append(f"{amount * 10}p")
        assert len(text) == min(len(candidate) for candidate in exact)


@pytest.mark.parametrize("amount_msat", [0, -1])
def test_amount_to_hrp_refuses_non_positive(amount_msat: int) -> None:
    """Zero and negative amounts cannot be written."""
    with pytest.raises(ValueError, match="positive"):
        amount_to_hrp(amount_msat)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"currency": "lq"}, "unknown currency"),
        ({"description": None}, "exactly one"),
        ({"description_hash": V.LONG_DESCRIPTION_HASH}, "exactly one"),
        ({"description": "x" * 640}, "max 1023"),
        ({"payment_hash": "zz" * 32}, "payment_hash is not hex"),
        ({"payment_hash": "ab" * 31}, "payment_hash must be 32 bytes"),
        ({"payment_secret": "ab" * 33}, "payment_secret must be 32 bytes"),
        ({"expiry": -1}, "negative"),
        ({"timestamp": 2**35}, "35 bits"),
        ({"payee": "02" * 32}, "33-byte"),
        ({"amount_msat": 0}, "positive"),
    ],
)
def test_encode_refuses_malformed_requests(overrides: dict[str, object], message: str) -> None:
    """encode writes only well-formed invoices and says which argument is wrong."""
    with pytest.raises(ValueError, match=message):
        make(**overrides)
