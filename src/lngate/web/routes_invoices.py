"""``POST /api/create-invoice`` and ``GET /api/check-invoice``."""

from __future__ import annotations

from fastapi import APIRouter, Request

from lngate.domain import InvoiceState, is_payment_hash, msat_to_sat
from lngate.errors import NoProviderAvailable
from lngate.services.invoices import IdempotencyConflict, create_invoice
from lngate.store.invoices import InvoiceRecord
from lngate.web.body import read_json
from lngate.web.errors import ApiError, no_provider_error
from lngate.web.invoice_input import parse_invoice_request
from lngate.web.openapi import (
    BAD_JSON,
    NO_PROVIDER,
    NOT_JSON,
    PAYLOAD_TOO_LARGE,
    RATE_LIMITED,
    errors,
    header,
    json_body,
    operation,
    query,
)
from lngate.web.responses import JsonResponse
from lngate.web.routes_checkout import checkout_url
from lngate.web.schemas import CreateInvoiceRequest, InvoiceCreated, InvoiceStatus
from lngate.web.state import enforce_rate_limit, gateway_of

router = APIRouter()
_CHECK_STATUS = {
    InvoiceState.PENDING: "pending",
    InvoiceState.PAID: "settled",
    InvoiceState.EXPIRED: "expired",
}


def invoice_body(record: InvoiceRecord, public_url: str) -> dict[str, object]:
    """The public JSON of an invoice, as the original API shaped it, plus ``checkoutUrl`` (the
    hosted checkout page, under ``public_url``)."""
    invoice: dict[str, object] = {
        "id": record.payment_hash,
        "payment_request": record.bolt11,
        "payment_hash": record.payment_hash,
        "expires_at": record.expires_at.isoformat().replace("+00:00", "Z"),
        "amount": msat_to_sat(record.amount_msat),
    }
    body: dict[str, object] = {"invoice": invoice, "paymentUrl": f"lightning:{record.bolt11}",
                               "provider": record.provider,
                               "checkoutUrl": checkout_url(public_url, record.payment_hash)}
    if record.is_test:  # top-level, where the original put it; inside the invoice too
        invoice["isTest"] = body["isTest"] = True
    return body


@router.post(
    "/api/create-invoice", tags=["invoices"], summary="Create an invoice",
    response_model=InvoiceCreated,
    openapi_extra=operation(
        json_body(CreateInvoiceRequest),
        header("Idempotency-Key", {"type": "string", "minLength": 1, "maxLength": 255},
               "Replays the first answer for the same key and body (1 to 255 printable "
               "characters)."),
    ),
    responses={
        200: {"description": "The invoice; a replayed ``Idempotency-Key`` adds the header "
                             "``Idempotent-Replayed: true``."},
        **errors({
            400: "``missing_fields``, ``invalid_amount``, ``amount_too_large`` (with "
                 "``maxAmount``), ``invalid_description``, ``description_too_long``, "
                 "``invalid_metadata``, ``metadata_too_large``, ``invalid_expiry``, "
                 f"``invalid_idempotency_key``; {BAD_JSON}",
            413: PAYLOAD_TOO_LARGE,
            415: NOT_JSON,
            422: "``idempotency_conflict``: the ``Idempotency-Key`` was used with another body",
            429: RATE_LIMITED,
            503: NO_PROVIDER,
        }),
    },
)
async def create_invoice_route(request: Request) -> JsonResponse:
    """Create a validated BOLT11 invoice through the first provider that can issue one."""
    gateway = gateway_of(request)
    await enforce_rate_limit(request, "create-invoice")
    body = await read_json(request)
    invoice_request = parse_invoice_request(
        body,
        max_sats=gateway.settings.max_invoice_sats,
        default_expiry=gateway.settings.invoice_expiry_seconds,
        idempotency_key=request.headers.get("idempotency-key"),
    )
    try:
        issued = await create_invoice(invoice_request, gateway.invoices)
    except IdempotencyConflict:
        raise ApiError(422, "Idempotency-Key déjà utilisée avec une autre requête",
                       "idempotency_conflict") from None
    except NoProviderAvailable as exc:
        raise no_provider_error(exc) from None
    headers = {"Idempotent-Replayed": "true"} if issued.replayed else None
    return JsonResponse(invoice_body(issued.invoice, gateway.settings.public_url),
                        headers=headers)


@router.get(
    "/api/check-invoice", tags=["invoices"], summary="Check an invoice",
    response_model=InvoiceStatus,
    openapi_extra=operation(query("id", {"type": "string", "minLength": 1},
                                  "The invoice's id (its payment hash).", required=True)),
    responses=errors({400: "``missing_id``: no ``id``", 429: RATE_LIMITED}),
)
async def check_invoice_route(request: Request) -> JsonResponse:
    """The verified status of an invoice: pending, settled, expired or not_found."""
    await enforce_rate_limit(request, "check-invoice")
    invoice_id = request.query_params.get("id", "").strip()
    if not invoice_id:
        raise ApiError(400, "ID de facture manquant", "missing_id")
    not_found = JsonResponse({"status": "not_found", "error": "Facture non trouvée",
                                "code": "not_found"})
    if not is_payment_hash(invoice_id):
        return not_found
    state = await gateway_of(request).settler.check(invoice_id)
    if state is None:
        return not_found
    return JsonResponse({"status": _CHECK_STATUS[state]})
