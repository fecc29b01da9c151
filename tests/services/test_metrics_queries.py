"""Metrics from provider_calls and probes: exact counts, close percentiles, roll-ups, deletion."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from lngate.percentiles import percentile
from lngate.services.metrics_queries import (
    Window,
    delete_older_than,
    provider_metrics,
    refresh_rollups,
    stats,
)
from lngate.store import Database
from lngate.store.monitoring import (
    HealthCheckRow,
    delete_provider_metrics,
    insert_health_checks,
    latency_bucket,
    bucket_upper_ms,
)
from lngate.store.provider_calls import ProviderCall, insert_calls
from lngate.store.tables import (
    health_check_rollups,
    health_checks,
    provider_call_rollups,
    provider_calls,
    provider_latency_rollups,
)

NOW = datetime(2026, 11, 27, 12, 30, tzinfo=UTC)


async def seed(db: Database) -> dict[str, list[float]]:
    """Three days of calls for lnbits and nwc, with known outcomes, and probes."""
    rng = random.Random(7)
    calls: list[ProviderCall] = []
    durations: dict[str, list[float]] = {"lnbits": [], "nwc": []}
    for i in range(3 * 24 * 20):  # every 3 minutes for three days, both providers
        at = NOW - timedelta(minutes=3 * i + 1)
        for name, scale in (("lnbits", 120.0), ("nwc", 600.0)):
            duration = rng.lognormvariate(0, 0.6) * scale
            if i % 10 == 0:
                calls.append(ProviderCall(name, "create_invoice", at, duration, "failure",
                                          "provider_unavailable", "HTTP 502"))
            elif i % 25 == 0:
                calls.append(ProviderCall(name, "create_invoice", at, duration, "timeout",
                                          "provider_unavailable", "timed out"))
            else:
                calls.append(ProviderCall(name, "create_invoice" if i % 2 else "invoice_status",
                                          at, duration, "success"))
            if at >= NOW - timedelta(hours=24):
                durations[name].append(duration)
        if i % 7 == 0:
            calls.append(ProviderCall("lnbits", "create_invoice", at, 0.0, "skipped",
                                      "circuit_open", "circuit open"))
    probes = [HealthCheckRow("lnbits", NOW - timedelta(minutes=m), m % 10 != 0, 5.0)
              for m in range(0, 24 * 60, 1)]
    async with db.transaction() as conn:
        for start in range(0, len(calls), 1000):
            await insert_calls(conn, calls[start:start + 1000])
        await insert_health_checks(conn, probes)
    return durations


async def test_bucket_formula_bounds_its_durations() -> None:
    """Every duration falls in the bucket whose bounds enclose it."""
    for ms in (0.001, 0.01, 0.0101, 1, 49.9, 50.12, 99.99, 100, 100.01, 2500, 10_000, 9e6):
        bucket = latency_bucket(ms)
        assert ms <= bucket_upper_ms(bucket) * (1 + 1e-12)
        assert bucket == 0 or ms > bucket_upper_ms(bucket - 1)


async def test_provider_metrics_are_exact_where_they_can_be(db: Database) -> None:
    """Counts, success rate, means and errors are exact; percentiles within 6 %."""
    durations = await seed(db)
    window = Window.last(24, NOW)
    metrics = (await provider_metrics(db, ["lnbits"], window))["lnbits"]
    assert metrics is not None
    async with db.connect() as conn:
        c = provider_calls.c
        base = (c.provider == "lnbits", c.started_at >= window.start)
        creates = (await conn.execute(select(func.count()).where(
            *base, c.operation == "create_invoice", c.outcome != "skipped"))).scalar_one()
        ok = (await conn.execute(select(func.count()).where(
            *base, c.operation == "create_invoice", c.outcome == "success"))).scalar_one()
        create_mean = (await conn.execute(select(func.avg(c.duration_ms)).where(
            *base, c.operation == "create_invoice", c.outcome != "skipped"))).scalar_one()
        mean = (await conn.execute(select(func.avg(c.duration_ms)).where(
            *base, c.outcome != "skipped"))).scalar_one()
        skipped = (await conn.execute(select(func.count()).where(
            *base, c.outcome == "skipped"))).scalar_one()
    assert metrics["totalInvoices"] == creates
    assert metrics["successfulInvoices"] == ok
    assert metrics["failedInvoices"] == creates - ok
    assert metrics["successRate"] == round(100 * ok / creates, 2)
    assert metrics["averageResponseTime"] == pytest.approx(create_mean, abs=0.01)
    assert metrics["latency"]["mean"] == pytest.approx(mean, abs=0.01)
    assert metrics["calls"]["skipped"] == skipped
    assert metrics["errorsByType"] == {"provider_unavailable": metrics["calls"]["failure"]
                                       + metrics["calls"]["timeout"]}
    assert metrics["lastError"] == "provider_unavailable: HTTP 502"
    for q in (50, 95, 99):
        exact = percentile(durations["lnbits"], q)
        assert metrics["latency"][f"p{q}"] == pytest.approx(exact, rel=0.06)
    histogram = metrics["latency"]["histogram"]
    assert histogram[-1]["le"] is None
    assert sum(b["count"] for b in histogram) == metrics["calls"]["total"]
    under_100 = sum(1 for d in durations["lnbits"] if d <= 100)
    assert sum(b["count"] for b in histogram if b["le"] is not None and b["le"] <= 100) == under_100
    assert metrics["uptime"] == pytest.approx(90.0, abs=0.2)
    assert sum(h["invoices"] for h in metrics["volume"]["hourly"]) == ok
    assert sum(d["invoices"] for d in metrics["volume"]["daily"]) == ok


async def test_rollups_give_the_same_answers(db: Database) -> None:
    """After rolling up, a window on whole hours gives exactly the raw answer."""
    await seed(db)
    window = Window(NOW - timedelta(hours=48, minutes=30), NOW)  # starts on an hour
    raw = await stats(db, ["lnbits", "nwc"], window, {"lnbits": True, "nwc": False})
    written = await refresh_rollups(db, now=NOW)
    assert written > 0
    async with db.connect() as conn:
        rows = sum([(await conn.execute(select(func.count()).select_from(table))).scalar_one()
                    for table in (provider_call_rollups, provider_latency_rollups,
                                  health_check_rollups)])
        daily = (await conn.execute(select(func.count()).select_from(provider_call_rollups)
                                    .where(provider_call_rollups.c.period == "d"))).scalar_one()
    assert rows == written and daily > 0
    rolled = await stats(db, ["lnbits", "nwc"], window, {"lnbits": True, "nwc": False})
    assert rolled.overall == raw.overall
    assert rolled.providers == raw.providers and rolled.uptimes == raw.uptimes
    assert raw.overall["healthyProviders"] == 1 and raw.overall["totalProviders"] == 2
    assert await refresh_rollups(db, now=NOW) == 0  # nothing new to roll up
    later = NOW + timedelta(minutes=2)
    async with db.transaction() as conn:  # two calls in the partially rolled-up hour, one after
        await insert_calls(conn, [
            ProviderCall("nwc", "create_invoice", NOW - timedelta(seconds=20), 50.0, "success"),
            ProviderCall("nwc", "create_invoice", NOW + timedelta(seconds=10), 70.0, "success"),
            ProviderCall("nwc", "create_invoice", later - timedelta(seconds=5), 90.0, "success"),
        ])
    assert await refresh_rollups(db, now=later) > 0
    moved = Window(window.start, later)
    after = await stats(db, ["lnbits", "nwc"], moved, {})
    assert after.providers["nwc"] and raw.providers["nwc"]
    assert after.providers["nwc"]["successfulInvoices"] == (
        raw.providers["nwc"]["successfulInvoices"] + 3)
    assert after.providers["lnbits"] and raw.providers["lnbits"]
    assert after.providers["lnbits"]["totalInvoices"] == raw.providers["lnbits"]["totalInvoices"]


async def test_reset_deletes_one_providers_metrics_only(db: Database) -> None:
    """reset_metrics removes the provider's calls, roll-ups and probes; others stay."""
    await seed(db)
    await refresh_rollups(db, now=NOW)
    async with db.transaction() as conn:
        deleted = await delete_provider_metrics(conn, "lnbits")
    assert deleted["provider_calls"] > 0 and deleted["health_checks"] == 24 * 60
    assert deleted["provider_call_rollups"] > 0
    metrics = await provider_metrics(db, ["lnbits", "nwc"], Window.last(24, NOW))
    assert metrics["lnbits"] is None
    assert metrics["nwc"] is not None and metrics["nwc"]["totalInvoices"] > 0


