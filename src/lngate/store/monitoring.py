"""Monitoring storage: health probe results, hourly roll-ups of ``provider_calls``, alert history.

Roll-ups
--------
Per provider and period (``"h"``: a UTC hour, ``"d"``: a UTC day), ``provider_call_rollups``
holds the calls and their summed duration per (operation, outcome, error type),
``provider_latency_rollups`` the latency histogram of the calls made, and
``health_check_rollups`` the probes and healthy probes. Latency buckets are logarithmic, 20 per
decade (bucket ``i`` holds durations in ``(b(i-1), b(i)]`` with ``b(i) = 0.01 ms × 10^(i/20)``,
i.e. about 12 % wide), so percentiles read from them are within about 6 % of the exact value.
A metrics query reads a few thousand roll-up rows instead of millions of calls.
``rollup_state.rolled_until`` says how far the roll-ups go; the remainder is aggregated from
``provider_calls`` and ``health_checks`` directly, with the same bucket formula.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy import Integer as SAInteger
from sqlalchemy.ext.asyncio import AsyncConnection

from lngate.store.rows import row_values
from lngate.store.tables import (
    alert_history,
    health_check_rollups,
    health_checks,
    open_incidents,
    provider_call_rollups,
    provider_calls,
    provider_latency_rollups,
    rollup_state,
)
from lngate.store.upsert import insert_ignore

BUCKET_BASE_MS = 0.01
BUCKETS_PER_DECADE = 20
MAX_BUCKET = 200  # 10^8 ms: nothing recorded is slower
FAILED_OUTCOMES = ("failure", "timeout")
ROLLUP_NAME = "provider_calls"
HOUR = timedelta(hours=1)


def latency_bucket(duration_ms: float) -> int:
    """The roll-up bucket of a duration (the same formula as the SQL :func:`_bucket_sql`)."""
    if duration_ms <= BUCKET_BASE_MS:
        return 0
    return min(MAX_BUCKET, math.ceil(BUCKETS_PER_DECADE * math.log10(duration_ms / BUCKET_BASE_MS)))


def bucket_upper_ms(bucket: int) -> float:
    """The upper bound, in ms, of latency bucket ``bucket``."""
    return BUCKET_BASE_MS * 10 ** (bucket / BUCKETS_PER_DECADE)


def floor_hour(moment: datetime) -> datetime:
    """The start of the UTC hour containing ``moment``."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _bucket_sql(dialect: str) -> ColumnElement[Any]:
    return bucket_sql(dialect, provider_calls.c.duration_ms)


def bucket_sql(dialect: str, value: ColumnElement[Any]) -> ColumnElement[Any]:
    """:func:`latency_bucket` of ``value`` in SQL, for any quantity on the same scale."""
    log10 = func.log10 if dialect == "sqlite" else func.log  # PostgreSQL log() is base 10
    return case(
        (value <= BUCKET_BASE_MS, literal(0)),
        else_=cast(func.ceil(BUCKETS_PER_DECADE * log10(value / BUCKET_BASE_MS)), SAInteger),
    )


# ----------------------------------------------------------------------------- health checks


@dataclass(frozen=True, slots=True)
class HealthCheckRow:
    """One stored probe result."""

    provider: str
    checked_at: datetime
    healthy: bool
    response_ms: float
    error: str | None = None
    node_pubkey: str | None = None


async def insert_health_checks(conn: AsyncConnection, rows: Sequence[HealthCheckRow]) -> None:
    """Store probe results (one multi-row insert)."""
    if not rows:
        return
    await conn.execute(insert(health_checks), [
        {"provider": r.provider, "checked_at": r.checked_at, "healthy": r.healthy,
         "response_ms": r.response_ms, "error": r.error and r.error[:500],
         "node_pubkey": r.node_pubkey}
        for r in rows
    ])


async def latest_health_checks(
    conn: AsyncConnection, providers: Sequence[str]
) -> dict[str, HealthCheckRow]:
    """The latest stored probe of each of ``providers`` that has one."""
    latest: dict[str, HealthCheckRow] = {}
    for name in providers:  # one index seek each: (provider, checked_at) backwards
        row = (await conn.execute(
            select(health_checks.c.provider, health_checks.c.checked_at, health_checks.c.healthy,
                   health_checks.c.response_ms, health_checks.c.error,
                   health_checks.c.node_pubkey)
            .where(health_checks.c.provider == name)
            .order_by(health_checks.c.checked_at.desc()).limit(1)
        )).first()
        if row is not None:
            latest[name] = HealthCheckRow(**row._asdict())
    return latest


