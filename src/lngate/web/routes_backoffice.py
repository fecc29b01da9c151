"""The back office's admin JSON API (bearer token or operator session, see admin_session.py).

- ``GET /api/admin/orders?q=&status=&product=&from=&to=&attention=&limit=&cursor=``
- ``GET /api/admin/orders.csv`` (the same filters, every matching order)
- ``GET /api/admin/orders/{id}``
- ``POST /api/admin/orders/{id}/ship`` ``{"tracking", "carrier"?}``
- ``POST /api/admin/orders/{id}/cancel`` ``{"reason"?}``
- ``GET /api/admin/subscriptions?status=active|expired&q=&limit=&cursor=``
- ``GET /api/admin/audit?target=&action=&limit=&cursor=``
- ``GET /api/admin/stats?from=&to=&group=hour|day&by=provider|product&includeTest=``

Every parameter is checked (web/backoffice_input.py): a bad one is a 400 saying which and why.
Lists are newest first; ``nextCursor`` (``null`` on the last page) fetches the next page.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import StreamingResponse

from lngate.domain import OrderStatus, Product
from lngate.services import backoffice
from lngate.services.admin_stats import StatsPeriod, StatsPeriodError, default_grouping, statistics
from lngate.services.clock import utcnow
from lngate.services.order_actions import (
    DAZBOX_SHIPPED,
    ActionOutcome,
    ActionResult,
    cancel_order,
    ship_order,
)
from lngate.services.order_export import export_orders
from lngate.store.backoffice import OrderQuery
from lngate.store.stats import Grouping, InvoiceKey
from lngate.web import admin_session
from lngate.web.admin_session import AdminRequired, read_form
from lngate.web.backoffice_input import (
    bad,
    body_fields,
    carrier_name,
    decode_cursor,
    encode_cursor,
    order_id_or_404,
    parse_bool,
    parse_choice,
    parse_limit,
    parse_text,
    parse_time,
    query_params,
    tracking_number,
)
from lngate.web.backoffice_json import (
    audit_body,
    order_detail_body,
    order_summary,
    subscription_body,
)
from lngate.web.backoffice_schemas import (
    AuditPage,
    CancelRequest,
    OrderActionDone,
    OrderDetail,
    OrderPage,
    ShipRequest,
    StatsAnswer,
    SubscriptionPage,
    body,
)
from lngate.web.body import read_json
from lngate.web.errors import ApiError
from lngate.web.openapi import (
    ADMIN_DISABLED,
    ADMIN_SCHEME,
    BAD_JSON,
    NOT_JSON,
    PAYLOAD_TOO_LARGE,
    errors,
    operation,
    query,
    security,
)
from lngate.web.responses import JsonResponse
from lngate.web.state import gateway_of

router = APIRouter()
router.include_router(admin_session.router)

ORDER_FILTERS = ("q", "status", "product", "from", "to", "attention")
DEFAULT_STATS_HOURS = 24
UNAUTHORIZED = ("``unauthorized``: neither ``Authorization: Bearer <ADMIN_TOKEN>`` nor a live "
                "operator session (cookie)")
CSRF = "``csrf_failed``: a session's request without its CSRF token (``X-CSRF-Token`` header)"
BAD_PARAMETER = ("``unknown_parameter``, ``repeated_parameter``, or the parameter's own code "
                 "(``invalid_date``, ``invalid_limit``, ``invalid_cursor``, ``invalid_status``...)")
NO_ORDER = "``order_not_found``: no order has this id"
DATE = {"type": "string", "examples": ["2026-01-31", "2026-01-31T12:00:00Z"]}
LIMIT = query("limit", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
              "Orders per page.")
CURSOR = query("cursor", {"type": "string"}, "``nextCursor`` of the previous page, as given.")
FILTERS = operation(
    query("q", {"type": "string", "maxLength": 200}, "An order id or payment hash (exactly), or "
          "a part of the customer's email or name or of a tracking number."),
    query("status", {"type": "string", "enum": ["pending", "paid", "expired", "cancelled"]},
          "The order's status."),
    query("product", {"type": "string", "enum": ["dazbox", "daznode", "dazpay"]},
          "The product."),
    query("from", DATE, "Created at or after (UTC when no offset is given)."),
    query("to", DATE, "Created before (a date alone: the end of that day)."),
    query("attention", {"type": "string", "enum": ["true", "false"]},
          "``true``: only orders that need the shop's attention (``refund_due``)."),
)
READ_ERRORS = errors({400: BAD_PARAMETER, 401: UNAUTHORIZED, 503: ADMIN_DISABLED})
ACTION_ERRORS = {400: f"{BAD_JSON}; the field's own code (``missing_tracking``, "
                      "``invalid_tracking``, ``invalid_carrier``, ``invalid_reason``, "
                      "``unknown_field``, ``invalid_form``)",
                 401: UNAUTHORIZED, 403: CSRF, 404: NO_ORDER, 413: PAYLOAD_TOO_LARGE,
                 415: f"{NOT_JSON} (nor a URL-encoded form)", 503: ADMIN_DISABLED}


def order_query(params: dict[str, str]) -> OrderQuery:
    """The orders filter from query parameters (``q``, ``status``, ``product``, ``from``,
    ``to``, ``attention``); a 400 naming the first bad one."""
    created_from = parse_time("from", params.get("from"))
    created_to = parse_time("to", params.get("to"), end_of_day=True)
    if created_from and created_to and created_from >= created_to:
        raise bad("'from' must be before 'to'", "invalid_period")
    return OrderQuery(
        q=parse_text("q", params.get("q")),
        status=parse_choice("status", params.get("status"), OrderStatus),
        product=parse_choice("product", params.get("product"), Product),
        created_from=created_from,
        created_to=created_to,
        attention=bool(parse_bool("attention", params.get("attention"))),
    )


@router.get("/api/admin/orders", response_model=OrderPage, responses=READ_ERRORS,
            openapi_extra=operation(security(ADMIN_SCHEME), FILTERS, LIMIT, CURSOR))
async def list_orders(request: Request, admin: AdminRequired) -> JsonResponse:
    """Orders matching the filters, newest first: ``{"orders": [...], "nextCursor"}``."""
    params = query_params(request, (*ORDER_FILTERS, "limit", "cursor"))
    query = order_query(params)
    limit = parse_limit(params.get("limit"))
    after = decode_cursor(params.get("cursor"), (datetime, str))
    page = await backoffice.find_orders(gateway_of(request).db, query, after=after,
                                        limit=limit)
    return JsonResponse({
        "orders": [order_summary(row) for row in page.items],
        "nextCursor": encode_cursor(page.next_after) if page.next_after else None,
        "limit": limit,
    })


@router.get("/api/admin/orders.csv", response_class=StreamingResponse,
            responses={200: {"description": "Every matching order, newest first (UTF-8 with a "
                             "byte-order mark; cells starting with = + - @ get a leading ')",
                             "content": {"text/csv": {"schema": {"type": "string"}}}},
                       **READ_ERRORS},
            openapi_extra=operation(security(ADMIN_SCHEME), FILTERS))
async def export_orders_csv(request: Request, admin: AdminRequired) -> StreamingResponse:
    """Every order matching the filters, as CSV (formula cells defused)."""
    query = order_query(query_params(request, ORDER_FILTERS))
    gateway = gateway_of(request)
    filters = {k: v for k, v in request.query_params.items() if v}
    await backoffice.record_action(gateway.db, actor=admin.actor, action="orders.export",
                                   target=None, details={"filters": filters}, clock=utcnow)
    name = f"orders-{utcnow().strftime('%Y%m%d-%H%M%S')}.csv"
    return StreamingResponse(export_orders(gateway.db, query),
                             media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"',
                                      "Cache-Control": "no-store"})


@router.get("/api/admin/orders/{order_id}", response_model=OrderDetail,
            responses=errors({400: BAD_PARAMETER, 401: UNAUTHORIZED, 404: NO_ORDER,
                              503: ADMIN_DISABLED}),
            openapi_extra=operation(security(ADMIN_SCHEME)))
async def get_order(order_id: str, request: Request, admin: AdminRequired) -> JsonResponse:
    """An order in full: invoice, payment, fulfilment, emails and audit trail."""
    query_params(request, ())
    detail = await backoffice.order_detail(gateway_of(request).db, order_id_or_404(order_id))
    if detail is None:
        raise ApiError(404, "Order not found", "order_not_found")
    return JsonResponse(order_detail_body(detail, utcnow()))


async def _fields(request: Request, allowed: tuple[str, ...]) -> dict[str, Any]:
    """The JSON (or form) body's fields; an empty body is no field. A form's ``csrf_token``
    is the session's business, not the action's."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == admin_session.FORM_TYPE:
        form = await read_form(request)
        form.pop(admin_session.CSRF_FIELD, None)
        return body_fields(form, allowed)
    if not content_type and request.headers.get("content-length", "0") == "0":
        return {}
    return body_fields(await read_json(request), allowed)


