"""Sliding-window-counter rate limits in PostgreSQL, shared by every instance (``rate_limit_hits``).

The ``limits`` library has no PostgreSQL storage; this is the same algorithm as its sliding
window counter. Time is cut into fixed windows of ``period`` seconds; a hit at ``now`` counts
``current + previous × (1 - elapsed / period)``, where ``current`` and ``previous`` are the hits
of the current and previous windows and ``elapsed`` the time since the current window began.
A hit is let through when that count plus one stays within the limit.

:func:`hit` decides and counts in one statement: an upsert whose ``WHERE`` re-reads the
counter under the row lock that ``ON CONFLICT DO UPDATE`` takes, so concurrent hits from any
number of processes are serialised per (route, key, window) and the limit is exact.
:func:`hit_groups_direct` is the same statement for several keys and several hits of each at
once (:mod:`lngate.store.rate_limit_batch` coalesces a process's concurrent hits into it).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from lngate.store.database import Database
from lngate.store.rows import row_values
from lngate.store.tables import rate_limit_hits

# Every parameter is cast: asyncpg must not deduce two types for one parameter used twice.
_ROUTE, _KEY = "CAST(:route AS VARCHAR)", "CAST(:key AS VARCHAR)"
_LIMIT, _WEIGHT = "CAST(:limit AS INTEGER)", "CAST(:weight AS DOUBLE PRECISION)"
_PREVIOUS = (f"COALESCE((SELECT p.hits FROM rate_limit_hits p WHERE p.route = {_ROUTE} "
             f"AND p.key = {_KEY} AND p.window_start = CAST(:previous_start AS BIGINT)), 0)")
_HIT_COUNTING = f"""
INSERT INTO rate_limit_hits AS r (route, key, window_start, hits, expires_at)
SELECT {_ROUTE}, {_KEY}, CAST(:window_start AS BIGINT), :count, CAST(:expires_at AS BIGINT)
WHERE {_PREVIOUS} * {_WEIGHT} + :count <= {_LIMIT}
ON CONFLICT (route, key, window_start) DO UPDATE SET hits = r.hits + :count
WHERE r.hits + :count + {_PREVIOUS} * {_WEIGHT} <= {_LIMIT}
RETURNING r.hits
"""
_HIT = text(_HIT_COUNTING.replace(":count", "1"))
_DIRECT_PARAMS = ("route", "key", "window_start", "expires_at", "previous_start", "weight", "limit",
                  "count")
_HIT_DIRECT, _HITS_DIRECT = (
    re.sub(r":(\w+)", lambda m: f"${_DIRECT_PARAMS.index(m[1]) + 1}", sql)
    for sql in (_HIT.text, _HIT_COUNTING.replace(":count", "CAST(:count AS INTEGER)")))
""":data:`_HIT` for the driver itself (``$n`` parameters in :data:`_DIRECT_PARAMS` order), and
the same counting ``count`` hits at once, all or none."""


@dataclass(frozen=True, slots=True)
class HitResult:
    """Whether the hit was let through, and if not, in how many seconds one would be."""

    allowed: bool
    retry_after: int = 0


async def hit(conn: AsyncConnection, *, route: str, key: str, limit: int, period: int,
              now: float) -> HitResult:
    """Count one hit of ``key`` on ``route`` against ``limit`` per ``period`` seconds, if it is
    within the limit (PostgreSQL)."""
    window_start = int(now // period) * period
    weight = 1 - (now - window_start) / period
    params = {"route": route, "key": key, "window_start": window_start,
              "previous_start": window_start - period, "weight": weight, "limit": limit,
              "expires_at": window_start + 2 * period}
    if (await conn.execute(_HIT, params)).first() is not None:
        return HitResult(True)
    return await _refused(conn, route=route, key=key, limit=limit, period=period, now=now)


async def hit_direct(db: Database, *, route: str, key: str, limit: int, period: int,
                     now: float) -> HitResult:
    """:func:`hit` as one statement in autocommit on the database's direct lane (no pool
    checkout, ``BEGIN`` or ``COMMIT``: the row lock is held for the statement alone)."""
    window_start = int(now // period) * period
    weight = 1 - (now - window_start) / period
    params = {"route": route, "key": key, "window_start": window_start,
              "previous_start": window_start - period, "weight": weight, "limit": limit,
              "expires_at": window_start + 2 * period}
    row = await db.direct.fetch_row(_HIT_DIRECT, *(params[name] for name in _DIRECT_PARAMS[:-1]))
    if row is not None:
        return HitResult(True)
    return await refused_direct(db, route=route, key=key, limit=limit, period=period, now=now)


_HIT_GROUPS = """
WITH q AS (
    SELECT u.route, u.key, u.window_start, u.expires_at, u.lim, u.n,
           COALESCE((SELECT p.hits FROM rate_limit_hits p WHERE p.route = u.route
                     AND p.key = u.key AND p.window_start = u.previous_start), 0)
           * u.weight AS carried
    FROM unnest($1::varchar[], $2::varchar[], $3::bigint[], $4::bigint[], $5::bigint[],
                $6::double precision[], $7::integer[], $8::integer[])
         AS u(route, key, window_start, expires_at, previous_start, weight, lim, n))