async def probe_counts(
    conn: AsyncConnection, since: datetime, provider: str | None = None
) -> dict[str, tuple[int, int]]:
    """Per provider: ``(probes, healthy probes)`` since ``since``."""
    healthy = func.sum(case((health_checks.c.healthy, 1), else_=0))
    query = (select(health_checks.c.provider, func.count(), healthy)
             .where(health_checks.c.checked_at >= since).group_by(health_checks.c.provider))
    if provider is not None:
        query = query.where(health_checks.c.provider == provider)
    rows = await conn.execute(query)
    return {str(name): (int(total), int(ok or 0)) for name, total, ok in row_values(rows)}


# ----------------------------------------------------------------------------- roll-ups

HOURLY, DAILY = "h", "d"
DAY = timedelta(days=1)


def floor_day(moment: datetime) -> datetime:
    """The start of the UTC day containing ``moment``."""
    return floor_hour(moment).replace(hour=0)


def rolled_ranges(
    since_hour: datetime, until: datetime
) -> tuple[list[tuple[datetime, datetime]], tuple[datetime, datetime] | None]:
    """Which roll-ups cover ``[since_hour, until)``: hourly ranges, and whole days in between.

    Daily roll-ups exist for every day that ended by ``rolled_until``; a long window reads one
    row group per day instead of 24.
    """
    first_day = since_hour if since_hour == floor_day(since_hour) else floor_day(since_hour) + DAY
    last_day = floor_day(until)
    if first_day >= last_day:
        return [(since_hour, until)], None
    hourly = [(a, b) for a, b in ((since_hour, first_day), (last_day, until)) if a < b]
    return hourly, (first_day, last_day)


_NEVER = datetime(1970, 1, 1, tzinfo=UTC)


def _covering(table: Any) -> ColumnElement[bool]:
    """Rows of ``table`` in two hourly ranges and one daily range given as bound parameters
    (see :func:`_covering_params`); built once per statement, so a query costs no expression
    building."""
    hour = table.c.hour
    p = {name: bindparam(name, type_=hour.type) for name in ("h1a", "h1b", "h2a", "h2b",
                                                            "da", "db")}
    return or_(and_(table.c.period == HOURLY, hour >= p["h1a"], hour < p["h1b"]),
               and_(table.c.period == HOURLY, hour >= p["h2a"], hour < p["h2b"]),
               and_(table.c.period == DAILY, hour >= p["da"], hour < p["db"]))


def _covering_params(since_hour: datetime, until: datetime) -> dict[str, datetime]:
    hourly, daily = rolled_ranges(since_hour, until)
    hourly = [*hourly, (_NEVER, _NEVER)][:2]
    (h1a, h1b), (h2a, h2b) = hourly
    da, db = daily or (_NEVER, _NEVER)
    return {"h1a": h1a, "h1b": h1b, "h2a": h2a, "h2b": h2b, "da": da, "db": db}


_STATEMENTS: dict[str, Any] = {}


def _statement(name: str, build: Callable[[], Any]) -> Any:
    """A statement built once and reused (its SQL is then compiled once, too)."""
    if name not in _STATEMENTS:
        _STATEMENTS[name] = build()
    return _STATEMENTS[name]


async def plan_per_query(conn: AsyncConnection) -> None:
    """On PostgreSQL, plan each statement for its own parameters in this transaction.

    The driver prepares statements, and after five runs PostgreSQL may switch to a generic plan:
    one made while ``started_at >= $1`` covered a whole day (a sequential scan) then serves
    the 90-second remainder too, 100 ms instead of 2 (measured in bench_monitoring.py).
    """
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


async def rolled_until(conn: AsyncConnection) -> datetime | None:
    """The hour before which roll-ups are complete, or ``None`` before the first roll-up."""
    return (await conn.execute(
        select(rollup_state.c.rolled_until).where(rollup_state.c.name == ROLLUP_NAME)
    )).scalar()


