"""Decode a BOLT11 invoice and establish who signed it.

Why our own decoder: ``bolt11.decode`` (PyPI ``bolt11`` 2.2.0) costs about 2 ms per invoice
because it builds one ``bitstring`` object per 5-bit word, and the gateway
decodes every invoice a provider returns, on the request path. Here the per-character work runs
in C: ``bytes.translate`` maps the bech32 text to 5-bit values and to base-32 digits,
``int(digits, 32)`` makes the whole data part one integer from which every field is a shift and
a mask, and coincurve (libsecp256k1) verifies or recovers the signature. Only the bech32 checksum
(two characters per step) and the walk over the tagged fields are Python loops.

Why our own bech32: it is about twenty lines and fully specified by BIP-173. The PyPI
``bech32`` package (1.2.0, installed as a dependency of ``bolt11``) works character by character
in Python and has to be patched to lift BIP-173's 90-character limit, which BOLT11 waives;
nothing else fits, so we write it and test it against the specification's examples.

Reader rules implemented (BOLT11, "Requirements" for a reader), each a
:class:`InvoiceDecodeError`:

- bech32: bad checksum, mixed case, no separator, characters outside the charset, too short.
- human-readable part: a prefix other than ``lnbc``, ``lntb``, ``lntbs``, ``lnbcrt``; an amount
  that is not digits followed by an optional ``m``/``u``/``n``/``p`` multiplier; a ``p`` amount
  that is not a whole number of millisatoshis. We also refuse amounts with leading zeros or equal
  to zero, which the spec forbids writers to produce, and amounts over 21 million bitcoin.
- fields: ``p``, ``h``, ``s`` and ``n`` of the wrong length are skipped, as are unknown tags,
  ``f``, ``r`` and ``m`` (we do not need them); the first valid occurrence of each field wins.
  No valid ``p``: refused. Both ``d`` and ``h``, or neither: refused. A ``d`` that is not UTF-8:
  refused. A feature vector with an unknown *even* (required) bit: refused.
- payment secret: a payment-secret feature bit without a valid ``s`` field is refused. An invoice
  with neither (a "legacy" invoice, like the older specification examples) still
  decodes with ``payment_secret=None``; :func:`lngate.bolt11.validate.validate_invoice` refuses it,
  as the current specification does.
- signature: with a valid ``n`` field the signature must verify against it (libsecp256k1 refuses
  high-S signatures there, as the spec requires); otherwise the payee is recovered from the
  signature, where high-S is accepted. An unrecoverable signature is refused.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

from coincurve import PublicKey
from coincurve.ecdsa import cdata_to_der, deserialize_compact

from lngate.domain import Network

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
"""The bech32 alphabet: the character for 5-bit value ``v`` is ``CHARSET[v]``."""

DEFAULT_EXPIRY = 3600
DEFAULT_MIN_FINAL_CLTV_EXPIRY = 18

SIGNATURE_WORDS = 104  # 65 bytes (r, s, recovery id) = 520 bits = 104 words of 5 bits
TIMESTAMP_WORDS = 7  # 35 bits
CHECKSUM_WORDS = 6

# Tag values (the bech32 value of the tag character).
TAG_PAYMENT_HASH = CHARSET.index("p")
TAG_PAYMENT_SECRET = CHARSET.index("s")
TAG_DESCRIPTION = CHARSET.index("d")
TAG_PAYEE = CHARSET.index("n")
TAG_DESCRIPTION_HASH = CHARSET.index("h")
TAG_EXPIRY = CHARSET.index("x")
TAG_MIN_FINAL_CLTV_EXPIRY = CHARSET.index("c")
TAG_FEATURES = CHARSET.index("9")

FEATURE_VAR_ONION_OPTIN = 8
FEATURE_PAYMENT_SECRET = 14
FEATURE_BASIC_MPP = 16
FEATURE_ROUTE_BLINDING = 24
FEATURE_PAYMENT_METADATA = 48
# Invoice-context features of BOLT 9 (the "9" context), as the even (required) bit.
KNOWN_FEATURES = frozenset(
    {
        FEATURE_VAR_ONION_OPTIN,
        FEATURE_PAYMENT_SECRET,
        FEATURE_BASIC_MPP,
        FEATURE_ROUTE_BLINDING,
        FEATURE_PAYMENT_METADATA,
    }
)
_PAYMENT_SECRET_BITS = (1 << FEATURE_PAYMENT_SECRET) | (1 << (FEATURE_PAYMENT_SECRET + 1))
# Every even bit a `9` field can hold (at most 1023 words of 5 bits): a set one that is not a
# known feature means "required, unknown".
_EVEN_BITS = int("01" * 2560, 2)
_KNOWN_EVEN_BITS = sum(1 << bit for bit in KNOWN_FEATURES)

_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
# BIP-173's polymod step is linear, so the five conditional XORs it applies for the top five bits
# of the state are precomputed per top value; two steps at once use a table for the top ten bits.
_STEP_TABLE = tuple(
    (_GENERATOR[0] if top & 1 else 0)
    ^ (_GENERATOR[1] if top & 2 else 0)
    ^ (_GENERATOR[2] if top & 4 else 0)
    ^ (_GENERATOR[3] if top & 8 else 0)
    ^ (_GENERATOR[4] if top & 16 else 0)
    for top in range(32)
)


def _polymod_step(check: int, value: int) -> int:
    return ((check & 0x1FFFFFF) << 5) ^ value ^ _STEP_TABLE[check >> 25]


_DOUBLE_STEP_TABLE = tuple(_polymod_step(_polymod_step(top << 20, 0), 0) for top in range(1024))


def _pair_table() -> list[int]:
    """Two 5-bit values read as one native-endian 16-bit integer -> the 10 bits they form."""
    table = [0] * 8192
    for first in range(32):
        for second in range(32):
            key = first | second << 8 if sys.byteorder == "little" else first << 8 | second
            table[key] = first << 5 | second
    return table


_PAIR = _pair_table()

_HIGH_BITS = bytes(b >> 5 for b in range(256))
_LOW_BITS = bytes(b & 31 for b in range(256))
_TO_VALUES = bytes(CHARSET.index(chr(b)) if chr(b) in CHARSET else 0xFF for b in range(256))
# bech32 characters -> the digits Python's int(..., 32) reads for the same 5-bit values.
_TO_BASE32_DIGITS = bytes.maketrans(CHARSET.encode(), b"0123456789abcdefghijklmnopqrstuv")

_HRP = re.compile(r"ln(bcrt|bc|tbs|tb)(?:([0-9]+)([munp]?))?")
MAX_AMOUNT_MSAT = 21_000_000 * 100_000_000_000
"""21 million bitcoin: no invoice can ask for more."""
_MAX_AMOUNT_DIGITS = len(str(MAX_AMOUNT_MSAT * 10))  # in pico-bitcoin, the longest unit
_MSAT_PER_UNIT = {"": 100_000_000_000, "m": 100_000_000, "u": 100_000, "n": 100}
_NETWORKS = {network.value: network for network in Network}
_SIGNATURE_MASK = (1 << (5 * SIGNATURE_WORDS)) - 1


class InvoiceDecodeError(ValueError):
    """The string is not a valid BOLT11 invoice; the message says why."""


@dataclass(frozen=True, slots=True)
class DecodedInvoice:
    """The fields of a BOLT11 invoice whose signature has been checked."""

    currency: str
    """The BOLT11 currency prefix without ``ln``: ``bc``, ``tb``, ``tbs`` or ``bcrt``."""
    network: Network
    amount_msat: int | None
    """``None`` when the invoice leaves the amount to the payer."""
    timestamp: int
    """Creation time, seconds since the Unix epoch."""
    payment_hash: str
    payment_secret: str | None
    """``None`` only for legacy invoices, which advertise no payment-secret feature."""
    description: str | None
    description_hash: str | None
    expiry: int
    """Seconds after ``timestamp`` when the invoice expires."""
    min_final_cltv_expiry: int
    payee: str
    """The signer's compressed public key (hex): the ``n`` field verified, or recovered."""
    features: int | None
    """The ``9`` field as an integer bitmask (bit 0 least significant); ``None`` when absent."""

    @property
    def expires_at(self) -> int:
        """Unix time at which the invoice expires."""
        return self.timestamp + self.expiry