async def test_retention_deletes_only_old_rows(db: Database) -> None:
    """Calls, roll-ups and probes older than the cutoff go; newer ones stay."""
    await seed(db)
    await refresh_rollups(db, now=NOW)
    cutoff = NOW - timedelta(hours=36)
    deleted = await delete_older_than(db, cutoff, batch=500)  # several batches
    assert deleted["provider_calls"] > 1000
    async with db.connect() as conn:
        oldest = (await conn.execute(select(func.min(provider_calls.c.started_at)))).scalar_one()
        oldest_hour = (await conn.execute(select(func.min(provider_call_rollups.c.hour))
                                          .where(provider_call_rollups.c.period == "h"))
                       ).scalar_one()
        probes = (await conn.execute(select(func.count()).select_from(health_checks))).scalar_one()
    assert oldest >= cutoff
    assert oldest_hour >= cutoff.replace(minute=0)
    assert probes == 24 * 60


async def seed_mixed(db: Database) -> None:
    """lnbits: 3 creates made (2 ok, 1 timed out), 1 skipped, 5 look-ups, 4 probes; nwc: look-ups
    and probes only; gone (no longer configured): 2 creates."""
    at = NOW - timedelta(minutes=30)
    calls = [
        ProviderCall("lnbits", "create_invoice", at, 100.0, "success"),
        ProviderCall("lnbits", "create_invoice", at, 200.0, "success"),
        ProviderCall("lnbits", "create_invoice", at, 600.0, "timeout", "provider_unavailable",
                     "timed out"),
        ProviderCall("lnbits", "create_invoice", at, 0.0, "skipped", "circuit_open", "open"),
        *[ProviderCall("lnbits", "invoice_status", at, 5.0, "success") for _ in range(4)],
        ProviderCall("lnbits", "invoice_status", at, 5.0, "failure", "provider_unavailable",
                     "HTTP 502"),
        *[ProviderCall("nwc", "invoice_status", at, 50.0, "success") for _ in range(3)],
        *[ProviderCall("gone", "create_invoice", at, 10.0, "success") for _ in range(2)],
    ]
    probes = [HealthCheckRow(name, at, True, 3.0) for name in ("lnbits", "nwc") for _ in range(4)]
    async with db.transaction() as conn:
        await insert_calls(conn, calls)
        await insert_health_checks(conn, probes)


