"""stream_cursors: where each provider's paid-invoice stream resumes after a restart

Revision ID: 0004_stream_cursors
Revises: 0003
Create Date: 2026-12-04 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

import lngate.store.types

revision = "0004_stream_cursors"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stream_cursors",
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("last_index", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", lngate.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("provider", name=op.f("pk_stream_cursors")),
    )


def downgrade() -> None:
    op.drop_table("stream_cursors")
