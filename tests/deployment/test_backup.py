"""`lngate backup`: a SQLite copy made while a gateway runs (and writes) restores every invoice
and order; the configuration is saved without secrets unless asked, then privately; PostgreSQL
gets the pg_dump commands without its password; every failure is one line and exit 1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from lngate.cli import app
from lngate.settings import Settings
from tests.deployment.cluster import Cluster, postgres_database

ADMIN_TOKEN = "backup-admin-token-0123456789"
ORDER = {"product": "dazpay", "amount": 2100,
         "customer": {"email": "alice@example.com", "name": "Alice"}}


def backup_command(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``lngate backup`` as a separate process, as an operator runs it beside the gateway."""
    return subprocess.run([sys.executable, "-m", "lngate", "backup", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


async def test_a_backup_taken_while_the_gateway_writes_restores_everything(tmp_path: Path,
                                                                         ) -> None:
    """Invoices and orders (paid and pending) made before the backup are all served, with the
    same status, by a second gateway started on the copy, although the first one kept creating
    invoices during the backup; the folder and the database copy are private."""
    database = tmp_path / "live" / "gateway.sqlite3"
    env = {"DATABASE_URL": f"sqlite:///{database}", "LIGHTNING_TEST_MODE": "true",
           "RATE_LIMIT": "100000/minute", "ADMIN_TOKEN": ADMIN_TOKEN}
    with Cluster(tmp_path / "live", 1, env) as live:
        async with httpx.AsyncClient(base_url=live.instances[0].url, timeout=10) as http:
            invoices, orders = {}, {}
            for n in range(12):
                created = (await http.post("/api/create-invoice",
                                           json={"amount": 21 + n, "description": f"n{n}"}))
                invoices[created.json()["invoice"]["payment_hash"]] = "pending"
            for _ in range(6):
                created = await http.post("/api/orders", json=ORDER)
                assert created.status_code == 201, created.text
                orders[created.json()["order"]["id"]] = created.json()["invoice"]["payment_hash"]
                invoices[created.json()["invoice"]["payment_hash"]] = "pending"
            for payment_hash in [*list(invoices)[:6], *list(orders.values())[:3]]:
                assert (await http.post(f"/api/demo/pay/{payment_hash}")).status_code == 200
                check = await http.get("/api/check-invoice", params={"id": payment_hash})
                assert check.json() == {"status": "settled"}
                invoices[payment_hash] = "settled"

            async def keep_writing() -> int:
                made = 0
                while True:
                    await http.post("/api/create-invoice", json={"amount": 5, "description": "w"})
                    made += 1
                    await asyncio.sleep(0.01)

            writer = asyncio.create_task(keep_writing())
            await asyncio.sleep(0.3)
            backup = await asyncio.to_thread(backup_command, live.env, tmp_path, "--output",
                                             str(tmp_path / "saved"))
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
    assert backup.returncode == 0, backup.stderr
    assert "copying the SQLite database" in backup.stderr
    assert "database copied and checked" in backup.stderr
    saved = tmp_path / "saved"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o700
    assert stat.S_IMODE((saved / "lngate.sqlite3").stat().st_mode) == 0o600
    assert stat.S_IMODE((saved / "lngate.env").stat().st_mode) == 0o644
    assert ADMIN_TOKEN not in (saved / "lngate.env").read_text()
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]

    restored_env = {**env, "DATABASE_URL": f"sqlite:///{saved / 'lngate.sqlite3'}"}
    with Cluster(tmp_path / "restored", 1, restored_env) as restored:
        async with httpx.AsyncClient(base_url=restored.instances[0].url, timeout=10) as http:
            for payment_hash, status in invoices.items():
                check = await http.get("/api/check-invoice", params={"id": payment_hash})
                assert check.json()["status"] == status, (payment_hash, check.json())
            for order_id, payment_hash in orders.items():
                order = (await http.get(f"/api/orders/{order_id}")).json()["order"]
                assert order["paymentHash"] == payment_hash
                assert order["status"] == ("paid" if invoices[payment_hash] == "settled"
                                           else "pending")


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[CliRunner]:
    """The CLI in ``tmp_path`` with no lngate variable from outside and no .env."""
    for name in list(os.environ):
        if name.startswith(("LNBITS_", "NWC_", "ALERT_", "ADMIN_", "SMTP_", "DATABASE_",
                            "REDIS_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield CliRunner()


def migrated_sqlite(runner: CliRunner, path: Path) -> dict[str, str]:
    env = {"DATABASE_URL": f"sqlite:///{path}", "LIGHTNING_TEST_MODE": "true"}
    assert runner.invoke(app, ["migrate"], env=env).exit_code == 0
    return env


def test_secrets_are_left_out_unless_asked_and_then_private(runner: CliRunner,
                                                            tmp_path: Path) -> None:
    """Without --include-secrets the saved configuration has no secret and no URL password;
    with it, it has them (mode 0600) and loads back to the same settings, secrets included."""
    env = {**migrated_sqlite(runner, tmp_path / "g.sqlite3"), "ADMIN_TOKEN": ADMIN_TOKEN,
           "REDIS_URL": "redis://:redis-pass-123@127.0.0.1:6379/2",
           "LNBITS_WEBHOOK_SECRET": "webhook-secret-0123456789"}
    plain = runner.invoke(app, ["backup", "-o", "plain"], env=env)
    assert plain.exit_code == 0, plain.output
    text = (tmp_path / "plain" / "lngate.env").read_text()
    assert ADMIN_TOKEN not in text and "redis-pass-123" not in text and "webhook-secret" not in text
    full = runner.invoke(app, ["backup", "-o", "full", "--include-secrets"], env=env)
    assert full.exit_code == 0, full.output
    assert "WITH secrets (mode 0600)" in full.output
    path = tmp_path / "full" / "lngate.env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = Settings(_env_file=path)  # type: ignore[call-arg]
    assert loaded.admin_token is not None and loaded.admin_token.get_secret_value() == ADMIN_TOKEN
    assert loaded.redis_url is not None and "redis-pass-123" in loaded.redis_url.get_secret_value()
    assert loaded.lnbits_webhook_secret is not None
    assert loaded.lnbits_webhook_secret.get_secret_value() == "webhook-secret-0123456789"


def test_failures_are_one_line_and_leave_nothing_behind(runner: CliRunner,
                                                        tmp_path: Path) -> None:
    """An existing folder, a destination that cannot be written, a missing database and a file
    that is not a database each end the command with exit 1 and one line, and no partial
    backup is left."""
    env = migrated_sqlite(runner, tmp_path / "g.sqlite3")
    (tmp_path / "taken").mkdir()
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "junk.sqlite3").write_bytes(b"this is not a database" * 100)
    cases = [
        (env, ["-o", "taken"], "already exists"),
        (env, ["-o", str(tmp_path / "a-file" / "backup")], "cannot write to"),
        ({**env, "DATABASE_URL": f"sqlite:///{tmp_path / 'none.sqlite3'}"}, ["-o", "b1"],
         "no SQLite database at"),
        ({**env, "DATABASE_URL": f"sqlite:///{tmp_path / 'junk.sqlite3'}"}, ["-o", "b2"],
         "not a database"),
    ]
    for case_env, args, message in cases:
        result = runner.invoke(app, ["backup", *args], env=case_env)
        assert result.exit_code == 1, (args, result.output)
        last = result.output.strip().splitlines()[-1]
        assert last.startswith("backup failed: ") and message in last, result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "none.sqlite3").exists()  # never created by the backup
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("b1", "b2", "."))) \
        == []


