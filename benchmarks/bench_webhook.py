#!/usr/bin/env python3
"""Webhook settlement and reconciler benchmark (issue 4).

Part ``webhook``: the gateway runs as a real server (``python -m lngate serve``, SQLite, SMTP to
a local aiosmtpd) with LNbits 1.6.2 (FakeWallet) as its provider and ``PUBLIC_URL`` pointing at
itself, so LNbits calls its webhook. ``--payments`` DazPay orders are created and paid one after
the other from the peer's payer wallet; LNbits then calls the webhook (twice per payment). The
figure is the gateway's own time per call, measured inside the handler (logged as
``webhook_handled``): from the request reaching the route, through the token check, storing the
event, asking LNbits for the payment (``settle``'s verification), the settlement transaction
(invoice, order, post-payment step, outbox rows) and the event's outcome, to the answer. LNbits'
delay in sending is excluded. First calls (which settle) and duplicate calls (which find the
invoice already paid) are reported separately. Target: p99 <= 50 ms for settling calls.

Part ``reconciler``: ``--pending`` unpaid invoices are issued through LNbits, then one
reconciliation pass checks them all at LNbits through ``settle`` (in-process, the gateway's own
objects); reported as invoices checked per second, for several concurrency levels.

    .venv/bin/python benchmarks/bench_webhook.py                      # both parts
    .venv/bin/python benchmarks/bench_webhook.py --part webhook --payments 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx

from _common import (
    HOST,
    RESULTS_DIR,
    ManagedProcess,
    clean_env,
    free_port,
    loadavg,
    log,
    machine_info,
    percentile,
)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from tests.peers.lnbits_peer import LNbitsPeer, fake_wallet_payee_pubkey  # noqa: E402
from tests.peers.smtp_peer import SMTPPeer  # noqa: E402

SECRET = "bench-webhook-secret-0123456789abcdef"
SHOP = "shop@daznode.test"


def fund(peer: LNbitsPeer, sats: int) -> None:
    status, body = peer.request("PUT", "/users/api/v1/balance", token=peer.super_user_token,
                                json_body={"id": peer.payer_wallet_id, "amount": sats})
    if status not in (200, 201):
        raise RuntimeError(f"funding the payer failed: {status} {body}")


def gateway_env(peer: LNbitsPeer, smtp: SMTPPeer, port: int, database_url: str) -> dict[str, str]:
    return clean_env(
        LNBITS_ENDPOINT=peer.url, LNBITS_INVOICE_KEY=peer.merchant_inkey,
        LNBITS_NODE_PUBKEY=fake_wallet_payee_pubkey(), LIGHTNING_TEST_MODE="false",
        LNBITS_WEBHOOK_SECRET=SECRET, PUBLIC_URL=f"http://{HOST}:{port}",
        SMTP_HOST=HOST, SMTP_PORT=str(smtp.port), SMTP_TLS="none",
        EMAIL_FROM=f"DazNode <{SHOP}>", SHOP_EMAIL=SHOP,
        RECONCILE_INTERVAL_SECONDS="3600", DATABASE_URL=database_url,
        LOG_FORMAT="json", RATE_LIMIT="1000000/second", PYTHONPATH=str(REPO / "src"),
    )


def webhook_entries(log_path: Path) -> list[dict]:
    entries = []
    for line in log_path.read_text(errors="replace").splitlines():
        if '"webhook_handled"' not in line:
            continue
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    return entries


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": percentile(values, 50), "p90": percentile(values, 90),
            "p99": percentile(values, 99), "max": max(values) if values else float("nan")}


async def part_webhook(peer: LNbitsPeer, payments: int, database_url: str | None) -> dict:
    smtp = SMTPPeer().start()
    workdir = Path(tempfile.mkdtemp(prefix="lngate-bench-webhook-"))
    port = free_port()
    proc = ManagedProcess("gateway", [sys.executable, "-m", "lngate", "serve", "--host", HOST,
                                      "--port", str(port)],
                          env=gateway_env(peer, smtp, port, database_url
                                          or f"sqlite:///{workdir / 'gateway.sqlite3'}"),
                          cwd=workdir, log_path=workdir / "gateway.log")
    try:
        async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", timeout=30) as http:
            for _ in range(600):
                try:
                    if (await http.get("/api/check-invoice")).status_code == 400:
                        break
                except httpx.HTTPError:
                    pass
                if not proc.alive():
                    raise RuntimeError(proc.log_tail())
                await asyncio.sleep(0.1)
            fund(peer, 10 * payments + 1000)
            log(f"webhook: {payments} payments through LNbits ({peer.url}) -> gateway :{port}")
            started = time.monotonic()
            order_ids = []
            for i in range(payments):
                created = await http.post("/api/orders", json={
                    "product": "dazpay", "amount": 1 + i % 10,
                    "customer": {"email": f"payer{i}@example.com"}})
                created.raise_for_status()
                order_ids.append(created.json()["order"]["id"])
                await peer.apay(created.json()["invoice"]["payment_request"])
                if (i + 1) % 50 == 0:
                    log(f"  {i + 1} paid")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # the late duplicate copies
                entries = webhook_entries(proc.log_path)  # type: ignore[arg-type]
                if len(entries) >= 2 * payments:
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(1.0)
            entries = webhook_entries(proc.log_path)  # type: ignore[arg-type]
            paid = 0
            for order_id in order_ids:
                order = (await http.get(f"/api/orders/{order_id}")).json()["order"]
                paid += order["status"] == "paid"
            wall = time.monotonic() - started
            emails = len(smtp.received)
    finally:
        proc.stop()
        smtp.stop()
    settled = [e["duration_ms"] for e in entries if e["result"] == "settled"]
    duplicates = [e["duration_ms"] for e in entries if e["result"] == "already_settled"]
    other = [e["result"] for e in entries if e["result"] not in ("settled", "already_settled")]
    first = [e for e in entries if e["result"] == "settled"]
    provider = [e["provider_ms"] for e in first]
    own = [e["duration_ms"] - e["provider_ms"] for e in first]
    return {
        "database": "postgresql" if database_url else "sqlite",
        "payments": payments, "orders_paid": paid, "webhook_calls": len(entries),
        "settling_calls": summary(settled), "duplicate_calls": summary(duplicates),
        "provider_part_of_settling_calls": summary(provider),
        "own_part_of_settling_calls": summary(own),
        "other_results": other, "emails_received": emails, "wall_s": wall,
    }


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
        print(f"\nWebhook -> verified -> settled -> outbox committed (gateway's own time, ms), "
              f"{w['database']}, {w['payments']} payments, {w['webhook_calls']} calls, "
              f"{w['orders_paid']} orders paid, {w['emails_received']} emails")
        print(f"{'calls':<28} {'n':>5} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}")
        for name, key in (("settling (first) calls", "settling_calls"),
                          ("  LNbits' verification GET", "provider_part_of_settling_calls"),
                          ("  the gateway's own work", "own_part_of_settling_calls"),
                          ("duplicate calls", "duplicate_calls")):
            s = w[key]
            print(f"{name:<28} {s['n']:>5} {s['p50']:>8.2f} {s['p90']:>8.2f} {s['p99']:>8.2f} "
                  f"{s['max']:>8.2f}")
        if w["other_results"]:
            print(f"other results: {w['other_results']}")
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
    parser.add_argument("--payments", type=int, default=200)
    parser.add_argument("--pending", type=int, default=500)
    parser.add_argument("--database-url", default=None,
                        help="postgresql://... for the webhook part (default: a SQLite file); "
                        "the database must be empty")
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1, 4, 16, 32])
    args = parser.parse_args()
    peer = LNbitsPeer(log=log)
    peer.launch()
    result: dict = {"machine": machine_info(), "load_before": loadavg()}
    try:
        if args.part in ("webhook", "all"):
            result["webhook"] = await part_webhook(peer, args.payments, args.database_url)
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
