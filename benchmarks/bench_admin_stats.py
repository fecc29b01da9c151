"""Statistics API benchmark: ``GET /api/admin/stats``'s query at 1,000,000 provider calls.

Run: ``.venv/bin/python benchmarks/bench_admin_stats.py [--rows 1000000] [--invoices 100000]
[--skip-postgres] [--skip-sqlite]``

The provider calls are those of ``bench_monitoring.py`` (3 providers, 3 % failures, 1 %
timeouts, 1 % skipped), in two layouts: *spread* over 30 days and *dense* in the last 24 hours;
``--invoices`` invoices over the same span (60 % with an order, 70 % paid, paid 5 s to 10 min
after creation). The roll-ups are brought up to 90 s before "now" (the worst case between two
runs of the one-minute loop), so each query also aggregates 90 s of raw calls. Each figure is
the median of 7 runs after a warm-up, in ms, of :func:`lngate.services.admin_stats.statistics`
(the whole answer: invoices, payments, time to pay, provider calls and latency, per period).
Loopback only; temporary databases are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

import asyncpg  # noqa: E402
import structlog  # noqa: E402

from bench_monitoring import (  # noqa: E402
    PROVIDERS,
    load_postgres,
    load_sqlite,
    log,
    print_table,
    sqlite_time,
    timed,
    with_postgres,
)
from lngate.services.admin_stats import StatsPeriod, statistics  # noqa: E402
from lngate.services.metrics_queries import refresh_rollups  # noqa: E402
from lngate.store import Database  # noqa: E402
from lngate.store.stats import Grouping, InvoiceKey  # noqa: E402

PRODUCTS = ("dazbox", "daznode", "dazpay")


def invoice_rows(count: int, now: datetime, span: timedelta) -> Iterator[tuple[tuple, tuple | None]]:  # type: ignore[type-arg]
    """``(invoice row, order row or None)``, deterministic."""
    rng = random.Random(3)
    step = span / max(count, 1)
    for i in range(count):
        created = now - span + step * i
        payment_hash = f"{i:064x}"
        paid = rng.random() < 0.7
        paid_at = created + timedelta(seconds=rng.uniform(5, 600)) if paid else None
        if paid_at is not None and paid_at > now:
            paid_at = None
        sats = rng.choice((2100, 80_000, 400_000))
        invoice = (payment_hash, PROVIDERS[i % 2], payment_hash, "lnbc1bench", sats * 1000,
                   "bench", "paid" if paid_at else "pending", False, created,
                   created + timedelta(hours=1), paid_at, False)
        order = None
        if rng.random() < 0.6:
            order = (f"o{i:021d}", PRODUCTS[i % 3], '{"email": "a@example.com"}', 1, sats * 1000,
                     "paid" if paid_at else "pending", payment_hash, created, paid_at, False)
        yield invoice, order


INVOICE_COLUMNS = ["payment_hash", "provider", "provider_ref", "bolt11", "amount_msat",
                   "description", "state", "is_test", "created_at", "expires_at", "paid_at",
                   "paid_late"]
ORDER_COLUMNS = ["id", "product", "customer", "quantity", "amount_msat", "status",
                 "payment_hash", "created_at", "paid_at", "paid_late"]


def add_invoices_sqlite(path: str, count: int, now: datetime, span: timedelta) -> None:
    rows = list(invoice_rows(count, now, span))

    def fix(row: tuple) -> tuple:  # type: ignore[type-arg]
        return tuple(sqlite_time(v) if isinstance(v, datetime) else v for v in row)

    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(f"INSERT INTO invoices ({', '.join(INVOICE_COLUMNS)}) VALUES "
                         f"({', '.join('?' * len(INVOICE_COLUMNS))})",
                         (fix(inv) for inv, _ in rows))
        conn.executemany(f"INSERT INTO orders ({', '.join(ORDER_COLUMNS)}) VALUES "
                         f"({', '.join('?' * len(ORDER_COLUMNS))})",
                         (fix(order) for _, order in rows if order))
    conn.execute("ANALYZE")
    conn.close()


async def add_invoices_postgres(url: str, count: int, now: datetime, span: timedelta) -> None:
    rows = list(invoice_rows(count, now, span))
    if not rows:
        return
    conn = await asyncpg.connect(url)
    try:
        await conn.copy_records_to_table("invoices", records=[inv for inv, _ in rows],
                                         columns=INVOICE_COLUMNS)
        await conn.copy_records_to_table("orders", records=[o for _, o in rows if o],
                                         columns=ORDER_COLUMNS)
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


QUERIES = (
    ("24 h by hour, by provider", timedelta(hours=24), Grouping.HOUR, InvoiceKey.PROVIDER),
    ("24 h by hour, by product", timedelta(hours=24), Grouping.HOUR, InvoiceKey.PRODUCT),
    ("7 d by hour (168 periods)", timedelta(days=7), Grouping.HOUR, InvoiceKey.PROVIDER),
    ("30 d by day, by provider", timedelta(days=30), Grouping.DAY, InvoiceKey.PROVIDER),
    ("92 d by day (the maximum)", timedelta(days=92), Grouping.DAY, InvoiceKey.PROVIDER),
)


async def bench(url: str, now: datetime) -> dict[str, float]:
    db = Database.from_url(url)
    figures: dict[str, float] = {}
    try:
        started = time.perf_counter()
        await refresh_rollups(db, now=now - timedelta(seconds=60))
        log(f"  roll-ups: {time.perf_counter() - started:.1f} s")
        for name, span, grouping, key in QUERIES:
            chosen = StatsPeriod.covering(now - span, now, grouping)
            figures[name] = await timed(lambda chosen=chosen, key=key: statistics(  # type: ignore[misc]
                db, chosen, key=key, include_test=False, now=now))
    finally:
        await db.aclose()
    return figures


async def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    now = datetime.now(UTC).replace(microsecond=0)
    table: list[tuple[str, str, str, float]] = []
    folder = tempfile.mkdtemp(prefix="lngate-bench-")
    for layout, span in {"spread": timedelta(days=30), "dense": timedelta(hours=24)}.items():
        if not args.skip_sqlite:
            path = f"{folder}/{layout}.sqlite3"
            log(f"SQLite, {layout}: {args.rows:,} calls, {args.invoices:,} invoices")
            await load_sqlite(path, args.rows, now, span)
            add_invoices_sqlite(path, args.invoices, now, span)
            figures = await bench(f"sqlite:///{path}", now)
            table += [("SQLite", layout, q, ms) for q, ms in figures.items()]
            os.unlink(path)
        if not args.skip_postgres:
            async def run(url: str, layout: str = layout, span: timedelta = span) -> object:
                log(f"PostgreSQL, {layout}: {args.rows:,} calls, {args.invoices:,} invoices")
                await load_postgres(url, args.rows, now, span)
                await add_invoices_postgres(url, args.invoices, now, span)
                return await bench(url, now)

            figures = await with_postgres(run)  # type: ignore[assignment]
            table += [("PostgreSQL", layout, q, ms) for q, ms in figures.items()]
    print_table(f"statistics at {args.rows:,} provider calls and {args.invoices:,} invoices "
                "(median of 7 runs, ms)", table)


if __name__ == "__main__":
    asyncio.run(main())
