"""The HTTP API's request and response shapes, for the OpenAPI document only.

The routes read their bodies by hand (:mod:`lngate.web.body`, :mod:`lngate.web.invoice_input`,
:mod:`lngate.web.order_input`) to answer the contract's exact messages, so nothing here
validates a request: these models describe what the routes accept and answer, so that ``/docs``
can be tried and a schema-based fuzzer can generate requests and check the answers.

Response models allow extra fields: lngate adds fields beside the original system's and may add
more. Names follow the wire contract's types (ProviderStatus, ProviderMetrics, OverallStats).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

Sats = Annotated[int, Field(ge=1, description="An amount in whole sats.")]
PaymentHash = Annotated[str, Field(pattern="^[0-9a-fA-F]{64}$",
                                   description="A payment hash: 64 hexadecimal digits.")]
Moment = Annotated[datetime, Field(description="An ISO-8601 UTC time (``...Z``).")]
Milliseconds = Annotated[float, Field(description="A duration in milliseconds.")]
Percent = Annotated[float, Field(ge=0, le=100, description="A percentage.")]


class _Answer(BaseModel):
    """A response body: fields may be added beside the documented ones."""

    model_config = ConfigDict(extra="allow")


class _Request(BaseModel):
    """A request body whose unknown fields are refused (400 ``unknown_field``)."""

    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------------------------ errors


class Error(_Answer):
    """Every error: a message shown to the customer, a machine code, sometimes details."""

    error: str = Field(description="The message (French on the public endpoints).")
    code: str = Field(description="A stable machine-readable code.")
    maxAmount: int | None = Field(None, description="``amount_too_large``: the maximum, sats.")
    minAmount: int | None = Field(None, description="``amount_too_small``: the minimum, sats.")
    maxQuantity: int | None = Field(None, description="``invalid_quantity``: the maximum.")
    retryAfter: int | None = Field(None, description="``rate_limited``: seconds to wait.")
    maxDepth: int | None = Field(None, description="``json_too_deep``: the most nesting "
                                 "levels.")
    field: str | None = Field(None, description="The field at fault (dotted path).")
    reason: str | None = Field(None, description="``invalid_email``: what is wrong with it.")
    products: list[str] | None = Field(None, description="``invalid_product``: the products.")
    providers: dict[str, str] | None = Field(
        None, description="``no_provider_available``: why each provider failed, by name.")
    availableProviders: list[str] | None = Field(None, description="Admin: provider names.")
    availableActions: list[str] | None = Field(None, description="Admin: the valid actions.")


# ---------------------------------------------------------------------------------- invoices


class CreateInvoiceRequest(BaseModel):
    """``POST /api/create-invoice``; unknown fields are ignored."""

    model_config = ConfigDict(json_schema_extra={
        "examples": [{"amount": 21000, "description": "DazBox x1", "expiry": 3600}]})

    amount: Sats = Field(description="Sats, a JSON integer from 1 to ``MAX_INVOICE_SATS``.")
    description: str = Field(min_length=1, description="The memo the payer's wallet shows: "
                             "at most 639 UTF-8 bytes once control characters are removed.")
    metadata: dict[str, Any] | None = Field(None, description="Kept with the invoice; at most "
                                            "4 KB of JSON.")
    expiry: int | None = Field(None, ge=60, le=86400, description="Seconds until the invoice "
                               "expires (default ``INVOICE_EXPIRY_SECONDS``).")


class Invoice(_Answer):
    """A BOLT11 invoice the gateway issued and validated."""

    id: str = Field(description="The payment hash (the invoice's id everywhere).")
    payment_request: str = Field(description="The BOLT11 invoice.")
    payment_hash: str
    expires_at: Moment
    amount: int = Field(description="Sats.")
    isTest: bool | None = Field(None, description="Present (true) for a test-provider invoice.")
    checkoutUrl: str | None = Field(None, description="The gateway's hosted checkout page for "
                                    "this invoice (``<PUBLIC_URL>/pay/<payment_hash>``).")


class InvoiceCreated(_Answer):
    """A created invoice (also the answer to a replayed ``Idempotency-Key``)."""

    invoice: Invoice
    paymentUrl: str = Field(description="``lightning:<bolt11>``.")
    provider: str = Field(description="The provider that issued the invoice.")
    isTest: bool | None = Field(None, description="Present (true) for a test-provider invoice.")


class InvoiceStatus(_Answer):
    """The gateway's verified state of an invoice; ``not_found`` adds ``error`` and ``code``."""

    status: Literal["pending", "settled", "expired", "not_found"]
    error: str | None = Field(None, description="``not_found`` only: ``Facture non trouvée``.")
    code: str | None = Field(None, description="``not_found`` only: ``not_found``.")


