"""The statistics API's figures on seeded data (SQLite and PostgreSQL), against expectations
computed by hand: invoices created and paid, conversion, revenue, median time to pay, and
provider calls, latency percentiles and errors, from roll-ups and raw calls alike."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest

from lngate.domain import InvoiceState, OrderStatus, Product
from lngate.services.admin_stats import MAX_SPAN, StatsPeriod, StatsPeriodError, statistics
from lngate.services.metrics_queries import refresh_rollups
from lngate.store import Database
from lngate.store.invoices import InvoiceRecord, insert_invoices
from lngate.store.orders import OrderRecord, insert_order
from lngate.store.provider_calls import ProviderCall, insert_calls
from lngate.store.stats import Grouping, InvoiceKey

NOW = datetime(2026, 11, 27, 12, 30, tzinfo=UTC)
H = {h: datetime(2026, 11, 27, h, tzinfo=UTC) for h in range(24)}
_serial = count()


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return H[hour] + timedelta(minutes=minute, seconds=second)


def close(value: float | None, expected: float, tolerance: float = 0.07) -> bool:
    """Within the bucketed percentiles' accuracy (about 6 %)."""
    return value is not None and abs(value - expected) <= tolerance * expected


async def add_invoice(db: Database, provider: str, created: datetime, sats: int, *,
                      paid_after: float | None = None, state: InvoiceState | None = None,
                      is_test: bool = False, product: Product | None = None) -> None:
    payment_hash = hashlib.sha256(f"invoice-{next(_serial)}".encode()).hexdigest()
    paid_at = created + timedelta(seconds=paid_after) if paid_after is not None else None
    state = state or (InvoiceState.PAID if paid_at else InvoiceState.PENDING)
    record = InvoiceRecord(
        payment_hash=payment_hash, provider=provider, provider_ref=payment_hash,
        bolt11="lnbc1seeded", amount_msat=sats * 1000, description="seeded", metadata=None,
        state=state, is_test=is_test, created_at=created,
        expires_at=created + timedelta(hours=1), paid_at=paid_at)
    async with db.transaction() as conn:
        await insert_invoices(conn, [record])
        if product is not None:
            await insert_order(conn, OrderRecord(
                id=payment_hash[:22], product=product, customer={"email": "a@example.com"},
                plan=None, quantity=1, amount_msat=sats * 1000,
                status=OrderStatus.PAID if paid_at else OrderStatus.PENDING,
                payment_hash=payment_hash, metadata=None, created_at=created, paid_at=paid_at))


async def seed_invoices(db: Database) -> None:
    """lnbits: 09:10 paid in 20 s (1,000 sats, DazBox), 09:20 unpaid, 09:40 paid at 10:05
    (1,500 s, 3,000 sats, DazNode), 10:00 paid in 10 s (500), 10:20 paid in 60 s (250),
    10:30 expired; nwc: 09:30 paid in 40 s (2,000, DazBox), 11:15 unpaid; a test invoice
    at 10:10 paid in 5 s (7,777)."""
    await add_invoice(db, "lnbits", at(9, 10), 1000, paid_after=20, product=Product.DAZBOX)
    await add_invoice(db, "lnbits", at(9, 20), 400)
    await add_invoice(db, "lnbits", at(9, 40), 3000, paid_after=1500, product=Product.DAZNODE)
    await add_invoice(db, "lnbits", at(10, 0), 500, paid_after=10)
    await add_invoice(db, "lnbits", at(10, 20), 250, paid_after=60)
    await add_invoice(db, "lnbits", at(10, 30), 999, state=InvoiceState.EXPIRED)
    await add_invoice(db, "nwc", at(9, 30), 2000, paid_after=40, product=Product.DAZBOX)
    await add_invoice(db, "nwc", at(11, 15), 800)
    await add_invoice(db, "test", at(10, 10), 7777, paid_after=5, is_test=True)


def lnbits_calls_at_nine() -> list[ProviderCall]:
    """20 calls made (16 successes: 15 of 100 ms and one of 1 s; two 50 ms failures, a 1.5 s
    timeout, a 100 ms auth failure) and one skipped: p50 100, p95 1,000, p99 1,500 ms."""
    calls = [ProviderCall("lnbits", "create_invoice", at(9, i), 100.0, "success")
             for i in range(15)]
    calls.append(ProviderCall("lnbits", "create_invoice", at(9, 20), 1000.0, "success"))
    calls += [ProviderCall("lnbits", "create_invoice", at(9, 30 + i), 50.0, "failure",
                           "provider_unavailable", "HTTP 502") for i in range(2)]
    calls.append(ProviderCall("lnbits", "create_invoice", at(9, 40), 1500.0, "timeout",
                              "provider_unavailable", "timed out"))
    calls.append(ProviderCall("lnbits", "create_invoice", at(9, 41), 100.0, "failure",
                              "provider_auth_failed", "HTTP 401"))
    calls.append(ProviderCall("lnbits", "create_invoice", at(9, 42), 0.0, "skipped",
                              "circuit_open", "circuit open"))
    return calls


