#!/usr/bin/env python3
"""Flat as the tables grow: create and check with ``--rows`` stored invoices as with none.

For each engine (SQLite, PostgreSQL) two databases get the schema from the project's migrations
(``lngate migrate``): one stays empty, the other is filled straight into the tables (bulk
inserts, ``COPY`` on PostgreSQL) with a shop's history:

* ``--rows`` invoices created evenly over the last 365 days: 70 % paid (5 s to 10 min after
  creation), the others expired; those of the last hour pending (with their next reconciler
  check scheduled) or paid; 20 % with an idempotency key;
* an order for 60 % of them (three products), and a sent e-mail in the outbox per paid order;
* ``--rows`` provider calls over the 30-day retention period (bench_monitoring's mix: three
  providers, 3 % failures, 1 % timeouts, 1 % skipped), a health probe per provider every 30 s,
  and the roll-ups brought up to date (as the one-minute loop keeps them).

Then one gateway per database (``python -m lngate serve``, one worker, the instantaneous
LNbits upstream ``_instant_upstream.py``, rate limits off) runs at the same time, and rounds
measure them in turn (the order alternates): ``--requests`` sequential create-invoice calls,
then a check-invoice of each invoice just created. Reported per database: p50 and p99 of each,
the gateway's CPU ms per request (from /proc, background loops included), and the ratio
full / empty of the same run. Target: within 10 %.

Then the work that reads whole tables: the admin and dashboard queries (statistics, order
list and search, monitor, metrics, dashboard page) timed over HTTP on both gateways, and the
background loops (reconciler, roll-ups, retention, probes, outbox) observed: a third gateway per
database runs with the measurement-only SQL log of ``_probe/sitecustomize.py`` while those
pages are requested, and every statement it sent is then run under ``EXPLAIN`` (``EXPLAIN QUERY
PLAN`` on SQLite) on the full database. A statement whose plan reads a large table whole
(``SCAN <table>``, ``Seq Scan on <table>``) is listed with its slowest run.

    .venv/bin/python benchmarks/bench_growth.py                       # 1,000,000 rows, ~25 min
    .venv/bin/python benchmarks/bench_growth.py --rows 20000 --requests 200 --rounds 2

Loopback only; the temporary databases are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pickle
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import (
    BENCH_DIR,
    GatewayProcess,
    clean_env,
    cleanup_src,
    fmt,
    loadavg,
    log,
    machine_info,
    percentile,
    print_table,
    process_cpu_seconds,
    save_results,
    snapshot_src,
    src_label,
    src_path,
)
from bench_create_invoice import EXPIRY, MEMO, Upstream

POSTGRES_ADMIN_URL = os.environ.get(
    "LNGATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
PROVIDERS = ("lnbits", "nwc", "test")
PRODUCTS = ("dazbox", "daznode", "dazpay")
ADMIN_TOKEN = "bench-admin-token-" + "x" * 24
BIG_TABLES = ("invoices", "orders", "outbox", "provider_calls", "health_checks")
BOLT11 = "lnbc1u1p" + "q" * 290  # the length of a typical invoice: rows as wide as real ones


# ============================================================================ data


def _invoices(count: int, now: datetime, seed: int = 7) -> Iterator[dict[str, object]]:
    """``count`` invoices over the last 365 days, oldest first (deterministic)."""
    rng = random.Random(seed)
    span = timedelta(days=365)
    step = span / max(count, 1)
    for i in range(count):
        created = now - span + step * i
        expires = created + timedelta(seconds=EXPIRY)
        paid_at = created + timedelta(seconds=rng.uniform(5, 600)) if rng.random() < 0.7 else None
        if paid_at is not None and paid_at > now:
            paid_at = None
        state = "paid" if paid_at else ("pending" if expires > now else "expired")
        next_check = now + timedelta(seconds=rng.uniform(0, 300)) if state == "pending" else None
        payment_hash = uuid.UUID(int=rng.getrandbits(128)).hex + f"{i:032x}"
        yield {
            "payment_hash": payment_hash, "provider": PROVIDERS[i % 2],
            "provider_ref": payment_hash, "bolt11": BOLT11,
            "amount_msat": rng.choice((2100, 80_000, 400_000)) * 1000,
            "description": MEMO, "state": state, "is_test": False, "created_at": created,
            "expires_at": expires, "paid_at": paid_at, "paid_late": False,
            "idempotency_key": f"idem-{i}" if i % 5 == 0 else None,
            "request_fingerprint": payment_hash if i % 5 == 0 else None,
            "next_check_at": next_check,
            "order": rng.random() < 0.6,
        }


INVOICE_COLUMNS = ["payment_hash", "provider", "provider_ref", "bolt11", "amount_msat",
                   "description", "state", "is_test", "created_at", "expires_at", "paid_at",
                   "paid_late", "idempotency_key", "request_fingerprint", "next_check_at"]
ORDER_COLUMNS = ["id", "product", "customer", "quantity", "amount_msat", "status",
                 "payment_hash", "created_at", "paid_at", "paid_late"]
OUTBOX_COLUMNS = ["order_id", "kind", "recipient", "payload", "status", "attempts",
                  "next_attempt_at", "created_at", "sent_at"]
CALL_COLUMNS = ["provider", "operation", "started_at", "duration_ms", "outcome", "error_type",
                "error_message"]
PROBE_COLUMNS = ["provider", "checked_at", "healthy", "response_ms", "error"]


def _rows(count: int, now: datetime) -> dict[str, list[tuple[object, ...]]]:
    """Every row to store, per table, as tuples in the column orders above."""
    from bench_monitoring import generate, probes

    tables: dict[str, list[tuple[object, ...]]] = {"invoices": [], "orders": [], "outbox": []}
    for i, inv in enumerate(_invoices(count, now)):
        tables["invoices"].append(tuple(inv[c] for c in INVOICE_COLUMNS))
        if not inv["order"]:
            continue
        order_id = f"o{i:021d}"
        email = f"customer{i % 5000}@example.com"
        tables["orders"].append((
            order_id, PRODUCTS[i % 3], json.dumps({"email": email, "name": f"Client {i}"}), 1,
            inv["amount_msat"], inv["state"], inv["payment_hash"], inv["created_at"],
            inv["paid_at"], False))
        if inv["paid_at"] is not None:
            tables["outbox"].append((
                order_id, "order_paid", email, json.dumps({"order": order_id}), "sent", 1,
                inv["paid_at"], inv["paid_at"], inv["paid_at"]))
    tables["provider_calls"] = list(generate(count, now, timedelta(days=30))) if count else []
    tables["health_checks"] = list(probes(now, timedelta(days=30))) if count else []
    return tables


COLUMNS = {"invoices": INVOICE_COLUMNS, "orders": ORDER_COLUMNS, "outbox": OUTBOX_COLUMNS,
           "provider_calls": CALL_COLUMNS, "health_checks": PROBE_COLUMNS}


def _sqlite_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def fill_sqlite(path: Path, tables: dict[str, list[tuple[object, ...]]]) -> None:
    conn = sqlite3.connect(path)
    # a bulk load: no fsync, and a page cache big enough for the indexes being built
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")
    with conn:
        for table, rows in tables.items():
            columns = COLUMNS[table]
            conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                f"({', '.join('?' * len(columns))})",
                (tuple(_sqlite_value(v) for v in row) for row in rows))
    conn.close()  # no ANALYZE: the gateway never runs it, its planner works without statistics


async def fill_postgres(url: str, tables: dict[str, list[tuple[object, ...]]]) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        for table, rows in tables.items():
            if rows:
                await conn.copy_records_to_table(table, records=rows, columns=COLUMNS[table])
        await conn.execute("VACUUM ANALYZE")  # what autovacuum does soon after such a load
    finally:
        await conn.close()


async def roll_up_and_sign_in(url: str, now: datetime) -> str:
    """Bring the roll-ups up to ``now`` (as the loop keeps them); open an admin session for
    the dashboard page. Returns the session cookie's value."""
    from lngate.services.admin_sessions import open_session
    from lngate.services.metrics_queries import refresh_rollups
    from lngate.store import Database

    db = Database.from_url(url)
    try:
        await refresh_rollups(db, now=now)
        session = await open_session(db, admin_token=ADMIN_TOKEN, lifetime=timedelta(days=1),
                                     clock=lambda: datetime.now(UTC), client_ip=None,
                                     user_agent="bench")
    finally:
        await db.aclose()
    return session.token


