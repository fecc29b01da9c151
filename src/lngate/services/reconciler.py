"""The reconciler: a lost doorbell costs latency, never a payment.

Webhooks and notifications settle nearly every payment at once; the reconciler asks each
unpaid invoice's provider on a schedule, so a payment whose doorbell never rang settles anyway
(through :meth:`~lngate.services.settlement.Settler.settle`, like every doorbell). What it costs
follows the invoices *due* for a check, not the number pending.

The schedule, per invoice, kept in ``invoices.next_check_at`` (each parameter is a setting)::

    first check    created_at + RECONCILE_FIRST_CHECK_SECONDS (60 s)
    next checks    after a check at age a: a gap of a x (RECONCILE_BACKOFF_FACTOR - 1), at least
                   the first-check delay, at most RECONCILE_MAX_GAP_SECONDS (600 s); with the
                   defaults, checks at 1, 2, 4, 8, 16 minutes, then every 10 minutes
    at expiry      one check at expires_at (settle marks an unpaid invoice expired)
    after expiry   the same gaps, the last at expires_at + RECONCILE_MARGIN_SECONDS (600 s),
                   which catches a payment confirmed late
    then           none. A paid invoice leaves the schedule at once (settling clears it).

A one-hour invoice nobody pays is checked 11 times (at 1, 2, 4, 8, 16, 26, 36, 46, 56, 60 and
70 minutes) where checking every pending invoice every 15 s made about 280 look-ups. A payment
whose webhook was lost is found within one gap: within the first-check delay when it was paid
in the first minute, within RECONCILE_MAX_GAP_SECONDS at worst. A check the provider could not
answer keeps the schedule; the last one is retried every RECONCILE_MAX_GAP_SECONDS until it is
answered, and an invoice still pending after it (an unreadable answer, an amount mismatch) is
kept checking at that pace: nothing is given up unverified.

Passes. At start-up and every RECONCILE_INTERVAL_SECONDS (the leader's ``reconciler`` loop,
:mod:`lngate.tasks.payments`; one reconciler per deployment) a pass claims due invoices in
batches (never-checked invoices first, then by due time): claiming sets ``next_check_at`` to the
next scheduled time, at least RECONCILE_LEASE_SECONDS ahead, so no reconciler, in this process
or another (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), claims it again meanwhile. A pass ends
within its lease: no check starts later than the lease minus the longest a check can take, a
batch is sized to what the rest of the lease allows at the observed look-up rate, and whatever
could not be started is handed back as due for the next pass, which then starts at once.
Look-ups are capped per provider (RECONCILE_LOOKUPS_PER_SECOND, a token bucket), so a backlog
never hammers a provider: behind schedule, checks come later (and, age-based, further apart),
never faster.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from lngate.domain import InvoiceState
from lngate.services.clock import MonotonicClock, WallClock
from lngate.services.settlement import SettleOutcome
from lngate.store import Database
from lngate.store.settlement import (
    DueInvoice,
    claim_for_reconcile,
    finish_final_checks,
    schedule_checks,
)

log = structlog.get_logger("lngate.reconciler")

RELEASED = "released"
"""A claimed invoice whose check could not start within the pass's lease (due again at once)."""
_UNANSWERED = frozenset({SettleOutcome.PROVIDER_UNAVAILABLE.value, "error", RELEASED})


@dataclass(frozen=True, slots=True)
class ReconcilerConfig:
    """When to check each invoice, and how much one pass may do."""

    interval: float = 15.0
    """Seconds between passes (each pass looks for due invoices)."""
    late_margin: timedelta = timedelta(minutes=10)
    """How long after expiry an invoice is still checked (the last check is then)."""
    batch_size: int = 500
    """Most invoices claimed at once."""
    concurrency: int = 16
    """Look-ups in flight at once."""
    lease: timedelta = timedelta(seconds=60)
    """How long a claimed invoice is left alone; a pass ends within it."""
    first_check: timedelta = timedelta(seconds=60)
    """Age of an invoice at its first check."""
    backoff: float = 2.0
    """After a check at age a, the next comes a x (backoff - 1) later (1: a fixed gap)."""
    max_gap: timedelta = timedelta(minutes=10)
    """The longest gap between two checks of an invoice."""
    lookups_per_second: float = 20.0
    """Most look-ups per second at each provider (0: no cap)."""
    check_timeout: float = 5.0
    """The longest one check can take (the router's look-up deadline): no check starts later
    than this before the lease ends."""

    def __post_init__(self) -> None:
        if self.lease.total_seconds() <= self.check_timeout:
            raise ValueError("the lease must be longer than one check can take")
        if self.backoff < 1:
            raise ValueError("backoff must be at least 1")
        if self.max_gap < self.first_check or self.max_gap <= timedelta(0):
            raise ValueError("max_gap must be positive and at least first_check")
        if self.batch_size < 1 or self.concurrency < 1 or self.lookups_per_second < 0:
            raise ValueError("batch_size and concurrency must be positive, the cap not negative")

    def next_check(self, *, created_at: datetime, expires_at: datetime,
                   now: datetime) -> datetime | None:
        """When to check an invoice next after checking it at ``now``; ``None`` when ``now``
        is its last check (expiry plus the late-payment margin)."""
        last = expires_at + self.late_margin
        if now >= last:
            return None
        gap = min(max((now - created_at) * (self.backoff - 1), self.first_check), self.max_gap)
        return min(now + gap, expires_at if now < expires_at else last)


