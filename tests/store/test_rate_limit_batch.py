"""PostgreSQL rate-limit hits counted a batch per statement: exact across processes, one
statement for the hits that arrive together, the refusals' Retry-After as before, and a
database that cannot be reached lets the hits through."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time
from typing import Any

import pytest
from structlog.testing import capture_logs

from lngate.store import Database
from lngate.store.rate_limit_batch import HitBatcher
from lngate.web.ratelimit import RateLimiter

pytestmark = pytest.mark.postgres

T0 = 1_800_000_000.0  # the start of a minute (divisible by 60)
CLIENT = "203.0.113.7"

_HITTER = textwrap.dedent("""
    import asyncio, sys, time
    from lngate.store import Database
    from lngate.store.rate_limit_batch import HitBatcher

    async def main(url, start, limit, hits):
        db = Database.from_url(url)
        batcher = HitBatcher(db, clock=lambda: %r)
        await db.direct.fetch("SELECT 1")  # the lane's pool open before the start
        while time.time() < start:
            await asyncio.sleep(0.001)
        results = await asyncio.gather(*(
            batcher.hit("create-invoice", %r, limit=limit, period=60) for _ in range(hits)))
        print(sum(r.allowed for r in results))
        await db.aclose()

    asyncio.run(main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
""") % (T0 + 10, CLIENT)


class CountingLane:
    """The database's direct lane, counting the statements sent through it."""

    def __init__(self, lane: Any) -> None:
        self.lane = lane
        self.statements = 0

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        self.statements += 1
        return await self.lane.fetch(sql, *args)

    async def fetch_row(self, sql: str, *args: Any) -> Any:
        self.statements += 1
        return await self.lane.fetch_row(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.lane, name)


@pytest.mark.parametrize("limit", [50, 150])
async def test_concurrent_hits_from_two_processes_let_exactly_the_limit_through(
    shared_postgres_url: str, limit: int,
) -> None:
    """200 simultaneous hits of one client, 100 from each of two processes: exactly the limit
    passes, whether no batch fits (50) or one fits and the other does not (150)."""
    start = time.time() + 3
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HITTER, shared_postgres_url, str(start), str(limit), "100",
        stdout=asyncio.subprocess.PIPE) for _ in range(2)]
    outputs = [await proc.communicate() for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0]
    assert sum(int(out) for out, _ in outputs) == limit


async def test_hits_that_arrive_together_share_a_statement(shared_postgres_url: str) -> None:
    """100 concurrent requests of one client are counted in two statements on the direct lane,
    not 100: the first at once, the 99 that arrived while it was under way together; the next
    50 concurrent ones, hits now coming together, in one; a lone request after that in one."""
    db = Database.from_url(shared_postgres_url)
    lane = db.direct = CountingLane(db.direct)  # type: ignore[assignment]
    limiter = RateLimiter("1000/minute", database=db, clock=lambda: T0 + 10)
    try:
        first = await asyncio.gather(*(limiter.check("create-invoice", CLIENT)
                                       for _ in range(100)))
        assert lane.statements == 2
        second = await asyncio.gather(*(limiter.check("create-invoice", CLIENT)
                                        for _ in range(50)))
        assert lane.statements == 3
        for _ in range(3):
            assert (await limiter.check("create-invoice", CLIENT)).allowed
        assert lane.statements == 6
    finally:
        await db.aclose()
    assert all(d.allowed for d in first + second)


async def test_a_batch_of_mixed_keys_and_routes_counts_each_against_its_own_limit(
    shared_postgres_url: str,
) -> None:
    """One batch holding three clients on two routes: a client over its limit gets exactly the
    limit, the others all their hits, each route its own limit."""
    db = Database.from_url(shared_postgres_url)
    limiter = RateLimiter("5/minute", per_route={"check-invoice": "3/minute"}, database=db,
                          clock=lambda: T0 + 10)
    calls = ([("create-invoice", "198.51.100.1")] * 8 + [("create-invoice", "198.51.100.2")] * 5
             + [("check-invoice", "198.51.100.1")] * 4 + [("check-invoice", "198.51.100.3")] * 2)
    try:
        decisions = await asyncio.gather(*(limiter.check(route, key) for route, key in calls))
    finally:
        await db.aclose()
    allowed: dict[tuple[str, str], int] = {}
    for call, decision in zip(calls, decisions, strict=True):
        allowed[call] = allowed.get(call, 0) + decision.allowed
    assert allowed == {("create-invoice", "198.51.100.1"): 5,
                       ("create-invoice", "198.51.100.2"): 5,
                       ("check-invoice", "198.51.100.1"): 3,
                       ("check-invoice", "198.51.100.3"): 2}


async def test_refusals_keep_their_retry_after(shared_postgres_url: str) -> None:
    """60 hits in one minute; a quarter into the next, 20 concurrent hits: 15 pass (the previous
    minute still weighs 45) and the 5 refused are told to retry in 1 s, as hit by hit; one more
    hit alone is refused with the same Retry-After."""
    db = Database.from_url(shared_postgres_url)
    now = [T0 + 1]
    limiter = RateLimiter("60/minute", database=db, clock=lambda: now[0])
    try:
        first = await asyncio.gather(*(limiter.check("create-invoice", CLIENT)
                                       for _ in range(60)))
        assert all(d.allowed for d in first)
        now[0] = T0 + 75
        quarter = await asyncio.gather(*(limiter.check("create-invoice", CLIENT)
                                         for _ in range(20)))
        alone = await limiter.check("create-invoice", CLIENT)
    finally:
        await db.aclose()
    assert sum(d.allowed for d in quarter) == 15
    assert {d.retry_after for d in quarter if not d.allowed} == {1}
    assert not alone.allowed and alone.retry_after == 1


async def test_hits_are_let_through_when_the_database_cannot_be_reached() -> None:
    """Concurrent hits against a PostgreSQL that refuses connections all pass, with one
    warning."""
    db = Database.from_url("postgresql://postgres@127.0.0.1:9/lngate")  # discard port: closed
    limiter = RateLimiter("1/minute", database=db, clock=lambda: T0 + 10)
    try:
        with capture_logs() as logs:
            decisions = await asyncio.gather(*(limiter.check("create-invoice", CLIENT)
                                               for _ in range(10)))
    finally:
        await db.aclose()
    assert all(d.allowed for d in decisions)
    assert [entry["event"] for entry in logs] == ["rate_limit_unavailable"]


async def test_a_cancelled_request_does_not_fail_the_others_hits(
    shared_postgres_url: str,
) -> None:
    """A request cancelled while its hit waits for the batch's statement leaves the other hits
    of that batch decided."""
    db = Database.from_url(shared_postgres_url)
    batcher = HitBatcher(db, clock=lambda: T0 + 10)
    try:
        tasks = [asyncio.create_task(batcher.hit("create-invoice", CLIENT, limit=10, period=60))
                 for _ in range(5)]
        await asyncio.sleep(0)
        tasks[0].cancel()
        results = await asyncio.gather(*tasks[1:])
    finally:
        await db.aclose()
    assert all(r.allowed for r in results)
