"""The schema, as SQLAlchemy Core tables. Alembic migrations in ``migrations/`` create it."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    ForeignKey,
    UniqueConstraint,
    false,
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
    and_,
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
    # Added by migration 0002: a payment seen after expiry; the webhook URL's nonce;
    # the reconciler's lease (also "not checked again before").
    Column("paid_late", Boolean, nullable=False, default=False, server_default=false()),
    Column("webhook_nonce", String(64), nullable=True),
    Column("claimed_until", UTCDateTime, nullable=True),
    # Added by migration 0006: when the reconciler checks this invoice next (NULL: not checked
    # yet, or checked for the last time). It replaces claimed_until, which stays for processes
    # of the previous version during a rolling upgrade.
    Column("next_check_at", UTCDateTime, nullable=True),
    Index(None, "state", "expires_at"),
)

# The reconciler's two queues (store/settlement.py): invoices whose next check is scheduled, in
# due order (paid ones leave it: settling clears next_check_at), and pending invoices never
# checked yet, in creation order. Both partial, so paid and finished invoices cost nothing.
invoices_due_index = Index(
    "ix_invoices_next_check_at",
    invoices.c.next_check_at,
    sqlite_where=invoices.c.next_check_at.is_not(None),
    postgresql_where=invoices.c.next_check_at.is_not(None),
)
invoices_unchecked_index = Index(
    "ix_invoices_unchecked",
    invoices.c.state,
    invoices.c.created_at,
    sqlite_where=and_(invoices.c.next_check_at.is_(None), invoices.c.state == "pending"),
    postgresql_where=and_(invoices.c.next_check_at.is_(None), invoices.c.state == "pending"),
)

# Partial indexes holding only what two whole-table queries count (migration 0008): paid
# invoices per provider (the settled-invoices gauge) and pending invoices by creation time
# (closing the demo's test invoices). Their queries repeat the predicate as a constant; ``state``
# leads so that SQLite, without statistics, prefers them to ix_invoices_state_expires_at.
invoices_paid_index = Index(
    "ix_invoices_paid_provider",
    invoices.c.state,
    invoices.c.provider,
    sqlite_where=invoices.c.state == "paid",
    postgresql_where=invoices.c.state == "paid",
)
invoices_pending_index = Index(
    "ix_invoices_pending_created_at",
    invoices.c.state,
    invoices.c.created_at,
    sqlite_where=invoices.c.state == "pending",
    postgresql_where=invoices.c.state == "pending",
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


# --- payments (migration 0002) ---------------------------------------------------------------

orders = Table(
    "orders",
    metadata,
    Column("id", String(32), primary_key=True),  # secrets.token_urlsafe(16): unguessable
    Column("product", String(16), nullable=False),
    Column("customer", JSON, nullable=False),
    Column("plan", String(16), nullable=True),
    Column("quantity", Integer, nullable=False, default=1),
    Column("amount_msat", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("payment_hash", String(64), ForeignKey("invoices.payment_hash"), nullable=False,
           unique=True),
    Column("metadata", JSON, nullable=True, key="metadata_"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("paid_at", UTCDateTime, nullable=True),
    Column("paid_late", Boolean, nullable=False, default=False, server_default=false()),
    Column("fulfilment", JSON, nullable=True),
    Index(None, "status", "created_at"),
)

shipments = Table(
    "shipments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", String(32), ForeignKey("orders.id"), nullable=False, unique=True),
    Column("status", String(16), nullable=False),  # to_ship, shipped
    Column("quantity", Integer, nullable=False),
    Column("address", JSON, nullable=False),
    Column("recipient_name", String(200), nullable=True),
    Column("email", String(254), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("shipped_at", UTCDateTime, nullable=True),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subscriber_key", String(300), nullable=False, unique=True),  # pubkey, else email
    Column("pubkey", String(66), nullable=True),
    Column("email", String(254), nullable=False),
    Column("plan", String(16), nullable=False),
    Column("period_start", UTCDateTime, nullable=False),
    Column("period_end", UTCDateTime, nullable=False),
    Column("last_order_id", String(32), ForeignKey("orders.id"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", String(32), ForeignKey("orders.id"), nullable=False),
    Column("kind", String(48), nullable=False),
    Column("recipient", String(254), nullable=True),  # NULL: the shop (SHOP_EMAIL at send time)
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),  # pending, sent, failed, skipped
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    UniqueConstraint("order_id", "kind"),
    Index(None, "status", "next_attempt_at"),
)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(32), nullable=False),  # lnbits
    Column("received_at", UTCDateTime, nullable=False),
    Column("payment_hash", String(64), nullable=True),
    Column("auth", String(16), nullable=False),  # token, api_key
    Column("headers", JSON, nullable=False),
    Column("body", Text, nullable=False),
    Column("outcome", String(32), nullable=False),
    Index(None, "payment_hash"),
    Index(None, "received_at"),
)


# --- monitoring (migration 0003) -------------------------------------------------------------

health_checks = Table(
    "health_checks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("provider", String(32), nullable=False),
    Column("checked_at", UTCDateTime, nullable=False),
    Column("healthy", Boolean, nullable=False),
    Column("response_ms", Float, nullable=False),
    Column("error", Text, nullable=True),
    Column("node_pubkey", String(66), nullable=True),  # what the provider reported (0007)
    Index(None, "provider", "checked_at"),
    Index(None, "checked_at"),
)

provider_call_rollups = Table(
    "provider_call_rollups",
    metadata,
    # Roll-ups of provider_calls that keep metrics queries fast at millions of calls: per
    # provider, period ("h": the UTC hour starting at ``hour``; "d": the UTC day starting
    # there), operation, outcome and error type, the calls and their summed duration.
    Column("provider", String(32), primary_key=True),
    Column("period", String(1), primary_key=True),
    Column("hour", UTCDateTime, primary_key=True),
    Column("operation", String(32), primary_key=True),
    Column("outcome", String(16), primary_key=True),
    Column("error_type", String(64), primary_key=True),  # "" when none
    Column("calls", BigInteger, nullable=False),
    Column("duration_sum_ms", Float, nullable=False),
    Index(None, "period", "hour"),
)

provider_latency_rollups = Table(
    "provider_latency_rollups",
    metadata,
    # The latency histogram of the calls made (skipped ones excluded), per provider, period and
    # logarithmic bucket (store/monitoring.py).
    Column("provider", String(32), primary_key=True),
    Column("period", String(1), primary_key=True),
    Column("hour", UTCDateTime, primary_key=True),
    Column("latency_bucket", Integer, primary_key=True),
    Column("calls", BigInteger, nullable=False),
    Index(None, "period", "hour"),
)

health_check_rollups = Table(
    "health_check_rollups",
    metadata,
    Column("provider", String(32), primary_key=True),
    Column("period", String(1), primary_key=True),
    Column("hour", UTCDateTime, primary_key=True),
    Column("probes", Integer, nullable=False),
    Column("healthy", Integer, nullable=False),
    Index(None, "period", "hour"),
)

rollup_state = Table(
    "rollup_state",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("rolled_until", UTCDateTime, nullable=False),
)

alert_history = Table(
    "alert_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rule", String(32), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("kind", String(16), nullable=False),  # fired, resolved
    Column("message", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("details", JSON, nullable=True),
    Column("deliveries", JSON, nullable=True),  # channel -> "ok" or the error
    Index(None, "created_at"),
    Index(None, "provider", "created_at"),
)

# --- paid streams (migration 0004_stream_cursors) --------------------------------------------

stream_cursors = Table(
    "stream_cursors",
    metadata,
    Column("provider", String(32), primary_key=True),
    Column("last_index", BigInteger, nullable=False),  # CLN pay_index, LND settle_index
    Column("updated_at", UTCDateTime, nullable=False),
)

# The latest failure of a provider ("lastError") without scanning its successful calls.
provider_call_failures_index = Index(
    "ix_provider_calls_failures",
    provider_calls.c.provider,
    provider_calls.c.started_at,
    sqlite_where=provider_calls.c.outcome.in_(["failure", "timeout"]),
    postgresql_where=provider_calls.c.outcome.in_(["failure", "timeout"]),
)


# --- back office (migration 0004_backoffice) --------------------------------------------------
# Appended to the payment tables here rather than in their definitions above, so this block is
# the whole of what the back office adds to the schema.

orders.append_column(Column("cancelled_at", UTCDateTime, nullable=True))
# Why the order needs the shop's attention (domain.OrderAttention), e.g. "refund_due": its
# invoice was paid after the order was cancelled.
orders.append_column(Column("attention", String(32), nullable=True))
Index("ix_orders_created_at_id", orders.c.created_at, orders.c.id)

shipments.append_column(Column("tracking_number", String(100), nullable=True))
shipments.append_column(Column("carrier", String(64), nullable=True))
Index("ix_shipments_tracking_number", shipments.c.tracking_number)

# The statistics API counts invoices by creation and by payment time.
Index("ix_invoices_created_at", invoices.c.created_at)
Index("ix_invoices_paid_at", invoices.c.paid_at)

audit_log = Table(
    "audit_log",
    metadata,
    # What an operator (or the system, for a payment on a cancelled order) did: who ("admin-token",
    # "session:<id prefix>", "system:settlement"), when, what ("order.ship"...), to what
    # (an order id...), and the details.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(48), nullable=False),
    Column("target", String(64), nullable=True),
    Column("details", JSON, nullable=True),
    Index(None, "target", "id"),
    Index(None, "created_at"),
)

admin_sessions = Table(
    "admin_sessions",
    metadata,
    # Operator sessions of the browser back office. The cookie carries a random token; only its
    # SHA-256 is stored, so reading this table does not give a usable session.
    Column("token_hash", String(64), primary_key=True),
    Column("admin_key", String(64), nullable=False),  # which ADMIN_TOKEN signed it in
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("client_ip", String(64), nullable=True),
    Column("user_agent", String(200), nullable=True),
    Index(None, "expires_at"),
)

# --- operations (migration 0006) -------------------------------------------------------------

loadtest_runs = Table(
    "loadtest_runs",
    metadata,
    # One row per `lngate loadtest` run that was recorded (POST /api/admin/loadtests): the
    # headline figures as columns, the whole summary (per-step latencies, SLO verdicts) as JSON.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("scenario", String(32), nullable=False),
    Column("rate", Float, nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("requests", Integer, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("p50_ms", Float, nullable=True),
    Column("p99_ms", Float, nullable=True),
    Column("passed", Boolean, nullable=False),
    Column("summary", JSON, nullable=False),
    Index(None, "started_at"),
)

# --- coordination of several instances (migration 0005_coordination) -------------------------

open_incidents = Table(
    "open_incidents",
    metadata,
    # One row per announced alert incident still open: the primary key is what stops two
    # instances (two leaders during a takeover) from announcing one incident twice, or its end.
    Column("rule", String(32), primary_key=True),
    Column("provider", String(32), primary_key=True),
    Column("fired_at", UTCDateTime, nullable=False),
    Column("alert_id", Integer, nullable=True),  # the "fired" row of alert_history
)

payee_keys = Table(
    "payee_keys",
    metadata,
    # Node keys learned from a provider's first valid invoice (trust on first use), shared by
    # every instance; keys pinned in settings are not stored.
    Column("provider", String(32), primary_key=True),
    Column("node_pubkey", String(66), nullable=False),
    Column("learned_at", UTCDateTime, nullable=False),
)

test_invoices = Table(
    "test_invoices",
    metadata,
    # What the test provider issued, so any instance can answer for it and "pay" it.
    Column("payment_hash", String(64), primary_key=True),
    Column("amount_msat", BigInteger, nullable=False),
    Column("preimage", String(64), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("paid_at", UTCDateTime, nullable=True),
)

test_node_keys = Table(
    "test_node_keys",
    metadata,
    # The test provider's private key (migration 0009_test_node_keys), made by the first
    # instance to start and taken by every other, so all of them are one test node: one payee
    # on every invoice, the key the leader's probe reports. Demo and tests only: it signs
    # invoices no network can pay, and no provider but the test provider is checked against it.
    Column("provider", String(32), primary_key=True),
    Column("private_key", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

rate_limit_hits = Table(
    "rate_limit_hits",
    metadata,
    # Sliding-window counters of the rate limits on PostgreSQL (web/ratelimit.py): hits per
    # route, client key and fixed window (``window_start``, epoch seconds); a row is useless
    # once the window after its own has ended (``expires_at``). UNLOGGED on PostgreSQL: losing
    # counters in a crash only resets the limits.
    Column("route", String(32), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("window_start", BigInteger, primary_key=True),
    Column("hits", Integer, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index(None, "expires_at"),
)
