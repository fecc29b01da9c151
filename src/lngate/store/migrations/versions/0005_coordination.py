"""coordination: open_incidents, payee_keys, test_invoices, rate_limit_hits

Revision ID: 0005_coordination
Revises: 0003
Create Date: 2026-12-01 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import lngate.store.types

revision = "0005_coordination"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "open_incidents",
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("fired_at", lngate.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("rule", "provider", name=op.f("pk_open_incidents")),
    )
    op.create_table(
        "payee_keys",
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("node_pubkey", sa.String(length=66), nullable=False),
        sa.Column("learned_at", lngate.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("provider", name=op.f("pk_payee_keys")),
    )
    op.create_table(
        "test_invoices",
        sa.Column("payment_hash", sa.String(length=64), nullable=False),
        sa.Column("amount_msat", sa.BigInteger(), nullable=False),
        sa.Column("preimage", sa.String(length=64), nullable=False),
        sa.Column("expires_at", lngate.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("paid_at", lngate.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("payment_hash", name=op.f("pk_test_invoices")),
    )
    unlogged = ["UNLOGGED"] if op.get_bind().dialect.name == "postgresql" else []
    op.create_table(
        "rate_limit_hits",
        sa.Column("route", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("route", "key", "window_start", name=op.f("pk_rate_limit_hits")),
        prefixes=unlogged,
    )
    op.create_index(op.f("ix_rate_limit_hits_expires_at"), "rate_limit_hits", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_rate_limit_hits_expires_at"), table_name="rate_limit_hits")
    op.drop_table("rate_limit_hits")
    op.drop_table("test_invoices")
    op.drop_table("payee_keys")
    op.drop_table("open_incidents")
