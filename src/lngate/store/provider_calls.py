"""Recording every provider call in ``provider_calls`` (read by monitoring)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from lngate.store.tables import provider_calls

MAX_ERROR_MESSAGE = 500


@dataclass(frozen=True, slots=True)
class ProviderCall:
    """One call to a provider and how it ended."""

    provider: str
    operation: str
    started_at: datetime
    duration_ms: float
    outcome: str
    error_type: str | None = None
    error_message: str | None = None


async def insert_calls(conn: AsyncConnection, calls: Sequence[ProviderCall]) -> None:
    """Store provider calls (one multi-row insert)."""
    if not calls:
        return
    await conn.execute(
        insert(provider_calls),
        [
            {
                "provider": call.provider,
                "operation": call.operation,
                "started_at": call.started_at,
                "duration_ms": call.duration_ms,
                "outcome": call.outcome,
                "error_type": call.error_type,
                "error_message": (call.error_message or None)
                and call.error_message[:MAX_ERROR_MESSAGE],
            }
            for call in calls
        ],
    )