async def set_rolled_until(conn: AsyncConnection, until: datetime) -> None:
    """Record that roll-ups are complete up to ``until``."""
    changed = await conn.execute(update(rollup_state).where(rollup_state.c.name == ROLLUP_NAME)
                                 .values(rolled_until=until))
    if changed.rowcount == 0:
        await conn.execute(insert(rollup_state).values(name=ROLLUP_NAME, rolled_until=until))


async def oldest_record(conn: AsyncConnection) -> datetime | None:
    """When the oldest stored provider call or probe happened."""
    calls = (await conn.execute(select(func.min(provider_calls.c.started_at)))).scalar()
    probes = (await conn.execute(select(func.min(health_checks.c.checked_at)))).scalar()
    return min((t for t in (calls, probes) if t is not None), default=None)


ROLLUP_TABLES = (provider_call_rollups, provider_latency_rollups, health_check_rollups)


@dataclass
class HourRollup:
    """The roll-up rows of one hour (or of its first part)."""

    calls: list[dict[str, Any]]
    latency: list[dict[str, Any]]
    probes: list[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.calls) + len(self.latency) + len(self.probes)


async def aggregate_hour(
    conn: AsyncConnection, hour: datetime, end: datetime | None = None
) -> HourRollup:
    """The roll-up rows of the calls and probes in ``[hour, end)`` (``end`` at most the next
    hour; the current hour is rolled up partially). Reads only, so on SQLite the aggregation
    does not hold the writer lock."""
    end = min(end or hour + HOUR, hour + HOUR)
    key = {"period": HOURLY, "hour": hour}
    calls = [
        {**key, "provider": g.provider, "operation": g.operation, "outcome": g.outcome,
         "error_type": g.error_type, "calls": g.calls, "duration_sum_ms": g.duration_sum_ms}
        for g in await raw_groups(conn, hour, None, until=end)]
    latency = [{**key, "provider": p, "latency_bucket": b, "calls": n}
               for p, b, n in await raw_latency(conn, hour, None, until=end)]
    h = health_checks.c
    probe_rows = await conn.execute(
        select(h.provider, func.count(), func.sum(case((h.healthy, 1), else_=0)))
        .where(h.checked_at >= hour, h.checked_at < end).group_by(h.provider))
    probes = [{**key, "provider": p, "probes": int(n), "healthy": int(ok or 0)}
              for p, n, ok in row_values(probe_rows)]
    return HourRollup(calls, latency, probes)


async def replace_hour(conn: AsyncConnection, hour: datetime, rollup: HourRollup) -> int:
    """Replace the hourly roll-ups of ``hour``; returns the rows written."""
    for table, rows in zip(ROLLUP_TABLES, (rollup.calls, rollup.latency, rollup.probes),
                           strict=True):
        await conn.execute(delete(table).where(table.c.period == HOURLY, table.c.hour == hour))
        if rows:
            await conn.execute(insert(table), rows)
    return len(rollup)


async def rebuild_days(conn: AsyncConnection, first_day: datetime, end_day: datetime) -> int:
    """(Re)compute the daily roll-ups of the days in ``[first_day, end_day)`` from the hourly
    ones; returns the rows written."""
    sums = {provider_call_rollups: ("calls", "duration_sum_ms"),
            provider_latency_rollups: ("calls",), health_check_rollups: ("probes", "healthy")}
    written = 0
    day = first_day
    while day < end_day:
        for table, summed in sums.items():
            await conn.execute(delete(table).where(table.c.period == DAILY, table.c.hour == day))
            keys = [c for c in table.c if c.primary_key and c.name not in ("period", "hour")]
            result = await conn.execute(insert(table).from_select(
                [*(c.name for c in keys), "period", "hour", *summed],
                select(*keys, literal(DAILY), literal(day, table.c.hour.type),
                       *(func.sum(table.c[name]) for name in summed))
                .where(table.c.period == HOURLY, table.c.hour >= day, table.c.hour < day + DAY)
                .group_by(*keys)))
            written += max(result.rowcount or 0, 0)
        day += DAY
    return written


@dataclass(frozen=True, slots=True)
class CallGroup:
    """Calls of one provider sharing operation, outcome and error type."""

    provider: str
    operation: str
    outcome: str
    error_type: str
    calls: int
    duration_sum_ms: float


