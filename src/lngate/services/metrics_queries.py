"""Provider metrics from ``provider_calls`` (through hourly roll-ups) and ``health_checks``.

Definitions (per provider over a window, default the last 24 hours, and overall):

- *invoices*: invoice creations attempted through the provider, i.e. ``create_invoice`` calls
  made (successful plus failed or timed out; skipped ones were never sent and are not counted;
  status look-ups and probes are not invoices); successful = the provider issued an invoice that
  passed validation.
- *metrics or none*: a provider with no invoice creation attempted in the window has no
  ProviderMetrics (``None``): the original system's metrics were those of its invoices, and a
  figure such as a mean response time has no value without them. Its probes still give its
  uptime, in its ProviderStatus.
- *success rate*: successful invoices / invoices, in %.
- *average response time*: exact mean duration of the invoice creations, in ms.
- *latency*: every call made (creates and status look-ups), in ms: exact mean; p50, p95 and p99
  estimated from the roll-ups' logarithmic buckets with the nearest-rank definition of
  :mod:`lngate.percentiles` (within one bucket, 12 %, of the exact value, usually within 6 %);
  a histogram whose bucket bounds are bucket boundaries (``le`` in ms, rounded to 0.01).
- *uptime*: healthy probes / probes, in % (``None`` without a probe in the window).
- *errors by type*: failed and timed-out calls by error code.
- *volume*: successful invoices per hour (the last 24 hours of the window) and per UTC day.

Everything before ``rollup_state.rolled_until`` (about a minute ago: roll-ups run every minute,
the current hour partially) is read from the roll-ups, whole days from the daily ones, so a
window that starts inside an hour starts on that hour; later calls and probes are aggregated
from ``provider_calls`` and ``health_checks`` directly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from lngate.percentiles import nearest_rank
from lngate.store import Database
from lngate.store.monitoring import (
    HOUR,
    CallGroup,
    LastError,
    aggregate_hour,
    bucket_upper_ms,
    delete_batch_older_than,
    floor_day,
    floor_hour,
    last_errors,
    latest_health_checks,
    oldest_record,
    plan_per_query,
    probe_counts,
    raw_groups,
    raw_hourly_successes,
    rebuild_days,
    replace_hour,
    raw_latency,
    rolled_groups,
    rolled_latency,
    rolled_probe_counts,
    rolled_successes,
    rolled_until,
    set_rolled_until,
)

log = structlog.get_logger("lngate.metrics")

CREATE = "create_invoice"
HISTOGRAM_BUCKETS = (40, 60, 74, 80, 88, 94, 100, 108, 114, 120)
"""Display histogram bounds as latency-bucket indexes: 1, 10, 50.12, 100, 251.19, 501.19, 1000,
2511.89, 5011.87 and 10000 ms, then +Inf."""
ROLLUP_MARGIN = timedelta(seconds=30)
ROLLUP_OVERLAP = timedelta(hours=1)


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


@dataclass
class CallAggregate:
    """Counts, durations and latency buckets of a set of calls."""

    outcomes: Counter[str] = field(default_factory=Counter)
    invoices: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    buckets: Counter[int] = field(default_factory=Counter)
    duration_sum_ms: float = 0.0
    invoice_duration_sum_ms: float = 0.0
    """Summed duration of the invoice creations made."""
    hourly: Counter[datetime] = field(default_factory=Counter)
    """Successful invoices per hour, for the last 24 hours of the window."""
    daily: Counter[str] = field(default_factory=Counter)
    """Successful invoices per UTC day (``YYYY-MM-DD``)."""

    def add(self, group: CallGroup) -> None:
        """Count one group of calls."""
        self.outcomes[group.outcome] += group.calls
        if group.outcome == "skipped":
            return
        if group.operation == CREATE:
            self.invoices[group.outcome] += group.calls
            self.invoice_duration_sum_ms += group.duration_sum_ms
        if group.outcome != "success":
            self.errors[group.error_type or group.outcome] += group.calls
        self.duration_sum_ms += group.duration_sum_ms

    def merge(self, other: CallAggregate) -> None:
        """Add ``other`` into this aggregate."""
        self.outcomes.update(other.outcomes)
        self.invoices.update(other.invoices)
        self.errors.update(other.errors)
        self.buckets.update(other.buckets)
        self.duration_sum_ms += other.duration_sum_ms
        self.invoice_duration_sum_ms += other.invoice_duration_sum_ms
        self.hourly.update(other.hourly)
        self.daily.update(other.daily)

    @property
    def calls(self) -> int:
        """Calls made (not skipped)."""
        return sum(n for outcome, n in self.outcomes.items() if outcome != "skipped")

    @property
    def invoices_total(self) -> int:
        """Invoice creations attempted: create calls made (successful, failed, timed out)."""
        return sum(self.invoices.values())

    @property
    def invoices_ok(self) -> int:
        """Create calls that returned a valid invoice."""
        return self.invoices["success"]

    def success_rate(self) -> float | None:
        """Successful invoices / invoices, in %."""
        total = self.invoices_total
        return round(100 * self.invoices_ok / total, 2) if total else None

    def mean_ms(self) -> float | None:
        """Exact mean duration of the calls made, in ms."""
        calls = self.calls
        return round(self.duration_sum_ms / calls, 2) if calls else None

    def invoice_mean_ms(self) -> float | None:
        """Exact mean duration of the invoice creations made, in ms."""
        total = self.invoices_total
        return round(self.invoice_duration_sum_ms / total, 2) if total else None

    def percentile_ms(self, q: float) -> float | None:
        """The ``q``-th percentile in ms: the bucket holding the sample of nearest rank (the
        definition of :mod:`lngate.percentiles`), interpolated log-linearly inside it."""
        total = sum(self.buckets.values())
        if not total:
            return None
        rank = nearest_rank(q, total)
        seen = 0
        for bucket in sorted(self.buckets):
            count = self.buckets[bucket]
            if seen + count >= rank:
                upper = bucket_upper_ms(bucket)
                if bucket == 0:
                    return round(upper, 2)
                lower = bucket_upper_ms(bucket - 1)
                # the rank's place among the bucket's samples, each taken at the middle of its
                # share: a lone sample is estimated at the bucket's (geometric) middle, within
                # half a bucket width (about 6 %) of its true value
                fraction = (rank - seen - 0.5) / count
                return round(lower * (upper / lower) ** fraction, 2)
            seen += count
        return round(bucket_upper_ms(max(self.buckets)), 2)

    def histogram(self) -> list[dict[str, Any]]:
        """Calls per latency range: ``[{"le": ms, "count": n}, ..., {"le": None, ...}]``."""
        counts = [0] * (len(HISTOGRAM_BUCKETS) + 1)
        for bucket, n in self.buckets.items():
            index = next((i for i, b in enumerate(HISTOGRAM_BUCKETS) if bucket <= b),
                         len(HISTOGRAM_BUCKETS))
            counts[index] += n
        bounds: list[float | None] = [round(bucket_upper_ms(b), 2) for b in HISTOGRAM_BUCKETS]
        return [{"le": le, "count": n} for le, n in zip([*bounds, None], counts, strict=True)]


@dataclass(frozen=True, slots=True)
class Window:
    """A time window ending now."""

    start: datetime
    end: datetime

    @classmethod
    def last(cls, hours: float, now: datetime) -> Window:
        """The last ``hours`` hours."""
        return cls(now - timedelta(hours=hours), now)

    def body(self) -> dict[str, Any]:
        """JSON of the window."""
        return {"from": _iso(self.start), "to": _iso(self.end),
                "hours": round((self.end - self.start).total_seconds() / 3600, 3)}


async def call_aggregates(
    db: Database, window: Window, provider: str | None = None
) -> tuple[dict[str, CallAggregate], dict[str, tuple[int, int]]]:
    """Per provider, the calls started in ``window`` (roll-ups, then the raw remainder), and
    the ``(probes, healthy probes)`` of the window."""
    recent = floor_hour(window.end - timedelta(hours=24))
    aggregates: dict[str, CallAggregate] = {}

    def of(name: str) -> CallAggregate:
        aggregate = aggregates.get(name)
        if aggregate is None:
            aggregate = aggregates[name] = CallAggregate()
        return aggregate

    def wanted(name: str) -> bool:
        return provider is None or name == provider

    async with db.connect() as conn:
        await plan_per_query(conn)
        until = await rolled_until(conn)
        raw_since = window.start
        if until is not None and until > window.start:
            # The roll-up queries read every provider (a provider filter makes SQLite pick a
            # worse plan); their results are small, so the filter is applied here.
            since_hour = floor_hour(window.start)
            for group in await rolled_groups(conn, since_hour, until):
                if wanted(group.provider):
                    of(group.provider).add(group)
            for name, bucket, n in await rolled_latency(conn, since_hour, until):
                if wanted(name):
                    of(name).buckets[bucket] += n
            for name, start, n in await rolled_successes(conn, CREATE, since_hour, until):
                if wanted(name):
                    of(name).daily[start.date().isoformat()] += n
            for name, hour, n in await rolled_successes(conn, CREATE, max(since_hour, recent),
                                                        until, hourly_only=True):
                if wanted(name):
                    of(name).hourly[hour] += n
            raw_since = until
        for group in await raw_groups(conn, raw_since, provider):
            of(group.provider).add(group)
        for name, bucket, n in await raw_latency(conn, raw_since, provider):
            of(name).buckets[bucket] += n
        for name, hour, n in await raw_hourly_successes(conn, CREATE, raw_since, provider):
            of(name).daily[hour.date().isoformat()] += n
            if hour >= recent:
                of(name).hourly[hour] += n
        probes = await _probe_counts(conn, window, until, provider)
    return aggregates, probes


async def _probe_counts(conn: Any, window: Window, until: datetime | None,
                        provider: str | None) -> dict[str, tuple[int, int]]:
    probes: dict[str, tuple[int, int]] = {}
    raw_since = window.start
    if until is not None and until > window.start:
        probes = {name: counts for name, counts in
                  (await rolled_probe_counts(conn, floor_hour(window.start), until)).items()
                  if provider is None or name == provider}
        raw_since = until
    for name, (total, ok) in (await probe_counts(conn, raw_since, provider)).items():
        before = probes.get(name, (0, 0))
        probes[name] = (before[0] + total, before[1] + ok)
    return probes


async def uptimes(db: Database, window: Window) -> dict[str, float | None]:
    """Per provider, the % of healthy probes in ``window``."""
    async with db.connect() as conn:
        counts = await _probe_counts(conn, window, await rolled_until(conn), None)
    return {name: _uptime(c) for name, c in counts.items()}


def _volume(aggregate: CallAggregate) -> dict[str, Any]:
    return {
        "hourly": [{"hour": _iso(h), "invoices": n} for h, n in sorted(aggregate.hourly.items())],
        "daily": [{"day": d, "invoices": n} for d, n in sorted(aggregate.daily.items())],
    }


def provider_metrics_body(
    name: str, aggregate: CallAggregate, window: Window, *, uptime: float | None,
    last_error: tuple[datetime, str] | None,
) -> dict[str, Any] | None:
    """ProviderMetrics with percentiles, errors by type and volume beside the original fields;
    ``None`` when no invoice creation was attempted through the provider in ``window``."""
    if not aggregate.invoices_total:
        return None
    return {
        "totalInvoices": aggregate.invoices_total,
        "successfulInvoices": aggregate.invoices_ok,
        "failedInvoices": aggregate.invoices_total - aggregate.invoices_ok,
        "averageResponseTime": aggregate.invoice_mean_ms(),
        "uptime": uptime,
        "lastError": last_error[1] if last_error else None,
        "provider": name,
        "successRate": aggregate.success_rate(),
        "lastErrorAt": _iso(last_error[0]) if last_error else None,
        "calls": {"total": aggregate.calls, **{k: aggregate.outcomes.get(k, 0)
                                               for k in ("success", "failure", "timeout",
                                                         "skipped")}},
        "latency": {
            "mean": aggregate.mean_ms(),
            "p50": aggregate.percentile_ms(50),
            "p95": aggregate.percentile_ms(95),
            "p99": aggregate.percentile_ms(99),
            "histogram": aggregate.histogram(),
        },
        "errorsByType": dict(aggregate.errors.most_common()),
        "volume": _volume(aggregate),
        "window": window.body(),
    }


def _uptime(counts: tuple[int, int] | None) -> float | None:
    if not counts or not counts[0]:
        return None
    return round(100 * counts[1] / counts[0], 2)


def _last_error(error: LastError | None) -> tuple[datetime, str] | None:
    if error is None:
        return None
    text = f"{error.error_type}: {error.message}" if error.message else str(error.error_type)
    return error.at, text


async def provider_metrics(
    db: Database, providers: Sequence[str], window: Window
) -> dict[str, dict[str, Any] | None]:
    """ProviderMetrics (or ``None``) of each of ``providers`` (one name: only it is queried)."""
    only = providers[0] if len(providers) == 1 else None
    aggregates, probes = await call_aggregates(db, window, only)
    async with db.connect() as conn:
        errors = await last_errors(conn, providers, window.start)
    return {name: provider_metrics_body(name, aggregates.get(name, CallAggregate()), window,
                                        uptime=_uptime(probes.get(name)),
                                        last_error=_last_error(errors.get(name)))
            for name in providers}


@dataclass(frozen=True, slots=True)
class Stats:
    """Overall figures, each provider's metrics (``None`` without invoices) and uptime."""

    overall: dict[str, Any]
    providers: dict[str, dict[str, Any] | None]
    uptimes: dict[str, float | None]
    last_updated: datetime