def _refusal(result: ActionResult) -> ApiError:
    row = result.order
    order = order_summary(row) if row else None
    messages = {
        ActionOutcome.NOT_FOUND: (404, "Order not found", "order_not_found"),
        ActionOutcome.NOT_DAZBOX: (409, "Only a DazBox order is shipped", "not_shippable"),
        ActionOutcome.NOT_PAID: (409, "The order is not paid: nothing to ship",
                                 "order_not_paid"),
        ActionOutcome.ALREADY_SHIPPED: (409, "The order is already shipped", "already_shipped"),
        ActionOutcome.ALREADY_PAID: (409, "A paid order cannot be cancelled", "order_paid"),
        ActionOutcome.ALREADY_CANCELLED: (409, "The order is already cancelled",
                                          "already_cancelled"),
    }
    status, message, code = messages[result.outcome]
    return ApiError(status, message, code, **({"order": order} if order else {}))


@router.post("/api/admin/orders/{order_id}/ship", response_model=OrderActionDone,
             responses=errors({**ACTION_ERRORS, 409: "``not_shippable`` (not a DazBox), "
                               "``order_not_paid``, ``already_shipped`` (with ``order``)"}),
             openapi_extra=operation(security(ADMIN_SCHEME), body(ShipRequest)))
async def ship(order_id: str, request: Request, admin: AdminRequired) -> JsonResponse:
    """Mark a paid DazBox shipped; the customer's "shipped" email is queued once."""
    query_params(request, ())
    order_id = order_id_or_404(order_id)
    fields = await _fields(request, ("tracking", "carrier"))
    tracking = tracking_number(fields.get("tracking"))
    carrier = carrier_name(fields.get("carrier"))
    gateway = gateway_of(request)
    result = await ship_order(gateway.db, order_id, tracking_number=tracking, carrier=carrier,
                              actor=admin.actor, clock=utcnow)
    if result.outcome is not ActionOutcome.DONE or result.order is None:
        raise _refusal(result)
    gateway.outbox_wake.set()
    return JsonResponse({"order": order_summary(result.order),
                         "email": {"kind": DAZBOX_SHIPPED, "queued": True}})


