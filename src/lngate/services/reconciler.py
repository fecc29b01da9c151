"""The reconciler: a lost doorbell costs latency, never a payment.

At start-up and every interval (the leader's ``reconciler`` loop, :mod:`lngate.tasks.payments`),
pending invoices (and those expired less than a margin ago, where a late payment can still
surface) are claimed and checked at their issuing provider through
:func:`~lngate.services.settlement.settle`: paid ones settle, unpaid ones past expiry are marked
expired. Claims carry a lease (``claimed_until``), taken with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so even two passes at once (two leaders during a takeover, or ``reconcile_once``
called by hand) never check the same invoice twice in one interval.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

import structlog

from lngate.services.clock import WallClock
from lngate.services.settlement import SettleOutcome
from lngate.store import Database
from lngate.store.settlement import claim_for_reconcile

log = structlog.get_logger("lngate.reconciler")


@dataclass(frozen=True, slots=True)
class ReconcilerConfig:
    """How often and how much to check."""

    interval: float = 15.0
    late_margin: timedelta = timedelta(minutes=10)
    batch_size: int = 500
    concurrency: int = 16
    lease: timedelta | None = None
    """How long a claimed invoice is left alone; defaults to the interval."""


@dataclass(slots=True)
class PassReport:
    """What one reconciliation pass did."""

    checked: int = 0
    seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def per_second(self) -> float:
        """Invoices checked per second during the pass."""
        return self.checked / self.seconds if self.seconds > 0 else 0.0


class Settle(Protocol):
    """What the reconciler calls per invoice (``Settler.settle``)."""

    async def __call__(self, payment_hash: str, *, source: str) -> SettleOutcome: ...


async def reconcile_once(
    *, db: Database, settle: Settle, clock: WallClock, config: ReconcilerConfig
) -> PassReport:
    """Claim due invoices in batches and settle-check each, ``concurrency`` at a time."""
    report = PassReport()
    started = time.perf_counter()
    lease = config.lease or timedelta(seconds=config.interval)
    semaphore = asyncio.Semaphore(config.concurrency)

    async def check(payment_hash: str) -> None:
        async with semaphore:
            try:
                outcome = await settle(payment_hash, source="reconciler")
            except Exception:  # one broken invoice must not stop the pass
                log.exception("reconcile_check_failed", payment_hash=payment_hash)
                report.outcomes["error"] += 1
                return
            report.outcomes[outcome.value] += 1

    while True:
        now = clock()
        async with db.transaction() as conn:
            claimed = await claim_for_reconcile(conn, now=now, late_margin=config.late_margin,
                                                lease_until=now + lease, limit=config.batch_size)
        if not claimed:
            break
        await asyncio.gather(*(check(h) for h in claimed))
        report.checked += len(claimed)
        if len(claimed) < config.batch_size:
            break
    report.seconds = time.perf_counter() - started
    if report.checked:
        # INFO only when the pass changed something: a quiet pass every interval is noise
        changed = report.outcomes["settled"] or report.outcomes["expired"]
        emit = log.info if changed else log.debug
        emit("reconcile_pass", checked=report.checked, seconds=round(report.seconds, 3),
             per_second=round(report.per_second, 1), **dict(report.outcomes))
    return report
