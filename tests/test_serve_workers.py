"""`lngate serve --workers N`: several workers share one rate limit on PostgreSQL, and SQLite,
which takes one writer process, refuses more than one worker."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import pytest
from typer.testing import CliRunner

from lngate.cli import app
from tests.test_serve import free_port

WORKERS = 3


async def leadership_sessions(url: str) -> int:
    """How many gateway processes hold a leadership connection to the database (one each)."""
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'lngate-leadership' "
            "AND datname = current_database()"))
    finally:
        await conn.close()


async def wait_for_workers(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while await leadership_sessions(url) < WORKERS:
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the workers did not all start"
        await asyncio.sleep(0.3)


async def away_from_a_minute_boundary() -> None:
    """The limit's windows are whole minutes: start early in one, so the test ends in it."""
    into = time.time() % 60
    if into > 30:
        await asyncio.sleep(60 - into + 0.5)


@pytest.mark.postgres
async def test_three_workers_let_exactly_the_limit_through(
    tmp_path: Path, shared_postgres_url: str,
) -> None:
    """300 requests from one client to 3 workers with RATE_LIMIT=60/minute: exactly 60 pass
    (with a limit per worker, up to 180 would)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LNBITS_", "NWC_", "DATABASE_", "HTTP_", "ALERT_", "REDIS_"))}
    env.update(DATABASE_URL=shared_postgres_url, LIGHTNING_TEST_MODE="true", LOG_FORMAT="json",
               RATE_LIMIT="60/minute", EMAIL_FOLDER=str(tmp_path / "mail"))
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "lngate", "serve", "--port", str(port),
             "--workers", str(WORKERS)],
            env=env, cwd=tmp_path, stdout=output, stderr=subprocess.STDOUT)
    try:
        await wait_for_workers(shared_postgres_url, process, log)
        await away_from_a_minute_boundary()
        url = f"http://127.0.0.1:{port}"
        # a new connection per request, 30 at a time: the kernel spreads them over the workers
        limits = httpx.Limits(max_keepalive_connections=0)
        semaphore = asyncio.Semaphore(30)

        async def one(http: httpx.AsyncClient) -> int:
            async with semaphore:
                response = await http.post("/api/create-invoice",
                                           json={"amount": 1, "description": "limit"})
                return response.status_code

        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:
            statuses = await asyncio.gather(*(one(http) for _ in range(300)))
            served = []
            for _ in range(30):  # each answer comes from one worker's own counters
                text = (await http.get("/metrics")).text
                served.append(sum(int(float(n)) for n in re.findall(
                    r'lngate_http_requests_total\{[^}]*route="/api/create-invoice"[^}]*\} (\S+)',
                    text)))
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert statuses.count(200) == 60, (statuses.count(200), statuses.count(429))
    assert statuses.count(429) == 240
    assert 0 < max(served) < 300, served  # several workers answered


def test_sqlite_refuses_more_than_one_worker(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve --workers 2` on SQLite exits 2 with one line naming DATABASE_URL and why."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app, ["serve", "--port", "1", "--workers", "2"], catch_exceptions=False,
        env={"DATABASE_URL": f"sqlite:///{tmp_path / 'one.sqlite3'}",
             "LIGHTNING_TEST_MODE": "true"})
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "--workers 2 refused: DATABASE_URL is SQLite, which takes one writer process; use one "
        "worker, or PostgreSQL for several"]
    assert not (tmp_path / "one.sqlite3").exists()  # refused before touching anything
