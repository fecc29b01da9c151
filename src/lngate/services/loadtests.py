"""The history of load tests: what ``lngate loadtest`` records through the admin API, for the
admin statistics (and the dashboard) to show."""

from __future__ import annotations

from lngate.services.clock import WallClock
from lngate.store import Database
from lngate.store.loadtests import LoadTestRun, StoredRun, insert_run, recent_runs


async def record_loadtest(db: Database, run: LoadTestRun, *, clock: WallClock) -> StoredRun:
    """Store one run's summary; the stored run."""
    recorded_at = clock()
    async with db.transaction() as conn:
        run_id = await insert_run(conn, run, recorded_at=recorded_at)
    return StoredRun(id=run_id, recorded_at=recorded_at, run=run)


async def loadtest_history(db: Database, *, limit: int) -> list[StoredRun]:
    """The ``limit`` most recent runs, newest first."""
    async with db.connect() as conn:
        return await recent_runs(conn, limit=limit)
