"""reconcile schedule: invoices.next_check_at and its two partial indexes; loadtest_runs

Revision ID: 0006_reconcile_schedule
Revises: 0003
Create Date: 2026-12-02 10:00:00.000000

The reconciler used to re-check every pending invoice each interval; it now checks each invoice
on an age-based schedule kept in ``next_check_at`` (services/reconciler.py). Backfill: pending
invoices are due at once (as they were, at the first pass after start-up); invoices expired in
the last ten minutes (RECONCILE_MARGIN_SECONDS' default) get their late-payment check; older
expired ones are done. ``claimed_until`` is left in place for processes of the previous
version that may still run during a rolling upgrade.
"""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

import lngate.store.types

revision = "0006_reconcile_schedule"
down_revision = "0003"
branch_labels = None
depends_on = None

_BACKFILL_MARGIN = timedelta(minutes=10)
_DUE = sa.text("next_check_at IS NOT NULL")
_UNCHECKED = sa.text("next_check_at IS NULL AND state = 'pending'")


def upgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            "next_check_at", lngate.store.types.UTCDateTime(timezone=True), nullable=True))

    invoices = sa.table(
        "invoices",
        sa.column("state", sa.String),
        sa.column("created_at", lngate.store.types.UTCDateTime(timezone=True)),
        sa.column("expires_at", lngate.store.types.UTCDateTime(timezone=True)),
        sa.column("next_check_at", lngate.store.types.UTCDateTime(timezone=True)),
    )
    op.execute(invoices.update().where(invoices.c.state == "pending")
               .values(next_check_at=invoices.c.created_at))
    cutoff = datetime.now(UTC) - _BACKFILL_MARGIN
    op.execute(invoices.update()
               .where(invoices.c.state == "expired", invoices.c.expires_at > cutoff)
               .values(next_check_at=invoices.c.expires_at))

    op.create_index("ix_invoices_next_check_at", "invoices", ["next_check_at"],
                    sqlite_where=_DUE, postgresql_where=_DUE)
    op.create_index("ix_invoices_unchecked", "invoices", ["state", "created_at"],
                    sqlite_where=_UNCHECKED, postgresql_where=_UNCHECKED)

    op.create_table(
        "loadtest_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("recorded_at", lngate.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", lngate.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("scenario", sa.String(length=32), nullable=False),
        sa.Column("rate", sa.Float(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("p50_ms", sa.Float(), nullable=True),
        sa.Column("p99_ms", sa.Float(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loadtest_runs")),
    )
    op.create_index(op.f("ix_loadtest_runs_started_at"), "loadtest_runs", ["started_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_loadtest_runs_started_at"), table_name="loadtest_runs")
    op.drop_table("loadtest_runs")
    op.drop_index("ix_invoices_unchecked", table_name="invoices")
    op.drop_index("ix_invoices_next_check_at", table_name="invoices")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_column("next_check_at")
