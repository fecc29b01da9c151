"""Build and sign BOLT11 invoices.

Used by the test provider (demo mode) and by test doubles that forge invoices with wrong values
(amount, hash, network, expiry, signer...), so it is fast and produces only well-formed invoices:
exactly one of ``d``/``h``, a payment secret, fields of the right length. Signatures are
deterministic (RFC 6979, as libsecp256k1 makes them), so the same inputs give the same invoice:
the specification's own examples are reproduced character for character in the tests.

Like :mod:`lngate.bolt11.decode`, the data part is built as one Python integer and turned into
bech32 characters with C-level operations (``base64.b32encode`` then ``bytes.translate``).
"""

from __future__ import annotations

import base64

from coincurve import PrivateKey

from lngate.bolt11.decode import (
    CHARSET,
    CHECKSUM_WORDS,
    DEFAULT_EXPIRY,
    DEFAULT_MIN_FINAL_CLTV_EXPIRY,
    FEATURE_PAYMENT_SECRET,
    FEATURE_VAR_ONION_OPTIN,
    TAG_DESCRIPTION,
    TAG_DESCRIPTION_HASH,
    TAG_EXPIRY,
    TAG_FEATURES,
    TAG_MIN_FINAL_CLTV_EXPIRY,
    TAG_PAYEE,
    TAG_PAYMENT_HASH,
    TAG_PAYMENT_SECRET,
    TIMESTAMP_WORDS,
    bech32_hrp_expand,
    bech32_polymod,
)
from lngate.domain import Network

DEFAULT_FEATURES = (1 << FEATURE_VAR_ONION_OPTIN) | (1 << FEATURE_PAYMENT_SECRET)
"""var_onion_optin and payment_secret, both required: what current LND, CLN and LNbits set."""

MAX_FIELD_WORDS = 1023  # data_length is 10 bits
_MAX_TIMESTAMP = (1 << (5 * TIMESTAMP_WORDS)) - 1
_CURRENCIES = frozenset(network.value for network in Network)
# RFC 4648 base32 letters -> bech32 characters for the same 5-bit values.
_FROM_RFC4648 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", CHARSET.encode())
_TO_VALUES = bytes.maketrans(CHARSET.encode(), bytes(range(32)))
_HRP_UNITS_MSAT = (("", 100_000_000_000), ("m", 100_000_000), ("u", 100_000), ("n", 100))


def amount_to_hrp(amount_msat: int) -> str:
    """The shortest exact BOLT11 amount for ``amount_msat``: 2_500_000_000 -> ``"25m"``.

    Uses the largest multiplier that keeps the amount a whole number, down to ``p`` (pico-BTC,
    always a multiple of 10 since 1 msat = 10 pBTC).
    """
    if amount_msat <= 0:
        raise ValueError(f"amount must be a positive number of msat, not {amount_msat}")
    for multiplier, unit_msat in _HRP_UNITS_MSAT:
        if amount_msat % unit_msat == 0:
            return f"{amount_msat // unit_msat}{multiplier}"
    return f"{amount_msat * 10}p"


