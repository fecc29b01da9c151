#!/usr/bin/env python3
"""Webhook settlement at a fixed rate, and the reconciler's pass.

Part ``webhook``: webhook -> verified -> settled -> email queued, driven open loop. The gateway
runs as a real server (``python -m lngate serve``, SQLite by default, SMTP to a local aiosmtpd)
with LNbits 1.6.2 (FakeWallet) as its provider. Set-up: DazPay orders are created through the
gateway and paid from LNbits' payer wallet; the gateway's ``PUBLIC_URL`` points at a capture
server in this script, so LNbits' own webhook calls (its exact URLs, with their nonce and token,
and bodies) are recorded there and nothing is settled yet. Timed phase: those calls are replayed
to the gateway at ``--rate`` per second on a fixed schedule (open loop: call ``i`` is sent at
``t0 + i / rate`` whether or not earlier calls have answered, each on a new connection as LNbits
does), and each call's latency is measured from its *scheduled* send time to the end of the
answer. The gateway verifies every call with LNbits (a real GET, timed inside the gateway and
returned in ``Server-Timing``), settles the order and queues its receipt email.

Reported per gateway variant: the end-to-end latency, the provider's look-up, and the gateway's
own work = end-to-end minus the look-up (so send lag, connection, HTTP, queueing behind other
calls and the event loop all count as the gateway's), p50/p99, with the share of each step:
auth (request parsing, token check), read (the invoice read and the event stored), provider,
settle (the settlement transaction: invoice, the order's post-payment step, outbox row),
publish (telling listeners), outcome (the event's outcome stored), and HTTP/response (everything
outside the handler: server, loopback, response). ``--baseline REF`` runs the gateway's source
at git ``REF`` too, in interleaved rounds against the same LNbits, for a ratio within one run.
Target: own work p99 <= 20 ms at 50 webhooks/s.

``--upstream instant``: the real LNbits on a 2-core machine answers about 42-60 verification
look-ups a second, so at 50/s it, not the gateway, is measured. With this option the set-up
still goes through LNbits (orders created, paid, webhooks captured); then each paid invoice's
GET answer is read from LNbits and handed to ``_instant_upstream.py``, and the gateway is
restarted (same database) with that double as its LNbits: the timed phase then measures the
gateway's own work at the rate asked, the look-up still timed and reported apart.

Part ``reconciler``: ``--pending`` unpaid invoices are issued through LNbits, then one
reconciliation pass checks them all at LNbits through ``settle`` (in-process, the gateway's own
objects); reported as invoices checked per second, for several concurrency levels.

    .venv/bin/python benchmarks/bench_webhook.py --part webhook --baseline main
    .venv/bin/python benchmarks/bench_webhook.py --part webhook --upstream instant --baseline main
    .venv/bin/python benchmarks/bench_webhook.py --part webhook --postgres postgresql://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import aiohttp
from aiohttp import web

from _common import (
    BENCH_DIR,
    HOST,
    RESULTS_DIR,
    GatewayProcess,
    cleanup_src,
    free_port,
    loadavg,
    log,
    machine_info,
    percentile,
    snapshot_src,
    src_path,
)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from tests.peers.lnbits_peer import LNbitsPeer, fake_wallet_payee_pubkey  # noqa: E402
from tests.peers.smtp_peer import SMTPPeer  # noqa: E402

from bench_create_invoice import Upstream  # noqa: E402

SECRET = "bench-webhook-secret-0123456789abcdef"
SHOP = "shop@daznode.test"
IDLE_SAMPLE = 3.0
"""Seconds of the gateway's idle CPU measured before each replay (subtracted per webhook)."""
EMAIL_WAIT = 20.0
"""Seconds a replay waits, at most, for the receipts of its settled calls to arrive."""
STEPS = ("auth", "read", "provider", "settle", "publish", "outcome")
"""The handler's steps, as named in the webhook's ``Server-Timing`` header."""


