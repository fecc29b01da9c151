"""The operator dashboard's figures, assembled from what monitoring and the back office keep.

- :func:`provider_cards`: per provider, its latest probe (health), breaker state, latency
  percentiles (p50/p95/p99 of every call), invoice success rate and uptime (healthy probes) over
  the metrics window, measured against :data:`UPTIME_TARGET`;
- :func:`activity`: invoices created (and how many of those are paid) and revenue (invoices
  paid, by time of payment) per UTC hour over the last 24 hours and per UTC day over the last
  30 days;
- :func:`alerts`: the incidents still open (shared by every instance) and the latest alerts;
- :func:`latest`: the latest invoices and orders;
- :func:`loadtests`: the latest ``lngate loadtest`` runs recorded on the gateway.

Each is its own function, so a live view recomputes only what a change touches (a probe: the
providers and alerts; a payment: the activity and the latest invoices and orders).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from lngate.domain import msat_to_sat
from lngate.resilience.breaker import BreakerState
from lngate.services.admin import overview
from lngate.services.loadtests import loadtest_history
from lngate.services.monitoring import Monitoring
from lngate.store import Database
from lngate.store.backoffice import OrderQuery, OrderRow, search_orders
from lngate.store.dashboard import latest_invoices, open_incident_alerts
from lngate.store.invoices import InvoiceRecord
from lngate.store.loadtests import StoredRun
from lngate.store.monitoring import AlertRow, floor_day, floor_hour, recent_alerts
from lngate.store.stats import Grouping, InvoiceKey, invoice_cohorts, payments

UPTIME_TARGET = 99.5
"""The availability each provider is held to, in % of healthy probes."""
HOURS = 24
DAYS = 30
LATEST = 8
HISTORY = 20
LOADTESTS = 10


class Health(enum.StrEnum):
    """What a provider's card says at a glance."""

    UP = "up"
    """The latest probe is healthy and the breaker closed."""
    DEGRADED = "degraded"
    """The latest probe is healthy but the breaker is open or half-open (real calls fail)."""
    DOWN = "down"
    """The latest probe failed."""
    UNKNOWN = "unknown"
    """Not probed yet."""


@dataclass(frozen=True, slots=True)
class ProviderCard:
    """One provider as the dashboard shows it."""

    name: str
    health: Health
    breaker: str
    last_check: datetime | None
    response_ms: float | None
    """Duration of the latest probe."""
    last_error: str | None
    uptime: float | None
    success_rate: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    invoices: int
    """Invoice creations attempted in the window."""

    @property
    def meets_target(self) -> bool | None:
        """Whether the uptime reaches :data:`UPTIME_TARGET` (``None`` without probes)."""
        return None if self.uptime is None else self.uptime >= UPTIME_TARGET


def health_of(healthy: bool | None, breaker: str) -> Health:
    """The card's verdict from the latest probe and the breaker's state."""
    if healthy is None:
        return Health.UNKNOWN
    if not healthy:
        return Health.DOWN
    return Health.UP if breaker == BreakerState.CLOSED.value else Health.DEGRADED


async def provider_cards(monitoring: Monitoring) -> list[ProviderCard]:
    """Every configured provider's card, in priority order."""
    seen = await overview(monitoring)
    cards = []
    for name in monitoring.provider_names:
        status = seen.statuses[name]
        metrics = seen.metrics(name) or {}
        latency = metrics.get("latency") or {}
        last_check = status.get("lastCheck")
        cards.append(ProviderCard(
            name=name,
            health=health_of(status.get("healthy"), status["breaker"]),
            breaker=status["breaker"],
            last_check=datetime.fromisoformat(last_check) if last_check else None,
            response_ms=status.get("responseTime"),
            last_error=status.get("lastError"),
            uptime=seen.stats.uptimes.get(name),
            success_rate=metrics.get("successRate"),
            p50_ms=latency.get("p50"),
            p95_ms=latency.get("p95"),
            p99_ms=latency.get("p99"),
            invoices=metrics.get("totalInvoices", 0),
        ))
    return cards


@dataclass(frozen=True, slots=True)
class Period:
    """One hour or day of activity."""

    start: datetime
    created: int = 0
    """Invoices created in the period."""
    paid: int = 0
    """Of those, how many are paid by now."""
    revenue_sat: int = 0
    """Amount of the invoices paid in the period."""


@dataclass(frozen=True, slots=True)
class Activity:
    """Invoice volume and revenue per hour (the last 24) and per day (the last 30)."""

    hourly: list[Period]
    daily: list[Period]

    @property
    def created_24h(self) -> int:
        """Invoices created over the hourly periods."""
        return sum(p.created for p in self.hourly)

    @property
    def revenue_24h(self) -> int:
        """Revenue (sats) over the hourly periods."""
        return sum(p.revenue_sat for p in self.hourly)


async def _periods(db: Database, starts: list[datetime], step: timedelta, grouping: Grouping,
                   include_test: bool) -> list[Period]:
    created: dict[datetime, int] = dict.fromkeys(starts, 0)
    paid = dict(created)
    revenue_msat = dict(created)
    span: dict[str, Any] = {"start": starts[0], "end": starts[-1] + step, "grouping": grouping,
                            "key": InvoiceKey.PROVIDER, "include_test": include_test}
    async with db.connect() as conn:
        for at, _name, count, of_which_paid in await invoice_cohorts(conn, **span):
            if at in created:
                created[at] += count
                paid[at] += of_which_paid
        for at, _name, _count, amount_msat, _histogram in await payments(conn, **span):
            if at in revenue_msat:
                revenue_msat[at] += amount_msat
    return [Period(at, created[at], paid[at], msat_to_sat(revenue_msat[at])) for at in starts]


async def activity(db: Database, *, now: datetime, include_test: bool) -> Activity:
    """The last :data:`HOURS` UTC hours and :data:`DAYS` UTC days, the current one included."""
    hour, day = timedelta(hours=1), timedelta(days=1)
    first_hour = floor_hour(now) - (HOURS - 1) * hour
    first_day = floor_day(now) - (DAYS - 1) * day
    hourly = await _periods(db, [first_hour + i * hour for i in range(HOURS)], hour,
                            Grouping.HOUR, include_test)
    daily = await _periods(db, [first_day + i * day for i in range(DAYS)], day, Grouping.DAY,
                           include_test)
    return Activity(hourly, daily)


@dataclass(frozen=True, slots=True)
class Alerts:
    """Incidents still open, and the latest alerts (fired or resolved), newest first."""

    open: list[AlertRow]
    history: list[AlertRow]


async def alerts(db: Database, *, limit: int = HISTORY) -> Alerts:
    """The open incidents and the ``limit`` latest alerts."""
    async with db.connect() as conn:
        return Alerts(await open_incident_alerts(conn), await recent_alerts(conn, limit))


@dataclass(frozen=True, slots=True)
class Latest:
    """The latest invoices and orders, newest first."""

    invoices: list[InvoiceRecord]
    orders: list[OrderRow]


async def latest(db: Database, *, limit: int = LATEST) -> Latest:
    """The ``limit`` latest invoices and orders."""
    async with db.connect() as conn:
        return Latest(await latest_invoices(conn, limit=limit),
                      await search_orders(conn, OrderQuery(), after=None, limit=limit))


async def loadtests(db: Database, *, limit: int = LOADTESTS) -> list[StoredRun]:
    """The ``limit`` latest load test runs, newest first (one indexed read: ``started_at``)."""
    return await loadtest_history(db, limit=limit)
