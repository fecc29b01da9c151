"""BOLT11 invoices: a fast decoder, an encoder, and the gateway's validation of provider invoices.

``decode`` is about 20-40 times faster than ``bolt11.decode`` (PyPI ``bolt11`` 2.2.0) and agrees
with it on the specification's examples (``tests/bolt11``); ``benchmarks/bench_bolt11.py`` measures
both in the same run.
"""

from lngate.bolt11.decode import DecodedInvoice, InvoiceDecodeError, decode
from lngate.bolt11.encode import DEFAULT_FEATURES, amount_to_hrp, encode
from lngate.bolt11.validate import InvoiceExpectation, validate_invoice

__all__ = [
    "DEFAULT_FEATURES",
    "DecodedInvoice",
    "InvoiceDecodeError",
    "InvoiceExpectation",
    "amount_to_hrp",
    "decode",
    "encode",
    "validate_invoice",
]