async def stats(
    db: Database, providers: Sequence[str], window: Window,
    healthy: dict[str, bool | None],
) -> Stats:
    """OverallStats and every provider's metrics over ``window``.

    OverallStats covers ``providers`` only (calls recorded for others, such as a provider no
    longer configured, are left out), and, as in the original system, its ``successRate`` and
    ``averageResponseTime`` are ``0`` when no invoice was attempted.
    """
    aggregates, probes = await call_aggregates(db, window)
    async with db.connect() as conn:
        errors = await last_errors(conn, providers, window.start)
    total = CallAggregate()
    per_provider = {}
    for name in providers:
        aggregate = aggregates.get(name, CallAggregate())
        total.merge(aggregate)
        per_provider[name] = provider_metrics_body(
            name, aggregate, window, uptime=_uptime(probes.get(name)),
            last_error=_last_error(errors.get(name)))
    listed = [probes.get(name, (0, 0)) for name in providers]
    all_probes = (sum(p[0] for p in listed), sum(p[1] for p in listed))
    success_rate = total.success_rate()
    overall = {
        "totalProviders": len(providers),
        "healthyProviders": sum(1 for name in providers if healthy.get(name)),
        "totalInvoices": total.invoices_total,
        "successRate": success_rate if success_rate is not None else 0.0,
        "averageResponseTime": total.invoice_mean_ms() or 0.0,
        "successfulInvoices": total.invoices_ok,
        "failedInvoices": total.invoices_total - total.invoices_ok,
        "p50": total.percentile_ms(50),
        "p95": total.percentile_ms(95),
        "p99": total.percentile_ms(99),
        "uptime": _uptime(all_probes),
        "errorsByType": dict(total.errors.most_common()),
        "volume": _volume(total),
        "window": window.body(),
    }
    uptimes = {name: _uptime(probes.get(name)) for name in providers}
    return Stats(overall, per_provider, uptimes, window.end)