def migrate(url: str) -> None:
    """The schema, from the project's migrations: ``lngate migrate``."""
    env = clean_env(DATABASE_URL=url, PYTHONPATH=str(src_path()), LIGHTNING_TEST_MODE="true")
    subprocess.run([sys.executable, "-m", "lngate", "migrate"], env=env, check=True,
                   capture_output=True, cwd=tempfile.gettempdir())


class Databases:
    """The empty and the full database of one engine; dropped or deleted by :meth:`close`."""

    def __init__(self, engine: str, rows: int, folder: Path) -> None:
        self.engine = engine
        self.rows = rows
        self.folder = folder
        self.urls: dict[str, str] = {}
        self.cookies: dict[str, str] = {}
        self._pg_names: list[str] = []

    async def create(self, tables: dict[str, list[tuple[object, ...]]], now: datetime) -> None:
        import asyncpg

        for label in ("empty", "full"):
            if self.engine == "sqlite":
                url = f"sqlite:///{self.folder / f'{label}.sqlite3'}"
            else:
                name = f"lngate_growth_{label}_{uuid.uuid4().hex[:8]}"
                admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
                try:
                    await admin.execute(f'CREATE DATABASE "{name}"')
                finally:
                    await admin.close()
                self._pg_names.append(name)
                url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
            self.urls[label] = url
            migrate(url)
            if label == "full":
                started = time.perf_counter()
                if self.engine == "sqlite":
                    fill_sqlite(self.folder / "full.sqlite3", tables)
                else:
                    await fill_postgres(url, tables)
                log(f"  {self.engine}: filled in {time.perf_counter() - started:.0f} s")
            self.cookies[label] = await roll_up_and_sign_in(url, now)

    async def close(self) -> None:
        import asyncpg

        for name in self._pg_names:
            admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()


