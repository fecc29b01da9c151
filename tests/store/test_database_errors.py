"""Which database errors a request may answer as "try again" (503), and which are bugs."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from lngate.store.database import is_database_error, is_transient


def sqlite_error(tmp_path, statement: str) -> sqlite3.Error:  # type: ignore[no-untyped-def]
    """The error SQLite itself raises for ``statement`` while another connection holds the
    write lock (timeout 0)."""
    path = tmp_path / "db.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE IF NOT EXISTS t (x)")
    holder.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        other.execute(statement)
    except sqlite3.Error as exc:
        return exc
    finally:
        holder.execute("ROLLBACK")
        other.close()
        holder.close()
    raise AssertionError(f"{statement} did not fail")


def test_a_bare_sqlite_busy_error_is_transient(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """SQLite's own "database is locked" (the create path's lane raises it bare) is a database
    error to retry; a missing table, from the same driver, is not."""
    busy = sqlite_error(tmp_path, "BEGIN IMMEDIATE")
    missing = sqlite_error(tmp_path, "SELECT * FROM nowhere")
    assert "locked" in str(busy)
    assert is_database_error(busy) and is_transient(busy)
    assert is_database_error(missing) and not is_transient(missing)


@pytest.mark.parametrize(("error", "database", "transient"), [
    (OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked")), True, True),
    (IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE")), True, False),
    (ProgrammingError("SELECT", {}, sqlite3.ProgrammingError("closed")), True, False),
    (ConnectionRefusedError(), False, True),
    (ValueError(), False, False),
])
def test_database_errors_and_transient_ones(error: BaseException, database: bool,
                                            transient: bool) -> None:
    """SQLAlchemy's and the drivers' errors are database errors, an OSError is not (it is
    transient for the loops that retry, but a request meeting one elsewhere is not told that the
    database is busy)."""
    assert is_database_error(error) is database
    assert is_transient(error) is transient