def fund(peer: LNbitsPeer, sats: int) -> None:
    status, body = peer.request("PUT", "/users/api/v1/balance", token=peer.super_user_token,
                                json_body={"id": peer.payer_wallet_id, "amount": sats})
    if status not in (200, 201):
        raise RuntimeError(f"funding the payer failed: {status} {body}")


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": percentile(values, 50), "p90": percentile(values, 90),
            "p99": percentile(values, 99), "max": max(values) if values else float("nan"),
            "mean": sum(values) / len(values) if values else float("nan")}


@dataclass
class Captured:
    """One webhook call LNbits made, as received: replayed later to the gateway."""

    path_qs: str
    body: bytes
    headers: dict[str, str]


class WebhookCapture:
    """Stands in for the gateway's public URL during set-up: keeps LNbits' first webhook call
    per payment hash and answers 200, so nothing is settled before the timed phase."""

    def __init__(self) -> None:
        self.port = free_port()
        self.calls: dict[str, Captured] = {}
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, HOST, self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        data = json.loads(body)
        if isinstance(data, str):
            data = json.loads(data)
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("content-type", "user-agent")}
        self.calls.setdefault(data["payment_hash"], Captured(request.path_qs, body, headers))
        return web.json_response({"message": "captured"})


@dataclass
class Variant:
    """One gateway build under test, with its own process, database and SMTP sink."""

    name: str
    src: Path
    database_url: str
    smtp: SMTPPeer = field(default_factory=SMTPPeer)
    gateway: GatewayProcess | None = None
    calls: list[Captured] = field(default_factory=list)
    results: list[dict] = field(default_factory=list)
    cpu_seconds: float = 0.0
    loop_cpu_seconds: float = 0.0
    loop_system_seconds: float = 0.0
    busy_seconds: float = 0.0
    idle_cpu_per_second: list[float] = field(default_factory=list)
    round_cpu_ms: list[float] = field(default_factory=list)
    """CPU ms per webhook of each replay: the first after a start also pays one-off costs (the
    first receipt imports Jinja2 and aiosmtplib and compiles its templates)."""
    replayed: int = 0
    settings: dict[str, str] = field(default_factory=dict)
    profile: Path | None = None
    """Where the last timed replay's cProfile stats go (``--cprofile``), else ``None``."""


def loop_thread_cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of the process's main thread (the event loop's)."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def parse_server_timing(value: str) -> dict[str, float]:
    parts = {}
    for entry in value.split(","):
        name, _, duration = entry.strip().partition(";dur=")
        if duration:
            parts[name] = float(duration)
    return parts


async def prepare(variant: Variant, peer: LNbitsPeer, capture: WebhookCapture, count: int,
                  upstream: Upstream | None = None) -> None:
    """Start the variant's gateway, create and pay ``count`` orders, collect their webhooks;
    with ``upstream``, then move the gateway's verification look-ups there."""
    variant.smtp.start()
    variant.settings = {
        "LNBITS_ENDPOINT": peer.url, "LNBITS_INVOICE_KEY": peer.merchant_inkey,
        "LNBITS_NODE_PUBKEY": fake_wallet_payee_pubkey(), "LNBITS_WEBHOOK_SECRET": SECRET,
        "PUBLIC_URL": capture.url, "SMTP_HOST": HOST, "SMTP_PORT": str(variant.smtp.port),
        "SMTP_TLS": "none", "RATE_LIMIT_WEBHOOK": "1000000/second", "EMAIL_FROM": f"DazNode <{SHOP}>", "SHOP_EMAIL": SHOP,
        # no reconciler look-ups while the set-up waits: only the timed webhooks settle
        "RECONCILE_INTERVAL_SECONDS": "3600", "RECONCILE_FIRST_CHECK_SECONDS": "3600",
        "RECONCILE_MAX_GAP_SECONDS": "3600",
        "DATABASE_URL": variant.database_url, "PYTHONPATH": str(variant.src),
    }
    if variant.profile is not None:  # the measurement-only hook: SIGUSR1 starts and stops it
        variant.settings.update(PYTHONPATH=f"{BENCH_DIR / '_probe'}:{variant.src}",
                                LNGATE_BENCH_CPROFILE=str(variant.profile))
    variant.gateway = await asyncio.to_thread(GatewayProcess, variant.settings)
    hashes: list[str] = []
    semaphore = asyncio.Semaphore(4)
    async with aiohttp.ClientSession(variant.gateway.url) as http:

        async def one(i: int) -> None:
            async with semaphore:
                for attempt in range(10):  # a loaded LNbits times out now and then
                    async with http.post("/api/orders", json={
                            "product": "dazpay", "amount": 1 + i % 10,
                            "customer": {"email": f"payer{i}@example.com"}}) as resp:
                        if resp.status == 201:
                            created = await resp.json()
                            break
                        if resp.status != 503 or attempt == 9:
                            raise RuntimeError(f"create order: {resp.status} {await resp.text()}")
                    await asyncio.sleep(1.0)
                hashes.append(created["invoice"]["payment_hash"])
                await peer.apay(created["invoice"]["payment_request"])

        await asyncio.gather(*(one(i) for i in range(count)))
    deadline = time.monotonic() + 60
    while any(h not in capture.calls for h in hashes) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    variant.calls = [capture.calls[h] for h in hashes if h in capture.calls]
    log(f"  {variant.name}: {len(variant.calls)} of {count} paid invoices' webhooks captured")
    if upstream is not None:
        await use_instant_upstream(variant, peer, upstream, hashes)


