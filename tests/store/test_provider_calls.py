"""Provider calls stored through the direct lane are the rows the engine stores, committed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lngate.store import Database
from lngate.store.provider_calls import MAX_ERROR_MESSAGE, ProviderCall, insert_calls, store_calls


async def _stored(db: Database, provider: str) -> list[dict[str, Any]]:
    """The raw stored rows of ``provider``, without their ids, oldest first."""
    mark = "$1" if db.dialect == "postgresql" else "?"
    async with db.connect() as conn:
        rows = (await conn.exec_driver_sql(
            f"SELECT * FROM provider_calls WHERE provider = {mark} ORDER BY id",
            (provider,))).mappings().all()
    return [{key: value for key, value in row.items() if key not in ("id", "provider")}
            for row in rows]


def _calls(provider: str) -> list[ProviderCall]:
    started = datetime(2026, 11, 30, 14, 0, 1, 123456, tzinfo=UTC)
    return [
        ProviderCall(provider=provider, operation="create_invoice", started_at=started,
                     duration_ms=12.5, outcome="success"),
        ProviderCall(provider=provider, operation="invoice_status", started_at=started,
                     duration_ms=5000.0, outcome="failure", error_type="timeout",
                     error_message="é" * (MAX_ERROR_MESSAGE + 50)),
        ProviderCall(provider=provider, operation="health", started_at=started,
                     duration_ms=1.0, outcome="failure", error_type="refused", error_message=""),
    ]


async def test_calls_stored_through_the_lane_are_the_engines_rows(db: Database) -> None:
    """The same calls stored by the recorder's lane and in an engine transaction are the same
    raw rows (times, an over-long message cut, an empty one stored as NULL), on both
    databases, and visible to readers once ``store_calls`` returns."""
    await store_calls(db, _calls("lane"))
    async with db.transaction() as conn:
        await insert_calls(conn, _calls("engine"))
    lane, engine = await _stored(db, "lane"), await _stored(db, "engine")
    assert len(lane) == 3 and lane == engine
    assert len(lane[1]["error_message"]) == MAX_ERROR_MESSAGE and lane[2]["error_message"] is None
