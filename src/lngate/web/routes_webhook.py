"""``POST /api/webhook/lnbits-payment``: what LNbits calls when an invoice is paid.

Answers: 401 ``{"error": "Unauthorized"}`` (wrong or missing token / ``X-Api-Key``, or a token
for another invoice), 400 ``{"error": "Invalid payload"}``, 200 ``{"message": "Payment processed
successfully", "order_id", "amount"}`` (also for a duplicate), 200 ``{"message": "No matching
order found"}`` for an unknown hash, 409 when LNbits does not confirm the payment, 503 when
LNbits cannot be asked (the reconciler will). LNbits never retries, so these codes are for logs
and humans; the ``Server-Timing`` header gives the gateway's own time.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import structlog
from fastapi import APIRouter, Request

from lngate.services.webhooks import (
    InvalidPayload,
    WebhookResult,
    handle_webhook,
    parse_lnbits_body,
)
from lngate.web.openapi import (
    RATE_LIMITED,
    WEBHOOK_SCHEME,
    errors,
    json_body,
    operation,
    query,
    security,
)
from lngate.web.responses import JsonResponse
from lngate.web.schemas import LnbitsPayment, WebhookAnswer
from lngate.web.state import enforce_rate_limit, gateway_of

router = APIRouter()
log = structlog.get_logger("lngate.webhook")
MAX_WEBHOOK_BODY = 64 * 1024


_STEPS = (("read_ms", "read"), ("lookup_ms", "provider"), ("transaction_ms", "settle"),
          ("publish_ms", "publish"), ("outcome_ms", "outcome"))


def _error(status: int, message: str, code: str, started: float) -> JsonResponse:
    return JsonResponse({"error": message, "code": code}, status_code=status,
                        headers=_timing(started))


def _timing(started: float, **parts: float) -> dict[str, str]:
    total = (time.perf_counter() - started) * 1000
    entries = [f"{name};dur={ms:.2f}" for name, ms in parts.items()]
    return {"Server-Timing": ", ".join([*entries, f"total;dur={total:.2f}"])}


@router.post(
    "/api/webhook/lnbits-payment", tags=["webhook"], summary="LNbits payment notification",
    response_model=WebhookAnswer,
    openapi_extra=operation(
        json_body(LnbitsPayment, "LNbits' payment JSON (any ``Content-Type``; a JSON string "
                                 "holding the object is accepted too)."),
        query("nonce", {"type": "string", "maxLength": 64},
              "The invoice's webhook nonce, from the URL lngate gave LNbits."),
        query("token", {"type": "string"}, "``HMAC(nonce)``, from the same URL."),
        # either the URL's nonce and token, or the X-Api-Key header
        security(WEBHOOK_SCHEME), {"security": [{}]},
    ),
    responses=errors({
        400: "``invalid_payload``: not LNbits' JSON with a valid ``payment_hash``, or over "
             "64 KB",
        401: "``unauthorized``: no valid ``nonce`` and ``token`` nor ``X-Api-Key``, or a nonce "
             "issued for another invoice",
        409: "``not_paid`` / ``mismatch``: LNbits does not confirm the payment, or it does not "
             "match the invoice",
        429: RATE_LIMITED,
        503: "``provider_unavailable``: LNbits cannot be asked now (the reconciler will)",
    }),
)
async def lnbits_webhook(request: Request) -> JsonResponse:
    """Authenticate, read, store and settle one LNbits payment notification."""
    started = time.perf_counter()
    received_at = datetime.now(UTC)
    await enforce_rate_limit(request, "webhook")
    gateway = gateway_of(request)
    auth = gateway.webhook_auth
    nonce = request.query_params.get("nonce")
    token = request.query_params.get("token")
    api_key = request.headers.get("x-api-key")
    method = None
    if auth is not None:
        if nonce and token and len(nonce) <= 64 and auth.token_valid(nonce, token):
            method = "token"
        elif api_key and auth.api_key_valid(api_key):
            method, nonce = "api_key", None
    if method is None:
        log.warning("webhook_unauthorized", has_token=bool(token), has_api_key=bool(api_key),
                    configured=auth is not None)
        return _error(401, "Unauthorized", "unauthorized", started)

    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_WEBHOOK_BODY):
        return _error(400, "Invalid payload", "invalid_payload", started)
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_WEBHOOK_BODY:
            return _error(400, "Invalid payload", "invalid_payload", started)
    try:
        payment = parse_lnbits_body(raw)
    except InvalidPayload as exc:
        log.warning("webhook_invalid_payload", reason=str(exc), auth=method)
        return _error(400, "Invalid payload", "invalid_payload", started)
    verified = time.perf_counter()  # authenticated and parsed

    outcome = await handle_webhook(
        payment, nonce=nonce, auth=method, raw_body=raw, headers=dict(request.headers),
        received_at=received_at, db=gateway.db, settler=gateway.settler,
    )
    done = time.perf_counter()
    parts = {"auth": (verified - started) * 1000, "handle": (done - verified) * 1000}
    # handle's steps; "provider" is the provider's answer to the verification GET
    for step, name in _STEPS:
        if step in outcome.timings:
            parts[name] = outcome.timings[step]
    timing = _timing(started, **parts)
    log.info("webhook_handled", payment_hash=payment.payment_hash, result=outcome.result.value,
             auth=method, order_id=outcome.order_id,
             duration_ms=round((done - started) * 1000, 3),
             **{f"{name}_ms": round(ms, 3) for name, ms in parts.items()})
    result = outcome.result
    if result is WebhookResult.WRONG_NONCE:
        return _error(401, "Unauthorized", "unauthorized", started)
    if result is WebhookResult.NO_MATCH:
        return JsonResponse({"message": "No matching order found"}, headers=timing)
    if result in (WebhookResult.SETTLED, WebhookResult.ALREADY_SETTLED):
        return JsonResponse({"message": "Payment processed successfully",
                             "order_id": outcome.order_id, "amount": outcome.amount_sat},
                            headers=timing)
    if result is WebhookResult.PROVIDER_UNAVAILABLE:
        return JsonResponse({"error": "Payment could not be verified now", "code": result.value},
                            status_code=503, headers=timing)
    message = ("Payment does not match the invoice" if result is WebhookResult.MISMATCH
               else "Payment not confirmed by the provider")
    return JsonResponse({"error": message, "code": result.value}, status_code=409,
                        headers=timing)