# ============================================================================ gateways


def start_gateway(url: str, upstream: Upstream, workdir: Path,
                  extra: dict[str, str] | None = None) -> GatewayProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    settings = {
        "DATABASE_URL": url, "LNBITS_ENDPOINT": upstream.url,
        "LNBITS_INVOICE_KEY": "bench-invoice-key", "LNBITS_NODE_PUBKEY": upstream.pubkey,
        "ADMIN_TOKEN": ADMIN_TOKEN, "RATE_LIMIT": "1000000/second",
        "RATE_LIMIT_CHECK": "1000000/second",
        **(extra or {}),
    }
    return GatewayProcess(settings, workdir=workdir)


async def create_and_check(gateway: GatewayProcess, requests: int) -> dict[str, object]:
    """``requests`` sequential creates, then a check of each; latencies and CPU per request."""
    import aiohttp

    body = json.dumps({"amount": 100, "description": MEMO, "expiry": EXPIRY}).encode()
    headers = {"Content-Type": "application/json"}
    created: list[str] = []
    times: dict[str, list[float]] = {"create": [], "check": []}
    cpu: dict[str, float] = {}
    errors = 0
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=30)) as session:
        for kind in ("create", "check"):
            cpu_before = process_cpu_seconds(gateway.pid)
            for i in range(requests):
                started = time.perf_counter()
                if kind == "create":
                    async with session.post(f"{gateway.url}/api/create-invoice", data=body,
                                            headers=headers) as resp:
                        answer = await resp.json() if resp.status < 300 else None
                    if answer is not None:
                        created.append(answer["invoice"]["payment_hash"])
                else:
                    target = created[i % len(created)] if created else "0" * 64
                    async with session.get(f"{gateway.url}/api/check-invoice",
                                           params={"id": target}) as resp:
                        answer = await resp.json() if resp.status < 300 else None
                times[kind].append(time.perf_counter() - started)
                errors += answer is None
            cpu[kind] = process_cpu_seconds(gateway.pid) - cpu_before
    return {
        "errors": errors,
        **{f"{k}_p50_ms": percentile(v, 50) * 1000 for k, v in times.items()},
        **{f"{k}_p99_ms": percentile(v, 99) * 1000 for k, v in times.items()},
        **{f"{k}_cpu_ms": cpu[k] / requests * 1000 for k in cpu},
    }