def bech32_polymod(values: bytes) -> int:
    """BIP-173 checksum state over 5-bit values (one per byte); a valid bech32 string gives 1."""
    check = 1
    if len(values) & 1:
        check = _polymod_step(check, values[0])
        values = values[1:]
    table, pair = _DOUBLE_STEP_TABLE, _PAIR
    for key in memoryview(values).cast("H"):
        check = ((check & 0xFFFFF) << 10) ^ pair[key] ^ table[check >> 20]
    return check


def bech32_hrp_expand(hrp: str) -> bytes:
    """The human-readable part as BIP-173 feeds it into the checksum."""
    raw = hrp.encode("ascii")
    return raw.translate(_HIGH_BITS) + b"\x00" + raw.translate(_LOW_BITS)


def amount_from_hrp(amount: str, multiplier: str) -> int:
    """Millisatoshis for an hrp amount such as ``("2500", "u")``; raises InvoiceDecodeError."""
    if amount.startswith("0"):
        raise InvoiceDecodeError(f"invalid amount {amount + multiplier!r}: zero or leading zero")
    # Also keeps int() below Python's limit on decimal digits (4300), whose error is not ours.
    if len(amount) > _MAX_AMOUNT_DIGITS:
        raise InvoiceDecodeError(f"invalid amount: {len(amount)} digits")
    if multiplier == "p":
        msat, rest = divmod(int(amount), 10)
        if rest:
            raise InvoiceDecodeError(
                f"invalid amount {amount}p: sub-millisatoshi precision (pico amount not a"
                " multiple of 10)"
            )
    else:
        msat = int(amount) * _MSAT_PER_UNIT[multiplier]
    if msat > MAX_AMOUNT_MSAT:
        raise InvoiceDecodeError(f"invalid amount {amount + multiplier!r}: over 21 million BTC")
    return msat


