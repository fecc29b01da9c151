"""Leadership on PostgreSQL: one leader among the instances, a quick takeover when it dies, and
a leader that loses its lock connection stops its leader loops at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import asyncpg
import pytest
from structlog.testing import capture_logs

from lngate.store import Database
from lngate.store.coordination import LEADER_LOCK_KEY, AdvisoryLock
from lngate.tasks.leadership import Leadership, Role, SoleElector

TAKEOVER_BOUND = 2.0
"""The documented bound (docs/architecture.md): retry interval (1 s) plus a round trip."""
SLACK = 13.0
"""What a loaded machine may add to the bound (other suites sharing the two cores). The test
checks that a takeover happens, and within a few retries; the bound itself is a measured
figure (docs/architecture.md), printed by these tests, not a timing asserted on any machine."""


@dataclass
class Instance:
    """One process's leadership, and which of its role loops are running."""

    name: str
    leadership: Leadership
    running: set[str] = field(default_factory=set)
    stopped_at: dict[str, float] = field(default_factory=dict)


def marker_loop(instance: Instance, loop: str) -> Callable[[], object]:
    async def run() -> None:
        instance.running.add(loop)
        try:
            await asyncio.Event().wait()
        finally:
            instance.running.discard(loop)
            instance.stopped_at[loop] = time.monotonic()
    return run


def instance(name: str, db: Database) -> Instance:
    placeholder = Instance(name, None)  # type: ignore[arg-type]
    placeholder.leadership = Leadership(
        AdvisoryLock(db, ping_interval=0.5, ping_timeout=1.0),
        leader=Role("leader", {"singleton": marker_loop(placeholder, "singleton")}),
        follower=Role("follower", {"follow": marker_loop(placeholder, "follow")}),
        retry_interval=1.0,
    )
    return placeholder


@asynccontextmanager
async def running(*instances: Instance) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(i.leadership.run()) for i in instances]
    try:
        for i in instances:
            await asyncio.wait_for(i.leadership.wait_settled(), 10)
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def lock_holder(url: str) -> int | None:
    """The server pid of the session holding the leader lock."""
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(  # type: ignore[no-any-return]
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND ((classid::bigint << 32) | objid::bigint) = $1", LEADER_LOCK_KEY)
    finally:
        await conn.close()


async def terminate(url: str, pid: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()


async def wait_for(predicate: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``predicate()`` holds (fails after ``timeout``)."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, "condition not met in time"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


@pytest.mark.postgres
async def test_one_leader_and_a_takeover_within_the_bound(shared_postgres_url: str) -> None:
    """Of two instances one leads and runs the singleton loop, the other follows; when the
    leader's lock connection is killed, the leader stops its singleton loop at once and the
    other takes over within the bound."""
    first_db, second_db = Database.from_url(shared_postgres_url), Database.from_url(shared_postgres_url)
    first, second = instance("first", first_db), instance("second", second_db)
    try:
        async with running(first):
            async with running(second):
                assert first.leadership.is_leader and not second.leadership.is_leader
                assert first.running == {"singleton"} and second.running == {"follow"}
                pid = await lock_holder(shared_postgres_url)
                assert pid is not None

                killed_at = time.monotonic()
                await terminate(shared_postgres_url, pid)
                await wait_for(lambda: second.leadership.is_leader, TAKEOVER_BOUND + SLACK)
                takeover = time.monotonic() - killed_at
                stopped = first.stopped_at["singleton"] - killed_at

                assert takeover < TAKEOVER_BOUND + SLACK, f"takeover took {takeover:.2f} s"
                # never two leaders: the old one stopped before the new one took over
                assert stopped < takeover, f"the old leader ran on for {stopped:.2f} s"
                await asyncio.sleep(2.5)  # the old leader tries again: it must not win now
                assert second.running == {"singleton"} and first.running == {"follow"}
                assert not first.leadership.is_leader
                print(f"takeover {takeover * 1000:.0f} ms; old leader stopped after "
                      f"{stopped * 1000:.0f} ms")
    finally:
        await first_db.aclose()
        await second_db.aclose()


@pytest.mark.postgres
async def test_a_leader_going_away_hands_over_within_the_bound(shared_postgres_url: str) -> None:
    """A leader that goes away (its connection closed, as when its process dies) is replaced
    by the follower within the bound."""
    first_db, second_db = Database.from_url(shared_postgres_url), Database.from_url(shared_postgres_url)
    first, second = instance("first", first_db), instance("second", second_db)
    leader_task = asyncio.create_task(first.leadership.run())
    try:
        await asyncio.wait_for(first.leadership.wait_settled(), 10)
        async with running(second):
            assert first.leadership.is_leader and not second.leadership.is_leader
            leader_task.cancel()  # the leader's process ends: its connection closes
            await asyncio.gather(leader_task, return_exceptions=True)
            takeover = await wait_for(lambda: second.leadership.is_leader,
                                      TAKEOVER_BOUND + SLACK)
            print(f"takeover {takeover * 1000:.0f} ms")
            assert second.running == {"singleton"} and first.running == set()
    finally:
        leader_task.cancel()
        await first_db.aclose()
        await second_db.aclose()


async def test_an_unreachable_database_means_following_not_crashing() -> None:
    """While the database cannot be reached, an instance follows and keeps trying."""
    db = Database.from_url("postgresql://postgres@127.0.0.1:1/none")
    lonely = instance("lonely", db)
    try:
        with capture_logs() as logs:
            async with running(lonely):
                await asyncio.sleep(1.5)
                assert not lonely.leadership.is_leader and lonely.running == {"follow"}
        attempts = [e for e in logs if e["event"] == "leadership_attempt_failed"]
        assert len(attempts) >= 2  # it tried again, and the task did not crash
    finally:
        await db.aclose()


async def test_sqlite_has_one_process_which_always_leads() -> None:
    """Without PostgreSQL the sole process leads at once."""
    sole = Instance("sole", None)  # type: ignore[arg-type]
    sole.leadership = Leadership(
        SoleElector(), leader=Role("leader", {"singleton": marker_loop(sole, "singleton")}),
        follower=Role("follower", {"follow": marker_loop(sole, "follow")}))
    async with running(sole):
        assert sole.leadership.is_leader and sole.running == {"singleton"}
