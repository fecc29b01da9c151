"""health_checks.node_pubkey: the node key a provider reported in its probe

The leader probes; the other instances read its stored probes, and with the key they take the
node key a provider reports (CLN, LND, NWC) as the expected payee, as the leader does.

Revision ID: 0007_probe_node_key
Revises: 0003
Create Date: 2026-11-30 03:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_probe_node_key"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("health_checks") as batch:
        batch.add_column(sa.Column("node_pubkey", sa.String(length=66), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("health_checks") as batch:
        batch.drop_column("node_pubkey")
