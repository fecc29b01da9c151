"""BOLT11 decode and encode cost: the reference ``bolt11.decode`` against ``lngate.bolt11``.

Both decoders run in the same process on the same invoice, interleaved over several rounds, timed
in CPU time (this kind of VM is noisy: compare figures from one run only). Prints CPU
microseconds per call, the median over the rounds, and the ratio.

    .venv/bin/python benchmarks/bench_bolt11.py [--iterations N] [--rounds R]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from importlib.metadata import version

import bolt11
from coincurve import PrivateKey

from lngate.bolt11 import decode, encode
from lngate.domain import Network

NODE_KEY = PrivateKey(b"\x2a" * 32)
INVOICE_ARGS: dict[str, object] = {
    "currency": Network.BITCOIN,
    "amount_msat": 400_000_000,
    "timestamp": 1_750_000_000,
    "payment_hash": "9f" * 32,
    "payment_secret": "5c" * 32,
    # Makes a 311-character invoice, the "typical" size PERFORMANCE.md measured.
    "description": "DazBox - commande n 12345 (noeud LN)",
    "expiry": 900,
    "min_final_cltv_expiry": 80,
}


def per_call_us(function: Callable[[], object], iterations: int) -> float:
    """CPU microseconds per call: other processes on a shared VM do not inflate it."""
    start = time.process_time()
    for _ in range(iterations):
        function()
    return (time.process_time() - start) / iterations * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5000, help="calls per round (ours)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    def make() -> str:
        return encode(NODE_KEY, **INVOICE_ARGS)  # type: ignore[arg-type]

    invoice = make()
    ours, theirs = decode(invoice), bolt11.decode(invoice)
    assert (ours.payee, ours.amount_msat, ours.payment_hash) == (
        theirs.payee,
        theirs.amount_msat,
        theirs.payment_hash,
    ), "the decoders disagree on the benchmark invoice"

    # The reference is ~20x slower: fewer calls keep a round short without losing precision.
    reference_iterations = max(args.iterations // 20, 50)
    reference_us, ours_us, encode_us = [], [], []
    for function in (lambda: bolt11.decode(invoice), lambda: decode(invoice), make):  # warm-up
        per_call_us(function, 20)
    for _ in range(args.rounds):
        reference_us.append(per_call_us(lambda: bolt11.decode(invoice), reference_iterations))
        ours_us.append(per_call_us(lambda: decode(invoice), args.iterations))
        encode_us.append(per_call_us(make, args.iterations))

    reference, mine, encoding = (
        statistics.median(reference_us),
        statistics.median(ours_us),
        statistics.median(encode_us),
    )
    print(f"invoice: {len(invoice)} characters, {args.rounds} rounds, median per call")
    reference_name = f"bolt11.decode ({version('bolt11')})"
    print(f"decode  {reference_name:28} {reference:8.1f} µs  ({reference_iterations} calls/round)")
    print(f"decode  {'lngate.bolt11.decode':28} {mine:8.1f} µs  ({args.iterations} calls/round)")
    print(f"decode  {'ratio reference / ours':28} {reference / mine:8.1f} x")
    print(f"encode  {'lngate.bolt11.encode':28} {encoding:8.1f} µs  ({args.iterations} calls/round)")
    print(
        "rounds (µs): reference "
        + ", ".join(f"{v:.0f}" for v in reference_us)
        + " | ours "
        + ", ".join(f"{v:.0f}" for v in ours_us)
        + " | encode "
        + ", ".join(f"{v:.0f}" for v in encode_us)
    )


if __name__ == "__main__":
    main()