async def test_invoices_are_creations_attempted_not_lookups_or_probes(db: Database) -> None:
    """totalInvoices, its split and averageResponseTime count create attempts made only, from
    the raw calls and from the roll-ups alike."""
    await seed_mixed(db)
    window = Window(NOW - timedelta(hours=2), NOW)
    for rolled_up in (False, True):
        if rolled_up:
            assert await refresh_rollups(db, now=NOW) > 0
        result = await stats(db, ["lnbits", "nwc"], window, {"lnbits": True, "nwc": True})
        lnbits = result.providers["lnbits"]
        assert lnbits is not None
        assert (lnbits["totalInvoices"], lnbits["successfulInvoices"],
                lnbits["failedInvoices"]) == (3, 2, 1)
        assert lnbits["averageResponseTime"] == 300.0  # (100 + 200 + 600) / 3: creates only
        assert lnbits["calls"]["total"] == 8 and lnbits["calls"]["skipped"] == 1
        assert lnbits["uptime"] == 100.0
        assert result.overall["totalInvoices"] == 3
        assert result.overall["successRate"] == round(100 * 2 / 3, 2)
        assert result.overall["averageResponseTime"] == 300.0


async def test_a_provider_without_invoices_has_no_metrics(db: Database) -> None:
    """Look-ups and probes alone give no ProviderMetrics (None), but still an uptime."""
    await seed_mixed(db)
    window = Window(NOW - timedelta(hours=2), NOW)
    result = await stats(db, ["lnbits", "nwc"], window, {})
    assert result.providers["nwc"] is None and result.uptimes["nwc"] == 100.0
    assert (await provider_metrics(db, ["nwc"], window))["nwc"] is None


async def test_overall_covers_the_listed_providers_only(db: Database) -> None:
    """Calls of a provider no longer configured are not in OverallStats."""
    await seed_mixed(db)
    window = Window(NOW - timedelta(hours=2), NOW)
    with_gone = await stats(db, ["lnbits", "gone"], window, {})
    without = await stats(db, ["lnbits"], window, {})
    assert with_gone.overall["totalInvoices"] == 5 and without.overall["totalInvoices"] == 3


async def test_overall_without_invoices_is_zero_not_null(db: Database) -> None:
    """With no invoice attempted, OverallStats' successRate and averageResponseTime are 0
    (numbers, as in the original), and every provider's metrics are None."""
    result = await stats(db, ["lnbits", "nwc"], Window.last(24, NOW), {"lnbits": False})
    assert result.overall["totalProviders"] == 2 and result.overall["healthyProviders"] == 0
    assert result.overall["totalInvoices"] == 0
    assert result.overall["successRate"] == 0 and result.overall["averageResponseTime"] == 0
    assert result.providers == {"lnbits": None, "nwc": None}
