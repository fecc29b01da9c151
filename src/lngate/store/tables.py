"""The schema, as SQLAlchemy Core tables. Alembic migrations in ``migrations/`` create it."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from lngate.store.types import UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

invoices = Table(
    "invoices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("payment_hash", String(64), nullable=False, unique=True),
    Column("provider", String(32), nullable=False),
    Column("provider_ref", String(256), nullable=False),
    Column("bolt11", Text, nullable=False),
    Column("amount_msat", BigInteger, nullable=False),
    Column("description", Text, nullable=False),
    Column("metadata", JSON, nullable=True, key="metadata_"),
    Column("state", String(16), nullable=False),
    Column("is_test", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("paid_at", UTCDateTime, nullable=True),
    Column("idempotency_key", String(255), nullable=True, unique=True),
    Column("request_fingerprint", String(64), nullable=True),
    Index(None, "state", "expires_at"),
)

provider_calls = Table(
    "provider_calls",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("provider", String(32), nullable=False),
    Column("operation", String(32), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("error_type", String(64), nullable=True),
    Column("error_message", Text, nullable=True),
    Index(None, "provider", "started_at"),
    Index(None, "started_at"),
)
