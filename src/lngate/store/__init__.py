"""Persistence: SQLAlchemy 2 Core (async) on SQLite or PostgreSQL, migrated by Alembic.

Core rather than the ORM: an ORM insert costs 0.38-0.53 ms of CPU here against 0.24-0.37 ms
for Core (measured: docs/architecture.md), and the create-invoice path is one insert per request.
"""

from lngate.store.database import Database, database_url_for_driver

__all__ = ["Database", "database_url_for_driver"]