class TokenBucket:
    """At most ``rate`` tokens a second, ``burst`` at once; callers reserve and then wait."""

    def __init__(self, rate: float, *, burst: float | None = None,
                 monotonic: MonotonicClock = time.monotonic) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate)
        self._monotonic = monotonic
        self._tokens = self.capacity
        self._updated = monotonic()

    def reserve(self, *, not_after: float) -> float | None:
        """Take a token: the seconds to wait before using it, or ``None`` (nothing taken) when
        it would only be available after the monotonic time ``not_after``."""
        now = self._monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        wait = 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate
        if now + wait > not_after:
            return None
        self._tokens -= 1
        return wait


class ReconcilerState:
    """What a reconciler keeps from pass to pass: each provider's look-up budget and the
    observed time of a check (which sizes the batches)."""

    def __init__(self, config: ReconcilerConfig) -> None:
        self.config = config
        self.buckets: dict[str, TokenBucket] = {}
        self.check_seconds: float | None = None
        """Moving average of one check's duration."""

    def bucket(self, provider: str) -> TokenBucket | None:
        """The provider's look-up budget (``None``: no cap)."""
        if self.config.lookups_per_second <= 0:
            return None
        bucket = self.buckets.get(provider)
        if bucket is None:
            bucket = self.buckets[provider] = TokenBucket(self.config.lookups_per_second)
        return bucket

    def lookup_rate(self) -> float:
        """Look-ups per second a batch can expect: concurrency over the observed check time,
        within the per-provider cap."""
        cap = self.config.lookups_per_second or float("inf")
        if self.check_seconds is None:
            return cap if cap != float("inf") else float(self.config.batch_size)
        return min(cap, self.config.concurrency / max(self.check_seconds, 1e-4))

    def batch_limit(self, seconds_left: float) -> int:
        """How many invoices to claim when ``seconds_left`` remain to start checks."""
        return max(1, min(self.config.batch_size, int(self.lookup_rate() * seconds_left)))

    def observe(self, seconds: float) -> None:
        """Record one check's duration."""
        previous = self.check_seconds
        self.check_seconds = seconds if previous is None else 0.8 * previous + 0.2 * seconds


@dataclass(slots=True)
class PassReport:
    """What one reconciliation pass did."""

    checked: int = 0
    """Look-ups made (claimed invoices minus those handed back)."""
    released: int = 0
    """Claimed invoices handed back, due at once, because the lease was running out."""
    seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    behind: bool = False
    """The pass ended with invoices still due (the next pass goes on)."""

    @property
    def per_second(self) -> float:
        """Invoices checked per second during the pass."""
        return self.checked / self.seconds if self.seconds > 0 else 0.0


class Settle(Protocol):
    """What the reconciler calls per invoice (``Settler.settle``)."""

    async def __call__(self, payment_hash: str, *, source: str) -> SettleOutcome: ...