@router.post("/api/admin/orders/{order_id}/cancel", response_model=OrderActionDone,
             responses=errors({**ACTION_ERRORS, 409: "``order_paid``: a paid order is never "
                               "cancelled; ``already_cancelled`` (with ``order``)"}),
             openapi_extra=operation(security(ADMIN_SCHEME),
                                     body(CancelRequest, required=False)))
async def cancel(order_id: str, request: Request, admin: AdminRequired) -> JsonResponse:
    """Cancel an unpaid order (pending or expired); a paid one is refused (409)."""
    query_params(request, ())
    order_id = order_id_or_404(order_id)
    fields = await _fields(request, ("reason",))
    reason_value = fields.get("reason")
    if reason_value is not None and not isinstance(reason_value, str):
        raise bad("'reason' must be text", "invalid_reason")
    reason = parse_text("reason", reason_value)
    result = await cancel_order(gateway_of(request).db, order_id, actor=admin.actor,
                                clock=utcnow, reason=reason)
    if result.outcome is not ActionOutcome.DONE or result.order is None:
        raise _refusal(result)
    return JsonResponse({"order": order_summary(result.order)})


@router.get("/api/admin/subscriptions", response_model=SubscriptionPage, responses=READ_ERRORS,
            openapi_extra=operation(
                security(ADMIN_SCHEME),
                query("status", {"type": "string", "enum": ["active", "expired"]},
                      "Only running (or ended) subscriptions."),
                query("q", {"type": "string", "maxLength": 200},
                      "A part of the email or node key."),
                LIMIT, CURSOR))
