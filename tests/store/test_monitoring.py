"""Monitoring rows read back whole, field by field, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from lngate.store import Database
from lngate.store.monitoring import (
    AlertRow,
    HealthCheckRow,
    LastError,
    announced_incidents,
    insert_alert,
    insert_health_checks,
    last_errors,
    last_fired,
    latest_health_checks,
    recent_alerts,
    record_alert,
    set_alert_deliveries,
)
from lngate.store.provider_calls import ProviderCall, insert_calls

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


async def test_latest_health_check_reads_back_every_field(db: Database) -> None:
    """The latest probe of each provider comes back with its time, verdict, latency and error."""
    older = HealthCheckRow("lnbits", NOW - timedelta(seconds=30), True, 12.5)
    latest = HealthCheckRow("lnbits", NOW, False, 950.0, "timeout")
    async with db.transaction() as conn:
        await insert_health_checks(conn, [older, latest])
    async with db.connect() as conn:
        assert await latest_health_checks(conn, ["lnbits", "nwc"]) == {"lnbits": latest}


async def test_last_error_is_the_latest_failed_call(db: Database) -> None:
    """A provider's last error is its latest failed call: when, which error type, which message."""
    calls = [
        ProviderCall("lnbits", "create_invoice", NOW - timedelta(minutes=2), 30.0, "failure",
                     "provider_unavailable", "HTTP 502"),
        ProviderCall("lnbits", "create_invoice", NOW - timedelta(minutes=1), 5000.0, "timeout",
                     "timeout", "no answer in 5 s"),
        ProviderCall("lnbits", "create_invoice", NOW, 20.0, "success"),
    ]
    async with db.transaction() as conn:
        await insert_calls(conn, calls)
    async with db.connect() as conn:
        found = await last_errors(conn, ["lnbits", "nwc"], NOW - timedelta(hours=1))
    assert found == {"lnbits": LastError(NOW - timedelta(minutes=1), "timeout", "no answer in 5 s")}


async def test_recent_alerts_read_back_newest_first_with_details_and_deliveries(
    db: Database,
) -> None:
    """Stored alerts come back newest first, with their JSON details and per-channel deliveries."""
    async with db.transaction() as conn:
        fired = await insert_alert(conn, rule="failures", provider="lnbits", kind="fired",
                                   message="4 of the last 5 calls failed",
                                   created_at=NOW - timedelta(minutes=5),
                                   details={"failures": 4, "calls": 5})
        resolved = await insert_alert(conn, rule="failures", provider="lnbits", kind="resolved",
                                      message="calls succeed again", created_at=NOW, details=None)
        await set_alert_deliveries(conn, fired, {"slack": "ok", "email": "SMTP 550"})
    async with db.connect() as conn:
        alerts = await recent_alerts(conn)
    assert alerts == [
        AlertRow(resolved, "failures", "lnbits", "resolved", "calls succeed again", NOW, None, None),
        AlertRow(fired, "failures", "lnbits", "fired", "4 of the last 5 calls failed",
                 NOW - timedelta(minutes=5), {"failures": 4, "calls": 5},
                 {"slack": "ok", "email": "SMTP 550"}),
    ]


async def test_an_incident_is_opened_once_and_closed_once(db: Database) -> None:
    """Two instances recording the same "fired" (two leaders during a takeover) store one
    alert; the second "resolved" is refused too; a new incident may then open."""
    async def record(kind: str, at: datetime) -> int | None:
        async with db.transaction() as conn:
            return await record_alert(conn, rule="failures", provider="lnbits", kind=kind,
                                      message=kind, created_at=at, details=None)

    fired = await asyncio.gather(record("fired", NOW), record("fired", NOW))
    assert fired.count(None) == 1
    async with db.connect() as conn:
        assert await announced_incidents(conn) == {("failures", "lnbits"): NOW}
    assert await record("resolved", NOW + timedelta(minutes=1)) is not None
    assert await record("resolved", NOW + timedelta(minutes=1)) is None
    assert await record("fired", NOW + timedelta(minutes=2)) is not None
    async with db.connect() as conn:
        kinds = [a.kind for a in reversed(await recent_alerts(conn))]
        assert await last_fired(conn, NOW) == {("failures", "lnbits"): NOW + timedelta(minutes=2)}
    assert kinds == ["fired", "resolved", "fired"]
