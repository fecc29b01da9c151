"""Migration 0006 schedules the invoices a database already holds: pending ones due at once,
those expired in the last ten minutes due for their late-payment check, the rest never."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic import command
from sqlalchemy import insert, select

from lngate.store import Database
from lngate.store.database import alembic_config
from lngate.store.tables import invoices


async def test_the_migration_backfills_the_schedule(tmp_path: Path) -> None:
    """After upgrading, pending invoices are due at their creation time, recently expired ones
    at their expiry, and paid or long-expired ones are not scheduled."""
    db = Database.from_url(f"sqlite:///{tmp_path / 'lngate.sqlite3'}")

    def upgrade_to_previous_heads(sync_connection) -> None:  # type: ignore[no-untyped-def]
        config = alembic_config()
        config.attributes["connection"] = sync_connection
        command.upgrade(config, "0002")
        command.upgrade(config, "0003")

    async with db.transaction() as conn:
        await conn.run_sync(upgrade_to_previous_heads)
    now = datetime.now(UTC).replace(microsecond=0)
    ages = {"pending": 30, "expired_recently": 3700, "expired_long_ago": 7200, "paid": 100}
    states = {"pending": "pending", "expired_recently": "expired",
              "expired_long_ago": "expired", "paid": "paid"}
    hashes = {name: os.urandom(32).hex() for name in ages}
    async with db.transaction() as conn:  # no next_check_at given: the column is not there yet
        await conn.execute(insert(invoices).values([{
            "payment_hash": hashes[name], "provider": "lnbits", "provider_ref": "r",
            "bolt11": "lnbc1", "amount_msat": 1000, "description": "d", "state": states[name],
            "is_test": False, "created_at": now - timedelta(seconds=age),
            "expires_at": now - timedelta(seconds=age) + timedelta(hours=1),
            "paid_late": False,
        } for name, age in ages.items()]))
    await db.migrate()
    async with db.connect() as conn:
        rows = {row.payment_hash: row for row in await conn.execute(
            select(invoices.c.payment_hash, invoices.c.created_at, invoices.c.expires_at,
                   invoices.c.next_check_at))}
    await db.aclose()
    pending, recent = rows[hashes["pending"]], rows[hashes["expired_recently"]]
    assert pending.next_check_at == pending.created_at
    assert recent.next_check_at == recent.expires_at
    assert rows[hashes["expired_long_ago"]].next_check_at is None
    assert rows[hashes["paid"]].next_check_at is None