async def seed_calls(db: Database) -> None:
    """lnbits at 9 h (above), nwc: four 300 ms look-ups at 11 h; lnbits: one 200 ms create at
    12:29:45, after the roll-ups' end."""
    calls = lnbits_calls_at_nine()
    calls += [ProviderCall("nwc", "invoice_status", at(11, 5 * i), 300.0, "success")
              for i in range(4)]
    calls.append(ProviderCall("lnbits", "create_invoice", at(12, 29, 45), 200.0, "success"))
    async with db.transaction() as conn:
        await insert_calls(conn, calls)


def period(start: datetime = H[9], end: datetime = NOW,
           grouping: Grouping = Grouping.HOUR) -> StatsPeriod:
    return StatsPeriod.covering(start, end, grouping)


async def run(db: Database, key: InvoiceKey = InvoiceKey.PROVIDER, include_test: bool = False,
              chosen: StatsPeriod | None = None) -> dict[str, Any]:
    return await statistics(db, chosen or period(), key=key, include_test=include_test,
                            now=NOW)


def hour(body: dict[str, Any], h: int) -> dict[str, Any]:
    [found] = [p for p in body["periods"] if p["start"] == f"2026-11-27T{h:02d}:00:00Z"]
    return found


async def test_invoice_figures_per_hour_and_provider(db: Database) -> None:
    """Created, paid (of those created), conversion, payments in the hour, revenue and median
    time to pay, per provider and hour and over the period; test invoices left out."""
    await seed_invoices(db)
    body = await run(db)
    assert body["from"] == "2026-11-27T09:00:00Z" and body["to"] == "2026-11-27T13:00:00Z"
    assert [p["start"][11:13] for p in body["periods"]] == ["09", "10", "11", "12"]
    nine, ten, eleven = hour(body, 9)["invoices"], hour(body, 10)["invoices"], \
        hour(body, 11)["invoices"]
    assert set(nine) == {"lnbits", "nwc"}
    lnbits9 = nine["lnbits"]
    assert (lnbits9["created"], lnbits9["paid"], lnbits9["conversionRate"]) == (3, 2, 66.67)
    assert (lnbits9["payments"], lnbits9["revenueSats"]) == (1, 1000)
    assert close(lnbits9["medianTimeToPaySeconds"], 20)
    assert (nine["nwc"]["created"], nine["nwc"]["paid"], nine["nwc"]["revenueSats"]) == \
        (1, 1, 2000)
    assert close(nine["nwc"]["medianTimeToPaySeconds"], 40)
    lnbits10 = ten["lnbits"]
    assert (lnbits10["created"], lnbits10["paid"], lnbits10["conversionRate"]) == (3, 2, 66.67)
    assert (lnbits10["payments"], lnbits10["revenueSats"]) == (3, 3750)  # 500 + 250 + 3,000
    assert close(lnbits10["medianTimeToPaySeconds"], 60)  # of 10, 60 and 1,500 s
    assert "test" not in ten
    assert eleven["nwc"] == {"created": 1, "paid": 0, "conversionRate": 0.0, "payments": 0,
                             "revenueSats": 0, "medianTimeToPaySeconds": None}
    assert hour(body, 12)["invoices"] == {}
    total = body["total"]
    assert (total["invoices"]["lnbits"]["created"], total["invoices"]["lnbits"]["paid"]) == (6, 4)
    assert total["invoices"]["lnbits"]["revenueSats"] == 4750
    overall = total["overall"]
    assert (overall["created"], overall["paid"], overall["conversionRate"]) == (8, 5, 62.5)
    assert (overall["payments"], overall["revenueSats"]) == (5, 6750)
    assert close(overall["medianTimeToPaySeconds"], 40)  # of 10, 20, 40, 60 and 1,500 s


async def test_invoice_figures_by_product_and_with_test_invoices(db: Database) -> None:
    """Split by product, invoices without an order count as "none"; test invoices count only
    when asked for."""
    await seed_invoices(db)
    body = await run(db, key=InvoiceKey.PRODUCT)
    nine = hour(body, 9)["invoices"]
    assert (nine["dazbox"]["created"], nine["dazbox"]["paid"], nine["dazbox"]["revenueSats"]) \
        == (2, 2, 3000)
    assert (nine["daznode"]["created"], nine["daznode"]["paid"], nine["daznode"]["payments"]) \
        == (1, 1, 0)  # paid at 10:05
    assert hour(body, 10)["invoices"]["daznode"]["revenueSats"] == 3000
    assert nine["none"]["created"] == 1 and nine["none"]["paid"] == 0
    assert body["total"]["overall"]["revenueSats"] == 6750
    with_test = await run(db, include_test=True)
    assert with_test["includesTest"] is True
    assert hour(with_test, 10)["invoices"]["test"]["revenueSats"] == 7777
    assert with_test["total"]["overall"]["revenueSats"] == 6750 + 7777