async def list_subscriptions(request: Request, admin: AdminRequired) -> JsonResponse:
    """DazNode subscriptions with their end dates, latest end first."""
    params = query_params(request, ("status", "q", "limit", "cursor"))
    status = params.get("status")
    if status is not None and status not in ("active", "expired"):
        raise bad("'status' must be active or expired", "invalid_status",
                  allowedValues=["active", "expired"])
    now = utcnow()
    page = await backoffice.subscriptions(
        gateway_of(request).db, now=now,
        active=None if status is None else status == "active",
        q=parse_text("q", params.get("q")),
        after=decode_cursor(params.get("cursor"), (datetime, int)),
        limit=parse_limit(params.get("limit")))
    return JsonResponse({
        "subscriptions": [subscription_body(row, now) for row in page.items],
        "nextCursor": encode_cursor(page.next_after) if page.next_after else None,
    })


@router.get("/api/admin/audit", response_model=AuditPage, responses=READ_ERRORS,
            openapi_extra=operation(
                security(ADMIN_SCHEME),
                query("target", {"type": "string", "maxLength": 64}, "An order id."),
                query("action", {"type": "string", "maxLength": 48},
                      "``order.ship``, ``order.cancel``, ``order.paid_after_cancel``, "
                      "``orders.export``, ``session.login``, ``session.logout``."),
                LIMIT, CURSOR))
async def list_audit(request: Request, admin: AdminRequired) -> JsonResponse:
    """The audit log, newest first, optionally of one target or action."""
    params = query_params(request, ("target", "action", "limit", "cursor"))
    cursor = decode_cursor(params.get("cursor"), (int,))
    page = await backoffice.audit_log(
        gateway_of(request).db, target=parse_text("target", params.get("target"), limit=64),
        action=parse_text("action", params.get("action"), limit=48),
        before_id=cursor[0] if cursor else None, limit=parse_limit(params.get("limit")))
    return JsonResponse({
        "entries": [audit_body(entry) for entry in page.items],
        "nextCursor": encode_cursor(page.next_after) if page.next_after else None,
    })


@router.get("/api/admin/stats", response_model=StatsAnswer, responses=READ_ERRORS,
            openapi_extra=operation(
                security(ADMIN_SCHEME),
                query("from", DATE, "Start (default: ``to`` minus 24 hours)."),
                query("to", DATE, "End (default: now)."),
                query("group", {"type": "string", "enum": ["hour", "day"]},
                      "Hours (at most 7 days) or days (at most 92); default hours up to 48 "
                      "hours."),
                query("by", {"type": "string", "enum": ["provider", "product"]},
                      "What invoice figures are split by (default ``provider``)."),
                query("includeTest", {"type": "string", "enum": ["true", "false"]},
                      "Count test-provider invoices (default: only in demo mode)."),
            ))
async def stats(request: Request, admin: AdminRequired) -> JsonResponse:
    """Invoices, conversion, revenue, time to pay and provider figures per hour or day."""
    params = query_params(request, ("from", "to", "group", "by", "includeTest"))
    now = utcnow()
    end = parse_time("to", params.get("to")) or now
    start = parse_time("from", params.get("from")) or end - timedelta(hours=DEFAULT_STATS_HOURS)
    grouping = parse_choice("group", params.get("group"), Grouping) or \
        default_grouping(start, end)
    key = parse_choice("by", params.get("by"), InvoiceKey) or InvoiceKey.PROVIDER
    include_test = parse_bool("includeTest", params.get("includeTest"))
    gateway = gateway_of(request)
    try:
        period = StatsPeriod.covering(start, end, grouping)
    except StatsPeriodError as exc:
        raise bad(str(exc), "invalid_period") from None
    body = await statistics(gateway.db, period, key=key, now=now.astimezone(UTC),
                            include_test=gateway.demo_mode if include_test is None
                            else include_test)
    return JsonResponse(body)
