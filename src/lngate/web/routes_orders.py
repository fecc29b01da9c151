"""``POST /api/orders`` and ``GET /api/orders/{id}``: DazBox, DazNode and DazPay orders."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request

from lngate.domain import msat_to_sat
from lngate.errors import NoProviderAvailable
from lngate.services.orders import OrderView, PriceError, create_order, find_order
from lngate.store.orders import OrderRecord
from lngate.web.body import read_json
from lngate.web.errors import ApiError, no_provider_error
from lngate.web.openapi import (
    BAD_JSON,
    NO_PROVIDER,
    NOT_JSON,
    PAYLOAD_TOO_LARGE,
    RATE_LIMITED,
    errors,
    json_body,
    operation,
)
from lngate.web.order_input import parse_order_request
from lngate.web.responses import JsonResponse
from lngate.web.routes_invoices import invoice_body
from lngate.web.schemas import CatalogAnswer, CreateOrderRequest, OrderCreated, OrderFound
from lngate.web.state import enforce_rate_limit, gateway_of

router = APIRouter()
_ORDER_ID = re.compile(r"[A-Za-z0-9_-]{16,32}")


def _iso(moment: Any) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def order_body(order: OrderRecord, view: OrderView | None = None) -> dict[str, Any]:
    """The public JSON of an order; the customer's details are not echoed back."""
    body: dict[str, Any] = {
        "id": order.id,
        "status": order.status.value,
        "product": order.product.value,
        "amount": msat_to_sat(order.amount_msat),
        "quantity": order.quantity,
        "plan": order.plan.value if order.plan else None,
        "paymentHash": order.payment_hash,
        "createdAt": _iso(order.created_at),
        "paidAt": _iso(order.paid_at),
        "paidLate": order.paid_late,
        "fulfilment": order.fulfilment,
    }
    if view is not None:
        body["expiresAt"] = _iso(view.invoice_expires_at)
        if view.shipment is not None:
            body["fulfilment"] = {**(order.fulfilment or {}), "shipment": {
                "id": view.shipment["id"], "status": view.shipment["status"],
                "shippedAt": _iso(view.shipment["shipped_at"])}}
    return body


@router.post(
    "/api/orders", status_code=201, tags=["orders"], summary="Create an order",
    response_model=OrderCreated,
    openapi_extra=operation(json_body(CreateOrderRequest)),
    responses=errors({
        400: "``missing_product``, ``invalid_product`` (with ``products``), ``missing_customer``, "
             "``invalid_customer``, ``missing_email``, ``invalid_email`` (with ``reason``), "
             "``missing_address``, ``invalid_address``, ``missing_field``, ``invalid_field`` (not "
             "text, or an encoded ``=?...?=`` sequence), ``field_too_long``, "
             "``unknown_field`` and ``unexpected_field`` (with ``field``), ``price_not_allowed``, "
             "``invalid_pubkey``, ``invalid_plan``, ``invalid_quantity`` (with "
             "``maxQuantity`` past the catalog's), ``missing_amount``, ``invalid_amount``, "
             "``amount_too_small`` / ``amount_too_large`` (with ``minAmount`` / ``maxAmount``; "
             "any product whose total exceeds ``MAX_INVOICE_SATS``), "
             f"``invalid_metadata``, ``metadata_too_large``; {BAD_JSON}",
        413: PAYLOAD_TOO_LARGE,
        415: NOT_JSON,
        429: RATE_LIMITED,
        503: NO_PROVIDER,
    }),
)
async def create_order_route(request: Request) -> JsonResponse:
    """Create an order priced by the catalog, with the invoice that pays it."""
    gateway = gateway_of(request)
    await enforce_rate_limit(request, "orders")
    order_request = parse_order_request(await read_json(request))
    try:
        created = await create_order(order_request, gateway.orders)
    except PriceError as exc:
        raise ApiError(400, exc.message, exc.code, **exc.extra) from None
    except NoProviderAvailable as exc:
        raise no_provider_error(exc) from None
    body = invoice_body(created.invoice, gateway.settings.public_url)
    order = order_body(created.order)
    order["expiresAt"] = _iso(created.invoice.expires_at)
    return JsonResponse({"order": order, **body}, status_code=201)


@router.get(
    "/api/orders/{order_id}", tags=["orders"], summary="Read an order",
    response_model=OrderFound,
    responses=errors({404: "``order_not_found``: no order has this id"}),
)
async def get_order_route(order_id: str, request: Request) -> JsonResponse:
    """An order's status (pending, paid, expired) and fulfilment."""
    not_found = ApiError(404, "Commande non trouvée", "order_not_found")
    if not _ORDER_ID.fullmatch(order_id):
        raise not_found
    view = await find_order(gateway_of(request).db, order_id)
    if view is None:
        raise not_found
    return JsonResponse({"order": order_body(view.order, view)})


@router.get("/api/catalog", tags=["orders"], summary="The catalog",
            response_model=CatalogAnswer)
async def catalog_route(request: Request) -> JsonResponse:
    """The prices the gateway charges (sats), for the shop's front end."""
    return JsonResponse({"catalog": gateway_of(request).orders.catalog.public()})
