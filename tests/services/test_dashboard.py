"""The dashboard's figures (SQLite and PostgreSQL): activity per hour and per day, open
incidents from the alert history, the latest invoices and orders, the latest load tests, and
a provider card's verdict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lngate.domain import Product
from lngate.services.dashboard import (
    DAYS,
    HOURS,
    LOADTESTS,
    Health,
    ProviderCard,
    activity,
    alerts,
    health_of,
    latest,
    loadtests,
)
from lngate.services.loadtests import record_loadtest
from lngate.store import Database
from lngate.store.loadtests import LoadTestRun
from lngate.store.monitoring import record_alert
from tests.services.test_admin_stats import NOW, add_invoice, at, seed_invoices


async def test_activity_counts_invoices_created_and_revenue_paid_per_hour_and_day(
    db: Database,
) -> None:
    """Per UTC hour (the last 24, the current one last) invoices created, of those paid, and
    the revenue of the invoices paid in that hour; per UTC day the same over 30 days; test
    invoices count only when asked."""
    await seed_invoices(db)
    await add_invoice(db, "lnbits", NOW - timedelta(days=3), 4200, paid_after=30)
    await add_invoice(db, "lnbits", NOW - timedelta(days=40), 9999, paid_after=30)  # too old
    found = await activity(db, now=NOW, include_test=False)
    assert len(found.hourly) == HOURS and len(found.daily) == DAYS
    assert found.hourly[-1].start == at(12) and found.daily[-1].start == at(0)
    hours = {p.start.hour: (p.created, p.paid, p.revenue_sat) for p in found.hourly
             if p.start.date() == NOW.date() and (p.created or p.revenue_sat)}
    # 09: four created (three paid by now), revenue 1,000 + 2,000 paid within 09;
    # 10: three created (two paid), revenue 3,000 (paid at 10:05) + 500 + 250; 11: one unpaid
    assert hours == {9: (4, 3, 3000), 10: (3, 2, 3750), 11: (1, 0, 0)}
    days = {p.start: (p.created, p.paid, p.revenue_sat) for p in found.daily
            if p.created or p.revenue_sat}
    assert days == {at(0): (8, 5, 6750), at(0) - timedelta(days=3): (1, 1, 4200)}
    assert found.created_24h == 8 and found.revenue_24h == 6750
    with_test = await activity(db, now=NOW, include_test=True)
    assert with_test.created_24h == 9 and with_test.revenue_24h == 6750 + 7777


async def test_an_incident_is_open_until_its_resolved_alert(db: Database) -> None:
    """An incident (per rule and provider) is open from its "fired" alert until its
    "resolved" one, and shows with its "fired" alert; the history lists every alert, newest
    first."""
    moments = [NOW + timedelta(minutes=m) for m in range(4)]
    rows = [("unavailable", "lnbits", "fired"), ("failures", "nwc", "fired"),
            ("unavailable", "lnbits", "resolved"), ("slow_response", "lnbits", "fired")]
    async with db.transaction() as conn:
        for moment, (rule, provider, kind) in zip(moments, rows, strict=True):
            await record_alert(conn, rule=rule, provider=provider, kind=kind, message=kind,
                               created_at=moment, details=None)
    found = await alerts(db, limit=3)
    assert [(a.rule, a.provider) for a in found.open] == [("slow_response", "lnbits"),
                                                          ("failures", "nwc")]
    assert [(a.rule, a.kind) for a in found.history] == [
        ("slow_response", "fired"), ("unavailable", "resolved"), ("failures", "fired")]


async def test_latest_lists_the_newest_invoices_and_orders(db: Database) -> None:
    """The latest invoices and orders come newest first, at most ``limit``."""
    base = datetime(2026, 11, 27, 8, tzinfo=UTC)
    for minute in range(5):
        await add_invoice(db, "lnbits", base + timedelta(minutes=minute), 100 + minute,
                          product=Product.DAZPAY if minute % 2 else None)
    found = await latest(db, limit=3)
    assert [i.amount_msat // 1000 for i in found.invoices] == [104, 103, 102]
    assert [r.order.amount_msat // 1000 for r in found.orders] == [103, 101]


async def test_loadtests_lists_the_latest_runs_by_start_newest_first(db: Database) -> None:
    """At most :data:`LOADTESTS` runs, ordered by when they started (not when recorded)."""
    base = datetime(2026, 11, 27, 8, tzinfo=UTC)
    for minute in range(LOADTESTS + 2):
        started = base + timedelta(minutes=(minute * 5) % (LOADTESTS + 2))
        await record_loadtest(db, LoadTestRun(
            started_at=started, scenario=f"run-{started.minute}", rate=10, duration_s=30,
            requests=300, errors=0, p50_ms=10.0, p99_ms=None, passed=minute != 1,
            summary={}), clock=lambda: base)
    found = await loadtests(db)
    assert [r.run.scenario for r in found] == [f"run-{m}" for m in range(LOADTESTS + 1, 1, -1)]
    assert [r.run.scenario for r in found if not r.run.passed] == ["run-5"]


def test_a_card_is_red_when_the_probe_fails_and_amber_when_the_breaker_is_not_closed() -> None:
    """Down: the latest probe failed; degraded: healthy probe but an open or half-open
    breaker; up: healthy and closed; unknown before any probe. Uptime meets the 99.5 % target
    or not."""
    assert health_of(False, "closed") is Health.DOWN
    assert health_of(False, "open") is Health.DOWN
    assert health_of(True, "open") is Health.DEGRADED
    assert health_of(True, "half_open") is Health.DEGRADED
    assert health_of(True, "closed") is Health.UP
    assert health_of(None, "closed") is Health.UNKNOWN
    card = ProviderCard("lnbits", Health.UP, "closed", None, None, None, 99.5, None, None,
                        None, None, 0)
    assert card.meets_target is True
    assert ProviderCard("x", Health.UP, "closed", None, None, None, 99.49, None, None, None,
                        None, 0).meets_target is False
    assert ProviderCard("x", Health.UNKNOWN, "closed", None, None, None, None, None, None,
                        None, None, 0).meets_target is None
