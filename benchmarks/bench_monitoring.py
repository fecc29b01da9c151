"""Monitoring benchmark: a probe round with a hung provider, and metrics queries at 1M calls.

Run: ``.venv/bin/python benchmarks/bench_monitoring.py [--rows 1000000] [--skip-postgres]``

1. Probe round over three LNbits providers (real ``LNbitsProvider`` objects over HTTP): two
   answer from a local stub at once, one points at a server that accepts and never answers.
   Wall time of :meth:`HealthMonitor.run_once` (probes + storing the results), 20 rounds, with
   ``HEALTH_CHECK_TIMEOUT`` = 1 s (the round's deadline, bookkeeping included); and, for
   contrast, the same three probes one after another. ``--only-probes`` stops there.
2. ``stats`` (all providers + overall) and ``metrics`` (one provider) over ``--rows`` provider
   calls on SQLite and PostgreSQL, in two layouts: *spread* (the rows over the 30-day retention
   period, ~1,400 calls an hour) and *dense* (all of them in the last 24 hours, ~42,000 calls an
   hour). The roll-ups are brought up to 90 s before "now" (the worst case between two runs of
   the one-minute roll-up loop), so the queries also aggregate 90 s of raw calls. Windows of
   24 h and 30 days. Each figure is the median of 7 runs (after one warm-up). For contrast:
   the same queries without roll-ups, the roll-up costs, and PostgreSQL's exact
   ``percentile_cont`` over all rows.

Everything talks to loopback only (PostgreSQL on 127.0.0.1:5432, ``LNGATE_TEST_POSTGRES_URL``
overrides the admin URL, as in the tests). Temporary databases are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

import asyncpg  # noqa: E402
import structlog  # noqa: E402
from aiohttp import web  # noqa: E402
from sqlalchemy import text  # noqa: E402

from lngate.providers.lnbits import LNbitsConfig, LNbitsProvider, make_session  # noqa: E402
from lngate.resilience.deadline import AttemptTimeoutPolicy  # noqa: E402
from lngate.resilience.router import Router  # noqa: E402
from lngate.services.health import HealthMonitor, probe  # noqa: E402
from lngate.services.metrics_queries import (  # noqa: E402
    Window,
    provider_metrics,
    refresh_rollups,
    stats,
)
from lngate.store import Database  # noqa: E402

POSTGRES_ADMIN_URL = os.environ.get(
    "LNGATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
PROVIDERS = ("lnbits", "nwc", "test")
RUNS = 7


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


# ----------------------------------------------------------------------------- probes


async def bench_probes(rounds: int = 20, timeout: float = 1.0) -> dict[str, float]:
    """Wall time of a probe round over three providers, one hung."""
    release = asyncio.Event()

    async def wallet(request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.query.get("delay", 0)))
        return web.json_response({"id": "w", "name": "merchant", "balance": 21_000})

    async def hang(_request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=503)

    apps = []
    urls = []
    for handler in (wallet, hang):
        app = web.Application()
        app.router.add_get("/api/v1/wallet", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        apps.append(runner)
        urls.append(f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}")  # type: ignore[union-attr]
    providers = []
    # the two live ones answer in 50 and 120 ms (a slow-ish LNbits); the third never answers
    for name, url in (("lnbits", urls[0]), ("lnbits_hung", urls[1]), ("lnbits_b", urls[0])):
        provider = LNbitsProvider(LNbitsConfig(endpoint=url, invoice_key="k" * 32, timeout=2.0),
                                  make_session(2.0))
        provider.name = name
        delay = {"lnbits": 0.05, "lnbits_b": 0.12}.get(name, 0)
        provider._wallet_url = f"{url}/api/v1/wallet?delay={delay}"  # type: ignore[attr-defined]
        providers.append(provider)
    folder = tempfile.mkdtemp(prefix="lngate-bench-")
    db = Database.from_url(f"sqlite:///{folder}/probes.sqlite3")
    await db.migrate()
    router = Router(providers, breakers={}, timeouts=AttemptTimeoutPolicy(), clock=time.monotonic)
    monitor = HealthMonitor(providers, router=router, db=db, timeout=timeout,
                            clock=lambda: datetime.now(UTC))
    walls, sequential = [], []
    try:
        await monitor.run_once()  # warm-up: connections
        for _ in range(rounds):
            started = time.perf_counter()
            results = await monitor.run_once()
            walls.append(time.perf_counter() - started)
            assert [r.healthy for r in results] == [True, False, True], results
        for _ in range(3):
            started = time.perf_counter()
            for provider in providers:
                await probe(provider, timeout=timeout, clock=lambda: datetime.now(UTC))
            sequential.append(time.perf_counter() - started)
    finally:
        release.set()
        for provider in providers:
            await provider.aclose()
        for runner in apps:
            await runner.cleanup()
        await db.aclose()
    return {"median_s": statistics.median(walls), "max_s": max(walls), "min_s": min(walls),
            "sequential_s": statistics.median(sequential), "timeout_s": timeout}


# ----------------------------------------------------------------------------- data


def generate(rows: int, now: datetime, span: timedelta, seed: int = 1):  # type: ignore[no-untyped-def]
    """``rows`` provider calls spread evenly over ``span`` before ``now`` (deterministic)."""
    rng = random.Random(seed)
    step = span / rows
    scales = {"lnbits": 150.0, "nwc": 450.0, "test": 0.5}
    for i in range(rows):
        provider = PROVIDERS[i % 3]
        at = now - span + step * i
        r = rng.random()
        duration = rng.lognormvariate(0, 0.7) * scales[provider]
        if r < 0.03:
            yield provider, "create_invoice", at, duration, "failure", "provider_unavailable", "HTTP 502"
        elif r < 0.04:
            yield provider, "create_invoice", at, 1500.0, "timeout", "provider_unavailable", "timed out"
        elif r < 0.05:
            yield provider, "create_invoice", at, 0.0, "skipped", "circuit_open", "circuit open"
        elif r < 0.6:
            yield provider, "create_invoice", at, duration, "success", None, None
        else:
            yield provider, "invoice_status", at, duration, "success", None, None


def probes(now: datetime, span: timedelta):  # type: ignore[no-untyped-def]
    """A probe of each provider every 30 s over ``span``, 2 % unhealthy."""
    rng = random.Random(2)
    count = int(span.total_seconds() // 30)
    for i in range(count):
        at = now - timedelta(seconds=30 * i)
        for provider in PROVIDERS:
            healthy = rng.random() > 0.02
            yield provider, at, healthy, 5.0, None if healthy else "HTTP 502"


def sqlite_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


async def load_sqlite(path: str, rows: int, now: datetime, span: timedelta) -> None:
    db = Database.from_url(f"sqlite:///{path}")
    await db.migrate()
    await db.aclose()
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO provider_calls (provider, operation, started_at, duration_ms, outcome,"
            " error_type, error_message) VALUES (?, ?, ?, ?, ?, ?, ?)",
            ((p, o, sqlite_time(a), d, out, e, m) for p, o, a, d, out, e, m in
             generate(rows, now, span)))
        conn.executemany(
            "INSERT INTO health_checks (provider, checked_at, healthy, response_ms, error)"
            " VALUES (?, ?, ?, ?, ?)",
            ((p, sqlite_time(a), h, r, e) for p, a, h, r, e in probes(now, timedelta(days=30))))
    conn.execute("ANALYZE")
    conn.close()


async def load_postgres(url: str, rows: int, now: datetime, span: timedelta) -> None:
    db = Database.from_url(url)
    await db.migrate()
    await db.aclose()
    conn = await asyncpg.connect(url)
    try:
        await conn.copy_records_to_table(
            "provider_calls", records=generate(rows, now, span),
            columns=["provider", "operation", "started_at", "duration_ms", "outcome",
                     "error_type", "error_message"])
        await conn.copy_records_to_table(
            "health_checks", records=probes(now, timedelta(days=30)),
            columns=["provider", "checked_at", "healthy", "response_ms", "error"])
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


# ----------------------------------------------------------------------------- queries


async def timed(call: Callable[[], Awaitable[object]], runs: int = RUNS) -> float:
    await call()  # warm-up
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return median_ms(samples)


async def bench_queries(url: str, now: datetime, *, raw_too: bool) -> dict[str, float]:
    db = Database.from_url(url)
    healthy = dict.fromkeys(PROVIDERS, True)
    figures: dict[str, float] = {}
    day, month = Window.last(24, now), Window.last(24 * 30, now)
    try:
        if raw_too:  # before any roll-up: every query reads provider_calls
            figures["stats 24h, no roll-ups"] = await timed(
                lambda: stats(db, PROVIDERS, day, healthy), runs=1)
            figures["stats 30d, no roll-ups"] = await timed(
                lambda: stats(db, PROVIDERS, month, healthy), runs=1)
        # The roll-up loop runs every minute and stops 30 s short of "now": at worst the
        # queries read the last 90 s from provider_calls. Measure that worst case.
        started = time.perf_counter()
        written = await refresh_rollups(db, now=now - timedelta(seconds=60))
        figures["initial roll-up (all hours)"] = (time.perf_counter() - started) * 1000
        log(f"  roll-up rows: {written}")
        figures["stats 24h"] = await timed(lambda: stats(db, PROVIDERS, day, healthy))
        figures["metrics 24h (lnbits)"] = await timed(
            lambda: provider_metrics(db, ["lnbits"], day))
        figures["stats 30d"] = await timed(lambda: stats(db, PROVIDERS, month, healthy))
        figures["metrics 30d (lnbits)"] = await timed(
            lambda: provider_metrics(db, ["lnbits"], month))
        started = time.perf_counter()
        await refresh_rollups(db, now=now)
        figures["roll-up, one minute later (2 h redone)"] = (time.perf_counter() - started) * 1000
        if db.dialect == "postgresql":
            async def exact() -> None:
                async with db.connect() as conn:
                    await conn.execute(text(
                        "SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP "
                        "(ORDER BY duration_ms) FROM provider_calls WHERE outcome <> 'skipped'"))
            figures["percentile_cont, all rows (contrast)"] = await timed(exact, runs=3)
    finally:
        await db.aclose()
    return figures


async def with_postgres(run: Callable[[str], Awaitable[object]]) -> object:
    name = f"lngate_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        return await run(POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
    finally:
        admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def print_table(title: str, rows: list[tuple[str, str, str, float]]) -> None:
    print(f"\n{title}")
    header = f"{'database':<11} {'layout':<7} {'query':<38} {'ms':>9}"
    print(header)
    print("-" * len(header))
    for database, layout, query, ms in rows:
        print(f"{database:<11} {layout:<7} {query:<38} {ms:>9.1f}")


async def probe_section() -> None:
    log("probe rounds: three providers, one hung, timeout 1 s")
    probe_figures = await bench_probes()
    print("\nprobe round, 3 LNbits providers over HTTP: answers in 50 ms, 120 ms, one hung "
          "(HEALTH_CHECK_TIMEOUT=1 s)")
    print(f"  parallel round (probes + store): median {probe_figures['median_s']:.3f} s, "
          f"min {probe_figures['min_s']:.3f} s, max {probe_figures['max_s']:.3f} s (20 rounds)")
    print(f"  the same three probes one after another (the original's way): "
          f"{probe_figures['sequential_s']:.3f} s")


async def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-probes", action="store_true")
    parser.add_argument("--only-probes", action="store_true", help="the probe rounds alone")
    args = parser.parse_args()

    if not args.skip_probes:
        await probe_section()
    if args.only_probes:
        return

    now = datetime.now(UTC).replace(microsecond=0)
    rows: list[tuple[str, str, str, float]] = []
    layouts = {"spread": timedelta(days=30), "dense": timedelta(hours=24)}
    folder = tempfile.mkdtemp(prefix="lngate-bench-")
    for layout, span in layouts.items():
        if not args.skip_sqlite:
            path = f"{folder}/{layout}.sqlite3"
            log(f"SQLite, {layout}: loading {args.rows:,} provider calls")
            started = time.perf_counter()
            await load_sqlite(path, args.rows, now, span)
            log(f"  loaded in {time.perf_counter() - started:.1f} s")
            figures = await bench_queries(f"sqlite:///{path}", now, raw_too=True)
            rows += [("SQLite", layout, q, ms) for q, ms in figures.items()]
            os.unlink(path)
        if not args.skip_postgres:
            async def run(url: str, layout: str = layout, span: timedelta = span) -> object:
                log(f"PostgreSQL, {layout}: loading {args.rows:,} provider calls")
                started = time.perf_counter()
                await load_postgres(url, args.rows, now, span)
                log(f"  loaded in {time.perf_counter() - started:.1f} s")
                return await bench_queries(url, now, raw_too=True)

            figures = await with_postgres(run)  # type: ignore[assignment]
            rows += [("PostgreSQL", layout, q, ms) for q, ms in figures.items()]
    print_table(f"metrics queries at {args.rows:,} provider_calls rows (median of {RUNS} runs; "
                "'no roll-ups' and the contrast rows: fewer runs)", rows)


if __name__ == "__main__":
    asyncio.run(main())