async def use_instant_upstream(variant: Variant, peer: LNbitsPeer, upstream: Upstream,
                               hashes: list[str]) -> None:
    """Give the instantaneous upstream LNbits' own answer for each paid invoice, then restart
    the variant's gateway (same database) with that upstream as its LNbits."""
    answers: dict[str, object] = {}
    async with aiohttp.ClientSession(headers={"X-Api-Key": peer.merchant_inkey}) as http:
        for payment_hash in hashes:
            async with http.get(f"{peer.url}/api/v1/payments/{payment_hash}") as resp:
                answer = await resp.json()
            if not answer.get("paid"):
                raise RuntimeError(f"LNbits does not say {payment_hash} is paid: {answer}")
            answers[payment_hash] = answer
    async with aiohttp.ClientSession() as http, http.post(
            f"{upstream.url}/_bench/answers", data=json.dumps(answers)) as resp:
        resp.raise_for_status()
    assert variant.gateway is not None
    variant.gateway.stop()
    variant.gateway.cleanup()
    variant.settings["LNBITS_ENDPOINT"] = upstream.url
    variant.gateway = await asyncio.to_thread(GatewayProcess, variant.settings)
    log(f"  {variant.name}: restarted against the instantaneous upstream "
        f"({len(answers)} paid answers from LNbits)")


