"""The chaos run in the default suite: 200 orders paid through three gateways behind nginx
while instances are SIGKILLed and restarted, LNbits restarts, and webhooks are lost, repeated
and delayed. The scenario and what it checks are in tests/deployment/chaos.py; the 1,000-payment
run is ``benchmarks/chaos.py``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.deployment.chaos import ChaosPlan, run_chaos, summary
from tests.deployment.cluster import postgres_database
from tests.peers.lnbits_peer import LNbitsPeer
from tests.peers.smtp_peer import SMTPPeer

pytestmark = [pytest.mark.chaos, pytest.mark.lnbits, pytest.mark.postgres, pytest.mark.nginx]


async def test_every_payment_settles_once_through_kills_restarts_and_lost_webhooks(
        tmp_path: Path, lnbits_peer: LNbitsPeer, smtp: SMTPPeer, nginx_available: str,
        progress: Callable[[str], None]) -> None:
    """Every paid order is settled exactly once and mailed once, no unpaid order is, clients
    see no 5xx but a killed instance's in-flight POSTs and "no provider" while LNbits is down,
    and the LNbits outage raises one alert per rule and resolves it once."""
    plan = ChaosPlan(payments=200, unpaid=20, kills=3)
    with postgres_database("lngate_chaos") as database_url:
        report = await run_chaos(plan, folder=tmp_path, lnbits=lnbits_peer, smtp=smtp,
                                 database_url=database_url, progress=progress)
    progress("\n" + summary(report))
    failed = [check for check in report.checks() if not check.ok]
    assert not failed, summary(report)
