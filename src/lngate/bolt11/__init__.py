"""BOLT11 invoices: a fast decoder, an encoder, and the gateway's validation of provider invoices.

``decode`` agrees with ``bolt11.decode`` (PyPI ``bolt11`` 2.2.0) on the specification's examples,
also refuses the invalid examples it lets through (``tests/bolt11``), and costs some 40-60 times less CPU
per invoice (``benchmarks/bench_bolt11.py`` measures both in the same run).
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
