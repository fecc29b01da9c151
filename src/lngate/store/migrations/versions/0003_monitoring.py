"""monitoring: health_checks, roll-ups (calls, latency, probes), rollup_state, alert_history

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-27 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import lngate.store.types

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None

_FAILED = sa.text("outcome IN ('failure', 'timeout')")


def upgrade() -> None:
    op.create_table(
        "health_checks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("checked_at", lngate.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("healthy", sa.Boolean(), nullable=False),
        sa.Column("response_ms", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_checks")),
    )
    op.create_index(op.f("ix_health_checks_provider_checked_at"), "health_checks",
                    ["provider", "checked_at"])
    op.create_index(op.f("ix_health_checks_checked_at"), "health_checks", ["checked_at"])

    op.create_table(
        "provider_call_rollups",
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("period", sa.String(length=1), nullable=False),
        sa.Column("hour", lngate.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("operation", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("error_type", sa.String(length=64), nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.Column("duration_sum_ms", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("provider", "period", "hour", "operation", "outcome",
                                "error_type", name=op.f("pk_provider_call_rollups")),
    )
    op.create_index(op.f("ix_provider_call_rollups_period_hour"), "provider_call_rollups",
                    ["period", "hour"])

    op.create_table(
        "provider_latency_rollups",
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("period", sa.String(length=1), nullable=False),
        sa.Column("hour", lngate.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("latency_bucket", sa.Integer(), nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("provider", "period", "hour", "latency_bucket",
                                name=op.f("pk_provider_latency_rollups")),
    )
    op.create_index(op.f("ix_provider_latency_rollups_period_hour"), "provider_latency_rollups",
                    ["period", "hour"])

    op.create_table(
        "health_check_rollups",
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("period", sa.String(length=1), nullable=False),
        sa.Column("hour", lngate.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("probes", sa.Integer(), nullable=False),
        sa.Column("healthy", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("provider", "period", "hour", name=op.f("pk_health_check_rollups")),
    )
    op.create_index(op.f("ix_health_check_rollups_period_hour"), "health_check_rollups",
                    ["period", "hour"])

    op.create_table(
        "rollup_state",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("rolled_until", lngate.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_rollup_state")),
    )

    op.create_table(
        "alert_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", lngate.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("deliveries", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_history")),
    )
    op.create_index(op.f("ix_alert_history_created_at"), "alert_history", ["created_at"])
    op.create_index(op.f("ix_alert_history_provider_created_at"), "alert_history",
                    ["provider", "created_at"])

    op.create_index("ix_provider_calls_failures", "provider_calls", ["provider", "started_at"],
                    sqlite_where=_FAILED, postgresql_where=_FAILED)


def downgrade() -> None:
    op.drop_index("ix_provider_calls_failures", table_name="provider_calls")
    op.drop_table("alert_history")
    op.drop_table("rollup_state")
    op.drop_table("health_check_rollups")
    op.drop_table("provider_latency_rollups")
    op.drop_table("provider_call_rollups")
    op.drop_table("health_checks")
