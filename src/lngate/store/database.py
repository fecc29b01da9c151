"""The engine, its connection settings, applying migrations, and checking the database is usable.

Usable means three things, checked by :meth:`Database.check` at start-up (after migrating) and
on every readiness probe: the database answers, a write reaches it (a committed transaction,
not a rolled-back one: in WAL mode a rolled-back write never touches the disk, so a full disk
would go unnoticed), and its schema is the one this code expects (the stored Alembic revisions
are the scripts' heads, and every table and column exists). Any failure is a
:class:`DatabaseUnusable` whose message is one line, never the URL or its password.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.exc import InterfaceError as SAInterfaceError
from sqlalchemy.exc import OperationalError as SAOperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from lngate.store.direct_insert import PG_POOL_SIZE, SQLITE_BUSY_TIMEOUT_MS, DirectInsert
from lngate.store.migration_scripts import script_revisions
from lngate.store.sqlite_driver import CACHE_KIB, one_hop_dbapi
from lngate.store.wal_bound import WalBound
from lngate.store.tables import metadata

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
_PG_MIGRATION_LOCK = 0x6C6E67617465  # "lngate": serialises migrations of concurrent processes
SQLITE_READERS = 2
"""Read-only connections of an SQLite file's :meth:`Database.connect` (each with its thread)."""
PG_CONNECT_TIMEOUT = 10.0
"""Seconds to open a PostgreSQL connection (asyncpg's own default is 60)."""

# The write check changes the revision row and changes it back, in one committed transaction:
# SQLite skips writing a row updated to identical content, so a plain no-op update proves
# nothing. Nobody else sees the intermediate value; the stored revision is unchanged. (The
# column holds 32 characters: revision ids must stay shorter than that, as ours, 0001..., are.)
_TOUCH_REVISIONS = text("UPDATE alembic_version SET version_num = version_num || '~'")
_RESTORE_REVISIONS = text(
    "UPDATE alembic_version SET version_num = substr(version_num, 1, length(version_num) - 1) "
    "RETURNING version_num"
)


class DatabaseUnusable(Exception):
    """The database cannot be used. ``kind`` is ``down``, ``not_writable`` or ``schema``."""

    def __init__(self, reason: str, *, kind: str = "down") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


def database_url_for_driver(url: str) -> str:
    """Map a user-facing URL (``sqlite:///f``, ``postgresql://…``) to the async driver's."""
    for prefix in ("postgresql+asyncpg://", "sqlite+aiosqlite://"):
        if url.startswith(prefix):
            return url
    for prefix, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(prefix):
            return driver + url[len(prefix) :]
    raise ValueError("DATABASE_URL must start with sqlite:// or postgresql://")


def describe_error(exc: BaseException) -> str:
    """One line saying what went wrong, from the driver's own error (never the SQL or URL)."""
    if isinstance(exc, DatabaseUnusable):
        return exc.reason
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    if isinstance(exc, TimeoutError):
        return "no answer in time (timed out)"
    text_ = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text_}" if text_ else type(exc).__name__


# What a database that cannot be used raises; asyncpg raises some connection errors (bad
# password, unknown database) without SQLAlchemy's wrapper. (Alembic's CommandError too, caught
# where migrations run: Alembic is imported only there, see store/migration_scripts.py.)
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (OSError, SQLAlchemyError, sqlite3.Error)


def _asyncpg() -> Any:
    """asyncpg, imported on first use: a gateway on SQLite never loads it (~3 MiB per process).
    An asyncpg error can only exist once asyncpg is loaded, so the tuples below only need its
    classes from then on."""
    import asyncpg  # type: ignore[import-untyped]

    return asyncpg


def _connection_errors() -> tuple[type[BaseException], ...]:
    """:data:`_CONNECTION_ERRORS`, and asyncpg's own once it is loaded."""
    if "asyncpg" not in sys.modules:
        return _CONNECTION_ERRORS
    asyncpg = _asyncpg()
    return (*_CONNECTION_ERRORS, asyncpg.PostgresError, asyncpg.InterfaceError)