class InvoiceEvent(_Answer):
    """The ``data`` of an invoice's ``status`` event (``timeout``: ``status`` alone)."""

    status: Literal["pending", "settled", "expired"]
    paymentHash: str | None = Field(None, description="``status`` events: the invoice's id.")


# ------------------------------------------------------------------------------------ orders


class ShippingAddress(_Request):
    """A DazBox's delivery address (single-line texts, each within its limit)."""

    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: str = Field(min_length=1, max_length=56)


class _Customer(_Request):
    email: str = Field(max_length=254, description="A plain ``local@domain`` address.",
                       json_schema_extra={"format": "email"})
    name: str | None = Field(None, max_length=100)


class DazBoxCustomer(_Customer):
    """Who buys a DazBox, and where it goes."""

    address: ShippingAddress


class DazNodeCustomer(_Customer):
    """Who subscribes to DazNode, optionally with their node's public key."""

    pubkey: str | None = Field(None, pattern="^0[23][0-9a-fA-F]{64}$",
                               description="A node public key: 66 hexadecimal digits.")


class DazPayCustomer(_Customer):
    """Who pays a DazPay amount."""


class DazBoxOrder(_Request):
    """DazBox hardware, priced by the catalog per unit."""

    product: Literal["dazbox"]
    customer: DazBoxCustomer
    quantity: int | None = Field(None, ge=1, description="1 to the catalog's ``maxQuantity``.")
    metadata: dict[str, Any] | None = Field(None, description="At most 4 KB of JSON.")


class DazNodeOrder(_Request):
    """A DazNode subscription period, priced by the catalog."""

    product: Literal["daznode"]
    customer: DazNodeCustomer
    plan: Literal["monthly", "yearly"] | None = Field(None, description="Default monthly.")
    metadata: dict[str, Any] | None = Field(None, description="At most 4 KB of JSON.")


class DazPayOrder(_Request):
    """A free-amount payment, within the catalog's DazPay limits."""

    product: Literal["dazpay"]
    customer: DazPayCustomer
    amount: Sats = Field(description="Sats, within the catalog's ``minAmount``..``maxAmount``.")
    metadata: dict[str, Any] | None = Field(None, description="At most 4 KB of JSON.")


class CreateOrderRequest(RootModel[Annotated[DazBoxOrder | DazNodeOrder | DazPayOrder,
                                             Field(discriminator="product")]]):
    """``POST /api/orders``: the product decides the other fields; prices are never sent."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "product": "dazbox", "quantity": 1,
        "customer": {"email": "alice@example.com", "name": "Alice",
                     "address": {"line1": "1 rue de la Paix", "city": "Paris",
                                 "postal_code": "75002", "country": "France"}}}]})


class Shipment(_Answer):
    """A DazBox shipment."""

    id: int | None
    status: str
    shippedAt: Moment | None = None


class Subscription(_Answer):
    """The DazNode subscription period an order paid for."""

    id: int
    periodStart: Moment
    periodEnd: Moment
    renewed: bool


class Fulfilment(_Answer):
    """What a paid order set going: one of these, by product."""

    shipment: Shipment | None = None
    subscription: Subscription | None = None
    receipt: bool | None = None


class Order(_Answer):
    """An order (the customer's details are never echoed back)."""

    id: str
    status: Literal["pending", "paid", "expired", "cancelled"]
    product: Literal["dazbox", "daznode", "dazpay"]
    amount: int = Field(description="Sats, as priced by the catalog.")
    quantity: int
    plan: Literal["monthly", "yearly"] | None
    paymentHash: str
    createdAt: Moment
    paidAt: Moment | None
    paidLate: bool = Field(description="Paid after the invoice had expired (still honoured).")
    fulfilment: Fulfilment | None
    expiresAt: Moment | None = Field(None, description="When the order's invoice expires.")


class OrderCreated(InvoiceCreated):
    """A new order with the invoice that pays it."""

    order: Order


class OrderFound(_Answer):
    """An order read back."""

    order: Order


class DazBoxPrice(_Answer):
    """DazBox unit price."""

    price: int = Field(description="Sats per unit.")
    maxQuantity: int


class DazNodePrice(_Answer):
    """DazNode subscription prices."""

    monthly: int = Field(description="Sats.")
    yearly: int = Field(description="Sats.")
    yearlyDiscountPercent: int


class DazPayLimits(_Answer):
    """DazPay amount limits."""

    minAmount: int = Field(description="Sats.")
    maxAmount: int = Field(description="Sats.")


class Catalog(_Answer):
    """What the gateway charges, in sats."""

    dazbox: DazBoxPrice
    daznode: DazNodePrice
    dazpay: DazPayLimits


class CatalogAnswer(_Answer):
    """``GET /api/catalog``."""

    catalog: Catalog


# ------------------------------------------------------------------------- webhook and demo


class LnbitsPayment(BaseModel):
    """LNbits' payment notification (also accepted as a JSON string holding this object).

    Only ``payment_hash`` is used: LNbits is asked about the payment before anything changes.
    """

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "payment_hash": "0" * 64, "amount": 21000000}]})

    payment_hash: PaymentHash
    amount: int | None = Field(None, description="Millisatoshis (LNbits' word, not trusted).")


