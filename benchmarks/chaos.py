#!/usr/bin/env python3
"""The chaos run at full size: 1,000 payments through 3 gateways behind nginx while they die.

The scenario is the test suite's (``tests/deployment/chaos.py``, run smaller by
``tests/deployment/test_chaos.py``): K ``lngate serve`` instances behind nginx with the shipped
``deploy/nginx/lngate.conf``, one PostgreSQL database (created for the run and dropped after),
the real LNbits 1.6.2, a real SMTP server, a Slack-style alert receiver, and LNbits' webhooks
crossing a proxy that drops 30 %, repeats some 5 times and delays some up to 10 s. Customers
create orders through nginx and pay most of them from LNbits' payer wallet; meanwhile
instances are SIGKILLed and restarted and LNbits is restarted once. It prints progress on
stderr, then the table (payments, settled, emails, duplicates, lost, time to settle p50/p99,
alerts, 5xx seen by clients) and the checks, and exits 1 if any check fails.

Needs nginx (``apt-get install nginx``), PostgreSQL on 127.0.0.1:5432
(``LNGATE_TEST_POSTGRES_URL`` overrides) and Python 3.12 or older for LNbits.

    .venv/bin/python benchmarks/chaos.py                    # 1,000 payments, ~10 min here
    .venv/bin/python benchmarks/chaos.py --payments 200 --unpaid 20 --kills 3
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
from pathlib import Path

from _common import REPO, log, machine_info

sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from tests.deployment.chaos import ChaosPlan, Faults, run_chaos, summary  # noqa: E402
from tests.deployment.cluster import postgres_database  # noqa: E402
from tests.peers.lnbits_peer import LNbitsPeer  # noqa: E402
from tests.peers.smtp_peer import SMTPPeer  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payments", type=int, default=1000, help="orders paid (1000)")
    parser.add_argument("--unpaid", type=int, default=None,
                        help="orders left unpaid (default: a tenth of --payments)")
    parser.add_argument("--instances", type=int, default=3, help="gateway instances (3)")
    parser.add_argument("--kills", type=int, default=3, help="SIGKILL + restart count (3)")
    parser.add_argument("--no-lnbits-restart", action="store_true",
                        help="do not stop and restart LNbits")
    parser.add_argument("--concurrency", type=int, default=6, help="customers at once (6)")
    parser.add_argument("--drop", type=float, default=0.30, help="webhooks dropped (0.30)")
    parser.add_argument("--max-delay", type=float, default=10.0,
                        help="longest webhook delay, s (10)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.payments < 1 or args.instances < 1 or args.kills < 0:
        parser.error("--payments and --instances must be at least 1, --kills at least 0")
    return args


async def main() -> int:
    args = parse_args()
    plan = ChaosPlan(
        payments=args.payments,
        unpaid=args.unpaid if args.unpaid is not None else max(1, args.payments // 10),
        instances=args.instances, kills=args.kills, restart_lnbits=not args.no_lnbits_restart,
        concurrency=args.concurrency, seed=args.seed,
        faults=Faults(drop=args.drop, max_delay=args.max_delay),
        settle_timeout=max(120.0, args.payments * 0.3),
    )
    log(f"machine: {machine_info()}")
    lnbits = LNbitsPeer(log=log, topup_sats=0)
    lnbits.launch()
    smtp = SMTPPeer().start()
    try:
        with tempfile.TemporaryDirectory(prefix="lngate-chaos-") as folder, \
                postgres_database("lngate_chaos") as database_url:
            report = await run_chaos(plan, folder=Path(folder), lnbits=lnbits, smtp=smtp,
                                     database_url=database_url, progress=log)
    finally:
        smtp.stop()
        lnbits.close()
    print(summary(report))
    return 0 if all(check.ok for check in report.checks()) else 1


def _terminated(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the context managers: nothing left running


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminated)
    sys.exit(asyncio.run(main()))
