"""Business and provider statistics per UTC hour or day (``GET /api/admin/stats``).

For a period cut into hours or days, and split by provider or by product:

- *created*: invoices created in the period; *paid*: how many of those are paid (by now);
  *conversionRate*: paid / created, in %.
- *payments*: invoices paid in the period, *revenueSats* their amount, and
  *medianTimeToPaySeconds* the median time from creation to payment of those.
- per provider: calls made, failures, invoice creations and their success rate, latency mean
  and p50/p95/p99, errors by type (the definitions of :mod:`lngate.services.metrics_queries`).

Provider calls are read from the hourly and daily roll-ups, and only past ``rolled_until``
(about a minute) from ``provider_calls``, so a period over a million calls reads a few thousand
rows. Percentiles, of latency and of time to pay alike, come from the roll-ups' logarithmic
buckets through :meth:`CallAggregate.percentile_ms` (within about 6 %). Test-provider invoices
are left out unless asked for.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lngate.services.metrics_queries import CallAggregate
from lngate.store import Database
from lngate.store.monitoring import (
    CallGroup,
    floor_day,
    floor_hour,
    plan_per_query,
    rolled_until,
)
from lngate.store.stats import (
    Grouping,
    InvoiceKey,
    invoice_cohorts,
    payments,
    raw_call_groups,
    raw_latency,
    rolled_call_groups,
    rolled_latency,
)

MAX_SPAN = {Grouping.HOUR: timedelta(days=7), Grouping.DAY: timedelta(days=92)}
"""The longest period of each grouping (168 hours; 92 days), give or take one hour (day)."""
STEP = {Grouping.HOUR: timedelta(hours=1), Grouping.DAY: timedelta(days=1)}


class StatsPeriodError(ValueError):
    """The period cannot be computed (too long, or empty)."""


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _floor(moment: datetime, grouping: Grouping) -> datetime:
    return floor_hour(moment) if grouping is Grouping.HOUR else floor_day(moment)


@dataclass(frozen=True, slots=True)
class StatsPeriod:
    """Whole UTC hours or days from ``start`` (inclusive) to ``end`` (exclusive)."""

    start: datetime
    end: datetime
    grouping: Grouping

    @classmethod
    def covering(cls, start: datetime, end: datetime, grouping: Grouping) -> StatsPeriod:
        """The whole hours (days) that cover ``[start, end)``; raises :class:`StatsPeriodError`
        when ``start`` is not before ``end`` or ``[start, end)`` is longer than ``MAX_SPAN``
        plus one hour (day)."""
        if start >= end:
            raise StatsPeriodError("'from' must be before 'to'")
        # One period of slack: "from = now - 7 days" must pass, though "to" (now) is read later.
        if end - start > MAX_SPAN[grouping] + STEP[grouping]:
            raise StatsPeriodError(
                f"a period grouped by {grouping.value} lasts at most "
                f"{MAX_SPAN[grouping] // STEP[grouping]} {grouping.value}s")
        first = _floor(start, grouping)
        last = _floor(end, grouping)
        if last < end:
            last += STEP[grouping]
        return cls(first, last, grouping)

    def starts(self) -> list[datetime]:
        """The start of each hour (day)."""
        step, at, found = STEP[self.grouping], self.start, []
        while at < self.end:
            found.append(at)
            at += step
        return found


def default_grouping(start: datetime, end: datetime) -> Grouping:
    """Hours for up to two days, days beyond."""
    return Grouping.HOUR if end - start <= timedelta(hours=48) else Grouping.DAY


@dataclass
class InvoiceFigures:
    """Invoices of one period and key."""

    created: int = 0
    paid: int = 0
    payments: int = 0
    revenue_msat: int = 0
    time_to_pay: Counter[int] = field(default_factory=Counter)
    """Invoices paid in the period, per logarithmic bucket of their seconds to pay."""

    def merge(self, other: InvoiceFigures) -> None:
        """Add ``other`` into these figures."""
        self.created += other.created
        self.paid += other.paid
        self.payments += other.payments
        self.revenue_msat += other.revenue_msat
        self.time_to_pay.update(other.time_to_pay)

    def body(self) -> dict[str, Any]:
        """The JSON of these figures."""
        # The buckets are those of latency; the quantity bucketed here is seconds.
        median = CallAggregate(buckets=self.time_to_pay).percentile_ms(50)
        return {
            "created": self.created,
            "paid": self.paid,
            "conversionRate": round(100 * self.paid / self.created, 2) if self.created else None,
            "payments": self.payments,
            "revenueSats": self.revenue_msat // 1000,
            "medianTimeToPaySeconds": median,
        }


def provider_figures(aggregate: CallAggregate) -> dict[str, Any]:
    """The JSON of one provider's calls (definitions of :mod:`metrics_queries`)."""
    return {
        "calls": aggregate.calls,
        "failures": aggregate.outcomes.get("failure", 0) + aggregate.outcomes.get("timeout", 0),
        "invoiceCreations": aggregate.invoices_total,
        "successRate": aggregate.success_rate(),
        "latency": {"mean": aggregate.mean_ms(), "p50": aggregate.percentile_ms(50),
                    "p95": aggregate.percentile_ms(95), "p99": aggregate.percentile_ms(99)},
        "errorsByType": dict(aggregate.errors.most_common()),
    }


