"""Demo-only routes, mounted only when the test provider is enabled (LIGHTNING_TEST_MODE)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from lngate.domain import is_payment_hash
from lngate.web.errors import ApiError
from lngate.web.responses import JsonResponse
from lngate.web.state import gateway_of

router = APIRouter()


@router.post("/api/demo/pay/{payment_hash}")
async def demo_pay(payment_hash: str, request: Request) -> JsonResponse:
    """Mark a test-provider invoice paid, as a customer's wallet would (demo and tests only).

    The invoice then settles through the normal path: check-invoice asks the provider.
    """
    gateway = gateway_of(request)
    if gateway.test_provider is None:
        raise ApiError(404, "Introuvable", "http_404")
    if not is_payment_hash(payment_hash) or not gateway.test_provider.mark_paid(
        payment_hash.lower()
    ):
        raise ApiError(404, "Facture de test non trouvée", "not_found")
    return JsonResponse({"paid": True, "payment_hash": payment_hash.lower()})
