"""Queries of the statistics API, per UTC hour or day: invoices created and paid (from
``invoices``, with ``orders`` for the product), and provider calls per period (from the
roll-ups of :mod:`lngate.store.monitoring`, then ``provider_calls`` past ``rolled_until``).

Latency and time-to-pay distributions come as logarithmic buckets, the roll-ups' own
(:func:`lngate.store.monitoring.bucket_sql`), so percentiles have one definition everywhere.
"""

from __future__ import annotations

import enum
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, String, and_, case, cast, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from lngate.domain import InvoiceState
from lngate.store.monitoring import DAILY, HOURLY, CallGroup, bucket_sql
from lngate.store.tables import (
    invoices,
    orders,
    provider_call_rollups,
    provider_calls,
    provider_latency_rollups,
)

NO_PRODUCT = "none"
"""The product key of invoices without an order (create-invoice API, admin simulations)."""


class Grouping(enum.StrEnum):
    """The length of a statistics period."""

    HOUR = "hour"
    DAY = "day"


class InvoiceKey(enum.StrEnum):
    """What invoice figures are split by."""

    PROVIDER = "provider"
    PRODUCT = "product"


def period_start_sql(dialect: str, moment: Any, grouping: Grouping) -> ColumnElement[Any]:
    """The start of the UTC hour or day of ``moment``, in SQL (text on SQLite)."""
    if dialect == "sqlite":
        pattern = "%Y-%m-%d %H:00:00" if grouping is Grouping.HOUR else "%Y-%m-%d 00:00:00"
        return func.strftime(pattern, moment)
    return func.date_trunc(grouping.value, func.timezone("UTC", moment))