INSERT INTO rate_limit_hits AS r (route, key, window_start, hits, expires_at)
SELECT route, key, window_start, n, expires_at FROM q WHERE carried + n <= lim
ORDER BY route, key, window_start
ON CONFLICT (route, key, window_start) DO UPDATE SET hits = r.hits + excluded.hits
WHERE (SELECT r.hits + excluded.hits + q.carried <= q.lim FROM q WHERE q.route = excluded.route
       AND q.key = excluded.key AND q.window_start = excluded.window_start)
RETURNING r.route, r.key
"""
""":data:`_HIT` for several (route, key) at once, ``n`` hits each, all or none of a key's.

A key's ``n`` hits are counted together when all of them fit (the ``WHERE`` of :data:`_HIT`
with ``n`` for 1, under the same row lock); otherwise none is. Counting only the part that fits
would need the counter's value before the update, which ``RETURNING`` does not give before
PostgreSQL 18. The rows are locked in one order (``ORDER BY``): two processes' batches sharing
keys wait for each other instead of deadlocking."""


@dataclass(frozen=True, slots=True)
class HitGroup:
    """``count`` hits of ``key`` on ``route``, against ``limit`` per ``period`` seconds."""

    route: str
    key: str
    limit: int
    period: int
    count: int


def _group_values(group: HitGroup, now: float) -> tuple[object, ...]:
    """``group``'s parameters at ``now``, in :data:`_DIRECT_PARAMS` order."""
    window_start = int(now // group.period) * group.period
    return (group.route, group.key, window_start, window_start + 2 * group.period,
            window_start - group.period, 1 - (now - window_start) / group.period, group.limit,
            group.count)


async def hit_groups_direct(db: Database, groups: list[HitGroup], *, now: float) -> list[bool]:
    """Count each group's hits if all of them are within its limit, in one statement in
    autocommit on the direct lane; for each group, whether they were counted. The groups'
    (route, key) must be distinct."""
    if len(groups) == 1:  # one client (a shop's server): the one-key statement costs less
        row = await db.direct.fetch_row(_HITS_DIRECT, *_group_values(groups[0], now))
        return [row is not None]
    columns: tuple[list[object], ...] = ([], [], [], [], [], [], [], [])
    for group in groups:
        for column, value in zip(columns, _group_values(group, now), strict=True):
            column.append(value)
    rows = await db.direct.fetch(_HIT_GROUPS, *columns)
    counted = {(row[0], row[1]) for row in rows}
    return [(group.route, group.key) in counted for group in groups]


async def refused_direct(db: Database, *, route: str, key: str, limit: int, period: int,
                         now: float) -> HitResult:
    """The refusal of a hit over the limit, with the seconds until one would pass."""
    async with db.connect() as conn:
        return await _refused(conn, route=route, key=key, limit=limit, period=period, now=now)


async def _refused(conn: AsyncConnection, *, route: str, key: str, limit: int, period: int,
                   now: float) -> HitResult:
    """The refusal of a hit over the limit, with the seconds until one would pass."""
    window_start = int(now // period) * period
    rows = await conn.execute(
        select(rate_limit_hits.c.window_start, rate_limit_hits.c.hits).where(
            rate_limit_hits.c.route == route, rate_limit_hits.c.key == key,
            rate_limit_hits.c.window_start.in_([window_start, window_start - period])))
    counts: dict[int, int] = {int(start): int(n) for start, n in row_values(rows)}
    current, previous = counts.get(window_start, 0), counts.get(window_start - period, 0)
    return HitResult(False, retry_after(now, window_start, period, limit, current, previous))


def retry_after(now: float, window_start: int, period: int, limit: int, current: int,
                previous: int) -> int:
    """Seconds until ``current + previous × weight + 1 <= limit`` holds again (at least 1)."""
    window_end = window_start + period
    if current + 1 <= limit and previous > 0:
        # within this window, once the previous window's share has decayed enough
        at = window_end - (limit - 1 - current) * period / previous
    else:
        # in the next window, where this window's hits become the decaying share
        at = window_end + period - (limit - 1) * period / max(current, 1)
    return max(1, math.ceil(at - now))


async def prune(conn: AsyncConnection, *, now: float) -> int:
    """Delete the counters no hit can read any more; how many."""
    result = await conn.execute(delete(rate_limit_hits).where(rate_limit_hits.c.expires_at < now))
    return max(result.rowcount or 0, 0)