async def replay(variant: Variant, calls: list[Captured], rate: float,
                 profile: tuple[str, str] | None = None) -> None:
    """Send ``calls`` to the variant's gateway at ``rate``/s on a fixed schedule (open loop)."""
    assert variant.gateway is not None
    loop = asyncio.get_running_loop()
    # a new connection per call, as LNbits makes them
    connector = aiohttp.TCPConnector(force_close=True, limit=0)
    timeout = aiohttp.ClientTimeout(total=30)
    base = variant.gateway.url

    async def one(call: Captured, scheduled: float) -> dict:
        sent = loop.time()
        try:
            async with session.post(base + call.path_qs, data=call.body,
                                    headers=call.headers) as resp:
                answer = await resp.json(content_type=None)
                status, timing = resp.status, resp.headers.get("Server-Timing", "")
        except aiohttp.ClientError as exc:
            return {"status": None, "error": repr(exc)}
        done = loop.time()
        return {"status": status, "message": answer.get("message") or answer.get("code"),
                "latency_ms": (done - scheduled) * 1000, "send_lag_ms": (sent - scheduled) * 1000,
                "timing": parse_server_timing(timing)}

    profiler = None
    if profile is not None:  # py-spy's folded stacks of the gateway during this replay
        profiler = await asyncio.create_subprocess_exec(
            profile[0], "record", "--pid", str(variant.gateway.pid), "--format", "raw",
            "--rate", "250", "--gil", "--output", profile[1], "--duration", str(int(len(calls) / rate) + 1),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        await asyncio.sleep(1.0)
    # the gateway's background work (probes, flushes, pollers) when no webhook arrives
    idle_before, idle_started = variant.gateway.cpu_seconds(), loop.time()
    await asyncio.sleep(IDLE_SAMPLE)
    variant.idle_cpu_per_second.append(
        (variant.gateway.cpu_seconds() - idle_before) / (loop.time() - idle_started))
    if variant.profile is not None:
        os.kill(variant.gateway.pid, signal.SIGUSR1)  # start profiling
    emails_before = len(variant.smtp.received)
    cpu_before = variant.gateway.cpu_seconds()
    loop_cpu_before = loop_thread_cpu_seconds(variant.gateway.pid)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        t0 = loop.time() + 0.2
        tasks = []
        for i, call in enumerate(calls):
            scheduled = t0 + i / rate
            delay = scheduled - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(call, scheduled)))
        results = await asyncio.gather(*tasks)
        # The CPU window closes once every settled call's receipt has arrived (the outbox's
        # work is part of a webhook's cost): a gateway whose outbox lags would otherwise look
        # cheaper.
        expected = emails_before + sum(
            r["status"] == 200 and r["message"] == "Payment processed successfully"
            for r in results)
        deadline = loop.time() + EMAIL_WAIT
        while len(variant.smtp.received) < expected and loop.time() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)  # its last transaction (the row marked sent)
    spent = variant.gateway.cpu_seconds() - cpu_before
    variant.cpu_seconds += spent
    variant.round_cpu_ms.append(1000 * spent / max(1, len(calls)))
    loop_cpu_after = loop_thread_cpu_seconds(variant.gateway.pid)
    variant.loop_cpu_seconds += sum(loop_cpu_after) - sum(loop_cpu_before)
    variant.loop_system_seconds += loop_cpu_after[1] - loop_cpu_before[1]
    if variant.profile is not None:
        os.kill(variant.gateway.pid, signal.SIGUSR1)  # stop and write the stats
    variant.busy_seconds += loop.time() - t0
    for result in results:
        result["round"] = len(variant.round_cpu_ms) - 1
    variant.results.extend(results)
    if profiler is not None:
        await profiler.wait()


def analyse(variant: Variant) -> dict:
    ok = [r for r in variant.results
          if r["status"] == 200 and r["message"] == "Payment processed successfully"]
    failed = [{k: r.get(k) for k in ("status", "message", "error")}
              for r in variant.results if r not in ok]
    e2e = [r["latency_ms"] for r in ok]
    provider = [r["timing"].get("provider", 0.0) for r in ok]
    own = [r["latency_ms"] - r["timing"].get("provider", 0.0) for r in ok]
    handler_own = [r["timing"]["total"] - r["timing"].get("provider", 0.0) for r in ok]
    steps: dict[str, list[float]] = {name: [r["timing"].get(name, 0.0) for r in ok]
                                     for name in STEPS}
    steps["http"] = [r["latency_ms"] - r["timing"]["total"] for r in ok]
    own_mean = sum(own) / len(own) if own else float("nan")
    idle = min(variant.idle_cpu_per_second, default=0.0)
    return {
        "variant": variant.name, "src": str(variant.src), "calls": len(variant.results),
        "settled": len(ok), "failed": failed[:10], "failed_count": len(failed),
        "emails": len(variant.smtp.received),
        "cpu_ms_per_webhook": 1000 * variant.cpu_seconds / max(1, len(variant.results)),
        "idle_cpu_ms_per_second": 1000 * idle,
        "cpu_ms_per_webhook_by_round": variant.round_cpu_ms,
        # the first round also pays one-off costs (first email: its libraries imported, its
        # templates compiled), which a p99 over few calls shows
        "own_p99_ms_by_round": [
            percentile([o for o, r in zip(own, ok, strict=True) if r.get("round") == i], 99)
            for i in range(len(variant.round_cpu_ms))],
        "loop_thread_cpu_ms_per_webhook":
        1000 * variant.loop_cpu_seconds / max(1, len(variant.results)),
        "loop_thread_system_cpu_ms_per_webhook":
        1000 * variant.loop_system_seconds / max(1, len(variant.results)),
        "cpu_ms_per_webhook_net": 1000 * (variant.cpu_seconds - idle * variant.busy_seconds)
        / max(1, len(variant.results)),
        "end_to_end": summary(e2e), "provider": summary(provider), "own": summary(own),
        "own_in_handler": summary(handler_own),
        "send_lag": summary([r["send_lag_ms"] for r in ok]),
        "steps": {name: {**summary(values), "share_of_own":
                         (sum(values) / len(values)) / own_mean if values else float("nan")}
                  for name, values in steps.items()},
    }