async def _invoice_figures(db: Database, period: StatsPeriod, key: InvoiceKey,
                           include_test: bool) -> dict[tuple[datetime, str], InvoiceFigures]:
    figures: dict[tuple[datetime, str], InvoiceFigures] = defaultdict(InvoiceFigures)
    args: dict[str, Any] = {"start": period.start, "end": period.end,
                            "grouping": period.grouping, "key": key,
                            "include_test": include_test}
    async with db.connect() as conn:
        for at, name, created, paid in await invoice_cohorts(conn, **args):
            figures[at, name].created += created
            figures[at, name].paid += paid
        for at, name, count, amount_msat, histogram in await payments(conn, **args):
            figures[at, name].payments += count
            figures[at, name].revenue_msat += amount_msat
            figures[at, name].time_to_pay.update(histogram)
    return figures


async def _call_aggregates(db: Database,
                           period: StatsPeriod) -> dict[tuple[datetime, str], CallAggregate]:
    """Per (hour or day, provider): the calls, from daily roll-ups for whole days before
    ``rolled_until``'s day, hourly ones up to ``rolled_until``, then ``provider_calls``."""
    aggregates: dict[tuple[datetime, str], CallAggregate] = defaultdict(CallAggregate)
    grouping = period.grouping

    starts: dict[datetime, datetime] = {}

    def start_of(at: datetime) -> datetime:
        start = starts.get(at)
        if start is None:
            start = starts[at] = _floor(at, grouping)
        return start

    def add(groups: Iterable[tuple[datetime, CallGroup]]) -> None:
        for at, group in groups:
            aggregates[start_of(at), group.provider].add(group)

    def add_latency(rows: Iterable[tuple[datetime, str, Counter[int]]]) -> None:
        for at, name, histogram in rows:
            aggregates[start_of(at), name].buckets.update(histogram)

    async with db.connect() as conn:
        await plan_per_query(conn)
        until = await rolled_until(conn)
        raw_since = period.start
        if until is not None and until > period.start:
            hourly_since = period.start
            if grouping is Grouping.DAY:
                days_end = min(period.end, floor_day(until))  # daily rows: complete days only
                if period.start < days_end:
                    span = {"since": period.start, "until": days_end}
                    add(await rolled_call_groups(conn, daily=True, **span))
                    add_latency(await rolled_latency(conn, daily=True, **span))
                hourly_since = max(period.start, floor_day(until))
            hourly_until = min(period.end, until)  # the hour of ``until`` is rolled up to it
            if hourly_since < hourly_until:
                span = {"since": hourly_since, "until": hourly_until}
                add(await rolled_call_groups(conn, daily=False, **span))
                add_latency(await rolled_latency(conn, daily=False, **span))
            raw_since = max(period.start, until)
        if raw_since < period.end:
            add(await raw_call_groups(conn, since=raw_since, until=period.end))
            add_latency(await raw_latency(conn, since=raw_since, until=period.end))
    return aggregates


async def statistics(
    db: Database, period: StatsPeriod, *, key: InvoiceKey, include_test: bool, now: datetime,
) -> dict[str, Any]:
    """The statistics of ``period``: each hour (day), and the whole period."""
    invoices = await _invoice_figures(db, period, key, include_test)
    calls = await _call_aggregates(db, period)
    periods = []
    total_invoices: dict[str, InvoiceFigures] = defaultdict(InvoiceFigures)
    overall = InvoiceFigures()
    total_calls: dict[str, CallAggregate] = defaultdict(CallAggregate)
    invoice_names: dict[datetime, list[str]] = defaultdict(list)
    for at, name in invoices:
        invoice_names[at].append(name)
    provider_names: dict[datetime, list[str]] = defaultdict(list)
    for at, name in calls:
        provider_names[at].append(name)
    for start in period.starts():
        names = sorted(invoice_names.get(start, ()))
        providers = sorted(provider_names.get(start, ()))
        for name in names:
            total_invoices[name].merge(invoices[start, name])
            overall.merge(invoices[start, name])
        for name in providers:
            total_calls[name].merge(calls[start, name])
        periods.append({
            "start": _iso(start),
            "invoices": {name: invoices[start, name].body() for name in names},
            "providers": {name: provider_figures(calls[start, name]) for name in providers},
        })
    return {
        "from": _iso(period.start),
        "to": _iso(period.end),
        "group": period.grouping.value,
        "by": key.value,
        "includesTest": include_test,
        "periods": periods,
        "total": {
            "invoices": {name: total_invoices[name].body() for name in sorted(total_invoices)},
            "overall": overall.body(),
            "providers": {name: provider_figures(total_calls[name])
                          for name in sorted(total_calls)},
        },
        "generatedAt": _iso(now),
    }