class WebhookAnswer(_Answer):
    """``Payment processed successfully`` (with the order and amount) or ``No matching order
    found``."""

    message: str
    order_id: str | None = Field(None, description="The order paid (null for an invoice "
                                 "created without an order).")
    amount: int | None = Field(None, description="Sats.")


class DemoPayment(_Answer):
    """A test-provider invoice marked paid, and what the settlement did."""

    paid: bool
    payment_hash: str
    settlement: str


# ------------------------------------------------------------------------- admin monitor


class ProviderStatus(_Answer):
    """A provider's latest probe."""

    name: str
    healthy: bool
    responseTime: Milliseconds
    lastError: str | None
    lastCheck: Moment
    uptime: Percent | None = Field(None, description="Healthy probes in the window, %; left "
                                   "out when the window holds no probe.")
    breaker: str | None = Field(None, description="``status`` and ``stats``: the circuit "
                                "breaker's state.")


class CallCounts(_Answer):
    """Calls made to a provider in the window, by outcome."""

    total: int
    success: int
    failure: int
    timeout: int
    skipped: int


class LatencyBucket(_Answer):
    """Calls at or under ``le`` ms (``null``: the rest)."""

    le: float | None
    count: int


class Latency(_Answer):
    """Every call's latency in ms: exact mean, percentiles from logarithmic buckets."""

    mean: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    histogram: list[LatencyBucket]


class HourlyVolume(_Answer):
    """Successful invoices in one hour."""

    hour: Moment
    invoices: int


class DailyVolume(_Answer):
    """Successful invoices in one UTC day."""

    day: date
    invoices: int


class Volume(_Answer):
    """Successful invoices per hour (the last 24 hours) and per UTC day."""

    hourly: list[HourlyVolume]
    daily: list[DailyVolume]


class MetricsWindow(_Answer):
    """The window the figures cover."""

    from_: Moment = Field(alias="from")
    to: Moment
    hours: float


class ProviderMetrics(_Answer):
    """A provider's invoice figures over the window (``null`` without invoices)."""

    totalInvoices: int = Field(description="Invoice creations attempted through the provider.")
    successfulInvoices: int
    failedInvoices: int
    averageResponseTime: Milliseconds | None
    uptime: Percent | None
    lastError: str | None
    provider: str
    successRate: Percent | None
    lastErrorAt: Moment | None
    calls: CallCounts
    latency: Latency
    errorsByType: dict[str, int]
    volume: Volume
    window: MetricsWindow


class OverallStats(_Answer):
    """Figures over every configured provider."""

    totalProviders: int
    healthyProviders: int
    totalInvoices: int
    successRate: Percent
    averageResponseTime: Milliseconds
    successfulInvoices: int
    failedInvoices: int
    p50: float | None
    p95: float | None
    p99: float | None
    uptime: Percent | None
    errorsByType: dict[str, int]
    volume: Volume
    window: MetricsWindow