async def part_webhook(peer: LNbitsPeer, *, rate: float, seconds: float, rounds: int,
                       baseline: str | None, postgres: str | None,
                       py_spy: str | None = None, cprofile: bool = False,
                       instant: bool = False) -> dict:
    sources: list[tuple[str, Path]] = []
    snapshots: list[Path] = []
    if baseline:
        snapshots.append(snapshot_src(baseline).resolve())
        sources.append((f"baseline ({baseline})", src_path()))
    snapshots.append(snapshot_src(None).resolve())
    sources.append(("working tree", src_path()))
    workdir = Path(tempfile.mkdtemp(prefix="lngate-bench-webhook-"))
    databases: list[str] = []
    variants = []
    for i, (name, src) in enumerate(sources):
        if postgres:
            database = f"lngate_bench_webhook_{i}"
            await _recreate_database(postgres, database)
            databases.append(database)
            url = postgres.rsplit("/", 1)[0] + "/" + database
        else:
            url = f"sqlite:///{workdir / f'gateway-{i}.sqlite3'}"
        variants.append(Variant(name, src, url))
    if cprofile:  # the working tree's gateway; each replay rewrites it: the last one stays
        variants[-1].profile = RESULTS_DIR / "webhook-cprofile.pstats"
        RESULTS_DIR.mkdir(exist_ok=True)
    per_round = int(rate * seconds)
    capture = WebhookCapture()
    await capture.start()
    upstream = await asyncio.to_thread(Upstream, 1, 1, workdir) if instant else None
    try:
        fund(peer, 10 * per_round * rounds * len(variants) + 1000)
        for variant in variants:
            log(f"webhook: set-up of {variant.name}: {per_round * rounds} orders paid at LNbits")
            await prepare(variant, peer, capture, per_round * rounds, upstream)
        await asyncio.sleep(2.0)  # the last set-up work (LNbits' webhook retries) settles down
        load = []
        for r in range(rounds):
            order = variants if r % 2 == 0 else variants[::-1]
            for variant in order:
                calls = variant.calls[variant.replayed:variant.replayed + per_round]
                variant.replayed += len(calls)
                load.append(loadavg())
                log(f"  round {r + 1}: {variant.name}, {len(calls)} webhooks at {rate:g}/s")
                profile = None
                if py_spy and variant is variants[-1]:
                    profile = (py_spy, str(RESULTS_DIR / f"webhook-profile-round{r + 1}.txt"))
                await replay(variant, calls, rate, profile)
                await asyncio.sleep(1.5)  # its emails leave before the next variant runs
        await asyncio.sleep(2.0)
        return {"rate": rate, "seconds_per_round": seconds, "rounds": rounds,
                "upstream": "instant" if instant else "lnbits",
                "database": "postgresql" if postgres else "sqlite", "load_during": load,
                "variants": [analyse(v) for v in variants]}
    finally:
        await capture.stop()
        if upstream is not None:
            upstream.stop()
        for variant in variants:
            if variant.gateway is not None:
                variant.gateway.stop()
                RESULTS_DIR.mkdir(exist_ok=True)  # its log, for what went wrong
                shutil.copy(variant.gateway.workdir / "gateway.log",
                            RESULTS_DIR / f"webhook-gateway-{variants.index(variant)}.log")
                variant.gateway.cleanup()
            variant.smtp.stop()
        for database in databases:
            await _drop_database(postgres or "", database)
        shutil.rmtree(workdir, ignore_errors=True)
        for snapshot in snapshots:
            shutil.rmtree(snapshot, ignore_errors=True)
        cleanup_src()