def encode(
    private_key: PrivateKey,
    *,
    currency: Network | str,
    amount_msat: int | None,
    timestamp: int,
    payment_hash: str,
    payment_secret: str,
    description: str | None = None,
    description_hash: str | None = None,
    expiry: int | None = DEFAULT_EXPIRY,
    min_final_cltv_expiry: int | None = DEFAULT_MIN_FINAL_CLTV_EXPIRY,
    features: int | None = DEFAULT_FEATURES,
    payee: str | None = None,
) -> str:
    """Build a BOLT11 invoice signed with ``private_key`` and return it in lower case.

    Give exactly one of ``description`` (at most 639 UTF-8 bytes) and ``description_hash``
    (hex). ``expiry``, ``min_final_cltv_expiry`` and ``features`` are written as ``x``, ``c`` and
    ``9`` fields; ``None`` (or 0 features) leaves the field out, and readers then assume 3600 s
    and 18 blocks. ``payee`` (hex compressed key) adds an ``n`` field: normally the signer's own
    key; any other key forges an invoice whose ``n`` field does not match its signature.
    Fields are written in the order s, p, d/h, x, c, n, 9.
    """
    if str(currency) not in _CURRENCIES:
        raise ValueError(f"unknown currency {currency!r}: expected one of {sorted(_CURRENCIES)}")
    if (description is None) == (description_hash is None):
        raise ValueError("give exactly one of description and description_hash")
    if not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise ValueError(f"timestamp {timestamp} does not fit in 35 bits")
    hrp = "ln" + str(currency) + ("" if amount_msat is None else amount_to_hrp(amount_msat))

    data = timestamp
    words = TIMESTAMP_WORDS

    def add(tag: int, value: int, length: int) -> None:
        nonlocal data, words
        if length > MAX_FIELD_WORDS:
            raise ValueError(f"field {CHARSET[tag]!r} needs {length} characters, max 1023")
        data = (((data << 5 | tag) << 10 | length) << (5 * length)) | value
        words += 3 + length

    add(TAG_PAYMENT_SECRET, _hash32(payment_secret, "payment_secret") << 4, 52)
    add(TAG_PAYMENT_HASH, _hash32(payment_hash, "payment_hash") << 4, 52)
    if description is not None:
        text = description.encode("utf-8")
        length = -(-8 * len(text) // 5)
        add(TAG_DESCRIPTION, int.from_bytes(text, "big") << (5 * length - 8 * len(text)), length)
    else:
        add(TAG_DESCRIPTION_HASH, _hash32(description_hash or "", "description_hash") << 4, 52)
    for tag, number in (
        (TAG_EXPIRY, expiry),
        (TAG_MIN_FINAL_CLTV_EXPIRY, min_final_cltv_expiry),
    ):
        if number is not None:
            if number < 0:
                raise ValueError(f"field {CHARSET[tag]!r} cannot be negative: {number}")
            add(tag, number, -(-number.bit_length() // 5))
    if payee is not None:
        key = bytes.fromhex(payee)
        if len(key) != 33:
            raise ValueError("payee must be a 33-byte compressed public key in hex")
        add(TAG_PAYEE, int.from_bytes(key, "big") << 1, 53)
    if features:
        add(TAG_FEATURES, features, -(-features.bit_length() // 5))

    body_bits = 5 * words
    padding = -body_bits % 8  # the signed data is padded with zero bits to a whole byte
    message = hrp.encode("ascii") + (data << padding).to_bytes((body_bits + padding) // 8, "big")
    signature = private_key.sign_recoverable(message)  # sha256; r | s | recovery id
    data = data << 520 | int.from_bytes(signature, "big")
    words += 104

    chars = _to_bech32_chars(data, words)
    check = bech32_polymod(bech32_hrp_expand(hrp) + chars.translate(_TO_VALUES) + bytes(6)) ^ 1
    checksum = "".join(CHARSET[(check >> (5 * (5 - i))) & 31] for i in range(CHECKSUM_WORDS))
    return f"{hrp}1{chars.decode('ascii')}{checksum}"


def _hash32(value: str, name: str) -> int:
    """A 32-byte hex value as an integer; raises ValueError naming the field otherwise."""
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise ValueError(f"{name} is not hex") from None
    if len(raw) != 32:
        raise ValueError(f"{name} must be 32 bytes, not {len(raw)}")
    return int.from_bytes(raw, "big")


def _to_bech32_chars(data: int, words: int) -> bytes:
    """``words`` 5-bit values (big-endian in ``data``) as bech32 characters."""
    # base32 of whole 40-bit groups has no padding: prepend zero words up to a multiple of 8.
    extra = -words % 8
    raw = data.to_bytes((words + extra) * 5 // 8, "big")
    return base64.b32encode(raw)[extra:].translate(_FROM_RFC4648)
