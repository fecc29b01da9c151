"""The leader's alert rules read every instance's stored calls once each, including a batch
that took lower ids but committed after a later one (PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lngate.services import call_tail
from lngate.services.call_tail import CallTail
from lngate.store import Database
from lngate.store.provider_calls import ProviderCall, insert_calls

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def call(provider: str) -> ProviderCall:
    return ProviderCall(provider, "create_invoice", NOW, 12.5, "failure", "provider_unavailable")


class Ticks:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def store(db: Database, *providers: str) -> None:
    async with db.transaction() as conn:
        await insert_calls(conn, [call(p) for p in providers])


async def test_each_call_is_handed_out_once(db: Database) -> None:
    """Calls stored before the tail starts are skipped; each later one is handed out once, in
    id order, however many reads there are within and after the overlap."""
    ticks = Ticks()
    tail = CallTail(db, overlap=5.0, monotonic=ticks)
    await store(db, "before")
    await tail.start()
    await store(db, "a", "b")
    assert [c.provider for c in await tail.read_new()] == ["a", "b"]
    ticks.now = 1
    await store(db, "c")
    assert [c.provider for c in await tail.read_new()] == ["c"]
    for second in (2, 7, 8, 20):
        ticks.now = second
        assert await tail.read_new() == []
    await store(db, "d")
    [d] = await tail.read_new()
    assert d.provider == "d" and d.outcome == "failure" and d.duration_ms == 12.5
    assert d.error_type == "provider_unavailable"


@pytest.mark.postgres
async def test_a_batch_committed_late_with_lower_ids_is_not_missed(
    shared_postgres_url: str,
) -> None:
    """A batch that took its ids first but committed after a later batch was read is handed
    out at the next read (within the overlap)."""
    db, other = Database.from_url(shared_postgres_url), Database.from_url(shared_postgres_url)
    ticks = Ticks()
    tail = CallTail(db, overlap=5.0, monotonic=ticks)
    try:
        await tail.start()
        async with other.transaction() as slow:  # takes the lower ids, commits last
            await insert_calls(slow, [call("slow")])
            await store(db, "fast")
            assert [c.provider for c in await tail.read_new()] == ["fast"]
            ticks.now = 1
        assert [c.provider for c in await tail.read_new()] == ["slow"]
        ticks.now = 10
        assert await tail.read_new() == []
    finally:
        await db.aclose()
        await other.aclose()


async def test_on_sqlite_a_stored_call_is_read_from_the_database_once(
        sqlite_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's ids commit in order (one writer at a time), so the tail reads only the rows
    above the last one it handed out, not the last seconds' rows again at every read."""
    fetched: list[int] = []
    original = call_tail.calls_after

    async def counting(conn, after_id, limit):  # type: ignore[no-untyped-def]
        rows = await original(conn, after_id, limit)
        fetched.append(len(rows))
        return rows

    monkeypatch.setattr(call_tail, "calls_after", counting)
    tail = CallTail(sqlite_db)
    await tail.start()
    await store(sqlite_db, "a", "b")
    assert [c.provider for c in await tail.read_new()] == ["a", "b"]
    await store(sqlite_db, "c")
    assert [c.provider for c in await tail.read_new()] == ["c"]
    assert await tail.read_new() == []
    assert fetched == [2, 1, 0]