async def _recreate_database(admin_url: str, name: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def part_reconciler(peer: LNbitsPeer, pending: int, concurrency: list[int]) -> dict:
    """One pass over ``pending`` invoices at LNbits, then at the in-memory test provider (the
    gateway's own ceiling: lookups cost nothing there)."""
    from sqlalchemy import update

    from lngate.bootstrap import build_gateway, utcnow
    from lngate.domain import Product
    from lngate.services.orders import Customer, OrderRequest, create_order
    from lngate.services.reconciler import ReconcilerConfig, reconcile_once
    from lngate.settings import Settings
    from lngate.store.tables import invoices

    import structlog

    from lngate.logconfig import configure_logging

    # The gateway's own log lines, as in production (JSON), to a file instead of the terminal.
    configure_logging(verbose=False, fmt="json")
    log_path = Path(tempfile.mkdtemp(prefix="lngate-bench-reconcile-")) / "gateway.log"
    log_file = open(log_path, "w")  # noqa: SIM115 - open for the whole run
    structlog.configure(logger_factory=structlog.WriteLoggerFactory(log_file))
    results = []
    for provider in ("lnbits", "test"):
        workdir = Path(tempfile.mkdtemp(prefix="lngate-bench-reconcile-"))
        values: dict = {"database_url": f"sqlite:///{workdir / 'gateway.sqlite3'}",
                        "email_folder": workdir / "mail"}
        if provider == "lnbits":
            values.update(lnbits_endpoint=peer.url, lnbits_invoice_key=peer.merchant_inkey,
                          lnbits_node_pubkey=fake_wallet_payee_pubkey(),
                          lightning_test_mode=False)
        else:
            values.update(lightning_test_mode=True)
        gateway = await build_gateway(Settings(_env_file=None, **values))  # type: ignore[call-arg]
        try:
            assert gateway.orders is not None and gateway.settler is not None
            log(f"reconciler ({provider}): issuing {pending} pending invoices")
            semaphore = asyncio.Semaphore(8)

            async def one(i: int) -> None:
                async with semaphore:
                    await create_order(OrderRequest(
                        product=Product.DAZPAY, amount_sat=1 + i % 10,
                        customer=Customer(email=f"p{i}@example.com")), gateway.orders)

            await asyncio.gather(*(one(i) for i in range(pending)))
            for level in concurrency:
                async with gateway.db.transaction() as conn:  # every invoice due again
                    await conn.execute(update(invoices).values(next_check_at=None))
                # one pass over all of them: no first-check delay, no cap, a lease long enough
                config = ReconcilerConfig(interval=3600, batch_size=pending, concurrency=level,
                                          late_margin=timedelta(hours=1),
                                          first_check=timedelta(0), lookups_per_second=0,
                                          lease=timedelta(hours=1))
                report = await reconcile_once(db=gateway.db, settle=gateway.settler.settle,
                                              clock=utcnow, config=config)
                results.append({"provider": provider, "concurrency": level,
                                "checked": report.checked, "seconds": report.seconds,
                                "per_second": report.per_second,
                                "outcomes": dict(report.outcomes)})
                log(f"  {provider}, concurrency {level}: {report.checked} checked in "
                    f"{report.seconds:.2f} s = {report.per_second:.0f}/s {dict(report.outcomes)}")
        finally:
            await gateway.aclose()
    return {"pending": pending, "passes": results}


def print_tables(result: dict) -> None:
    if "webhook" in result:
        w = result["webhook"]
        look_up = ("the instantaneous upstream (answers LNbits gave)"
                   if w.get("upstream") == "instant" else "the real LNbits")
        print(f"\nWebhook -> verified -> settled -> email queued, {w['database']}, "
              f"verification look-ups to {look_up}, "
              f"{w['rate']:g} webhooks/s open loop, {w['rounds']} round(s) of "
              f"{w['seconds_per_round']:g} s per variant, interleaved; ms from the scheduled "
              f"send time; load average at each round: {', '.join(w['load_during'])}")
        for v in w["variants"]:
            print(f"\n{v['variant']}: {v['settled']} of {v['calls']} calls settled, "
                  f"{v['emails']} emails, {v['cpu_ms_per_webhook']:.2f} ms gateway CPU per "
                  f"webhook ({v['cpu_ms_per_webhook_net']:.2f} without the "
                  f"{v['idle_cpu_ms_per_second']:.0f} ms/s it burns idle; the event loop's "
                  f"thread: {v.get('loop_thread_cpu_ms_per_webhook', float('nan')):.2f}, "
                  f"{v.get('loop_thread_system_cpu_ms_per_webhook', float('nan')):.2f} of it "
                  "in the kernel; by round: "
                  + ", ".join(f"{ms:.2f}" for ms in v.get("cpu_ms_per_webhook_by_round", []))
                  + "; own work p99 by round: "
                  + ", ".join(f"{ms:.1f} ms" for ms in v.get("own_p99_ms_by_round", []))
                  + ")" + (f", failures: {v['failed']}" if v["failed_count"] else ""))
            print(f"{'':<34} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8} {'mean':>8} "
                  f"{'share':>6}")
            rows = [("end to end (from schedule)", v["end_to_end"], None),
                    ("  provider look-up (GET)", v["provider"], None),
                    ("  gateway's own work", v["own"], None),
                    ("  own work inside the handler", v["own_in_handler"], None)]
            rows += [(f"    step: {name}", s, s["share_of_own"])
                     for name, s in v["steps"].items() if name != "provider"]
            for name, s, share in rows:
                share_text = f"{100 * share:>5.0f}%" if share is not None else ""
                print(f"{name:<34} {s['p50']:>8.2f} {s['p90']:>8.2f} {s['p99']:>8.2f} "
                      f"{s['max']:>8.2f} {s['mean']:>8.2f} {share_text:>6}")
    if "reconciler" in result:
        r = result["reconciler"]
        print(f"\nReconciler: one pass over {r['pending']} pending invoices (SQLite)")
        print(f"{'provider':<10} {'concurrency':>11} {'checked':>8} {'seconds':>8} "
              f"{'invoices/s':>11}")
        for p in r["passes"]:
            print(f"{p['provider']:<10} {p['concurrency']:>11} {p['checked']:>8} "
                  f"{p['seconds']:>8.2f} {p['per_second']:>11.0f}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("webhook", "reconciler", "all"), default="all")
    parser.add_argument("--rate", type=float, default=50.0, help="webhooks per second")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="seconds of webhooks per round and variant")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--baseline", default=None, metavar="REF",
                        help="also run the gateway's src/ at this git ref, interleaved")
    parser.add_argument("--postgres", default=None, metavar="URL",
                        help="run the webhook part on PostgreSQL: a server URL whose user may "
                        "create databases (fresh ones are created and dropped)")
    parser.add_argument("--py-spy", default=None, metavar="PATH",
                        help="py-spy executable: profile the working tree's gateway during its "
                        "replays (raw folded stacks under benchmarks/results/)")
    parser.add_argument("--cprofile", action="store_true",
                        help="cProfile the working tree's gateway (its event loop thread, "
                        "counting that thread's CPU) during its last replay: "
                        "benchmarks/results/webhook-cprofile.pstats")
    parser.add_argument("--upstream", choices=("lnbits", "instant"), default="lnbits",
                        help="where the timed verification look-ups go: the real LNbits, or "
                        "an instantaneous double answering what LNbits said for those invoices "
                        "(the set-up always uses LNbits)")
    parser.add_argument("--pending", type=int, default=500)
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1, 4, 16, 32])
    args = parser.parse_args()
    peer = LNbitsPeer(log=log)
    peer.launch()
    result: dict = {"machine": machine_info(), "load_before": loadavg()}
    try:
        if args.part in ("webhook", "all"):
            result["webhook"] = await part_webhook(
                peer, rate=args.rate, seconds=args.seconds, rounds=args.rounds,
                baseline=args.baseline, postgres=args.postgres, py_spy=args.py_spy,
                cprofile=args.cprofile, instant=args.upstream == "instant")
        if args.part in ("reconciler", "all"):
            result["reconciler"] = await part_reconciler(peer, args.pending, args.concurrency)
    finally:
        peer.close()
    result["load_after"] = loadavg()
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"webhook-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print_tables(result)
    print(f"\nload average before/after: {result['load_before']}/{result['load_after']}; "
          f"raw results: {out.relative_to(REPO)}")


if __name__ == "__main__":
    asyncio.run(main())