async def latest_probes(db: Database, providers: Sequence[str]) -> dict[str, Any]:
    """The latest stored probe of each provider (for processes that do not probe themselves)."""
    async with db.connect() as conn:
        return await latest_health_checks(conn, providers)


# ----------------------------------------------------------------------------- roll-ups


async def refresh_rollups(db: Database, *, now: datetime) -> int:
    """Bring the roll-ups up to half a minute ago; returns the roll-up rows written.

    Redoes the hour the previous run stopped in (it was rolled up partially) and the one before
    it (for calls stored late), rolls up every hour since (the current one partially), then the
    days they complete. Each hour is aggregated by a read, then replaced in a short write
    transaction, so SQLite's single writer is never held for long. Idempotent: several
    instances may run it; the last writer of an hour wins with the same rows.
    """
    until = (now - ROLLUP_MARGIN).replace(microsecond=0)
    async with db.connect() as conn:
        done = await rolled_until(conn)
        oldest = await oldest_record(conn) if done is None else None
    if done is not None and done >= until:
        return 0
    if done is not None:
        start = floor_hour(done) - ROLLUP_OVERLAP
    else:
        start = floor_hour(oldest) if oldest is not None else floor_hour(until)
    written = 0
    hour = start
    while hour < until:
        async with db.connect() as conn:
            await plan_per_query(conn)
            rollup = await aggregate_hour(conn, hour, min(hour + HOUR, until))
        async with db.transaction() as conn:
            written += await replace_hour(conn, hour, rollup)
        hour += HOUR
    async with db.transaction() as conn:
        written += await rebuild_days(conn, floor_day(start), floor_day(until))
        await set_rolled_until(conn, until)
    return written


async def delete_older_than(
    db: Database, cutoff: datetime, *, batch: int = 10_000
) -> dict[str, int]:
    """Delete provider calls, their roll-ups and probe results older than ``cutoff``.

    In batches, one transaction each, so a large purge never holds the database for long.
    """
    deleted = {}
    for table in ("provider_calls", "health_checks", "provider_call_rollups",
                  "provider_latency_rollups", "health_check_rollups"):
        total = 0
        while True:
            async with db.transaction() as conn:
                n = await delete_batch_older_than(conn, table, cutoff, batch)
            total += n
            if n < batch or table.endswith("_rollups"):
                break
        deleted[table] = total
    return deleted