def admin_pages(order_hint: str) -> list[tuple[str, str]]:
    """(label, path) of the admin and dashboard reads timed over HTTP."""
    month_ago = (datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [
        ("statistics API, default (24 h by hour)", "/api/admin/stats"),
        ("statistics API, 30 d by day, by product",
         f"/api/admin/stats?from={month_ago}&group=day&by=product"),
        ("orders, first page", "/api/admin/orders"),
        ("orders, status=paid", "/api/admin/orders?status=paid"),
        ("orders, search an e-mail", "/api/admin/orders?q=customer42%40example.com"),
        ("orders, search an id", f"/api/admin/orders?q={order_hint}"),
        ("audit log", "/api/admin/audit"),
        ("monitor, stats", "/api/admin/lightning-monitor?action=stats"),
        ("monitor, metrics lnbits", "/api/admin/lightning-monitor?action=metrics&provider=lnbits"),
        ("Prometheus /metrics", "/metrics"),
        ("dashboard page", "/admin"),
        ("orders page", "/admin/orders"),
    ]


async def time_pages(gateway: GatewayProcess, cookie: str, runs: int) -> dict[str, object]:
    """Median wall ms of each admin page (after one warm-up), and its status."""
    import aiohttp

    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    figures: dict[str, object] = {}
    async with aiohttp.ClientSession(cookies={"lngate_admin": cookie},
                                     timeout=aiohttp.ClientTimeout(total=120)) as session:
        for label, path in admin_pages("o000000000000000000042"):
            samples, status = [], 0
            for i in range(runs + 1):
                started = time.perf_counter()
                async with session.get(gateway.url + path, headers=headers,
                                       allow_redirects=False) as resp:
                    await resp.read()
                    status = resp.status
                if i:
                    samples.append(time.perf_counter() - started)
            figures[label] = {"ms": percentile(samples, 50) * 1000, "status": status}
    return figures


# ============================================================================ EXPLAIN


def _is_explainable(statement: str) -> bool:
    head = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
    return head in {"SELECT", "UPDATE", "DELETE", "INSERT", "WITH"}


def _scans(plan: list[str]) -> list[str]:
    """The large tables a plan reads whole."""
    found = []
    for line in plan:
        for table in BIG_TABLES:
            if (f"Seq Scan on {table} " in line + " "
                    or line.strip().startswith(f"SCAN {table}")
                    or f"SCAN {table} " in line + " "):
                found.append(table)
    return sorted(set(found))


async def explain_all(engine: str, url: str, log_path: Path) -> list[dict[str, object]]:
    """Every statement of the SQL log, its plan on ``url``, the tables it scans."""
    captured: dict[str, list[object]] = {}
    for part in log_path.parent.glob(f"{log_path.name}.*"):  # one file per process
        with open(part, "rb") as source:
            for statement, entry in pickle.load(source).items():
                if statement in captured:
                    total = captured[statement]
                    total[0] += entry[0]  # type: ignore[operator]
                    total[1] += entry[1]  # type: ignore[operator]
                    total[2] = max(total[2], entry[2])  # type: ignore[call-overload]
                else:
                    captured[statement] = entry
    results = []
    if engine == "sqlite":
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            for statement, (count, total, slowest, params) in captured.items():
                if not _is_explainable(statement):
                    continue
                try:
                    rows = conn.execute(f"EXPLAIN QUERY PLAN {statement}",
                                        params or ()).fetchall()  # type: ignore[arg-type]
                    plan = [str(r[-1]) for r in rows]
                except sqlite3.Error as exc:
                    plan = [f"(not explained: {exc})"]
                results.append({"statement": statement, "count": count, "total_s": total,
                                "max_ms": float(slowest) * 1000, "plan": plan,  # type: ignore[arg-type]
                                "scans": _scans(plan)})
        finally:
            conn.close()
        return results
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        for statement, (count, total, slowest, params) in captured.items():
            if not _is_explainable(statement):
                continue
            try:
                async with conn.transaction():
                    rows = await conn.fetch(f"EXPLAIN {statement}", *(params or ()))  # type: ignore[arg-type]
                plan = [r[0] for r in rows]
            except (asyncpg.PostgresError, TypeError, ValueError) as exc:
                plan = [f"(not explained: {exc})"]
            results.append({"statement": statement, "count": count, "total_s": total,
                            "max_ms": float(slowest) * 1000, "plan": plan,  # type: ignore[arg-type]
                            "scans": _scans(plan)})
    finally:
        await conn.close()
    return results


async def audit_statements(engine: str, dbs: Databases, upstream: Upstream, workdir: Path,
                           seconds: float) -> dict[str, list[dict[str, object]]]:
    """Run a gateway per database with the SQL log, drive it, then EXPLAIN what it sent."""
    explained: dict[str, list[dict[str, object]]] = {}
    for label in ("empty", "full"):
        log_path = workdir / f"sql-{engine}-{label}.pickle"
        gateway = start_gateway(dbs.urls[label], upstream, workdir / f"audit-{engine}-{label}", {
            "PYTHONPATH": f"{BENCH_DIR / '_probe'}:{src_path()}",
            "LNGATE_BENCH_SQL_LOG": str(log_path),
            "RECONCILE_INTERVAL_SECONDS": "2", "HEALTH_CHECK_INTERVAL": "5",
        })
        try:
            started = time.monotonic()
            await create_and_check(gateway, 50)
            await time_pages(gateway, dbs.cookies[label], runs=1)
            # the loops run at start-up, then at their intervals: give them time for a pass
            await asyncio.sleep(max(0.0, seconds - (time.monotonic() - started)))
        finally:
            gateway.stop()
            gateway.cleanup()
        explained[label] = await explain_all(engine, dbs.urls["full"], log_path)
    return explained


# ============================================================================ main


async def run_engine(engine: str, args: argparse.Namespace, tables: dict[str, list[tuple[object, ...]]],
                     now: datetime, upstream: Upstream, workdir: Path) -> dict[str, object]:
    folder = workdir / engine
    folder.mkdir()
    dbs = Databases(engine, args.rows, folder)
    result: dict[str, object] = {}
    try:
        log(f"{engine}: migrating two databases, filling one with {args.rows:,} rows")
        await dbs.create(tables, now)
        gateways = {label: start_gateway(dbs.urls[label], upstream, folder / f"gw-{label}")
                    for label in ("empty", "full")}
        try:
            for gateway in gateways.values():  # warm-up: connections, caches, first passes
                await create_and_check(gateway, args.warmup)
            rounds: list[dict[str, object]] = []
            for r in range(args.rounds):
                order = ("empty", "full") if r % 2 == 0 else ("full", "empty")
                for label in order:
                    figures = await create_and_check(gateways[label], args.requests)
                    rounds.append({"round": r, "db": label, "load": loadavg(), **figures})
                    log(f"  {engine} round {r} {label}: create p50 "
                        f"{fmt(figures['create_p50_ms'], 2)} ms, check p50 "
                        f"{fmt(figures['check_p50_ms'], 2)} ms (load {loadavg()})")
            result["rounds"] = rounds
            result["pages"] = {label: await time_pages(gw, dbs.cookies[label], args.page_runs)
                               for label, gw in gateways.items()}
        finally:
            for gateway in gateways.values():
                gateway.stop()
                gateway.cleanup()
        log(f"{engine}: SQL audit ({args.audit_seconds:.0f} s per database)")
        result["explained"] = await audit_statements(engine, dbs, upstream, folder,
                                                     args.audit_seconds)
    finally:
        await dbs.close()
    return result


def _median(values: list[float]) -> float:
    return percentile(sorted(values), 50)


def report(results: dict[str, dict[str, object]], rows: int) -> None:
    table = []
    for engine, result in results.items():
        rounds: list[dict[str, float]] = result["rounds"]  # type: ignore[assignment]
        for metric in ("create_p50_ms", "create_p99_ms", "create_cpu_ms",
                       "check_p50_ms", "check_p99_ms", "check_cpu_ms"):
            by = {label: _median([r[metric] for r in rounds if r["db"] == label])
                  for label in ("empty", "full")}
            ratios = []  # per round: full / empty of the same round
            for r in sorted({int(x["round"]) for x in rounds}):
                pair = {x["db"]: x[metric] for x in rounds if x["round"] == r}
                ratios.append(pair["full"] / pair["empty"])
            table.append((engine, metric.replace("_ms", " (ms)").replace("_", " "),
                          fmt(by["empty"], 2), fmt(by["full"], 2), fmt(_median(ratios), 3),
                          f"{min(ratios):.3f}–{max(ratios):.3f}"))
    print_table(f"create and check, empty vs {rows:,} rows (medians of the rounds; ratio = "
                "full / empty per round)",
                ["engine", "figure", "empty", "full", "ratio (median)", "ratio range"], table)

    pages = []
    for engine, result in results.items():
        timed: dict[str, dict[str, dict[str, float]]] = result["pages"]  # type: ignore[assignment]
        for label in timed["empty"]:
            empty, full = timed["empty"][label], timed["full"][label]
            pages.append((engine, label, fmt(empty["ms"], 1), fmt(full["ms"], 1),
                          str(full["status"])))
    print_table(f"admin and dashboard reads over HTTP, empty vs {rows:,} rows (median ms)",
                ["engine", "read", "empty", "full", "status"], pages)

    statements = []
    for engine, result in results.items():
        explained: dict[str, list[dict[str, object]]] = result["explained"]  # type: ignore[assignment]
        seen: set[str] = set()
        for label in ("full", "empty"):
            for item in explained[label]:
                key = str(item["statement"])
                if key in seen:
                    continue
                seen.add(key)
                if item["scans"] or (label == "full" and float(item["max_ms"]) > 20):  # type: ignore[arg-type]
                    text = " ".join(key.split())
                    statements.append((engine, label, fmt(float(item["max_ms"]), 1),  # type: ignore[arg-type]
                                       str(item["count"]), ", ".join(item["scans"]) or "-",  # type: ignore[arg-type]
                                       text[:110] + ("…" if len(text) > 110 else "")))
        total = len(seen)
        log(f"{engine}: {total} distinct statements explained")
    print_table("statements that scan a large table, or took > 20 ms at the full size "
                "(plan on the full database; max ms as run by the gateway on that database)",
                ["engine", "run on", "max ms", "runs", "scans", "statement"], statements)


async def main_async(args: argparse.Namespace) -> None:
    info = machine_info()
    log(f"machine: {info}, load {loadavg()}")
    now = datetime.now(UTC).replace(microsecond=0)
    started = time.perf_counter()
    tables = _rows(args.rows, now)
    log(f"generated {sum(len(v) for v in tables.values()):,} rows in "
        f"{time.perf_counter() - started:.0f} s: "
        + ", ".join(f"{k} {len(v):,}" for k, v in tables.items()))
    workdir = Path(tempfile.mkdtemp(prefix="lngate-bench-growth-"))
    pool = 2 * (args.warmup + args.rounds * args.requests) + 400
    upstream = Upstream(pool * len(args.engines), 100, workdir)
    results: dict[str, dict[str, object]] = {}
    try:
        for engine in args.engines:
            results[engine] = await run_engine(engine, args, tables, now, upstream, workdir)
    finally:
        upstream.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    report(results, args.rows)
    log(f"source: {src_label()}; load average now {loadavg()}")
    path = save_results("growth", {"machine": info, "args": vars(args), "results": results})
    log(f"raw results: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000,
                        help="invoices (and provider calls) in the full database")
    parser.add_argument("--requests", type=int, default=1000,
                        help="creates (and as many checks) per round and database")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--page-runs", type=int, default=5)
    parser.add_argument("--audit-seconds", type=float, default=20.0)
    parser.add_argument("--engines", nargs="+", choices=("sqlite", "postgresql"),
                        default=["sqlite", "postgresql"])
    parser.add_argument("--src-ref", help="measure the source of this git ref (default: the "
                        "working tree, copied at start)")
    args = parser.parse_args()
    snapshot_src(args.src_ref)
    try:
        asyncio.run(main_async(args))
    finally:
        cleanup_src()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
