"""payments: orders, shipments, subscriptions, outbox, webhook_events; invoice settlement columns

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import lngate.store.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paid_late", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column("webhook_nonce", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column(
            "claimed_until", lngate.store.types.UTCDateTime(timezone=True), nullable=True))

    op.create_table(
        "orders",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("product", sa.String(length=16), nullable=False),
        sa.Column("customer", sa.JSON(), nullable=False),
        sa.Column("plan", sa.String(length=16), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("amount_msat", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("payment_hash", sa.String(length=64), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("created_at", lngate.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("paid_at", lngate.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("paid_late", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("fulfilment", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["payment_hash"], ["invoices.payment_hash"],
                                name=op.f("fk_orders_payment_hash_invoices")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("payment_hash", name=op.f("uq_orders_payment_hash")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_orders_status_created_at"), ["status", "created_at"],
                              unique=False)

    op.create_table(
        "shipments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("address", sa.JSON(), nullable=False),
        sa.Column("recipient_name", sa.String(length=200), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("created_at", lngate.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("shipped_at", lngate.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"],
                                name=op.f("fk_shipments_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipments")),
        sa.UniqueConstraint("order_id", name=op.f("uq_shipments_order_id")),
    )

    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subscriber_key", sa.String(length=300), nullable=False),
        sa.Column("pubkey", sa.String(length=66), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("plan", sa.String(length=16), nullable=False),
        sa.Column("period_start", lngate.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("period_end", lngate.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_order_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", lngate.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", lngate.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["last_order_id"], ["orders.id"],
                                name=op.f("fk_subscriptions_last_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
        sa.UniqueConstraint("subscriber_key", name=op.f("uq_subscriptions_subscriber_key")),
    )

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", lngate.store.types.UTCDateTime(timezone=True),
                  nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", lngate.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", lngate.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"],
                                name=op.f("fk_outbox_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("order_id", "kind", name=op.f("uq_outbox_order_id_kind")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_status_next_attempt_at"),
                              ["status", "next_attempt_at"], unique=False)

    op.create_table(
        "webhook_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("received_at", lngate.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("payment_hash", sa.String(length=64), nullable=True),
        sa.Column("auth", sa.String(length=16), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
    )
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_events_payment_hash"), ["payment_hash"],
                              unique=False)
        batch_op.create_index(batch_op.f("ix_webhook_events_received_at"), ["received_at"],
                              unique=False)


def downgrade() -> None:
    op.drop_table("webhook_events")
    op.drop_table("outbox")
    op.drop_table("subscriptions")
    op.drop_table("shipments")
    op.drop_table("orders")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("webhook_nonce")
        batch_op.drop_column("paid_late")