async def reconcile_once(
    *, db: Database, settle: Settle, clock: WallClock, config: ReconcilerConfig,
    state: ReconcilerState | None = None,
) -> PassReport:
    """One pass: claim due invoices in batches and settle-check each, within the lease.

    ``state`` carries the look-up budgets and observed check time from pass to pass (a fresh
    one when omitted).
    """
    state = state or ReconcilerState(config)
    report = PassReport()
    started = time.monotonic()
    stop_at = started + config.lease.total_seconds() - config.check_timeout

    async def check(invoice: DueInvoice, due: float) -> str:
        """Settle-check ``invoice`` once its look-up slot (monotonic ``due``) has come."""
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        began = time.monotonic()
        if began > stop_at:
            return RELEASED
        try:
            outcome = await settle(invoice.payment_hash, source="reconciler")
        except Exception:  # one broken invoice must not stop the pass
            log.exception("reconcile_check_failed", payment_hash=invoice.payment_hash)
            return "error"
        finally:
            state.observe(time.monotonic() - began)
        return outcome.value

    async def check_all(claimed: list[DueInvoice]) -> list[str]:
        """Every claimed invoice checked, ``config.concurrency`` at most at once, in the order
        of their look-up slots; the results in the order of ``claimed``.

        The slots are all reserved first, in claim order; then as many workers as checks may
        run at once take the invoices by slot: the checks start as they did with one task per
        invoice behind a semaphore, but a batch of 500 no longer keeps 500 tasks alive.
        """
        results: list[str] = [""] * len(claimed)
        due: dict[int, float] = {}
        for index, invoice in enumerate(claimed):
            if invoice.state is InvoiceState.PAID:  # settled by a path that left it scheduled
                results[index] = SettleOutcome.ALREADY_SETTLED.value
                continue
            bucket = state.bucket(invoice.provider)
            wait = 0.0 if bucket is None else bucket.reserve(not_after=stop_at)
            if wait is None:
                results[index] = RELEASED
            else:
                due[index] = time.monotonic() + wait
        queue = iter(sorted(due, key=due.__getitem__))  # stable: claim order among equals

        async def worker() -> None:
            for index in queue:
                results[index] = await check(claimed[index], due[index])

        await asyncio.gather(*(worker() for _ in range(min(config.concurrency, len(due)))))
        return results

    while True:
        seconds_left = stop_at - time.monotonic()
        if seconds_left <= 0:
            report.behind = True
            break
        limit = state.batch_limit(seconds_left)
        claimed, last_checks = await _claim(db, clock, config, limit)
        if not claimed:
            break
        results = await check_all(claimed)
        await _after_checks(db, clock, config, claimed, results, last_checks)
        for result in results:
            report.outcomes[result] += 1
        released = sum(result == RELEASED for result in results)
        report.released += released
        report.checked += len(claimed) - released
        if released or len(claimed) < limit:
            report.behind = bool(released)
            break
    report.seconds = time.monotonic() - started
    _log_pass(report)
    return report


async def _claim(db: Database, clock: WallClock, config: ReconcilerConfig,
                 limit: int) -> tuple[list[DueInvoice], set[int]]:
    """Claim up to ``limit`` due invoices and schedule their next check; also returns the ids
    of those getting their last check (they keep the lease until it is answered)."""
    now = clock()
    lease_until = now + config.lease
    async with db.transaction() as conn:
        claimed = await claim_for_reconcile(conn, now=now,
                                            unchecked_due_before=now - config.first_check,
                                            lease_until=lease_until, limit=limit)
        plan: list[tuple[int, datetime]] = []
        last_checks: set[int] = set()
        for invoice in claimed:
            when = config.next_check(created_at=invoice.created_at,
                                     expires_at=invoice.expires_at, now=now)
            if when is None or invoice.state is InvoiceState.PAID:
                last_checks.add(invoice.id)
            elif when > lease_until:
                plan.append((invoice.id, when))
        await schedule_checks(conn, plan)
    return claimed, last_checks


async def _after_checks(db: Database, clock: WallClock, config: ReconcilerConfig,
                        claimed: list[DueInvoice], results: list[str],
                        last_checks: set[int]) -> None:
    """Hand back what was not checked, end the schedule of answered last checks, retry the
    unanswered ones later."""
    now = clock()
    due_again: list[tuple[int, datetime]] = []
    finished: list[int] = []
    for invoice, result in zip(claimed, results, strict=True):
        if result == RELEASED:
            due_again.append((invoice.id, now))
        elif invoice.id in last_checks:
            if result in _UNANSWERED:
                due_again.append((invoice.id, now + config.max_gap))
            else:
                finished.append(invoice.id)
    if due_again or finished:
        async with db.transaction() as conn:
            await schedule_checks(conn, due_again)
            await finish_final_checks(conn, finished, retry_at=now + config.max_gap)


def _log_pass(report: PassReport) -> None:
    if not report.checked and not report.released:
        return
    fields = {"checked": report.checked, "seconds": round(report.seconds, 3),
              "per_second": round(report.per_second, 1), **dict(report.outcomes)}
    if report.behind:
        # the schedule asks for more look-ups than the cap and the lease allow
        log.warning("reconcile_behind", **fields)
        return
    # INFO only when the pass changed something: a quiet pass every interval is noise
    changed = report.outcomes["settled"] or report.outcomes["expired"]
    (log.info if changed else log.debug)("reconcile_pass", **fields)

