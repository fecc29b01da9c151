"""The back office's request and response shapes, for the OpenAPI document only.

As in :mod:`lngate.web.schemas`, nothing here validates a request: the routes read their input
themselves (:mod:`lngate.web.backoffice_input`); these models tell ``/docs`` and the
schema-based fuzzer what the routes accept and answer. Response models allow extra fields.
Request bodies are given inline (:func:`body`), in JSON and as a URL-encoded form (what an
HTML form of the back-office pages posts).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lngate.web.schemas import Moment


class _Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


OrderStatus = Literal["pending", "paid", "expired", "cancelled"]
Product = Literal["dazbox", "daznode", "dazpay"]


class CustomerSummary(_Answer):
    """Who ordered (the detail adds the address or node key)."""

    email: str | None
    name: str | None


class ShipmentSummary(_Answer):
    """A DazBox shipment."""

    status: Literal["to_ship", "shipped"]
    trackingNumber: str | None
    carrier: str | None
    shippedAt: Moment | None


class OrderSummary(_Answer):
    """An order as the back office lists it."""

    id: str
    status: OrderStatus
    attention: Literal["refund_due"] | None = Field(
        description="``refund_due``: paid after it was cancelled, the money must go back.")
    product: Product
    plan: Literal["monthly", "yearly"] | None
    quantity: int
    amount: int = Field(description="Sats.")
    customer: CustomerSummary
    paymentHash: str
    createdAt: Moment
    paidAt: Moment | None
    paidLate: bool
    cancelledAt: Moment | None
    shipment: ShipmentSummary | None


class OrderPage(_Answer):
    """A page of orders, newest first."""

    orders: list[OrderSummary]
    nextCursor: str | None = Field(description="Pass as ``cursor`` for the next page; "
                                   "``null`` on the last one.")
    limit: int


class OrderInvoice(_Answer):
    """An order's invoice."""

    paymentHash: str
    provider: str
    state: Literal["pending", "paid", "expired"]
    amount: int
    description: str
    isTest: bool
    createdAt: Moment
    expiresAt: Moment
    paidAt: Moment | None
    paidLate: bool
    bolt11: str


class Payment(_Answer):
    """How the order was paid."""

    paid: bool
    paidAt: Moment | None
    paidLate: bool
    provider: str | None
    invoiceState: str | None
    refundDue: bool


class Email(_Answer):
    """An email of the outbox: sent, pending (with its next attempt) or given up."""

    kind: str
    recipient: str | None
    toShop: bool
    status: Literal["pending", "sent", "failed", "skipped"]
    attempts: int
    lastError: str | None
    createdAt: Moment
    sentAt: Moment | None
    nextAttemptAt: Moment | None


class AuditEntry(_Answer):
    """One recorded action."""

    id: int
    at: Moment
    actor: str = Field(description="``admin-token``, ``session:<hash prefix>`` or "
                       "``system:settlement``.")
    action: str
    target: str | None
    details: dict[str, Any] | None


class AdminSubscription(_Answer):
    """A DazNode subscription with its end date."""

    id: int
    status: Literal["active", "expired"]
    email: str
    pubkey: str | None
    plan: str
    periodStart: Moment
    periodEnd: Moment
    lastOrderId: str | None
    createdAt: Moment
    updatedAt: Moment


class OrderFulfilment(_Answer):
    """What the order set going."""

    type: Literal["shipment", "subscription", "receipt"]
    shipment: dict[str, Any] | None = None
    subscription: AdminSubscription | None = None


class OrderDetail(_Answer):
    """An order in full."""

    order: OrderSummary
    invoices: list[OrderInvoice]
    payment: Payment
    fulfilment: OrderFulfilment | None
    emails: list[Email]
    audit: list[AuditEntry]


class QueuedEmail(_Answer):
    """The email an action queued."""

    kind: str
    queued: bool


class OrderActionDone(_Answer):
    """The order after the action."""

    order: OrderSummary
    email: QueuedEmail | None = None


class SubscriptionPage(_Answer):
    """A page of subscriptions, latest end first."""

    subscriptions: list[AdminSubscription]
    nextCursor: str | None


class AuditPage(_Answer):
    """A page of the audit log, newest first."""

    entries: list[AuditEntry]
    nextCursor: str | None


class InvoiceFigures(_Answer):
    """Invoices of one period and key (docs/monitoring.md)."""

    created: int
    paid: int
    conversionRate: float | None
    payments: int
    revenueSats: int
    medianTimeToPaySeconds: float | None


class LatencyFigures(_Answer):
    """Latency of the calls made, ms."""

    mean: float | None
    p50: float | None
    p95: float | None
    p99: float | None


class ProviderFigures(_Answer):
    """One provider's calls in a period."""

    calls: int
    failures: int
    invoiceCreations: int
    successRate: float | None
    latency: LatencyFigures
    errorsByType: dict[str, int]


class StatsPeriodFigures(_Answer):
    """One hour or day."""

    start: Moment
    invoices: dict[str, InvoiceFigures]
    providers: dict[str, ProviderFigures]


class StatsTotal(_Answer):
    """The whole period."""

    invoices: dict[str, InvoiceFigures]
    overall: InvoiceFigures
    providers: dict[str, ProviderFigures]


class StatsAnswer(_Answer):
    """Statistics per hour or day (docs/monitoring.md, "Statistics API")."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    from_: Moment = Field(alias="from")
    to: Moment
    group: Literal["hour", "day"]
    by: Literal["provider", "product"]
    includesTest: bool
    periods: list[StatsPeriodFigures]
    total: StatsTotal
    generatedAt: Moment


class SessionInfo(_Answer):
    """Who is calling: a session (with its CSRF token) or the bearer token."""

    actor: str
    via: Literal["session", "token"]
    csrfToken: str | None = None
    expiresAt: Moment | None = None


class SignedIn(_Answer):
    """A new session (its cookie is set beside)."""

    actor: str
    csrfToken: str
    expiresAt: Moment


class SignedOut(_Answer):
    """The session is revoked and its cookie cleared."""

    signedOut: bool


# ------------------------------------------------------------------------------------ requests


class ShipRequest(_Request):
    """Mark a paid DazBox shipped."""

    tracking: str = Field(max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._/-]*$",
                          description="The carrier's tracking number.")
    carrier: str | None = Field(None, max_length=64, description="The carrier's name.")


class CancelRequest(_Request):
    """Cancel an unpaid order."""

    reason: str | None = Field(None, max_length=200, description="Kept in the audit log.")


class LoginRequest(_Request):
    """Sign in with the admin token."""

    token: str = Field(description="``ADMIN_TOKEN``.")
    next: str | None = Field(None, description="Where to go after signing in: a path under "
                             "``/admin`` (forms only).")


def body(model: type[BaseModel], *, required: bool = True, csrf: bool = True) -> dict[str, Any]:
    """``openapi_extra`` for a request body described inline by ``model``, as JSON and as a
    URL-encoded form (with ``csrf``, one that may carry the session's ``csrf_token`` too)."""
    schema = model.model_json_schema()
    form = schema
    if csrf:
        form = {**schema, "properties": {**schema.get("properties", {}), "csrf_token": {
            "type": "string", "description": "The session's CSRF token (or send it in the "
                                             "``X-CSRF-Token`` header)."}}}
    return {"requestBody": {"required": required, "content": {
        "application/json": {"schema": schema},
        "application/x-www-form-urlencoded": {"schema": form}}}}
