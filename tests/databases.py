"""Database fixtures: a fresh SQLite file per test, and a fresh PostgreSQL database per session.

PostgreSQL is the real server on 127.0.0.1:5432 (``LNGATE_TEST_POSTGRES_URL`` overrides the
admin URL); each session creates its own database and drops it at the end. The PostgreSQL case
of ``database_url`` carries the ``postgres`` marker, so ``-m "not postgres"`` runs the SQLite
case alone; a PostgreSQL that cannot be reached fails those tests with one line saying so.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import pytest
from sqlalchemy import text

from lngate.store import Database
from lngate.store.tables import metadata
from tests.peers.services import CONNECT_TIMEOUT, postgres_admin_url, postgres_unreachable


def _admin(admin_url: str, statement: str) -> None:
    async def run() -> None:
        admin = await asyncpg.connect(admin_url, timeout=CONNECT_TIMEOUT)
        try:
            await admin.execute(statement)
        finally:
            await admin.close()

    # A thread of its own: this may be reached from inside the tests' running event loop.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a PostgreSQL database created for this test session."""
    admin_url = postgres_admin_url()
    name = f"lngate_test_{uuid.uuid4().hex[:10]}"
    problem: Exception | None = None
    try:
        _admin(admin_url, f'CREATE DATABASE "{name}"')
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        problem = exc
    if problem is not None:  # failed outside the except block: one line, no chained traceback
        postgres_unreachable(admin_url, problem)
    yield admin_url.rsplit("/", 1)[0] + "/" + name
    _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _emptied(url: str) -> str:
    """``url``'s database, migrated, with every table emptied."""
    db = Database.from_url(url)
    await db.migrate()
    async with db.transaction() as conn:
        for table in reversed(metadata.sorted_tables):
            await conn.execute(text(f"DELETE FROM {table.name}"))
    await db.aclose()
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    """A migrated, empty database: each test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'lngate.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    yield await _emptied(url)


@pytest.fixture
async def shared_postgres_url(postgres_url: str) -> str:
    """A migrated, empty PostgreSQL database for several gateways at once (the tests that use
    it carry the ``postgres`` marker themselves)."""
    return await _emptied(postgres_url)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """An open :class:`Database` on SQLite or PostgreSQL (parametrised)."""
    database = Database.from_url(database_url)
    yield database
    await database.aclose()


@pytest.fixture
async def sqlite_db(tmp_path) -> AsyncIterator[Database]:  # type: ignore[no-untyped-def]
    """A migrated SQLite database, for tests where the backend does not matter."""
    database = Database.from_url(f"sqlite:///{tmp_path / 'lngate.sqlite3'}")
    await database.migrate()
    yield database
    await database.aclose()
