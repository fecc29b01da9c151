"""The ``loadtest_runs`` table: the history of ``lngate loadtest`` runs recorded by operators."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from lngate.store.tables import loadtest_runs


@dataclass(frozen=True, slots=True)
class LoadTestRun:
    """One run's headline figures and its whole summary (as the load tester sent it)."""

    started_at: datetime
    scenario: str
    rate: float
    duration_s: float
    requests: int
    errors: int
    p50_ms: float | None
    p99_ms: float | None
    passed: bool
    summary: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredRun:
    """A recorded run."""

    id: int
    recorded_at: datetime
    run: LoadTestRun


async def insert_run(conn: AsyncConnection, run: LoadTestRun, *, recorded_at: datetime) -> int:
    """Store ``run``; its id."""
    result = await conn.execute(
        insert(loadtest_runs).values(
            recorded_at=recorded_at, started_at=run.started_at, scenario=run.scenario,
            rate=run.rate, duration_s=run.duration_s, requests=run.requests, errors=run.errors,
            p50_ms=run.p50_ms, p99_ms=run.p99_ms, passed=run.passed, summary=run.summary,
        ).returning(loadtest_runs.c.id)
    )
    return int(result.scalar_one())


async def recent_runs(conn: AsyncConnection, *, limit: int) -> list[StoredRun]:
    """The ``limit`` most recent runs, newest first."""
    rows = await conn.execute(
        select(loadtest_runs)
        .order_by(loadtest_runs.c.started_at.desc(), loadtest_runs.c.id.desc())
        .limit(limit)
    )
    return [StoredRun(id=row.id, recorded_at=row.recorded_at, run=LoadTestRun(
        started_at=row.started_at, scenario=row.scenario, rate=row.rate,
        duration_s=row.duration_s, requests=row.requests, errors=row.errors, p50_ms=row.p50_ms,
        p99_ms=row.p99_ms, passed=row.passed, summary=row.summary)) for row in rows]
