"""Demo-only routes, mounted only in pure demo mode (no real provider configured).

With a real provider configured, no public endpoint can mark anything paid: the route is not
mounted, and would refuse anyway.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from lngate.domain import is_payment_hash
from lngate.web.errors import ApiError
from lngate.web.openapi import errors
from lngate.web.responses import JsonResponse
from lngate.web.schemas import DemoPayment
from lngate.web.state import gateway_of

router = APIRouter()


@router.post(
    "/api/demo/pay/{payment_hash}", tags=["demo"], summary="Pay a test invoice (demo mode)",
    response_model=DemoPayment,
    responses=errors({404: "``not_found``: the test provider issued no invoice with this hash"}),
)
async def demo_pay(payment_hash: str, request: Request) -> JsonResponse:
    """Pay a test-provider invoice, as a customer's wallet would (demo mode only).

    Like a real provider's notification, the payment rings settlement's doorbell: the
    invoice settles through the normal path (the provider is asked, the order fulfilled).
    """
    gateway = gateway_of(request)
    if not gateway.demo_mode:
        raise ApiError(404, "Introuvable", "http_404")
    payment_hash = payment_hash.lower()
    if not is_payment_hash(payment_hash) or not await gateway.test_provider.mark_paid(payment_hash):
        raise ApiError(404, "Facture de test non trouvée", "not_found")
    outcome = await gateway.settler.settle(payment_hash, source="demo-wallet")
    return JsonResponse({"paid": True, "payment_hash": payment_hash, "settlement": outcome.value})
