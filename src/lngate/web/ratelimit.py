"""Per-client rate limits, held in one place for every worker and instance.

Where the counters live:

- Redis (``REDIS_URL`` set): the ``limits`` library's sliding window counter;
- PostgreSQL otherwise: the same algorithm in ``rate_limit_hits``
  (:mod:`lngate.store.rate_limits`), upserts in autocommit on the database's direct lane, the
  hits a process makes together in one statement (:mod:`lngate.store.rate_limit_batch`);
- memory on SQLite: one process (``lngate serve`` refuses several workers on SQLite), so the
  process's memory is the whole truth; the same algorithm again, in a dict
  (:class:`MemoryCounters`: synchronous, a few microseconds a hit, where the ``limits``
  library's async memory storage cost a tenth of a created invoice's CPU).

A hit that cannot be counted because the database is unreachable is let through (and logged,
at most once a minute): a limit must not turn a database hiccup into refused webhooks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from lngate.rate_limit_notation import Limit, parse_limit
from lngate.store import Database
from lngate.store.database import is_transient
from lngate.store.rate_limit_batch import HitBatcher
from lngate.store.rate_limits import prune, retry_after

log = structlog.get_logger("lngate.ratelimit")
PRUNE_INTERVAL = 60.0
"""Seconds between two deletions of expired counters (each process; idempotent)."""


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Whether a request may proceed, and when to retry if not."""

    allowed: bool
    retry_after: int = 0


class MemoryCounters:
    """The sliding window counter of :mod:`lngate.store.rate_limits`, in this process's memory.

    Two counters per (route, key): the current window's hits and the previous window's; a hit
    passes when ``current + previous × (1 - elapsed / period) + 1`` stays within the limit.
    Counters no hit can read any more are dropped every :data:`PRUNE_INTERVAL` seconds.
    """

    def __init__(self) -> None:
        self._hits: dict[tuple[str, str, int, int], int] = {}
        self._pruned_at = -PRUNE_INTERVAL

    def hit(self, route: str, key: str, *, limit: int, period: int,
            now: float) -> RateDecision:
        """Count one hit of ``key`` on ``route`` if it is within ``limit`` per ``period`` s."""
        if now - self._pruned_at >= PRUNE_INTERVAL:
            self._prune(now)
        window_start = int(now // period) * period
        current = self._hits.get((route, key, period, window_start), 0)
        previous = self._hits.get((route, key, period, window_start - period), 0)
        weight = 1 - (now - window_start) / period
        if current + 1 + previous * weight <= limit:
            self._hits[(route, key, period, window_start)] = current + 1
            return RateDecision(True)
        # at most one period, as the limits library's storage answered before (the exact time
        # can be later: a full window still weighs on the next one)
        return RateDecision(False, min(period, retry_after(now, window_start, period, limit,
                                                           current, previous)))

    def _prune(self, now: float) -> None:
        """Drop the counters of windows that ended more than a period ago (no hit reads them)."""
        self._pruned_at = now
        for counter in [c for c in self._hits if c[3] + 2 * c[2] <= now]:
            del self._hits[counter]


class RateLimiter:
    """A sliding-window-counter limit per key (the client IP), e.g. ``60/minute``.

    The sliding window counter keeps two counters per key; the exact moving window keeps one
    timestamp per hit (memory and time grow with the limit) and cost a quarter of the
    gateway's CPU per invoice in the capacity benchmark.
    """

    def __init__(self, limit: str, *, per_route: Mapping[str, str] | None = None,
                 redis_url: str | None = None, database: Database | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        """``limit`` applies to every route not named in ``per_route``. Counters go to Redis
        when ``redis_url`` is given, else to ``database`` when it is PostgreSQL, else to
        memory."""
        self.item = parse_limit(limit)
        self._items = {route: parse_limit(value) for route, value in (per_route or {}).items()}
        self._clock = clock
        self._db = database if database is not None and database.dialect == "postgresql" \
            else None
        self._batcher = HitBatcher(self._db, clock=clock) if self._db is not None else None
        if redis_url:
            self.storage = "redis"
        elif self._db is not None:
            self.storage = "postgresql"
        else:
            self.storage = "memory"
        self._limiter: Any = None
        self._library_items: dict[str, Any] = {}
        if redis_url:
            # the limits library, for Redis only (see lngate.rate_limit_notation)
            from limits import parse
            from limits.aio.strategies import SlidingWindowCounterRateLimiter
            from limits.storage import storage_from_string

            self._limiter = SlidingWindowCounterRateLimiter(
                storage_from_string("async+" + redis_url))
            self._library_items = {item.text: parse(item.text)
                                   for item in (self.item, *self._items.values())}
        self._memory = MemoryCounters()
        self._pruned_at = clock()
        self._warned_at: float | None = None

    async def check(self, route: str, key: str) -> RateDecision:
        """Count one hit for ``key`` on ``route``; refuse it past the route's limit."""
        item = self._items.get(route, self.item)
        if self.storage == "postgresql":
            return await self._check_database(item, route, key)
        if self._limiter is None:
            return self._memory.hit(route, key, limit=item.amount, period=item.period,
                                    now=self._clock())
        library_item = self._library_items[item.text]
        if await self._limiter.hit(library_item, route, key):
            return RateDecision(True)
        stats = await self._limiter.get_window_stats(library_item, route, key)
        return RateDecision(False, max(1, math.ceil(stats.reset_time - time.time())))

    async def _check_database(self, item: Limit, route: str, key: str) -> RateDecision:
        assert self._db is not None and self._batcher is not None
        now = self._clock()
        try:
            result = await self._batcher.hit(route, key, limit=item.amount, period=item.period)
            if now - self._pruned_at >= PRUNE_INTERVAL:
                self._pruned_at = now
                async with self._db.transaction() as conn:
                    await prune(conn, now=now)
        except Exception as exc:
            if not is_transient(exc):
                raise
            if self._warned_at is None or now - self._warned_at >= 60:
                self._warned_at = now
                log.warning("rate_limit_unavailable", error=type(exc).__name__,
                            consequence="requests are let through uncounted")
            return RateDecision(True)
        return RateDecision(result.allowed, result.retry_after)