async def rolled_groups(conn: AsyncConnection, since_hour: datetime,
                        until: datetime) -> list[CallGroup]:
    """Call groups of every provider from the roll-ups covering ``[since_hour, until)``."""
    def build() -> Any:
        r = provider_call_rollups.c
        return (select(r.provider, r.operation, r.outcome, r.error_type, func.sum(r.calls),
                       func.sum(r.duration_sum_ms))
                .where(_covering(provider_call_rollups))
                .group_by(r.provider, r.operation, r.outcome, r.error_type))

    rows = await conn.execute(_statement("rolled_groups", build),
                              _covering_params(since_hour, until))
    return [CallGroup(str(p), str(o), str(out), str(e), int(n), float(s or 0.0))
            for p, o, out, e, n, s in row_values(rows)]


async def rolled_latency(conn: AsyncConnection, since_hour: datetime,
                         until: datetime) -> list[tuple[str, int, int]]:
    """``(provider, latency bucket, calls)`` from the roll-ups covering ``[since_hour, until)``."""
    def build() -> Any:
        r = provider_latency_rollups.c
        return (select(r.provider, r.latency_bucket, func.sum(r.calls))
                .where(_covering(provider_latency_rollups))
                .group_by(r.provider, r.latency_bucket))

    rows = await conn.execute(_statement("rolled_latency", build),
                              _covering_params(since_hour, until))
    return [(str(p), int(b), int(n)) for p, b, n in row_values(rows)]


async def raw_groups(conn: AsyncConnection, since: datetime, provider: str | None, *,
                     until: datetime | None = None) -> list[CallGroup]:
    """Call groups computed from ``provider_calls`` started in ``[since, until)``."""
    c = provider_calls.c
    error_type = func.coalesce(c.error_type, "")
    query = (select(c.provider, c.operation, c.outcome, error_type, func.count(),
                    func.sum(c.duration_ms))
             .where(c.started_at >= since)
             .group_by(c.provider, c.operation, c.outcome, error_type))
    if until is not None:
        query = query.where(c.started_at < until)
    if provider is not None:
        query = query.where(c.provider == provider)
    rows = await conn.execute(query)
    return [CallGroup(str(p), str(o), str(out), str(e or ""), int(n), float(s or 0.0))
            for p, o, out, e, n, s in row_values(rows)]


async def raw_latency(conn: AsyncConnection, since: datetime, provider: str | None, *,
                      until: datetime | None = None) -> list[tuple[str, int, int]]:
    """``(provider, latency bucket, calls)`` of the calls made in ``[since, until)``."""
    c = provider_calls.c
    bucket = _bucket_sql(conn.dialect.name)
    query = (select(c.provider, bucket, func.count())
             .where(c.started_at >= since, c.outcome != "skipped")
             .group_by(c.provider, bucket))
    if until is not None:
        query = query.where(c.started_at < until)
    if provider is not None:
        query = query.where(c.provider == provider)
    rows = await conn.execute(query)
    return [(str(p), int(b or 0), int(n)) for p, b, n in row_values(rows)]


async def rolled_successes(
    conn: AsyncConnection, operation: str, since_hour: datetime, until: datetime, *,
    hourly_only: bool = False,
) -> list[tuple[str, datetime, int]]:
    """``(provider, period start, successful calls)`` of ``operation`` from the roll-ups:
    covering ``[since_hour, until)`` (hours and days), or its hours only (``hourly_only``)."""
    def build() -> Any:
        r = provider_call_rollups.c
        return (select(r.provider, r.hour, func.sum(r.calls))
                .where(_covering(provider_call_rollups), r.operation == bindparam("operation"),
                       r.outcome == "success")
                .group_by(r.provider, r.hour))

    if hourly_only:
        params = {"h1a": since_hour, "h1b": until, "h2a": _NEVER, "h2b": _NEVER,
                  "da": _NEVER, "db": _NEVER}
    else:
        params = _covering_params(since_hour, until)
    rows = await conn.execute(_statement("rolled_successes", build),
                              {**params, "operation": operation})
    return [(str(p), h, int(n)) for p, h, n in row_values(rows)]


