"""The back office's pages, for operators in a browser (French by default, English with
``?lang=en`` or the browser's language):

- ``GET /admin/orders``: orders, newest first, searched and filtered (``q``, ``status``,
  ``product``, ``from``, ``to``, ``attention``), 25 a page (keyset ``cursor``), with the CSV
  export link (``GET /api/admin/orders.csv`` with the same filters);
- ``GET /admin/orders/{id}``: an order in full: invoice, payment, fulfilment, emails sent and
  audit trail, with the forms "mark shipped" (a paid DazBox to ship: tracking number, carrier)
  and "cancel" (an unpaid order);
- ``POST /admin/orders/{id}/ship`` and ``/cancel``: the forms, through the same services as
  the admin API (``services/order_actions.py``: the customer's "shipped" email is queued
  exactly once), then a redirect to the order (post/redirect/get);
- ``GET /admin/subscriptions``: DazNode subscriptions and their end dates.

Every page needs a live operator session (else a redirect to the sign-in page), every form
its CSRF token (else a 403 page). A bad filter or field is shown on the page (400), never a 500.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from lngate.domain import OrderStatus, Product, ShipmentStatus
from lngate.services import backoffice
from lngate.services.admin_sessions import AdminSession
from lngate.services.clock import utcnow
from lngate.services.order_actions import (
    ActionOutcome,
    ActionResult,
    cancel_order,
    ship_order,
)
from lngate.web.admin_layout import ORDERS, SUBSCRIPTIONS, admin_url, chosen_language, render_admin
from lngate.web.admin_pages import form_of, page, page_session
from lngate.web.backoffice_input import (
    body_fields,
    carrier_name,
    decode_cursor,
    encode_cursor,
    order_id_or_404,
    parse_text,
    query_params,
    tracking_number,
)
from lngate.web.dashboard_live import Topic, signals_of
from lngate.web.errors import ApiError
from lngate.web.pages import error_page
from lngate.web.routes_backoffice import ORDER_FILTERS, order_query
from lngate.web.state import gateway_of

router = APIRouter()

PAGE_SIZE = 25
FILTER_PROBLEMS = {"invalid_date": "admin.filter_invalid_date",
                   "invalid_period": "admin.filter_invalid_period"}
INPUT_PROBLEMS = {"missing_tracking": "admin.input_missing_tracking",
                  "invalid_tracking": "admin.input_invalid_tracking",
                  "invalid_carrier": "admin.input_invalid_carrier",
                  "invalid_reason": "admin.input_invalid_reason"}
REFUSALS = {ActionOutcome.NOT_FOUND: (404, "admin.refused_not_found"),
            ActionOutcome.NOT_DAZBOX: (409, "admin.refused_not_dazbox"),
            ActionOutcome.NOT_PAID: (409, "admin.refused_not_paid"),
            ActionOutcome.ALREADY_SHIPPED: (409, "admin.refused_already_shipped"),
            ActionOutcome.ALREADY_PAID: (409, "admin.refused_already_paid"),
            ActionOutcome.ALREADY_CANCELLED: (409, "admin.refused_already_cancelled")}
DONE = {"shipped": "admin.done_shipped", "cancelled": "admin.done_cancelled"}


def _not_found(request: Request) -> Response:
    return error_page(request, 404, "error.order_not_found", "error.order_not_found_text")


@router.get(ORDERS, include_in_schema=False)
@page
async def orders_page(request: Request) -> Response:
    """Orders matching the filters, a page at a time, with the CSV export link."""
    session = await page_session(request)
    chosen = chosen_language(request)
    shown = {name: request.query_params.get(name, "") for name in ORDER_FILTERS}
    rows: list[Any] = []
    next_url = problem_key = cursor = None
    status_code = 200
    filters: dict[str, str] = {}
    try:
        params = query_params(request, (*ORDER_FILTERS, "cursor", "lang"))
        params.pop("lang", None)
        cursor = params.pop("cursor", None)
        query = order_query(params)
        filters = params
        found = await backoffice.find_orders(gateway_of(request).db, query,
                                             after=decode_cursor(cursor, (datetime, str)),
                                             limit=PAGE_SIZE)
        rows = found.items
        if found.next_after:
            next_url = admin_url(ORDERS, chosen,
                                 {**filters, "cursor": encode_cursor(found.next_after)})
    except ApiError as exc:
        if exc.status != 400:
            raise
        problem_key = FILTER_PROBLEMS.get(exc.code, "admin.filter_invalid")
        status_code, cursor = 400, None
    return render_admin(
        request, "admin/orders.html", session=session, active="orders", status_code=status_code,
        rows=rows, shown=shown, problem_key=problem_key, next_url=next_url,
        first_url=admin_url(ORDERS, chosen, filters) if cursor else None,
        csv_url=admin_url("/api/admin/orders.csv", None, filters),
        statuses=[s.value for s in OrderStatus], products=[p.value for p in Product],
    )


async def _order_page(request: Request, session: AdminSession, order_id: str, *,
                      status_code: int = 200, problem_key: str | None = None,
                      form: dict[str, str] | None = None) -> Response:
    detail = await backoffice.order_detail(gateway_of(request).db, order_id)
    if detail is None:
        return _not_found(request)
    order, shipment = detail.row.order, detail.row.shipment
    done = request.query_params.get("done") if status_code == 200 else None
    chosen = chosen_language(request)
    return render_admin(
        request, "admin/order.html", session=session, active="orders", status_code=status_code,
        detail=detail, order=order, shipment=shipment, now=utcnow(),
        problem_key=problem_key, done_key=DONE.get(done or ""), form=form or {},
        can_ship=(order.product is Product.DAZBOX and order.status is OrderStatus.PAID
                  and shipment is not None and shipment.status is ShipmentStatus.TO_SHIP),
        can_cancel=order.status in (OrderStatus.PENDING, OrderStatus.EXPIRED),
        ship_action=admin_url(f"{ORDERS}/{order.id}/ship", chosen),
        cancel_action=admin_url(f"{ORDERS}/{order.id}/cancel", chosen),
        back_url=admin_url(ORDERS, chosen),
    )


@router.get(ORDERS + "/{order_id}", include_in_schema=False)
@page
async def order_page(order_id: str, request: Request) -> Response:
    """One order in full, with the actions it allows."""
    session = await page_session(request)
    try:
        order_id = order_id_or_404(order_id)
    except ApiError:
        return _not_found(request)
    return await _order_page(request, session, order_id)


async def _after_action(request: Request, session: AdminSession, order_id: str,
                        result: ActionResult, done: str, form: dict[str, str]) -> Response:
    if result.outcome is ActionOutcome.DONE:
        signals_of(request).notify(Topic.ORDER)
        target = admin_url(f"{ORDERS}/{order_id}", chosen_language(request), {"done": done})
        return RedirectResponse(target, status_code=303)
    status, key = REFUSALS[result.outcome]
    if result.outcome is ActionOutcome.NOT_FOUND:
        return _not_found(request)
    return await _order_page(request, session, order_id, status_code=status, problem_key=key,
                             form=form)


@router.post(ORDERS + "/{order_id}/ship", include_in_schema=False)
@page
async def ship_form(order_id: str, request: Request) -> Response:
    """Mark a paid DazBox shipped (the customer's "shipped" email is queued once)."""
    session = await page_session(request)
    form = await form_of(request, session)
    try:
        order_id = order_id_or_404(order_id)
    except ApiError:
        return _not_found(request)
    try:
        fields = body_fields(form, ("tracking", "carrier"))
        tracking = tracking_number(fields.get("tracking"))
        carrier = carrier_name(fields.get("carrier") or None)
    except ApiError as exc:
        return await _order_page(request, session, order_id, status_code=400, form=form,
                                 problem_key=INPUT_PROBLEMS.get(exc.code, "admin.bad_form_text"))
    gateway = gateway_of(request)
    result = await ship_order(gateway.db, order_id, tracking_number=tracking, carrier=carrier,
                              actor=session.actor, clock=utcnow)
    if result.outcome is ActionOutcome.DONE:
        gateway.outbox_wake.set()
    return await _after_action(request, session, order_id, result, "shipped", form)


@router.post(ORDERS + "/{order_id}/cancel", include_in_schema=False)
@page
async def cancel_form(order_id: str, request: Request) -> Response:
    """Cancel an unpaid order (a paid one is refused)."""
    session = await page_session(request)
    form = await form_of(request, session)
    try:
        order_id = order_id_or_404(order_id)
    except ApiError:
        return _not_found(request)
    try:
        fields = body_fields(form, ("reason",))
        reason = parse_text("reason", fields.get("reason"))
    except ApiError as exc:
        return await _order_page(request, session, order_id, status_code=400, form=form,
                                 problem_key=INPUT_PROBLEMS.get(exc.code, "admin.bad_form_text"))
    result = await cancel_order(gateway_of(request).db, order_id, actor=session.actor,
                                clock=utcnow, reason=reason)
    return await _after_action(request, session, order_id, result, "cancelled", form)


@router.get(SUBSCRIPTIONS, include_in_schema=False)
@page
async def subscriptions_page(request: Request) -> Response:
    """DazNode subscriptions, latest end first, with their end dates."""
    session = await page_session(request)
    chosen = chosen_language(request)
    shown = {name: request.query_params.get(name, "") for name in ("status", "q")}
    rows: list[Any] = []
    next_url = problem_key = cursor = None
    status_code = 200
    filters: dict[str, str] = {}
    now = utcnow()
    try:
        params = query_params(request, ("status", "q", "cursor", "lang"))
        params.pop("lang", None)
        cursor = params.pop("cursor", None)
        status = params.get("status")
        if status not in (None, "active", "expired"):
            raise ApiError(400, "bad status", "invalid_status")
        filters = params
        found = await backoffice.subscriptions(
            gateway_of(request).db, now=now,
            active=None if status is None else status == "active",
            q=parse_text("q", params.get("q")),
            after=decode_cursor(cursor, (datetime, int)), limit=PAGE_SIZE)
        rows = found.items
        if found.next_after:
            next_url = admin_url(SUBSCRIPTIONS, chosen,
                                 {**filters, "cursor": encode_cursor(found.next_after)})
    except ApiError as exc:
        if exc.status != 400:
            raise
        problem_key, status_code, cursor = "admin.filter_invalid", 400, None
    return render_admin(
        request, "admin/subscriptions.html", session=session, active="subscriptions",
        status_code=status_code, rows=rows, shown=shown, now=now, problem_key=problem_key,
        next_url=next_url, first_url=admin_url(SUBSCRIPTIONS, chosen, filters) if cursor else None,
    )
