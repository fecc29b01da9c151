"""`lngate cleanup` and `lngate stats`, run as the operator would."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from lngate.store import Database
from lngate.store.monitoring import HealthCheckRow, insert_health_checks
from lngate.store.provider_calls import ProviderCall, insert_calls
from lngate.store.tables import health_checks, provider_calls


def lngate(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI in ``tmp_path`` with a clean lngate environment plus ``env``."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("LNBITS_", "NWC_", "ALERT_", "ADMIN_", "SMTP_", "DATABASE_"))}
    base.update({"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}", "LOG_FORMAT": "json",
                 "LIGHTNING_TEST_MODE": "true", **env})
    return subprocess.run([sys.executable, "-m", "lngate", *args], env=base, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)


def seed(tmp_path: Path) -> None:
    """Ten recent test-provider calls (one failed) and five 40-day-old ones, with probes."""
    async def run() -> None:
        db = Database.from_url(f"sqlite:///{tmp_path / 'cli.sqlite3'}")
        await db.migrate()
        now = datetime.now(UTC)
        calls = [ProviderCall("test", "create_invoice", now - timedelta(minutes=i), 10.0 + i,
                              "failure" if i == 0 else "success",
                              "provider_unavailable" if i == 0 else None,
                              "HTTP 503" if i == 0 else None) for i in range(10)]
        calls += [ProviderCall("test", "create_invoice", now - timedelta(days=40, minutes=i),
                               5.0, "success") for i in range(5)]
        probes = [HealthCheckRow("test", now - timedelta(minutes=i), True, 1.0) for i in range(3)]
        probes += [HealthCheckRow("test", now - timedelta(days=40), False, 1.0, "down")]
        async with db.transaction() as conn:
            await insert_calls(conn, calls)
            await insert_health_checks(conn, probes)
        await db.aclose()

    asyncio.run(run())


def count(tmp_path: Path, table) -> int:  # type: ignore[no-untyped-def]
    async def run() -> int:
        db = Database.from_url(f"sqlite:///{tmp_path / 'cli.sqlite3'}")
        async with db.connect() as conn:
            n = (await conn.execute(select(func.count()).select_from(table))).scalar_one()
        await db.aclose()
        return int(n)

    return asyncio.run(run())


def test_cleanup_deletes_metrics_past_retention(tmp_path: Path) -> None:
    """`lngate cleanup` deletes calls and probes older than METRICS_RETENTION_DAYS only."""
    seed(tmp_path)
    result = lngate(tmp_path, "cleanup", METRICS_RETENTION_DAYS="30")
    assert result.returncode == 0, result.stderr
    assert "older than 30 days" in result.stdout
    lines = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()[1:]}
    assert lines["provider_calls"] == "5" and lines["health_checks"] == "1"
    assert count(tmp_path, provider_calls) == 10 and count(tmp_path, health_checks) == 3
    again = lngate(tmp_path, "cleanup", "--days", "1")
    assert again.returncode == 0 and count(tmp_path, provider_calls) == 10


def test_cleanup_says_when_the_database_is_unreachable(tmp_path: Path) -> None:
    """An unreachable database is a one-line error and exit status 1, not a traceback."""
    result = lngate(tmp_path, "cleanup", DATABASE_URL="postgresql://nobody@127.0.0.1:9/none")
    assert result.returncode == 1
    assert result.stderr.startswith("cannot use the database") and "Traceback" not in result.stderr


def test_stats_prints_the_statistics_table(tmp_path: Path) -> None:
    """`lngate stats` prints one row per provider and the overall row, from the database."""
    seed(tmp_path)
    result = lngate(tmp_path, "stats", "--hours", "1")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()
            if line.startswith(("test ", "overall "))}
    assert rows["test"][1:6] == ["100.0%", "10", "9", "1", "90.0%"]
    assert rows["test"][6] == "14.5"  # mean of 10..19 ms
    assert "provider_unavailable: HTTP 503" in result.stdout
    assert rows["overall"][2:4] == ["10", "9"]
    as_json = lngate(tmp_path, "stats", "--json")
    body = json.loads(as_json.stdout)
    assert set(body) == {"overall", "providers", "lastUpdated"}
    assert body["providers"]["test"]["metrics"]["totalInvoices"] == 10


def test_invalid_configuration_names_the_variable(tmp_path: Path) -> None:
    """A configuration that cannot work stops the command with the variable's name."""
    result = lngate(tmp_path, "stats", ALERT_FAILURE_COUNT="9")
    assert result.returncode == 2 and "ALERT_FAILURE_COUNT" in result.stderr