async def raw_hourly_successes(
    conn: AsyncConnection, operation: str, since: datetime, provider: str | None
) -> list[tuple[str, datetime, int]]:
    """``(provider, hour, successful calls)`` of ``operation`` from ``provider_calls``."""
    c = provider_calls.c
    if conn.dialect.name == "sqlite":
        hour: ColumnElement[Any] = func.strftime("%Y-%m-%d %H:00:00", c.started_at)
    else:
        hour = func.date_trunc("hour", func.timezone("UTC", c.started_at))
    query = (select(c.provider, hour, func.count())
             .where(c.started_at >= since, c.operation == operation, c.outcome == "success")
             .group_by(c.provider, hour))
    if provider is not None:
        query = query.where(c.provider == provider)
    rows: list[tuple[str, datetime, int]] = []
    for name, value, count in row_values(await conn.execute(query)):
        if isinstance(value, str):  # SQLite's strftime
            value = datetime.fromisoformat(value)
        rows.append((str(name), value.replace(tzinfo=UTC), int(count)))
    return rows


async def rolled_probe_counts(
    conn: AsyncConnection, since_hour: datetime, until: datetime
) -> dict[str, tuple[int, int]]:
    """Per provider: ``(probes, healthy probes)`` from the roll-ups covering the range."""
    def build() -> Any:
        r = health_check_rollups.c
        return (select(r.provider, func.sum(r.probes), func.sum(r.healthy))
                .where(_covering(health_check_rollups)).group_by(r.provider))

    rows = await conn.execute(_statement("rolled_probe_counts", build),
                              _covering_params(since_hour, until))
    return {str(name): (int(total), int(ok or 0)) for name, total, ok in row_values(rows)}


@dataclass(frozen=True, slots=True)
class LastError:
    """The latest failed call of a provider."""

    at: datetime
    error_type: str | None
    message: str | None


async def last_errors(
    conn: AsyncConnection, providers: Sequence[str], since: datetime
) -> dict[str, LastError]:
    """The latest failed call of each provider since ``since`` (partial index seek)."""
    c = provider_calls.c
    found: dict[str, LastError] = {}
    for name in providers:
        row = (await conn.execute(
            select(c.started_at.label("at"), c.error_type, c.error_message.label("message"))
            .where(c.provider == name, c.outcome.in_(FAILED_OUTCOMES), c.started_at >= since)
            .order_by(c.started_at.desc()).limit(1)
        )).first()
        if row is not None:
            found[name] = LastError(**row._asdict())
    return found


# ----------------------------------------------------------------------------- deleting


async def delete_provider_metrics(conn: AsyncConnection, provider: str) -> dict[str, int]:
    """Delete every recorded call, roll-up and probe of ``provider``; counts per table."""
    deleted = {}
    for name, table, column in (
        ("provider_calls", provider_calls, provider_calls.c.provider),
        ("provider_call_rollups", provider_call_rollups, provider_call_rollups.c.provider),
        ("provider_latency_rollups", provider_latency_rollups,
         provider_latency_rollups.c.provider),
        ("health_checks", health_checks, health_checks.c.provider),
        ("health_check_rollups", health_check_rollups, health_check_rollups.c.provider),
    ):
        result = await conn.execute(delete(table).where(column == provider))
        deleted[name] = max(result.rowcount or 0, 0)
    return deleted


async def delete_batch_older_than(
    conn: AsyncConnection, table_name: str, cutoff: datetime, batch: int
) -> int:
    """Delete up to ``batch`` rows of ``table_name`` older than ``cutoff``; how many went."""
    rollups = {t.name: t for t in ROLLUP_TABLES}
    if table_name in rollups:
        table = rollups[table_name]
        result = await conn.execute(delete(table).where(or_(
            and_(table.c.period == HOURLY, table.c.hour < floor_hour(cutoff)),
            and_(table.c.period == DAILY, table.c.hour < floor_day(cutoff)))))
        return max(result.rowcount or 0, 0)
    table, column = {
        "provider_calls": (provider_calls, provider_calls.c.started_at),
        "health_checks": (health_checks, health_checks.c.checked_at),
    }[table_name]
    ids = select(table.c.id).where(column < cutoff).limit(batch).scalar_subquery()
    result = await conn.execute(delete(table).where(table.c.id.in_(ids)))
    return max(result.rowcount or 0, 0)


# ----------------------------------------------------------------------------- alert history


@dataclass(frozen=True, slots=True)
class AlertRow:
    """One stored alert (fired or resolved)."""

    id: int
    rule: str
    provider: str
    kind: str
    message: str
    created_at: datetime
    details: dict[str, Any] | None
    deliveries: dict[str, str] | None


