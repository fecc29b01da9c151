"""`lngate serve --workers N`: several workers share one rate limit on PostgreSQL, are one test
node in demo mode, and SQLite, which takes one writer process, refuses more than one worker."""

from __future__ import annotations

import asyncio
import json
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

from lngate.bolt11.decode import decode
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


async def wait_for_workers(url: str, process: subprocess.Popen[bytes], log: Path, *,
                           workers: int = WORKERS) -> None:
    deadline = time.monotonic() + 120
    while await leadership_sessions(url) < workers:
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the workers did not all start"
        await asyncio.sleep(0.3)


async def away_from_a_minute_boundary() -> None:
    """The limit's windows are whole minutes: start early in one, so the test ends in it."""
    into = time.time() % 60
    if into > 30:
        await asyncio.sleep(60 - into + 0.5)


def serve_workers(tmp_path: Path, url: str, port: int, workers: int,
                  **settings: str) -> subprocess.Popen[bytes]:
    """`lngate serve --workers N` in demo mode on the database ``url``, logging JSON lines to
    ``tmp_path / "serve.log"``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LNBITS_", "NWC_", "DATABASE_", "HTTP_", "ALERT_", "REDIS_"))}
    env.update(DATABASE_URL=url, LIGHTNING_TEST_MODE="true", LOG_FORMAT="json",
               EMAIL_FOLDER=str(tmp_path / "mail"), **settings)
    with (tmp_path / "serve.log").open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "lngate", "serve", "--port", str(port),
             "--workers", str(workers)],
            env=env, cwd=tmp_path, stdout=output, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def served_by_each(http: httpx.AsyncClient, route: str, reads: int = 30) -> list[int]:
    """The requests to ``route`` each worker counted, as seen in ``reads`` reads of /metrics
    (each answered by one worker, on a new connection)."""
    served = []
    for _ in range(reads):
        text = (await http.get("/metrics")).text
        served.append(sum(int(float(n)) for n in re.findall(
            r'lngate_http_requests_total\{[^}]*route="' + re.escape(route) + r'"[^}]*\} (\S+)',
            text)))
    return served


@pytest.mark.postgres
async def test_three_workers_let_exactly_the_limit_through(
    tmp_path: Path, shared_postgres_url: str,
) -> None:
    """300 requests from one client to 3 workers with RATE_LIMIT=60/minute: exactly 60 pass
    (with a limit per worker, up to 180 would)."""
    port = free_port()
    log = tmp_path / "serve.log"
    process = serve_workers(tmp_path, shared_postgres_url, port, WORKERS, RATE_LIMIT="60/minute")
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
            served = await served_by_each(http, "/api/create-invoice")
    finally:
        stop(process)
    assert statuses.count(200) == 60, (statuses.count(200), statuses.count(429))
    assert statuses.count(429) == 240
    assert 0 < max(served) < 300, served  # several workers answered


@pytest.mark.postgres
async def test_two_demo_workers_are_one_test_node(
    tmp_path: Path, shared_postgres_url: str,
) -> None:
    """Invoices created through two demo workers all name one payee, each is paid (the demo
    wallet) and reported settled through whichever worker a new connection reaches, and the
    log has no error (each worker used to sign with a key of its own, and the follower logged
    payee_key_mismatch on applying the leader's probe)."""
    port = free_port()
    log = tmp_path / "serve.log"
    process = serve_workers(tmp_path, shared_postgres_url, port, 2, HEALTH_CHECK_INTERVAL="1")
    try:
        await wait_for_workers(shared_postgres_url, process, log, workers=2)
        limits = httpx.Limits(max_keepalive_connections=0)  # the kernel spreads connections
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits,
                                     timeout=30) as http:
            invoices = []
            for index in range(20):
                created = await http.post("/api/create-invoice",
                                          json={"amount": 21, "description": f"demo {index}"})
                assert created.status_code == 200, created.text
                invoices.append(created.json()["invoice"])
            served = await served_by_each(http, "/api/create-invoice")
            for invoice in invoices:
                paid = await http.post(f"/api/demo/pay/{invoice['payment_hash']}")
                assert paid.status_code == 200, paid.text
            statuses = [(await http.get("/api/check-invoice", params={"id": i["id"]})).json()
                        for i in invoices]
            await asyncio.sleep(2.5)  # the follower applies the leader's probes (every 1 s)
    finally:
        stop(process)
    assert 0 < max(served) < 20, served  # both workers created some
    assert len({decode(i["payment_request"]).payee for i in invoices}) == 1
    assert statuses == [{"status": "settled"}] * 20
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert [e for e in lines if e.get("level") in ("error", "critical")] == []
    assert sum(e.get("event") == "gateway_started" for e in lines) == 2


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
