"""Crash safety: a gateway process SIGKILLed after settling an order, before its emails went out,
sends them exactly once after a restart (the outbox is in the database, not in memory)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lngate.store import Database
from lngate.store.outbox import count_by_status
from tests.peers.lnbits_peer import free_port
from tests.peers.smtp_peer import SMTPPeer
from tests.web.payments import order_body

SHOP = "shop@daznode.test"


@contextlib.contextmanager
def gateway_process(
    env: dict[str, str], port: int, cwd: Path, log: Path
) -> Iterator[subprocess.Popen]:
    """``python -m lngate serve`` in its own process group; killed at the end if still alive."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lngate", "serve", "--port", str(port)],
            env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                probe = httpx.get(f"http://127.0.0.1:{port}/api/check-invoice", timeout=1)
                if probe.status_code == 400:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"gateway did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


async def test_emails_survive_a_sigkill_and_are_sent_once(tmp_path: Path) -> None:
    """Settle, SIGKILL before the mail server accepts anything, restart: each email arrives once."""
    database = tmp_path / "gateway.sqlite3"
    smtp = SMTPPeer(port=free_port())  # not accepting yet
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("LNBITS_", "NWC_", "SMTP_"))},
        "DATABASE_URL": f"sqlite:///{database}", "LIGHTNING_TEST_MODE": "true",
        "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port), "SMTP_TLS": "none",
        "EMAIL_FROM": f"DazNode <{SHOP}>", "SHOP_EMAIL": SHOP, "LOG_FORMAT": "json",
        "OUTBOX_BACKOFF_SECONDS": "0.5", "OUTBOX_LEASE_SECONDS": "2",
        "OUTBOX_POLL_INTERVAL_SECONDS": "0.2", "RATE_LIMIT": "1000/second",
    }
    log = tmp_path / "gateway.log"
    base = f"http://127.0.0.1:{port}"
    with gateway_process(env, port, tmp_path, log) as first:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            created = (await http.post("/api/orders", json=order_body("dazbox"))).json()
            payment_hash = created["invoice"]["payment_hash"]
            assert (await http.post(f"/api/demo/pay/{payment_hash}")).status_code == 200
            check = await http.get("/api/check-invoice", params={"id": payment_hash})
            assert check.json() == {"status": "settled"}
        await asyncio.sleep(1.0)  # the worker tries, and fails, to reach the mail server
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
    assert '"email_retry"' in log.read_text()
    db = Database.from_url(f"sqlite:///{database}")
    try:
        async with db.connect() as conn:
            assert await count_by_status(conn) == {"pending": 2}  # settled, nothing sent
    finally:
        await db.aclose()

    smtp.start()
    try:
        with gateway_process(env, port, tmp_path, log):
            await smtp.wait_for(2, timeout=20)
            await asyncio.sleep(3.0)  # past the lease and a few polls: nothing more may come
            async with httpx.AsyncClient(base_url=base, timeout=10) as http:
                order = (await http.get(f"/api/orders/{created['order']['id']}")).json()["order"]
        assert order["status"] == "paid"
        assert sorted(m.rcpt_tos[0] for m in smtp.received) == ["alice@example.com", SHOP]
        assert len({m.message["Message-ID"] for m in smtp.received}) == 2
    finally:
        smtp.stop()
    db = Database.from_url(f"sqlite:///{database}")
    try:
        async with db.connect() as conn:
            assert await count_by_status(conn) == {"sent": 2}
    finally:
        await db.aclose()


@pytest.fixture(autouse=True)
def _no_dotenv(tmp_path: Path) -> None:
    """The subprocess runs in tmp_path, so the repository's .env (if any) is not read."""
    assert not (tmp_path / ".env").exists()
