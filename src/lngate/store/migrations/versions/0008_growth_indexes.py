"""partial indexes for the queries that counted or searched the whole invoices table

Revision ID: 0008_growth_indexes
Revises: 0003
Create Date: 2026-11-30 03:10:00.000000

Two queries read every invoice ever stored, so their cost grew with the shop's history (measured
by benchmarks/bench_growth.py at 1,000,000 invoices):

- the paid-invoices gauge (``lngate_invoices_settled``), counted per provider at most every
  ten seconds while /metrics is scraped, read the whole table on SQLite and PostgreSQL;
- closing the demo's pending test invoices at start-up walked every invoice created before it.

Both now read a partial index holding only the rows they count: paid invoices by provider, and
pending invoices by creation time (the few waiting for payment). The queries repeat the index's
predicate with the same constant, which is what lets SQLite and PostgreSQL's generic plans use a
partial index. Each index starts with ``state``, although the predicate fixes it: SQLite, which
the gateway never ANALYZEs, then sees an equality on the index's first column, as on
``ix_invoices_state_expires_at``, and prefers the partial index, which answers alone.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_growth_indexes"
down_revision = "0003"
branch_labels = None
depends_on = None

_PAID = sa.text("state = 'paid'")
_PENDING = sa.text("state = 'pending'")


def upgrade() -> None:
    op.create_index("ix_invoices_paid_provider", "invoices", ["state", "provider"],
                    sqlite_where=_PAID, postgresql_where=_PAID)
    op.create_index("ix_invoices_pending_created_at", "invoices", ["state", "created_at"],
                    sqlite_where=_PENDING, postgresql_where=_PENDING)


def downgrade() -> None:
    op.drop_index("ix_invoices_pending_created_at", table_name="invoices")
    op.drop_index("ix_invoices_paid_provider", table_name="invoices")
