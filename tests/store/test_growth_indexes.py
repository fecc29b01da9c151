"""The two queries that used to read every stored invoice read a partial index instead, so their
cost follows the rows they count (paid invoices, pending ones), not the shop's whole history."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, insert, text
from sqlalchemy.ext.asyncio import AsyncConnection

from lngate.store import Database
from lngate.store.monitoring import settled_by_provider
from lngate.store.settlement import expire_test_invoices
from lngate.store.tables import invoices

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


async def _store(db: Database, rows: list[tuple[str, str, bool, datetime]]) -> dict[str, str]:
    """Invoices as (provider, state, is_test, created_at); their payment hashes by position."""
    hashes = {}
    async with db.transaction() as conn:
        for i, (provider, state, is_test, created_at) in enumerate(rows):
            payment_hash = os.urandom(32).hex()
            hashes[str(i)] = payment_hash
            await conn.execute(insert(invoices).values(
                payment_hash=payment_hash, provider=provider, provider_ref="r", bolt11="lnbc1",
                amount_msat=1000, description="d", state=state, is_test=is_test,
                created_at=created_at, expires_at=created_at + timedelta(hours=1),
                paid_at=created_at if state == "paid" else None))
    return hashes


async def _plan_of(db: Database, run: Callable[[AsyncConnection], Awaitable[Any]]) -> str:
    """The plan of the statement ``run`` sends, with the sequential scan made as expensive as
    PostgreSQL allows (on a table this small it would win): the plan says whether the query
    can use the index at all."""
    sent: list[tuple[str, Any]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        sent.append((statement, parameters))

    async with db.transaction() as conn:
        event.listen(conn.sync_connection, "before_cursor_execute", capture)  # type: ignore[arg-type]
        try:
            await run(conn)
        finally:
            event.remove(conn.sync_connection, "before_cursor_execute", capture)  # type: ignore[arg-type]
        statement, parameters = sent[-1]
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        if db.dialect == "sqlite":
            async with driver.execute(f"EXPLAIN QUERY PLAN {statement}", parameters) as cursor:
                return "\n".join(str(row[-1]) for row in await cursor.fetchall())
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
        rows = await driver.fetch(f"EXPLAIN {statement}", *parameters)
        await conn.rollback()  # EXPLAIN of an UPDATE changes nothing; leave nothing behind
        return "\n".join(row[0] for row in rows)


async def test_paid_invoices_are_counted_per_provider_from_their_partial_index(
        db: Database) -> None:
    """The settled-invoices gauge counts each provider's paid invoices (not pending or expired
    ones), and its query reads the index of paid invoices."""
    await _store(db, [("lnbits", "paid", False, NOW), ("lnbits", "paid", False, NOW),
                      ("nwc", "paid", False, NOW), ("nwc", "pending", False, NOW),
                      ("lnbits", "expired", False, NOW)])
    async with db.connect() as conn:
        assert await settled_by_provider(conn) == {"lnbits": 2, "nwc": 1}
    assert "ix_invoices_paid_provider" in await _plan_of(db, settled_by_provider)


async def test_closing_test_invoices_walks_the_pending_ones_only(db: Database) -> None:
    """Start-up closes the pending test invoices created before it, and only those; the query
    finds them through the index of pending invoices."""
    before, after = NOW - timedelta(minutes=5), NOW + timedelta(minutes=5)
    hashes = await _store(db, [("test", "pending", True, before), ("test", "pending", True, after),
                               ("test", "paid", True, before), ("lnbits", "pending", False, before)])
    async with db.transaction() as conn:
        closed = await expire_test_invoices(conn, created_before=NOW)
    assert closed == [hashes["0"]]
    plan = await _plan_of(db, lambda conn: expire_test_invoices(conn, created_before=NOW))
    assert "ix_invoices_pending_created_at" in plan
