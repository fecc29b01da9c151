"""test_node_keys: the test provider's private key, one for every instance on the database

Each process used to make its own key, so behind several workers (or instances) the test
provider was several nodes: invoices named different payees, and every follower logged
``payee_key_mismatch`` at error level when it applied the leader's probe, which reported the
leader's key.

Revision ID: 0009_test_node_keys
Revises: 0005_coordination
Create Date: 2026-11-30 14:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

import lngate.store.types

revision = "0009_test_node_keys"
down_revision = "0005_coordination"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "test_node_keys",
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("private_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", lngate.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("provider", name=op.f("pk_test_node_keys")),
    )


def downgrade() -> None:
    op.drop_table("test_node_keys")
