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
from lngate.web.body import read_json
from lngate.web.errors import ApiError
from lngate.web.responses import JsonResponse
from lngate.web.state import gateway_of

router = APIRouter()
router.include_router(admin_session.router)

ORDER_FILTERS = ("q", "status", "product", "from", "to", "attention")
DEFAULT_STATS_HOURS = 24


def _order_query(params: dict[str, str]) -> OrderQuery:
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


@router.get("/api/admin/orders")
async def list_orders(request: Request, admin: AdminRequired) -> JsonResponse:
    """Orders matching the filters, newest first: ``{"orders": [...], "nextCursor"}``."""
    params = query_params(request, (*ORDER_FILTERS, "limit", "cursor"))
    query = _order_query(params)
    limit = parse_limit(params.get("limit"))
    after = decode_cursor(params.get("cursor"), (datetime, str))
    page = await backoffice.find_orders(gateway_of(request).db, query, after=after,
                                        limit=limit)
    return JsonResponse({
        "orders": [order_summary(row) for row in page.items],
        "nextCursor": encode_cursor(page.next_after) if page.next_after else None,
        "limit": limit,
    })


@router.get("/api/admin/orders.csv")
async def export_orders_csv(request: Request, admin: AdminRequired) -> StreamingResponse:
    """Every order matching the filters, as CSV (formula cells defused)."""
    query = _order_query(query_params(request, ORDER_FILTERS))
    gateway = gateway_of(request)
    filters = {k: v for k, v in request.query_params.items() if v}
    await backoffice.record_action(gateway.db, actor=admin.actor, action="orders.export",
                                   target=None, details={"filters": filters}, clock=utcnow)
    name = f"orders-{utcnow().strftime('%Y%m%d-%H%M%S')}.csv"
    return StreamingResponse(export_orders(gateway.db, query),
                             media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"',
                                      "Cache-Control": "no-store"})


@router.get("/api/admin/orders/{order_id}")
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


@router.post("/api/admin/orders/{order_id}/ship")
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


@router.post("/api/admin/orders/{order_id}/cancel")
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


@router.get("/api/admin/subscriptions")
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


@router.get("/api/admin/audit")
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


@router.get("/api/admin/stats")
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