async def test_provider_figures_from_rollups_and_raw_calls(db: Database) -> None:
    """Provider calls, failures, success rate, latency percentiles and errors by type per hour;
    the same figures whether read from raw calls or from the roll-ups, plus the calls after
    the roll-ups' end."""
    await seed_calls(db)
    before = await run(db)  # no roll-up yet: everything from provider_calls
    assert await refresh_rollups(db, now=NOW) > 0  # rolled up to 12:29:30
    after = await run(db)
    for body in (before, after):
        lnbits = hour(body, 9)["providers"]["lnbits"]
        assert (lnbits["calls"], lnbits["failures"], lnbits["invoiceCreations"]) == (20, 4, 20)
        assert lnbits["successRate"] == 80.0
        assert lnbits["errorsByType"] == {"provider_unavailable": 3, "provider_auth_failed": 1}
        latency = lnbits["latency"]
        assert latency["mean"] == 210.0  # (2*50 + 16*100 + 1000 + 1500) / 20
        assert close(latency["p50"], 100) and close(latency["p95"], 1000)
        assert close(latency["p99"], 1500)
        nwc = hour(body, 11)["providers"]["nwc"]
        assert (nwc["calls"], nwc["failures"], nwc["invoiceCreations"], nwc["successRate"]) == \
            (4, 0, 0, None)
        assert nwc["latency"]["mean"] == 300.0 and close(nwc["latency"]["p50"], 300)
        assert hour(body, 10)["providers"] == {}
        assert hour(body, 12)["providers"]["lnbits"]["calls"] == 1  # the raw 12:29:45 call
        totals = body["total"]["providers"]
        assert (totals["lnbits"]["calls"], totals["nwc"]["calls"]) == (21, 4)
    assert after == before


async def test_daily_grouping_reads_daily_rollups(db: Database) -> None:
    """Grouped by day over three days, with daily roll-ups for the complete days: each day's
    calls and invoices are counted once."""
    calls = []
    for day, n in ((2, 30), (1, 20), (0, 10)):
        moment = H[10] - timedelta(days=day)
        calls += [ProviderCall("lnbits", "create_invoice", moment + timedelta(minutes=i), 100.0,
                               "success") for i in range(n)]
        await add_invoice(db, "lnbits", moment, 100 * n, paid_after=30)
    async with db.transaction() as conn:
        await insert_calls(conn, calls)
    await refresh_rollups(db, now=NOW)
    body = await run(db, chosen=period(H[0] - timedelta(days=2), NOW, Grouping.DAY))
    assert [p["start"] for p in body["periods"]] == [
        "2026-11-25T00:00:00Z", "2026-11-26T00:00:00Z", "2026-11-27T00:00:00Z"]
    assert [p["providers"]["lnbits"]["calls"] for p in body["periods"]] == [30, 20, 10]
    assert [p["invoices"]["lnbits"]["revenueSats"] for p in body["periods"]] == \
        [3000, 2000, 1000]
    assert body["total"]["providers"]["lnbits"]["calls"] == 60


def test_period_is_whole_hours_or_days_and_bounded() -> None:
    """A period covers whole UTC hours (days), must not be empty and is bounded."""
    p = StatsPeriod.covering(at(9, 10), at(11, 0, 1), Grouping.HOUR)
    assert (p.start, p.end) == (H[9], H[12]) and len(p.starts()) == 3
    d = StatsPeriod.covering(at(9, 10), at(9, 20), Grouping.DAY)
    assert (d.start, d.end) == (H[0], H[0] + timedelta(days=1))
    with pytest.raises(StatsPeriodError):
        StatsPeriod.covering(at(9), at(9), Grouping.HOUR)
    with pytest.raises(StatsPeriodError):
        StatsPeriod.covering(at(9), at(9) + MAX_SPAN[Grouping.HOUR] + timedelta(minutes=61),
                             Grouping.HOUR)
    longest = StatsPeriod.covering(at(9, 30), at(9, 30) + MAX_SPAN[Grouping.HOUR], Grouping.HOUR)
    assert len(longest.starts()) == 169  # the last 7 days, in whole hours
    StatsPeriod.covering(at(9), at(9) + MAX_SPAN[Grouping.HOUR] + timedelta(hours=1),
                         Grouping.HOUR)  # the slack for "to" read after "from"
