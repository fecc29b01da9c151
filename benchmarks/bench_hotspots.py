#!/usr/bin/env python3
"""Micro-benchmarks of the create-invoice hot spots found by bench_create_invoice.py --profile.

In one process, sequentially, CPU microseconds (and wall microseconds) per operation of:

- storing one invoice row the way the gateway does (SQLAlchemy Core async engine on aiosqlite,
  one transaction per row, ``lngate.store.invoices.insert_invoice``), vs the same row with the
  standard library's ``sqlite3`` on the event loop's thread, one commit per row, and vs 20 rows
  per transaction on the async engine (what a batching writer would do);
- one aiosqlite round trip (``SELECT 1``), and one ``asyncio.to_thread`` hop: the per-call
  thread hand-offs behind the two above;
- one rate-limit hit with ``limits`` as the gateway uses it (async moving window, memory
  storage, whose expiry task runs ``asyncio.to_thread`` after hits) vs the synchronous
  ``limits`` moving window in memory;
- decoding + validating one invoice with ``lngate.bolt11``.

The figures are for comparing within one run: the machine has 2 cores and may be shared.

    .venv/bin/python benchmarks/bench_hotspots.py --n 2000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    cleanup_src,
    fmt,
    loadavg,
    log,
    machine_info,
    print_table,
    save_results,
    snapshot_src,
    src_label,
    src_path,
)


def cpu() -> float:
    t = os.times()
    return t.user + t.system


async def timed(name: str, n: int, op, results: list[list[str]]) -> None:  # noqa: ANN001
    for _ in range(min(50, n)):  # warm-up
        await op()
    c0, w0 = cpu(), time.perf_counter()
    for _ in range(n):
        await op()
    c1, w1 = cpu(), time.perf_counter()
    results.append([name, fmt((c1 - c0) / n * 1e6, 0), fmt((w1 - w0) / n * 1e6, 0)])
    log(f"{name}: {(c1 - c0) / n * 1e6:.0f} us CPU, {(w1 - w0) / n * 1e6:.0f} us wall")


def make_record(i: int):  # noqa: ANN201
    from lngate.domain import InvoiceState
    from lngate.store.invoices import InvoiceRecord

    now = datetime.now(UTC)
    fields = dict(
        payment_hash=os.urandom(32).hex(), provider="lnbits", provider_ref=f"ref{i}",
        bolt11="lnbc1" + "q" * 300, amount_msat=100_000, description="lngate benchmark",
        metadata=None, state=InvoiceState.PENDING, is_test=False, created_at=now,
        expires_at=now + timedelta(hours=1), idempotency_key=None, request_fingerprint="f" * 64,
    )
    import dataclasses

    names = {f.name for f in dataclasses.fields(InvoiceRecord)}
    return InvoiceRecord(**{k: v for k, v in fields.items() if k in names})


async def main_async(n: int) -> list[list[str]]:
    from lngate.store import Database
    from lngate.store.invoices import insert_invoice

    results: list[list[str]] = []
    workdir = Path(tempfile.mkdtemp(prefix="lngate-bench-hot-"))
    db = Database.from_url(f"sqlite:///{workdir / 'a.sqlite3'}")
    await db.migrate()
    counter = iter(range(10**9))

    async def gateway_insert() -> None:
        async with db.transaction() as conn:
            await insert_invoice(conn, make_record(next(counter)))

    async def gateway_insert_batch20() -> None:
        # one call = 1/20 of a 20-row transaction, so the figure is per row
        gateway_insert_batch20.pending += 1  # type: ignore[attr-defined]
        if gateway_insert_batch20.pending < 20:  # type: ignore[attr-defined]
            return
        gateway_insert_batch20.pending = 0  # type: ignore[attr-defined]
        async with db.transaction() as conn:
            for _ in range(20):
                await insert_invoice(conn, make_record(next(counter)))

    gateway_insert_batch20.pending = 0  # type: ignore[attr-defined]

    async def select1() -> None:
        async with db.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            await raw.driver_connection.execute("SELECT 1")

    await timed("insert 1 invoice: SQLAlchemy Core + aiosqlite, 1 tx/row (as the gateway)", n,
                gateway_insert, results)
    await timed("insert 1 invoice: same, 20 rows per transaction", n, gateway_insert_batch20,
                results)
    await timed("aiosqlite round trip (SELECT 1 on the pooled connection)", n, select1, results)
    await db.aclose()

    conn = sqlite3.connect(workdir / "b.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, payment_hash TEXT UNIQUE, "
                 "provider TEXT, provider_ref TEXT, bolt11 TEXT, amount_msat INTEGER, "
                 "description TEXT, metadata TEXT, state TEXT, is_test INTEGER, created_at TEXT, "
                 "expires_at TEXT, paid_at TEXT, idempotency_key TEXT UNIQUE, "
                 "request_fingerprint TEXT)")

    async def sync_insert() -> None:
        r = make_record(next(counter))
        conn.execute("BEGIN")
        conn.execute(
            "INSERT INTO invoices (payment_hash, provider, provider_ref, bolt11, amount_msat, "
            "description, metadata, state, is_test, created_at, expires_at, paid_at, "
            "idempotency_key, request_fingerprint) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (r.payment_hash, r.provider, r.provider_ref, r.bolt11, r.amount_msat,
             r.description, None, r.state.value, 0, r.created_at.isoformat(),
             r.expires_at.isoformat(), None, None, r.request_fingerprint))
        conn.execute("COMMIT")

    await timed("insert 1 invoice: stdlib sqlite3 on the loop thread, 1 tx/row", n,
                sync_insert, results)
    conn.close()

    await timed("asyncio.to_thread(no-op) hop", n, lambda: asyncio.to_thread(lambda: None),
                results)

    from limits import parse
    from limits.aio.strategies import MovingWindowRateLimiter as AioMovingWindow
    from limits.storage import MemoryStorage, storage_from_string
    from limits.strategies import MovingWindowRateLimiter

    item = parse("1000000/second")
    aio_limiter = AioMovingWindow(storage_from_string("async+memory://"))
    sync_limiter = MovingWindowRateLimiter(MemoryStorage())

    async def aio_hit() -> None:
        await aio_limiter.hit(item, "create-invoice", "127.0.0.1")

    async def sync_hit() -> None:
        sync_limiter.hit(item, "create-invoice", "127.0.0.1")

    await timed("rate-limit hit: limits async memory moving window (as the gateway)", n,
                aio_hit, results)
    await asyncio.sleep(1.1)
    await timed("rate-limit hit: limits sync memory moving window", n, sync_hit, results)

    from coincurve import PrivateKey

    from lngate.bolt11 import InvoiceExpectation, validate_invoice
    from lngate.bolt11.encode import encode
    from lngate.domain import Network

    key = PrivateKey()
    payment_hash = os.urandom(32).hex()
    bolt11 = encode(key, currency="bc", amount_msat=100_000, timestamp=int(time.time()),
                    payment_hash=payment_hash, payment_secret=os.urandom(32).hex(),
                    description="lngate benchmark", expiry=3600)
    expectation = InvoiceExpectation(
        network=Network.BITCOIN, amount_msat=100_000, payment_hash=payment_hash,
        description="lngate benchmark", expiry=3600,
        payee=key.public_key.format().hex(), now=datetime.now(UTC))

    async def validate() -> None:
        validate_invoice(bolt11, expectation)

    await timed("decode + validate 1 invoice (lngate.bolt11)", n, validate, results)
    import shutil

    shutil.rmtree(workdir, ignore_errors=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="operations per measurement")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--src-ref", default=None, metavar="REF",
                        help="import lngate from src/ as of this git ref instead of a copy of "
                        "the working tree taken at start")
    args = parser.parse_args()
    snapshot_src(args.src_ref)
    sys.path.insert(0, str(src_path()))
    info = machine_info()
    info["gateway_source"] = src_label()
    log(f"machine: {info['cores']} cores, load {loadavg()}")
    import uvloop

    runs = []
    for run in range(1, args.repeat + 1):
        log(f"run {run}/{args.repeat}")
        runs.append(uvloop.run(main_async(args.n)))
    rows = []
    for i, first in enumerate(runs[0]):
        rows.append([first[0]] + [f"{r[i][1]} / {r[i][2]}" for r in runs])
    path = save_results("hotspots", {"machine": info, "runs": runs})
    print(f"\n## bench_hotspots ({info['date']}, {info['cores']} cores, source: "
          f"{info['gateway_source']})")
    print_table(f"Per operation, sequential, {args.n} ops: CPU us / wall us",
                ["operation"] + [f"run {i}" for i in range(1, len(runs) + 1)], rows)
    print(f"\nraw results: {path}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        cleanup_src()
