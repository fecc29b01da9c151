"""``INSERT ... ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def insert_ignore(conn: AsyncConnection, table: Table, conflict_columns: Sequence[str]) -> Any:
    """An insert into ``table`` that does nothing when ``conflict_columns`` already exist."""
    return insert_ignore_for(conn.dialect.name, table, conflict_columns)


def insert_ignore_for(dialect_name: str, table: Table, conflict_columns: Sequence[str]) -> Any:
    """:func:`insert_ignore` for a dialect named ahead (a statement built once, at import)."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=list(conflict_columns))