async def insert_alert(
    conn: AsyncConnection, *, rule: str, provider: str, kind: str, message: str,
    created_at: datetime, details: dict[str, Any] | None,
) -> int:
    """Store an alert; returns its id."""
    result = await conn.execute(insert(alert_history).values(
        rule=rule, provider=provider, kind=kind, message=message, created_at=created_at,
        details=details,
    ).returning(alert_history.c.id))
    return int(result.scalar_one())


async def record_alert(
    conn: AsyncConnection, *, rule: str, provider: str, kind: str, message: str,
    created_at: datetime, details: dict[str, Any] | None,
) -> int | None:
    """Store an alert unless another instance announced it already; its id, or ``None``.

    A "fired" alert opens the incident of ``(rule, provider)`` (one open incident per pair: a
    second "fired" while it is open is refused); a "resolved" one closes it (refused when no
    incident is open). Call it in a transaction: the alert row and the incident go together.
    """
    if kind == "fired":
        opened = await conn.execute(insert_ignore(conn, open_incidents, ["rule", "provider"])
                                    .values(rule=rule, provider=provider, fired_at=created_at))
        if opened.rowcount != 1:
            return None
    else:
        closed = await conn.execute(delete(open_incidents).where(
            open_incidents.c.rule == rule, open_incidents.c.provider == provider))
        if closed.rowcount != 1:
            return None
    alert_id = await insert_alert(conn, rule=rule, provider=provider, kind=kind, message=message,
                                  created_at=created_at, details=details)
    if kind == "fired":
        await conn.execute(update(open_incidents).where(
            open_incidents.c.rule == rule, open_incidents.c.provider == provider)
            .values(alert_id=alert_id))
    return alert_id


async def announced_incidents(conn: AsyncConnection) -> dict[tuple[str, str], datetime]:
    """The open incidents: ``(rule, provider)`` -> when their "fired" was announced."""
    rows = await conn.execute(select(open_incidents.c.rule, open_incidents.c.provider,
                                     open_incidents.c.fired_at))
    return {(str(rule), str(provider)): at for rule, provider, at in row_values(rows)}


async def last_fired(conn: AsyncConnection, since: datetime) -> dict[tuple[str, str], datetime]:
    """``(rule, provider)`` -> the latest "fired" alert since ``since``."""
    a = alert_history.c
    rows = await conn.execute(select(a.rule, a.provider, func.max(a.created_at))
                              .where(a.kind == "fired", a.created_at >= since)
                              .group_by(a.rule, a.provider))
    return {(str(rule), str(provider)): at for rule, provider, at in row_values(rows)
            if at is not None}


async def set_alert_deliveries(conn: AsyncConnection, alert_id: int,
                               deliveries: dict[str, str]) -> None:
    """Record how each channel's delivery of an alert went."""
    await conn.execute(update(alert_history).where(alert_history.c.id == alert_id)
                       .values(deliveries=deliveries))


async def recent_alerts(conn: AsyncConnection, limit: int = 50) -> list[AlertRow]:
    """The latest alerts, newest first."""
    a = alert_history.c
    rows = await conn.execute(
        select(a.id, a.rule, a.provider, a.kind, a.message, a.created_at, a.details,
               a.deliveries).order_by(a.created_at.desc(), a.id.desc()).limit(limit))
    return [AlertRow(**row._asdict()) for row in rows]



# ----------------------------------------------------------------------------- gauges


async def settled_by_provider(conn: AsyncConnection) -> dict[str, int]:
    """Paid invoices per provider."""
    from lngate.store.tables import invoices

    # 'paid' rendered into the SQL text, so the partial index of paid invoices answers
    # (store/tables.py): this runs at every scrape, and the table only grows
    paid = literal("paid", literal_execute=True)
    query = (select(invoices.c.provider, func.count()).where(invoices.c.state == paid)
             .group_by(invoices.c.provider))
    return {str(name): int(n) for name, n in row_values(await conn.execute(query))}


async def outbox_backlog(conn: AsyncConnection) -> int | None:
    """Outbox messages still to send; ``None`` when this schema has no outbox."""
    from lngate.store import tables

    outbox = getattr(tables, "outbox", None)
    if outbox is None or "status" not in outbox.c:
        return None
    return int((await conn.execute(
        select(func.count()).select_from(outbox).where(outbox.c.status == "pending")
    )).scalar_one())
