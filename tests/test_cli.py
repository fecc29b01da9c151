"""Every command stops on a bad setting or an unusable database with one line, never a traceback."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import structlog
from sqlalchemy import text
from typer.testing import CliRunner

from lngate.cli import app
from lngate.store.database import Database

NWC_PUBKEY = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
NWC_SECRET = "5" * 64
COMMANDS = [["serve", "--port", "1"], ["migrate"], ["check"], ["stats"], ["cleanup"]]
ALL_COMMANDS = [*COMMANDS, ["config", "show"]]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No lngate variable from the outside, no .env file; logs reset after each command."""
    for name in list(os.environ):
        if name.startswith(("LNBITS_", "NWC_", "ALERT_", "ADMIN_", "SMTP_", "DATABASE_", "HTTP_")):
            monkeypatch.delenv(name)
    for name in ("DEBUG", "PUBLIC_URL", "NEXTAUTH_URL", "LNGATE_SKIP_MIGRATIONS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    yield
    structlog.reset_defaults()
    logging.basicConfig(level=logging.WARNING, stream=sys.__stderr__, force=True)


def invoke(args: list[str], **env: str) -> tuple[int, list[str], str]:
    """Run the CLI in-process; returns the exit code, the stderr lines and stdout."""
    base = {"LOG_FORMAT": "json", "LIGHTNING_TEST_MODE": "true"}
    result = CliRunner().invoke(app, args, env={**base, **env}, catch_exceptions=False)
    return result.exit_code, result.stderr.splitlines(), result.stdout


BAD_SETTINGS = [  # (environment, the variables that are wrong in it)
    ({"NWC_URL": "foo"}, ["NWC_URL"]),
    ({"NWC_URL": f"nostr+walletconnect://{NWC_PUBKEY}?relay=wss%3A%2F%2Fr.example.com"
                 f"&secret={NWC_SECRET[:-2]}"}, ["NWC_URL"]),
    ({"DATABASE_URL": "sqlite:/./var/lngate.sqlite3"}, ["DATABASE_URL"]),
    ({"MAX_INVOICE_SATS": "lots", "RATE_LIMIT": "fast", "HTTP_MAX_HEADER_BYTES": "10"},
     ["HTTP_MAX_HEADER_BYTES", "MAX_INVOICE_SATS", "RATE_LIMIT"]),
    ({"LNBITS_ENDPOINT": "http://lnbits.example.com", "LNBITS_INVOICE_KEY": "k" * 32},
     ["LNBITS_ENDPOINT"]),
    ({"LIGHTNING_NETWORK": "mars", "PUBLIC_URL": "ftp://shop"}, ["LIGHTNING_NETWORK", "PUBLIC_URL"]),
]


@pytest.mark.parametrize("args", ALL_COMMANDS, ids=lambda a: a[0])
@pytest.mark.parametrize(("env", "bad"), BAD_SETTINGS, ids=[",".join(b) for _, b in BAD_SETTINGS])
def test_a_bad_setting_stops_every_command_with_one_line_per_variable(
    args: list[str], env: dict[str, str], bad: list[str]
) -> None:
    """Exit status 2 and exactly one stderr line per bad variable, naming it, no secret shown."""
    code, lines, _ = invoke(args, **env)
    assert code == 2, lines
    assert len(lines) == len(bad), lines
    for line, variable in zip(sorted(lines), bad, strict=True):
        assert line.startswith(f"invalid configuration: {variable}: "), line
    assert NWC_SECRET[:-2] not in "\n".join(lines)


def test_serve_with_a_malformed_nwc_url_prints_one_line(tmp_path: Path) -> None:
    """`NWC_URL=foo lngate serve` (a real process) prints one line naming NWC_URL, status 2."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NWC_", "DATABASE_"))}
    env.update(NWC_URL="foo", DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite3'}")
    result = subprocess.run([sys.executable, "-m", "lngate", "serve", "--port", "1"], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "invalid configuration: NWC_URL: NWC URL must start with nostr+walletconnect://"]


# --- an unusable database ----------------------------------------------------------------------


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def migrated(path: Path, *statements: str) -> Path:
    """A migrated SQLite file at ``path``, then ``statements`` run on it."""
    async def run() -> None:
        db = Database.from_url(sqlite_url(path))
        await db.migrate()
        async with db.transaction() as conn:
            for statement in statements:
                await conn.execute(text(statement))
        await db.aclose()

    asyncio.run(run())
    return path


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make ``path`` read-only for this process (root ignores file modes: the immutable flag)."""
    path.chmod(0o444)
    immutable = False
    if os.geteuid() == 0:
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
        if done.returncode != 0:
            pytest.skip("root cannot make a file read-only here (no chattr +i)")
        immutable = True
    try:
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(0o644)


def unusable_database(case: str, tmp_path: Path) -> tuple[str, str]:
    """A DATABASE_URL for ``case`` and a fragment of the reason the command must give."""
    if case == "unreachable_postgresql":
        return "postgresql://nobody@127.0.0.1:9/none", "Connect call failed"
    if case == "folder_not_creatable":
        (tmp_path / "a-file").write_text("not a folder")
        return sqlite_url(tmp_path / "a-file" / "db" / "lngate.sqlite3"), "cannot create the folder"
    if case == "not_a_database":
        (tmp_path / "notes.sqlite3").write_text("these are my notes, not a database\n" * 100)
        return sqlite_url(tmp_path / "notes.sqlite3"), "file is not a database"
    if case == "missing_table":
        path = migrated(tmp_path / "lngate.sqlite3", "DROP TABLE webhook_events")
        return sqlite_url(path), "table 'webhook_events' is missing"
    if case == "newer_revision":
        path = migrated(tmp_path / "lngate.sqlite3",
                        "UPDATE alembic_version SET version_num = '0099' WHERE version_num = "
                        "(SELECT max(version_num) FROM alembic_version)")
        return sqlite_url(path), "0099"
    raise AssertionError(case)


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
@pytest.mark.parametrize("case", ["unreachable_postgresql", "folder_not_creatable",
                                  "not_a_database", "missing_table", "newer_revision"])
def test_an_unusable_database_stops_every_command_with_one_line(
    tmp_path: Path, args: list[str], case: str
) -> None:
    """Exit status 1 and one line naming DATABASE_URL and what is wrong, for every command."""
    url, reason = unusable_database(case, tmp_path)
    code, lines, _ = invoke(args, DATABASE_URL=url)
    assert code == 1, lines
    problems = [line for line in lines if not line.startswith(("{", "DEMO MODE"))]
    assert len(problems) == 1, lines
    assert problems[0].startswith("cannot use the database (DATABASE_URL): ")
    assert reason in problems[0], problems[0]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_a_read_only_database_file_stops_every_command_with_one_line(
    tmp_path: Path, args: list[str]
) -> None:
    """A database file that cannot be written is refused at start, not reported ready."""
    path = migrated(tmp_path / "lngate.sqlite3")
    with read_only(path):
        code, lines, _ = invoke(args, DATABASE_URL=sqlite_url(path))
    assert code == 1, lines
    problems = [line for line in lines if not line.startswith(("{", "DEMO MODE"))]
    assert problems == ["cannot use the database (DATABASE_URL): a write failed: "
                        "OperationalError: attempt to write a readonly database"]


def test_an_unusable_database_through_a_real_serve_process(tmp_path: Path) -> None:
    """`lngate serve` on an unreachable PostgreSQL prints one line, status 1."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    env.update(DATABASE_URL="postgresql://nobody@127.0.0.1:9/none", LIGHTNING_TEST_MODE="true")
    result = subprocess.run([sys.executable, "-m", "lngate", "serve", "--port", "1"], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    problems = [line for line in result.stderr.splitlines()
                if not line.startswith(("{", "DEMO MODE"))]
    assert len(problems) == 1 and problems[0].startswith(
        "cannot use the database (DATABASE_URL): ConnectionRefusedError"), result.stderr



def test_uvicorn_started_directly_prints_one_line_per_bad_variable(tmp_path: Path) -> None:
    """`uvicorn --factory lngate.web.asgi:app_factory` with a bad setting: one line, status 2."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NWC_", "DATABASE_"))}
    env.update(NWC_URL="foo", DATABASE_URL=f"sqlite:///{tmp_path / 'x.sqlite3'}")
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "--factory", "lngate.web.asgi:app_factory",
         "--port", "1"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "invalid configuration: NWC_URL: NWC URL must start with nostr+walletconnect://"]