def as_utc(value: Any) -> datetime:
    """A period start read back from :func:`period_start_sql`, as an aware UTC datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def _rows(conn: AsyncConnection, query: Any) -> Any:
    """The result rows of ``query``, typed ``Any`` (the tables' columns carry no types)."""
    return await conn.execute(query)


def _invoice_source(key: InvoiceKey) -> tuple[Any, ColumnElement[Any]]:
    if key is InvoiceKey.PROVIDER:
        return invoices, invoices.c.provider
    joined = invoices.outerjoin(orders, orders.c.payment_hash == invoices.c.payment_hash)
    return joined, func.coalesce(orders.c.product, literal(NO_PRODUCT))


def _test_filter(include_test: bool) -> list[ColumnElement[bool]]:
    return [] if include_test else [invoices.c.is_test.is_(False)]


async def invoice_cohorts(
    conn: AsyncConnection, *, start: datetime, end: datetime, grouping: Grouping,
    key: InvoiceKey, include_test: bool,
) -> list[tuple[datetime, str, int, int]]:
    """``(period, key, invoices created, of which paid)`` for invoices created in
    ``[start, end)``."""
    source, key_sql = _invoice_source(key)
    period = period_start_sql(conn.dialect.name, invoices.c.created_at, grouping)
    paid = func.sum(case((invoices.c.state == InvoiceState.PAID.value, 1), else_=0))
    query = (select(period, key_sql, func.count(), paid).select_from(source)
             .where(invoices.c.created_at >= start, invoices.c.created_at < end,
                    *_test_filter(include_test))
             .group_by(period, key_sql))
    return [(as_utc(p), str(k), int(n), int(m or 0)) for p, k, n, m in await _rows(conn, query)]


def _seconds_to_pay(dialect: str) -> ColumnElement[Any]:
    if dialect == "sqlite":
        return (func.julianday(invoices.c.paid_at) - func.julianday(invoices.c.created_at)) \
            * 86400.0
    return func.extract("epoch", invoices.c.paid_at - invoices.c.created_at)


async def payments(
    conn: AsyncConnection, *, start: datetime, end: datetime, grouping: Grouping,
    key: InvoiceKey, include_test: bool,
) -> list[tuple[datetime, str, int, int, Counter[int]]]:
    """``(period, key, invoices paid, their amount in msat, {bucket: invoices})`` for the
    invoices paid in ``[start, end)``; the histogram is of their seconds from creation to
    payment, in the roll-ups' logarithmic buckets. One pass over the invoices."""
    source, key_sql = _invoice_source(key)
    dialect = conn.dialect.name
    period = period_start_sql(dialect, invoices.c.paid_at, grouping)
    bucket = bucket_sql(dialect, _seconds_to_pay(dialect))
    counted = (select(period.label("period"), key_sql.label("name"), bucket.label("bucket"),
                      func.count().label("n"), func.sum(invoices.c.amount_msat).label("msat"))
               .select_from(source)
               .where(invoices.c.paid_at >= start, invoices.c.paid_at < end,
                      invoices.c.state == InvoiceState.PAID.value, *_test_filter(include_test))
               .group_by(period, key_sql, bucket).subquery())
    query = (select(counted.c.period, counted.c.name, func.sum(counted.c.n),
                    func.sum(counted.c.msat),
                    _histogram_sql(dialect, counted.c.bucket, counted.c.n))
             .group_by(counted.c.period, counted.c.name))
    return [(as_utc(p), str(k), int(n), int(msat or 0), parse_histogram(h))
            for p, k, n, msat, h in await _rows(conn, query)]


def _histogram_sql(dialect: str, bucket: Any, count: Any) -> ColumnElement[Any]:
    """A group's histogram as one text value, ``bucket:count,...``: one row per group instead
    of one per bucket (a week by hour is some 500 rows instead of 20,000)."""
    pair = cast(bucket, String) + literal(":") + cast(count, String)
    if dialect == "sqlite":
        return func.group_concat(pair, ",")
    return func.string_agg(pair, literal(","))


def parse_histogram(text: str | None) -> Counter[int]:
    """The ``{bucket: count}`` of a value made by :func:`_histogram_sql` (each bucket once)."""
    if not text:
        return Counter()
    return Counter({int(bucket): int(count)
                    for bucket, _, count in (pair.partition(":") for pair in text.split(","))})


# ----------------------------------------------------------------------------- provider calls


async def rolled_call_groups(
    conn: AsyncConnection, *, daily: bool, since: datetime, until: datetime,
) -> list[tuple[datetime, CallGroup]]:
    """``(hour or day, call group)`` from the hourly (or daily) roll-ups in ``[since, until)``."""
    r = provider_call_rollups.c
    query = (select(r.hour, r.provider, r.operation, r.outcome, r.error_type, r.calls,
                    r.duration_sum_ms)
             .where(r.period == (DAILY if daily else HOURLY), r.hour >= since, r.hour < until))
    return [(hour, CallGroup(p, o, out, e, int(n), float(s or 0.0)))
            for hour, p, o, out, e, n, s in await _rows(conn, query)]


async def rolled_latency(
    conn: AsyncConnection, *, daily: bool, since: datetime, until: datetime,
) -> list[tuple[datetime, str, Counter[int]]]:
    """``(hour or day, provider, {latency bucket: calls})`` from the roll-ups in ``[since,
    until)``."""
    r = provider_latency_rollups.c
    query = (select(r.hour, r.provider,
                    _histogram_sql(conn.dialect.name, r.latency_bucket, r.calls))
             .where(r.period == (DAILY if daily else HOURLY), r.hour >= since, r.hour < until)
             .group_by(r.hour, r.provider))
    return [(hour, str(p), parse_histogram(h)) for hour, p, h in await _rows(conn, query)]


def _raw_hour(conn: AsyncConnection) -> ColumnElement[Any]:
    return period_start_sql(conn.dialect.name, provider_calls.c.started_at, Grouping.HOUR)


async def raw_call_groups(
    conn: AsyncConnection, *, since: datetime, until: datetime,
) -> list[tuple[datetime, CallGroup]]:
    """``(hour, call group)`` computed from ``provider_calls`` started in ``[since, until)``."""
    c = provider_calls.c
    hour = _raw_hour(conn)
    error_type = func.coalesce(c.error_type, "")
    query = (select(hour, c.provider, c.operation, c.outcome, error_type, func.count(),
                    func.sum(c.duration_ms))
             .where(and_(c.started_at >= since, c.started_at < until))
             .group_by(hour, c.provider, c.operation, c.outcome, error_type))
    return [(as_utc(h), CallGroup(p, o, out, e or "", int(n), float(s or 0.0)))
            for h, p, o, out, e, n, s in await _rows(conn, query)]


async def raw_latency(
    conn: AsyncConnection, *, since: datetime, until: datetime,
) -> list[tuple[datetime, str, Counter[int]]]:
    """``(hour, provider, {latency bucket: calls})`` of the calls made in ``[since, until)``."""
    c = provider_calls.c
    hour = _raw_hour(conn)
    bucket = bucket_sql(conn.dialect.name, c.duration_ms)
    query = (select(hour, c.provider, bucket, func.count())
             .where(c.started_at >= since, c.started_at < until, c.outcome != "skipped")
             .group_by(hour, c.provider, bucket))
    histograms: dict[tuple[datetime, str], Counter[int]] = {}
    for h, p, b, n in await _rows(conn, query):
        histograms.setdefault((as_utc(h), str(p)), Counter())[int(b or 0)] += int(n)
    return [(at, name, histogram) for (at, name), histogram in histograms.items()]