def _transient_asyncpg() -> tuple[type[BaseException], ...]:
    """What a database hiccup raises from asyncpg (nothing until asyncpg is loaded): a lost or
    refused connection, a server shutting down or out of connections, a transaction to retry
    (deadlock or serialization). asyncpg errors reach us bare (a dedicated connection) or as the
    cause of SQLAlchemy's DBAPIError."""
    if "asyncpg" not in sys.modules:
        return ()
    asyncpg = _asyncpg()
    return (asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
            asyncpg.exceptions.OperatorInterventionError,
            asyncpg.exceptions.InsufficientResourcesError,
            asyncpg.exceptions.TransactionRollbackError)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a database hiccup that the next attempt may not meet (a lost or
    refused connection, a timeout, a lock held past the wait, a transaction to retry), rather
    than a bug."""
    transient_asyncpg = _transient_asyncpg()
    if isinstance(exc, (OSError, TimeoutError, PoolTimeout, SAOperationalError, SAInterfaceError,
                        *transient_asyncpg)):
        return True
    if isinstance(exc, sqlite3.OperationalError):  # the create path's own lane raises it bare
        return exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    if isinstance(exc, DBAPIError):
        cause = exc.orig.__cause__ if exc.orig is not None else None
        return exc.connection_invalidated or isinstance(cause, transient_asyncpg)
    return False


def is_database_error(exc: BaseException) -> bool:
    """Whether ``exc`` was raised by the database or its driver (SQLAlchemy's errors, sqlite3's,
    asyncpg's once loaded), not by anything else a request does."""
    errors: tuple[type[BaseException], ...] = (SQLAlchemyError, sqlite3.Error)
    if "asyncpg" in sys.modules:
        asyncpg = _asyncpg()
        errors = (*errors, asyncpg.PostgresError, asyncpg.InterfaceError)
    return isinstance(exc, errors)


def is_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is a write refused by a unique or foreign key constraint."""
    return isinstance(exc, IntegrityError)


def migration_heads() -> frozenset[str]:
    """The revisions a fully migrated database stores (read once from the packaged scripts)."""
    return script_revisions().heads


class Database:
    """Owns the async engine. Callers use :meth:`transaction` or :meth:`connect`."""

    def __init__(self, engine: AsyncEngine, *, read_engine: AsyncEngine | None = None) -> None:
        """``read_engine``: where :meth:`connect` reads (SQLite files: connections of their
        own); ``None``: ``engine``."""
        self.engine = engine
        self.read_engine = read_engine or engine
        self._schema_checked_at: frozenset[str] | None = None
        sqlite_path = engine.url.database if engine.dialect.name == "sqlite" else None
        if not sqlite_path or sqlite_path == ":memory:" or sqlite_path.startswith("file:"):
            sqlite_path = None  # a second connection would not see the same database
        self.direct = DirectInsert(
            engine, sqlite_path=sqlite_path,
            postgres_pool=self._direct_pool if engine.dialect.name == "postgresql" else None)
        """Inserts in transactions of their own through the driver (the create path's lane)."""
        self.wal_bound = WalBound(sqlite_path) if sqlite_path else None
        """An SQLite file's write-ahead log kept short (a serving process checks it
        periodically); ``None`` on PostgreSQL and in-memory SQLite."""

    @classmethod
    def from_url(cls, url: str, *, echo: bool = False) -> Database:
        """Build the engine for ``url``; SQLite gets WAL and one connection per process.

        One SQLite connection for writes: SQLite allows one writer at a time, and a pool of
        writers only adds busy-handler sleeps (p99 132 ms instead of 20 ms, measured). Reads
        (:meth:`connect`) of an SQLite file get :data:`SQLITE_READERS` read-only connections of
        their own: in WAL mode a reader never waits for the writer, so a status check, the
        alert rules' read of the provider calls or a page never queues behind settlements and
        the outbox for the one writing connection (nor they behind it). Raises
        :class:`DatabaseUnusable` when the SQLite file's folder cannot be created.
        """
        driver_url = database_url_for_driver(url)
        if driver_url.startswith("sqlite"):
            path = driver_url.split("///", 1)[-1]
            if path and path != ":memory:":
                folder = Path(path).parent
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise DatabaseUnusable(
                        f"cannot create the folder {str(folder)!r}: {exc.strerror or exc}"
                    ) from None
            engine = create_async_engine(
                driver_url, echo=echo, pool_size=1, max_overflow=0, pool_timeout=30,
                # one hand-off to aiosqlite's thread per statement, not three or four
                module=one_hop_dbapi(),
                # pysqlite opens no transaction for reads and engine.begin() commits or rolls
                # back itself, so the reset rollback on return is only a wasted thread hop.
                pool_reset_on_return=None,
            )
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
            if path and path != ":memory:" and not path.startswith("file:"):
                readers = create_async_engine(
                    driver_url, echo=echo, pool_size=SQLITE_READERS, max_overflow=0,
                    pool_timeout=30, module=one_hop_dbapi(), pool_reset_on_return=None)
                event.listen(readers.sync_engine, "connect", _sqlite_reader_pragmas)
                return cls(engine, read_engine=readers)
        else:
            engine = create_async_engine(
                driver_url, echo=echo, pool_size=10, max_overflow=10, pool_pre_ping=True,
                connect_args={"timeout": PG_CONNECT_TIMEOUT},
            )
        return cls(engine)

    @property
    def reads_apart(self) -> bool:
        """Whether :meth:`connect` reads on connections the writes never wait for (an SQLite
        file), so moving a read out of a write transaction shortens the writer's queue."""
        return self.read_engine is not self.engine

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection inside one transaction, committed on success, rolled back on error."""
        async with self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads (autobegin; nothing is committed). On an SQLite file it is
        read-only (a write raises) and sees what was committed when each statement began."""
        async with self.read_engine.connect() as conn:
            yield conn

    async def migrate(self) -> None:
        """Apply every Alembic migration not yet applied (idempotent), then :meth:`check`.

        Raises :class:`DatabaseUnusable` (one line) when the database cannot be reached,
        migrated, written to, or does not have the expected schema afterwards.
        """
        from alembic.util import CommandError

        try:
            async with self.engine.begin() as conn:
                if self.dialect == "postgresql":
                    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                                       {"k": _PG_MIGRATION_LOCK})
                await conn.run_sync(_upgrade)
        except CommandError as exc:  # e.g. a revision these scripts do not know
            raise DatabaseUnusable(f"cannot migrate: {exc}", kind="schema") from None
        except _connection_errors() as exc:
            raise DatabaseUnusable(describe_error(exc)) from None
        await self.check()

    async def check(self) -> None:
        """Raise :class:`DatabaseUnusable` unless a write commits and the schema is current.

        One transaction: the ``alembic_version`` row is changed and changed back, which both
        proves a committed write and reads the stored revisions. The full table-and-column
        comparison runs only when those revisions differ from the last ones found correct.
        """
        try:
            conn = await self.engine.connect()
        except _connection_errors() as exc:
            raise DatabaseUnusable(describe_error(exc)) from None
        try:
            try:
                async with conn.begin():
                    await conn.execute(_TOUCH_REVISIONS)
                    stored: frozenset[str] = frozenset(
                        (await conn.execute(_RESTORE_REVISIONS)).scalars())
            except _connection_errors() as exc:
                raise await _write_failure(conn, exc) from None
            if stored != self._schema_checked_at:
                problem = _revision_problem(stored) or await conn.run_sync(_schema_problem)
                if problem:
                    self._schema_checked_at = None
                    raise DatabaseUnusable(problem, kind="schema")
                self._schema_checked_at = stored
        finally:
            try:
                await conn.close()
            except _connection_errors():  # the connection is gone already; nothing to return
                pass

    async def dedicated_connection(self, *, application_name: str,
                                   server_settings: dict[str, str] | None = None) -> Any:
        """A PostgreSQL connection of its own, outside the pool, for what must stay on one
        session (an advisory lock, ``LISTEN``); an ``asyncpg.Connection`` the caller closes.
        ``application_name`` names it in ``pg_stat_activity``."""
        if self.dialect != "postgresql":
            raise RuntimeError("dedicated connections are for PostgreSQL only")
        return await _asyncpg().connect(
            self._postgres_dsn(), timeout=PG_CONNECT_TIMEOUT,
            server_settings={"application_name": application_name, **(server_settings or {})})

    async def _direct_pool(self) -> Any:
        """The direct lane's asyncpg pool (no pre-ping: a lost connection fails one statement,
        and the pool replaces it)."""
        return await _asyncpg().create_pool(
            self._postgres_dsn(), min_size=1, max_size=PG_POOL_SIZE, timeout=PG_CONNECT_TIMEOUT,
            server_settings={"application_name": "lngate-direct"}, reset=_session_unchanged)

    def _postgres_dsn(self) -> str:
        return self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def aclose(self) -> None:
        """Close the direct-insert lane, the log bound's connection and every pooled
        connection."""
        await self.direct.aclose()
        if self.wal_bound is not None:
            await self.wal_bound.aclose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
        await self.engine.dispose()


async def _session_unchanged(_conn: Any) -> None:
    """The direct lane's release step: nothing to reset.

    asyncpg's default reset sends ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``
    on every release, a second round trip for each one-statement hit or batch. The lane's
    statements (inserts, the rate limit's upsert) change no session state; asyncpg still rolls
    back a transaction left open before calling this.
    """


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    cursor.close()


def _sqlite_reader_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # No journal_mode here: WAL is the file's own setting, made by the writing connection,
    # which connects first (migrations).
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA query_only=ON")
    cursor.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    cursor.close()


def alembic_config() -> Config:
    """An Alembic config pointing at the packaged migrations."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _upgrade(sync_connection: Connection) -> None:
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = sync_connection
    command.upgrade(config, "heads")


async def _write_failure(conn: AsyncConnection, exc: BaseException) -> DatabaseUnusable:
    """Why the write check failed: no schema at all, a lost connection, or a refused write."""
    try:
        migrated = await conn.run_sync(
            lambda sync: inspect(sync).has_table("alembic_version"))
    except _connection_errors():
        return DatabaseUnusable(describe_error(exc))
    if not migrated:
        return DatabaseUnusable("the database has no lngate schema: run `lngate migrate`",
                                kind="schema")
    return DatabaseUnusable(f"a write failed: {describe_error(exc)}", kind="not_writable")


def _revision_problem(stored: frozenset[str]) -> str | None:
    expected = migration_heads()
    if stored == expected:
        return None
    found = ", ".join(sorted(stored)) or "none"
    wanted = ", ".join(sorted(expected))
    if stored - script_revisions().known:
        return (f"the schema is at revision {found}, which this lngate does not know "
                f"(expects {wanted}): it was migrated by a newer version")
    return f"the schema is at revision {found}, this lngate expects {wanted}: run `lngate migrate`"


def _schema_problem(sync_connection: Connection) -> str | None:
    inspector = inspect(sync_connection)
    existing = set(inspector.get_table_names())
    for table in metadata.sorted_tables:
        if table.name not in existing:
            return f"table {table.name!r} is missing although the schema is at the latest revision"
        columns = {column["name"] for column in inspector.get_columns(table.name)}
        missing = [c.name for c in table.columns if c.name not in columns]
        if missing:
            return f"table {table.name!r} lacks column(s) {', '.join(missing)}"
    return None
