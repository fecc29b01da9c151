"""Rate-limit counters in PostgreSQL: exact under concurrency from several pools, sliding between
windows like the ``limits`` library's counter, and pruned."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from lngate.store import Database
from lngate.store.rate_limits import HitResult, hit, hit_direct, prune
from lngate.store.tables import rate_limit_hits

pytestmark = pytest.mark.postgres

T0 = 1_800_000_000.0  # the start of a minute (divisible by 60)


WAYS = ["transaction", "direct"]
"""How a hit is counted: in a transaction of the engine, or alone on the direct lane (what the
rate limiter does); both must give the same answers."""


async def one_hit(db: Database, now: float, *, limit: int = 60, key: str = "203.0.113.7",
                  route: str = "create-invoice", way: str = "transaction") -> HitResult:
    if way == "direct":
        return await hit_direct(db, route=route, key=key, limit=limit, period=60, now=now)
    async with db.transaction() as conn:
        return await hit(conn, route=route, key=key, limit=limit, period=60, now=now)


@pytest.mark.parametrize("way", WAYS)
async def test_concurrent_hits_from_several_pools_let_exactly_the_limit_through(
    shared_postgres_url: str, way: str,
) -> None:
    """300 simultaneous hits through three separate pools (as three workers) against 60 per
    minute: exactly 60 pass."""
    pools = [Database.from_url(shared_postgres_url) for _ in range(3)]
    try:
        results = await asyncio.gather(*(one_hit(pools[i % 3], T0 + 10 + i / 1000, way=way)
                                         for i in range(300)))
    finally:
        for pool in pools:
            await pool.aclose()
    assert sum(r.allowed for r in results) == 60
    assert all(r.retry_after >= 1 for r in results if not r.allowed)


@pytest.mark.parametrize("way", WAYS)
async def test_the_previous_window_counts_less_as_time_passes(shared_postgres_url: str,
                                                             way: str) -> None:
    """60 hits in one minute, then a quarter into the next the previous minute still weighs
    45, so 15 more pass; half-way it weighs 30."""
    db = Database.from_url(shared_postgres_url)
    try:
        assert all([(await one_hit(db, T0 + 1, way=way)).allowed for _ in range(60)])
        assert not (await one_hit(db, T0 + 59, way=way)).allowed
        quarter = [(await one_hit(db, T0 + 75, way=way)).allowed for _ in range(20)]
        assert sum(quarter) == 15
        refused = await one_hit(db, T0 + 75, way=way)
        # 15 counted + 60 × (45/60) carried = 60; the carried share drops by one a second
        assert not refused.allowed and refused.retry_after == 1
        half = [(await one_hit(db, T0 + 90, way=way)).allowed for _ in range(20)]
        assert sum(half) == 15  # 60 × 0.5 = 30 carried + 15 counted: 15 more
        other_client = await one_hit(db, T0 + 90, key="198.51.100.1", way=way)
        assert other_client.allowed  # each key its own counters
    finally:
        await db.aclose()


async def test_expired_counters_are_pruned(shared_postgres_url: str) -> None:
    """A counter is deleted once the window after its own has ended, not before."""
    db = Database.from_url(shared_postgres_url)
    try:
        await one_hit(db, T0 + 1)
        await one_hit(db, T0 + 61)
        async with db.transaction() as conn:
            assert await prune(conn, now=T0 + 119) == 0  # the first minute still weighs
            assert await prune(conn, now=T0 + 121) == 1
            left = (await conn.execute(select(func.count()).select_from(rate_limit_hits)))
            assert left.scalar_one() == 1
    finally:
        await db.aclose()
