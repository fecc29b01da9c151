"""back office: audit_log, admin_sessions; orders.cancelled_at/attention; shipment tracking

Revision ID: 0004_backoffice
Revises: 0002, 0003 (it changes the payment tables of 0002; it also joins the two branches, so
a migrated database stores exactly the scripts' heads)
Create Date: 2026-11-28 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import lngate.store.types

revision = "0004_backoffice"
down_revision = ("0002", "0003")
branch_labels = None
depends_on = None


def _utc() -> lngate.store.types.UTCDateTime:
    return lngate.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cancelled_at", _utc(), nullable=True))
        batch_op.add_column(sa.Column("attention", sa.String(length=32), nullable=True))
        batch_op.create_index("ix_orders_created_at_id", ["created_at", "id"], unique=False)

    with op.batch_alter_table("shipments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tracking_number", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("carrier", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_shipments_tracking_number", ["tracking_number"], unique=False)

    op.create_index("ix_invoices_created_at", "invoices", ["created_at"])
    op.create_index("ix_invoices_paid_at", "invoices", ["paid_at"])

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=48), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_target_id"), "audit_log", ["target", "id"])
    op.create_index(op.f("ix_audit_log_created_at"), "audit_log", ["created_at"])

    op.create_table(
        "admin_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("admin_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("expires_at", _utc(), nullable=False),
        sa.Column("revoked_at", _utc(), nullable=True),
        sa.Column("client_ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_admin_sessions")),
    )
    op.create_index(op.f("ix_admin_sessions_expires_at"), "admin_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_table("admin_sessions")
    op.drop_table("audit_log")
    op.drop_index("ix_invoices_paid_at", table_name="invoices")
    op.drop_index("ix_invoices_created_at", table_name="invoices")
    with op.batch_alter_table("shipments", schema=None) as batch_op:
        batch_op.drop_index("ix_shipments_tracking_number")
        batch_op.drop_column("carrier")
        batch_op.drop_column("tracking_number")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_created_at_id")
        batch_op.drop_column("attention")
        batch_op.drop_column("cancelled_at")
