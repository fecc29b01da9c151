"""``/api/admin/lightning-monitor``: the admin monitor (DESIGN.md section 4), bearer-token only.

With no ``ADMIN_TOKEN`` configured it answers 503 (never open); a missing or wrong token gets
401. The token is compared in constant time.
"""

from __future__ import annotations

import hmac
import math
from typing import Any

from fastapi import APIRouter, Request

from lngate.errors import NoProviderAvailable
from lngate.services import admin
from lngate.services.monitoring import Monitoring
from lngate.web.body import read_json
from lngate.web.errors import ApiError
from lngate.web.responses import JsonResponse
from lngate.web.state import gateway_of

router = APIRouter()
PATH = "/api/admin/lightning-monitor"
GET_ACTIONS = ("status", "health", "metrics", "stats")
POST_ACTIONS = ("simulate_payment", "force_health_check", "reset_metrics")
DEFAULT_SIMULATION_SATS = 1000
MAX_WINDOW_HOURS = 24 * 3650


def require_admin(request: Request) -> None:
    """Refuse unless ``Authorization: Bearer <ADMIN_TOKEN>`` is present and right."""
    token = gateway_of(request).settings.admin_token
    if token is None:
        raise ApiError(503, "Admin API disabled: ADMIN_TOKEN is not configured on this gateway",
                       "admin_disabled")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise ApiError(401, "Unauthorized", "unauthorized",
                       headers={"WWW-Authenticate": 'Bearer realm="lngate-admin"'})


def _monitoring(request: Request) -> Monitoring:
    monitoring = gateway_of(request).monitoring
    assert monitoring is not None
    return monitoring


def _provider(monitoring: Monitoring, name: Any, action: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, f"Provider parameter required for {action}", "provider_required",
                       availableProviders=monitoring.provider_names)
    if name not in monitoring.provider_names:
        raise ApiError(404, f"Unknown provider: {name[:64]}", "unknown_provider",
                       availableProviders=monitoring.provider_names)
    return name


def _hours(value: str | None) -> float | None:
    if value is None or value == "":
        return None
    try:
        hours = float(value)
    except ValueError:
        hours = math.nan
    if not 0 < hours <= MAX_WINDOW_HOURS:
        raise ApiError(400, f"hours must be a number of hours in (0, {MAX_WINDOW_HOURS}]",
                       "invalid_window")
    return hours


def _unknown(action: Any, available: tuple[str, ...]) -> ApiError:
    what = f"Unknown action: {str(action)[:64]}" if action else "Action parameter required"
    return ApiError(400, what, "unknown_action", availableActions=list(available))


@router.get(PATH)
async def monitor_get(request: Request) -> JsonResponse:
    """``?action=status|health|metrics|stats[&provider=][&hours=]``."""
    require_admin(request)
    monitoring = _monitoring(request)
    action = request.query_params.get("action")
    hours = _hours(request.query_params.get("hours"))
    if action == "status":
        return JsonResponse(await admin.status(monitoring, hours))
    if action == "health":
        return JsonResponse(await admin.health_check(monitoring))
    if action == "metrics":
        provider = _provider(monitoring, request.query_params.get("provider"), "metrics")
        return JsonResponse(await admin.metrics(monitoring, provider, hours))
    if action == "stats":
        return JsonResponse(await admin.statistics(monitoring, hours))
    raise _unknown(action, GET_ACTIONS)


@router.post(PATH)
async def monitor_post(request: Request) -> JsonResponse:
    """``{"action": "simulate_payment"|"force_health_check"|"reset_metrics", "provider",
    "data": {"amount"}}``."""
    require_admin(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object", "invalid_body")
    monitoring = _monitoring(request)
    action = body.get("action")
    if action == "force_health_check":
        return JsonResponse(await admin.health_check(monitoring))
    if action == "reset_metrics":
        provider = _provider(monitoring, body.get("provider"), "reset_metrics")
        return JsonResponse(await admin.reset_metrics(monitoring, provider))
    if action == "simulate_payment":
        return JsonResponse(await _simulate(request, body))
    raise _unknown(action, POST_ACTIONS)


async def _simulate(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    gateway = gateway_of(request)
    test = gateway.test_provider
    provider = body.get("provider")
    if provider not in (None, "", test.name):
        raise ApiError(400, f"simulate_payment runs on the test provider ({test.name!r}) only: "
                       "a real provider would need a real payment", "simulation_provider",
                       availableProviders=[test.name])
    data = body.get("data") or {}
    if not isinstance(data, dict):
        raise ApiError(400, "data must be an object like {\"amount\": 1000}", "invalid_data")
    amount = data.get("amount", DEFAULT_SIMULATION_SATS)
    maximum = gateway.settings.max_invoice_sats
    if not isinstance(amount, int) or isinstance(amount, bool) or not 1 <= amount <= maximum:
        raise ApiError(400, f"data.amount must be a whole number of sats from 1 to {maximum:,}",
                       "invalid_amount")

    async def settle_it(payment_hash: str) -> Any:
        return await gateway.settler.settle(payment_hash, source="admin_simulation")

    try:
        simulation = await admin.simulate_payment(
            amount, invoices=gateway.simulation_invoices, test_provider=test, settle=settle_it)
    except NoProviderAvailable as exc:
        raise ApiError(503, "The test provider could not issue an invoice", exc.code,
                       providers=exc.reasons) from None
    return simulation.body()