class ProviderOverview(ProviderStatus):
    """A ProviderStatus with the provider's metrics."""

    metrics: ProviderMetrics | None


class MonitorStatus(_Answer):
    """``action=status``: every provider."""

    providers: dict[str, ProviderOverview]
    overall: OverallStats
    bestProvider: str | None = Field(description="The first provider the router would try "
                                     "among the healthy ones.")


class MonitorProviderStatus(_Answer):
    """``action=status&provider=P``."""

    provider: str
    status: ProviderStatus
    metrics: ProviderMetrics | None


class HealthCheck(_Answer):
    """``action=health`` and ``force_health_check``: a probe round run now."""

    message: str
    results: list[ProviderStatus]
    timestamp: Moment


class MonitorMetrics(_Answer):
    """``action=metrics&provider=P``."""

    provider: str
    metrics: ProviderMetrics


class ProviderStats(_Answer):
    """One provider in ``action=stats``."""

    status: ProviderStatus
    metrics: ProviderMetrics | None


class MonitorStats(_Answer):
    """``action=stats``."""

    overall: OverallStats
    providers: dict[str, ProviderStats]
    lastUpdated: Moment


class MonitorAnswer(RootModel[MonitorStatus | MonitorProviderStatus | HealthCheck
                              | MonitorMetrics | MonitorStats]):
    """``GET``: one of these, by ``action`` (and ``provider``)."""


class SimulationData(BaseModel):
    """``simulate_payment``'s data."""

    amount: Sats = Field(description="Sats, 1 to ``MAX_INVOICE_SATS``.")


class MonitorActionRequest(BaseModel):
    """``POST``: an action, on a provider where it needs one."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"action": "simulate_payment", "provider": "test", "data": {"amount": 1000}}]})

    action: Literal["simulate_payment", "force_health_check", "reset_metrics"]
    provider: str | None = Field(None, description="``reset_metrics``: the provider; "
                                 "``simulate_payment``: the test provider (``test``).")
    data: SimulationData | None = None


class Simulation(_Answer):
    """``simulate_payment``: a real invoice on the test provider, paid and settled."""

    message: str
    invoiceId: str
    provider: str
    amount: int = Field(description="Sats.")
    duration: Milliseconds
    success: bool
    settlement: str


class MetricsReset(_Answer):
    """``reset_metrics``: the rows deleted, by table."""

    message: str
    provider: str
    deleted: dict[str, int]
    timestamp: Moment


class MonitorActionAnswer(RootModel[Simulation | HealthCheck | MetricsReset]):
    """``POST``: one of these, by ``action``."""


# ----------------------------------------------------------------------------- operations


class LightningHealth(_Answer):
    """``GET /api/lightning/health``: the original's health answer."""

    status: Literal["healthy", "down"]
    timestamp: Moment
    service: dict[str, Any] = Field(description="``{name, version, network, database, "
                                    "providers}``.")


# ------------------------------------------------------------------------------- load tests


class LoadTestReport(BaseModel):
    """One ``lngate loadtest`` run: its JSON report (other fields are kept as the summary)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "scenario": "create-invoice", "started_at": "2026-11-30T02:00:00+00:00", "rate": 20,
        "duration_s": 30, "requests": 600, "errors": 0, "passed": True,
        "latency_ms": {"overall": {"p50": 4.2, "p99": 18.5}}}]})

    scenario: str = Field(pattern="^[a-z0-9][a-z0-9-]{0,31}$")
    started_at: datetime = Field(description="ISO-8601 with its zone.")
    rate: float = Field(gt=0, description="Requests per second offered.")
    duration_s: float = Field(gt=0)
    requests: int = Field(ge=0)
    errors: int = Field(ge=0, description="At most ``requests``.")
    passed: bool = Field(description="Whether every objective was met.")
    latency_ms: dict[str, Any] = Field(description="``overall`` holds ``p50`` and ``p99``.")


class LoadTestRecorded(_Answer):
    """A recorded run."""

    id: int
    recordedAt: Moment


class LoadTestRuns(_Answer):
    """The most recent runs, newest first, and whether the gateway is in demo mode."""

    runs: list[dict[str, Any]]
    demo: bool


class UnsettledDemoPayment(_Answer):
    """A test invoice paid at the demo wallet, not settled yet."""

    paid: bool
    payment_hash: PaymentHash