@pytest.mark.postgres
def test_postgres_prints_the_dump_commands_without_the_password(runner: CliRunner,
                                                               tmp_path: Path) -> None:
    """On PostgreSQL the command checks the database, saves the configuration and prints
    pg_dump / pg_restore commands for the configured database, its password left out; an
    unreachable server is exit 1 in one line."""
    with postgres_database("lngate_backup") as url:
        with_password = url.replace("://postgres@", "://postgres:pg-pass-456@")
        env = {"DATABASE_URL": with_password, "LIGHTNING_TEST_MODE": "true"}
        assert runner.invoke(app, ["migrate"], env=env).exit_code == 0
        result = runner.invoke(app, ["backup", "-o", "pg"], env=env)
    assert result.exit_code == 0, result.output
    assert "pg-pass-456" not in result.output
    name = url.rsplit("/", 1)[1]
    assert "pg_dump --format=custom --no-owner --file=lngate-" in result.output
    assert f"'postgresql://postgres@127.0.0.1:5432/{name}'" in result.output
    assert "pg_restore --clean --if-exists --no-owner" in result.output
    assert "pg-pass-456" not in (tmp_path / "pg" / "lngate.env").read_text()
    assert not (tmp_path / "pg" / "lngate.sqlite3").exists()
    down = runner.invoke(app, ["backup", "-o", "pg2"], env={
        **env, "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nothing"})
    assert down.exit_code == 1
    assert down.output.strip().splitlines()[-1].startswith("cannot use the database")
    assert not (tmp_path / "pg2").exists()