def _split_bech32(bolt11: str) -> tuple[str, bytes]:
    """Check case, charset and checksum; return (hrp, data characters without the checksum)."""
    if not bolt11.isascii():
        raise InvoiceDecodeError("not a bech32 string: non-ASCII characters")
    lower = bolt11.lower()
    if bolt11 != lower and bolt11 != bolt11.upper():
        raise InvoiceDecodeError("not a bech32 string: mixed case")
    separator = lower.rfind("1")
    if separator < 1:
        raise InvoiceDecodeError("not a bech32 string: no '1' separator after the prefix")
    # The prefix is checked against the BOLT11 grammar later, which is stricter than BIP-173.
    hrp, data = lower[:separator], lower[separator + 1 :].encode("ascii")
    values = data.translate(_TO_VALUES)
    if b"\xff" in values:
        raise InvoiceDecodeError("not a bech32 string: character outside the bech32 charset")
    if len(values) < CHECKSUM_WORDS:
        raise InvoiceDecodeError("not a bech32 string: too short for a checksum")
    if bech32_polymod(bech32_hrp_expand(hrp) + values) != 1:
        raise InvoiceDecodeError("bad bech32 checksum")
    return hrp, data[:-CHECKSUM_WORDS]


def decode(bolt11: str) -> DecodedInvoice:
    """Decode a BOLT11 invoice, check its signature and establish its payee.

    Accepts the invoice in lower or upper case, without a ``lightning:`` prefix. Raises
    :class:`InvoiceDecodeError` for anything the specification tells a reader to refuse (see the
    module docstring). A successful decode proves only that *someone* signed these fields: compare
    ``payee`` with the expected node key before trusting it.
    """
    hrp, data = _split_bech32(bolt11)

    match = _HRP.fullmatch(hrp)
    if match is None:
        if not hrp.startswith("ln"):
            raise InvoiceDecodeError(f"not a lightning invoice: prefix {hrp!r}")
        if re.fullmatch(r"ln(bcrt|bc|tbs|tb)[0-9]+[a-z]", hrp):
            raise InvoiceDecodeError(f"invalid amount multiplier in {hrp!r}")
        raise InvoiceDecodeError(f"unknown currency or malformed amount in prefix {hrp!r}")
    currency, amount, multiplier = match.groups()
    amount_msat = amount_from_hrp(amount, multiplier) if amount else None

    words = len(data)
    if words < TIMESTAMP_WORDS + SIGNATURE_WORDS:
        raise InvoiceDecodeError(
            f"too short: {words} data characters, a timestamp and a signature need"
            f" {TIMESTAMP_WORDS + SIGNATURE_WORDS}"
        )
    values = data.translate(_TO_VALUES)
    # The whole data part as one integer: any field is then a shift and a mask, done in C.
    whole = int(data.translate(_TO_BASE32_DIGITS), 32)
    fields_end = words - SIGNATURE_WORDS

    timestamp = whole >> (5 * (words - TIMESTAMP_WORDS))
    payment_hash = payment_secret = description = description_hash = None
    payee_field: bytes | None = None
    expiry = min_final_cltv = features = None

    position = TIMESTAMP_WORDS
    while position < fields_end:
        if position + 3 > fields_end:
            raise InvoiceDecodeError("truncated tagged field before the signature")
        tag = values[position]
        length = values[position + 1] << 5 | values[position + 2]
        position += 3 + length
        if position > fields_end:
            raise InvoiceDecodeError(
                f"tagged field {CHARSET[tag]!r} of {length} characters overruns the signature"
            )
        bit_length = 5 * length
        field = (whole >> (5 * (words - position))) & ((1 << bit_length) - 1)
        # Fixed-length fields of another length are skipped (a future variant may use them);
        # the 4 (or 1) trailing bits of a fixed field are padding.
        if tag == TAG_PAYMENT_HASH:
            if length == 52 and payment_hash is None:
                payment_hash = (field >> 4).to_bytes(32, "big").hex()
        elif tag == TAG_PAYMENT_SECRET:
            if length == 52 and payment_secret is None:
                payment_secret = (field >> 4).to_bytes(32, "big").hex()
        elif tag == TAG_DESCRIPTION_HASH:
            if length == 52 and description_hash is None:
                description_hash = (field >> 4).to_bytes(32, "big").hex()
        elif tag == TAG_PAYEE:
            if length == 53 and payee_field is None:
                payee_field = (field >> 1).to_bytes(33, "big")
        elif tag == TAG_DESCRIPTION:
            if description is None:
                size = bit_length // 8
                text = (field >> (bit_length - 8 * size)).to_bytes(size, "big")
                try:
                    description = text.decode("utf-8")
                except UnicodeDecodeError:
                    raise InvoiceDecodeError("description (d field) is not valid UTF-8") from None
        elif tag == TAG_EXPIRY:
            if expiry is None:
                expiry = field
        elif tag == TAG_MIN_FINAL_CLTV_EXPIRY:
            if min_final_cltv is None:
                min_final_cltv = field
        elif tag == TAG_FEATURES:
            if features is None:
                features = field

    if payment_hash is None:
        raise InvoiceDecodeError("no valid payment hash (p field)")
    if description is not None and description_hash is not None:
        raise InvoiceDecodeError("both a description (d) and a description hash (h)")
    if description is None and description_hash is None:
        raise InvoiceDecodeError("neither a description (d) nor a description hash (h)")
    if features is not None:
        unknown_required = features & _EVEN_BITS & ~_KNOWN_EVEN_BITS
        if unknown_required:
            bit = (unknown_required & -unknown_required).bit_length() - 1
            raise InvoiceDecodeError(f"requires unknown feature bit {bit}")
        if features & _PAYMENT_SECRET_BITS and payment_secret is None:
            raise InvoiceDecodeError("payment_secret feature set but no valid s field")

    signature = (whole & _SIGNATURE_MASK).to_bytes(65, "big")
    body_bits = 5 * fields_end
    padding = -body_bits % 8  # the signed data is padded with zero bits to a whole byte
    body = (whole >> (5 * SIGNATURE_WORDS)) << padding
    message = hrp.encode("ascii") + body.to_bytes((body_bits + padding) // 8, "big")
    payee = _check_signature(signature, message, payee_field)

    return DecodedInvoice(
        currency=currency,
        network=_NETWORKS[currency],
        amount_msat=amount_msat,
        timestamp=timestamp,
        payment_hash=payment_hash,
        payment_secret=payment_secret,
        description=description,
        description_hash=description_hash,
        expiry=DEFAULT_EXPIRY if expiry is None else expiry,
        min_final_cltv_expiry=(
            DEFAULT_MIN_FINAL_CLTV_EXPIRY if min_final_cltv is None else min_final_cltv
        ),
        payee=payee,
        features=features,
    )


def _check_signature(signature: bytes, message: bytes, payee_field: bytes | None) -> str:
    """Verify against the ``n`` field when there is one, else recover; return the payee (hex)."""
    recovery_id = signature[64]
    if recovery_id > 3:
        raise InvoiceDecodeError(f"invalid signature: recovery id {recovery_id} is not 0-3")
    if payee_field is not None:
        try:
            payee_key = PublicKey(payee_field)
        except ValueError:
            raise InvoiceDecodeError("n field is not a valid public key") from None
        try:
            der = cdata_to_der(deserialize_compact(signature[:64]))
            # libsecp256k1 verification refuses high-S signatures, as BOLT11 requires with `n`.
            valid = payee_key.verify(der, message)
        except ValueError:
            valid = False
        if not valid:
            raise InvoiceDecodeError("signature does not verify against the n field (payee)")
        return payee_field.hex()
    try:
        recovered = PublicKey.from_signature_and_message(signature, message)
    except ValueError:
        raise InvoiceDecodeError("invalid signature: no public key can be recovered") from None
    return recovered.format(compressed=True).hex()
